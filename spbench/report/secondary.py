"""Secondary views of Table 2 (``docs/protocol.md`` §8), labelled and kept apart from it.

The paper does not say whether its AUC x-axis is the actual or the nominal number of superpixels,
and the superpixel literature often quotes the reference benchmark's "average metrics". So that a
reader can compare with either, Table 2's artefact also writes, per (model, EC):

- the normalised AUC over the same range against the **nominal** count int(600·s²) instead of
  the measured K̄ (:func:`spbench.report.aggregate.compute_auc` with ``k_column="n_nominal"``);
- the benchmark's **average metrics** (``Evaluation::computeAverageMetric``,
  :func:`spbench.metrics.average_metric`) over the actual K̄ ∈ [200, 5200]: AMR from BR, AUE
  from UE_np, AUV from EV, in percent, lower is better. They integrate Table 2's curves (the
  mean over every (image, annotation) pair); the benchmark's ``eval_average_cli`` feeds the
  same rule the worst annotation per image instead (its ``mean_min``/``mean_max`` statistics),
  a convention spbench does not use (``docs/protocol.md`` §6).

Every number is the mean over seeds (± sample standard deviation). No torch is imported here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from spbench.metrics import average_metric, metric
from spbench.report.aggregate import (
    AUC_KEYS,
    DEFAULT_AUC_RANGE,
    SUMMARY_KEYS,
    compute_auc,
    markdown_table,
    summarise_seeds,
)
from spbench.report.tables import EXTRAPOLATED_MARK, data_description, format_cell, sort_rows

__all__ = [
    "AVERAGE_METRICS",
    "AVERAGE_RANGE",
    "NOMINAL_METRICS",
    "AverageMetric",
    "format_secondary_markdown",
    "secondary_frame",
]

NOMINAL_METRICS: tuple[str, ...] = ("asa", "co", "bp", "br", "ue_np")
"""Metrics whose AUC against the nominal count is shown (Table 2's, less the EC-free XC/Stray)."""

AVERAGE_RANGE: tuple[int, int] = (200, 5200)
"""K range of the benchmark's average metrics (its defaults), in superpixels."""


class AverageMetric(NamedTuple):
    """One of the benchmark's average metrics: its name, source metric and direction."""

    name: str
    label: str
    source: str
    lower_is_better: bool


AVERAGE_METRICS: tuple[AverageMetric, ...] = (
    AverageMetric("amr", "AMR", "br", False),
    AverageMetric("aue", "AUE", "ue_np", True),
    AverageMetric("auv", "AUV", "ev", False),
)
"""Average miss rate (100 − mean BR), undersegmentation error and unexplained variation
(100 − mean EV), as the benchmark's ``eval_average_cli`` names them."""


def _average(k: np.ndarray, v: np.ndarray, lower_is_better: bool) -> tuple[float, bool]:
    """One average metric, and whether the measured K̄ fails to span :data:`AVERAGE_RANGE`
    (the benchmark's end rules then hold or extend the curve); ``(nan, False)`` where the rules
    are undefined."""
    low, high = AVERAGE_RANGE
    finite = np.isfinite(k) & np.isfinite(v)
    k, v = k[finite], v[finite]
    try:
        value = average_metric(k, v, low=low, high=high, lower_is_better=lower_is_better)
    except ValueError:  # < 3 points, all on one side of the range, too few distinct K below it
        return float("nan"), False
    return value, bool(k.min() > low or k.max() < high)


def _average_metrics(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (run, EC): each :data:`AVERAGE_METRICS` over the actual K̄ (NaN where undefined)."""
    rows = []
    for key, group in curves.groupby(list(AUC_KEYS), sort=True, dropna=False):
        k = group["k_mean"].to_numpy(dtype=float)
        row: dict[str, object] = dict(zip(AUC_KEYS, key, strict=True))
        row["k_measured_max"] = float(np.nanmax(k)) if np.isfinite(k).any() else np.nan
        for avg in AVERAGE_METRICS:
            v = group[avg.source].to_numpy(dtype=float)
            row[avg.name], row[f"{avg.name}_extrapolated"] = _average(k, v, avg.lower_is_better)
        rows.append(row)
    return pd.DataFrame(rows)


#: Columns of :func:`secondary_frame` besides the values: what each row was scored on, and the
#: AUC range.
_DESCRIPTION_COLUMNS = ("n_images", "n_pairs", "gt_cap50", "max_annotations", "auc_low", "auc_high")


def secondary_frame(
    curves: pd.DataFrame, *, auc_range: tuple[float, float] = DEFAULT_AUC_RANGE
) -> pd.DataFrame:
    """Per (model, EC): the nominal-count AUCs and the benchmark's average metrics.

    Parameters
    ----------
    curves
        Output of :func:`spbench.report.aggregate.aggregate_curves`.
    auc_range
        ``(low, high)`` of the nominal-count AUC, in superpixels (Table 2's range).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, EC) in Table 2's order, with ``model``,
        ``n_seeds``, ``seeds``; per metric of :data:`NOMINAL_METRICS` ``<m>_nominal`` (mean AUC
        over seeds against the nominal count, the metric's units), ``<m>_nominal_std`` and
        ``<m>_nominal_extrapolated``; per :data:`AVERAGE_METRICS` ``<name>`` (mean over seeds,
        percent, lower is better; NaN where the benchmark's rules are undefined: fewer than 3
        points, every K̄ on one side of [200, 5200], or too few distinct K̄ below 5200),
        ``<name>_std`` and ``<name>_extrapolated`` (the measured K̄ does not span [200, 5200]);
        ``k_measured_max`` (the largest measured K̄ of any seed); ``n_images``, ``n_pairs``,
        ``gt_cap50``, ``max_annotations``, ``auc_low`` and ``auc_high``.
    """
    per_seed = compute_auc(
        curves, auc_range=auc_range, metrics=NOMINAL_METRICS, k_column="n_nominal"
    )
    per_seed = per_seed.merge(_average_metrics(curves), on=list(AUC_KEYS), validate="one_to_one")
    names = [*NOMINAL_METRICS, *(avg.name for avg in AVERAGE_METRICS)]
    summary = sort_rows(summarise_seeds(per_seed, metrics=names))
    k_max = per_seed.groupby(list(SUMMARY_KEYS), dropna=False)["k_measured_max"].max()
    summary = summary.join(k_max, on=list(SUMMARY_KEYS))
    renamed = {}
    for name in NOMINAL_METRICS:
        for suffix in ("", "_std", "_extrapolated"):
            renamed[f"{name}{suffix}"] = f"{name}_nominal{suffix}"
    columns = ["model", "dataset", "split", "method", "variant", "ec", "n_seeds", "seeds"]
    columns += [f"{name}{s}" for name in names for s in ("", "_std", "_extrapolated")]
    columns += ["k_measured_max", *_DESCRIPTION_COLUMNS]
    return summary[columns].rename(columns=renamed).reset_index(drop=True)


def _header_and_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "EC"]
    header += [f"{metric(name).header} (nominal)" for name in NOMINAL_METRICS]
    header += [f"{avg.label} ↓" for avg in AVERAGE_METRICS] + ["seeds"]
    body = []
    for _, row in frame.iterrows():
        cells = [str(row["model"]), "yes" if row["ec"] else "no"]
        for name in NOMINAL_METRICS:
            cells.append(_cell(row, f"{name}_nominal", metric(name).decimals))
        cells += [_cell(row, avg.name, 2) for avg in AVERAGE_METRICS]
        body.append([*cells, str(int(row["n_seeds"]))])
    return header, body


def _cell(row: pd.Series, column: str, decimals: int) -> str:
    return format_cell(row, column, decimals, pm=" ± ", mark=EXTRAPOLATED_MARK)


def _definitions(frame: pd.DataFrame) -> list[str]:
    """The bullet list that says what each view is (and is not)."""
    low, high = frame["auc_low"].iloc[0], frame["auc_high"].iloc[0]
    a_low, a_high = AVERAGE_RANGE
    return [
        f"- *(nominal)*: the normalised AUC over [{low:.0f}, {high:.0f}] against the *nominal* "
        "count int(600·s²) instead of the measured K̄. Without EC, a deep method's K̄ is at "
        "most the nominal count (a grid cell may win no pixel) and often equal to it; with EC "
        "it is usually above it, so its points move along K between the views.",
        f"- AMR, AUE, AUV: the reference benchmark's average metrics (computeAverageMetric) over "
        f"the actual K̄ ∈ [{a_low}, {a_high}], in percent, lower is better: "
        f"100/{a_high - a_low}·∫(1 − v) dK for BR (average miss rate) and EV (average "
        f"unexplained variation), 100/{a_high - a_low}·∫ UE_np dK for AUE. The largest "
        f"measured K̄ here is {frame['k_measured_max'].max():.0f}; the benchmark's end rule "
        f"then drops the second-to-last point and moves the last value to K = {a_high}, so most "
        "of that range is a straight line, not a measurement. "
        "They integrate Table 2's curves (mean over every (image, annotation) pair); the "
        "benchmark's eval_average_cli takes the worst annotation per image instead (min BR, "
        "max UE_np, min EV), so they are its rule, not its numbers.",
        f"- Data: {data_description(frame)}.",
        "- Mean over seeds, ± sample standard deviation when there is more than one seed.",
    ]


def format_secondary_markdown(frame: pd.DataFrame, *, title: str = "Table 2") -> str:
    """Render :func:`secondary_frame` as Markdown, with what each view is and is not.

    Parameters
    ----------
    frame
        Output of :func:`secondary_frame`.
    title
        Heading prefix (the report's title and table name).

    Returns
    -------
    str
        A heading, the definitions, one table, and the notes for † and "—" where they occur.
    """
    if frame.empty:
        return f"# {title}: secondary views\n\nNo scored runs.\n"
    header, body = _header_and_rows(frame)
    lines = [
        f"# {title}: secondary views",
        "",
        "**Not Table 2's numbers**, for comparison with other conventions only "
        "(docs/protocol.md §8). Table 2 integrates against the measured K̄.",
        "",
        *_definitions(frame),
        "",
        *markdown_table(header, body),
        "",
    ]
    cells = "\n".join(" | ".join(row) for row in body)
    if EXTRAPOLATED_MARK in cells:
        lines += [
            f"{EXTRAPOLATED_MARK} An end of the range is not bracketed by measured points: "
            "extrapolated (nominal AUC: linearly, from the two nearest points; average metrics: "
            "by the benchmark's end rules).",
            "",
        ]
    if frame[[avg.name for avg in AVERAGE_METRICS]].isna().to_numpy().any():
        a_low, a_high = AVERAGE_RANGE
        lines += [
            "“—”: undefined by the benchmark's rules (fewer than 3 scales, every measured K̄ on "
            f"one side of [{a_low}, {a_high}], or too few distinct K̄ below {a_high}).",
            "",
        ]
    return "\n".join(lines)
