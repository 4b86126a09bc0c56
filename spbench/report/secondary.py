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
    compute_auc,
    format_number,
    markdown_table,
    summarise_seeds,
)
from spbench.report.tables import EXTRAPOLATED_MARK, sort_rows

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
    """One average metric and whether the measured K̄ fails to span :data:`AVERAGE_RANGE`."""
    low, high = AVERAGE_RANGE
    finite = np.isfinite(k) & np.isfinite(v)
    k, v = k[finite], v[finite]
    if k.size == 0:
        return float("nan"), False
    # The benchmark's end rules hold or extend the curve to [200, 5200] (with 13 scales up to
    # s = 1.5: always), flagged.
    unspanned = bool(k.min() > low or k.max() < high)
    try:
        value = average_metric(k, v, low=low, high=high, lower_is_better=lower_is_better)
    except ValueError:  # < 3 points, or none inside the range: the benchmark's rules are undefined
        return float("nan"), unspanned
    return value, unspanned


def _average_metrics(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (run, EC): each :data:`AVERAGE_METRICS` over the actual K̄ (NaN where undefined)."""
    rows = []
    for key, group in curves.groupby(list(AUC_KEYS), sort=True, dropna=False):
        k = group["k_mean"].to_numpy(dtype=float)
        row: dict[str, object] = dict(zip(AUC_KEYS, key, strict=True))
        for avg in AVERAGE_METRICS:
            v = group[avg.source].to_numpy(dtype=float)
            value, unspanned = _average(k, v, avg.lower_is_better)
            row[avg.name] = value
            row[f"{avg.name}_extrapolated"] = unspanned
        rows.append(row)
    return pd.DataFrame(rows)


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
        points, or every K̄ on one side of [200, 5200]), ``<name>_std`` and
        ``<name>_extrapolated`` (the measured K̄ does not span [200, 5200]); ``auc_low`` and
        ``auc_high``.
    """
    per_seed = compute_auc(
        curves, auc_range=auc_range, metrics=NOMINAL_METRICS, k_column="n_nominal"
    )
    per_seed = per_seed.merge(_average_metrics(curves), on=list(AUC_KEYS), validate="one_to_one")
    names = [*NOMINAL_METRICS, *(avg.name for avg in AVERAGE_METRICS)]
    summary = sort_rows(summarise_seeds(per_seed, metrics=names))
    renamed = {}
    for name in NOMINAL_METRICS:
        for suffix in ("", "_std", "_extrapolated"):
            renamed[f"{name}{suffix}"] = f"{name}_nominal{suffix}"
    columns = ["model", "dataset", "split", "method", "variant", "ec", "n_seeds", "seeds"]
    columns += [f"{name}{s}" for name in names for s in ("", "_std", "_extrapolated")]
    return summary[[*columns, "auc_low", "auc_high"]].rename(columns=renamed).reset_index(drop=True)


def _cell(row: pd.Series, column: str, decimals: int) -> str:
    text = format_number(row[column], decimals)
    if text == "—":
        return text
    std = row[f"{column}_std"]
    if row["n_seeds"] > 1 and np.isfinite(std):
        text += f" ± {float(std):.{decimals}f}"
    return text + (EXTRAPOLATED_MARK if row[f"{column}_extrapolated"] else "")


def format_secondary_markdown(frame: pd.DataFrame, *, title: str = "Table 2") -> str:
    """Render :func:`secondary_frame` as Markdown, with what each view is and is not.

    Returns
    -------
    str
        A heading, the definitions, one table, and the † footnote.
    """
    if frame.empty:
        return f"# {title}: secondary views\n\nNo scored runs.\n"
    low, high = frame["auc_low"].iloc[0], frame["auc_high"].iloc[0]
    a_low, a_high = AVERAGE_RANGE
    header = ["Model", "EC"]
    header += [f"{metric(name).header} (nominal)" for name in NOMINAL_METRICS]
    header += [f"{avg.label} ↓" for avg in AVERAGE_METRICS] + ["seeds"]
    body = []
    for _, row in frame.iterrows():
        cells = [str(row["model"]), "yes" if row["ec"] else "no"]
        cells += [_cell(row, f"{n}_nominal", metric(n).decimals) for n in NOMINAL_METRICS]
        cells += [_cell(row, avg.name, 2) for avg in AVERAGE_METRICS]
        body.append([*cells, str(int(row["n_seeds"]))])
    lines = [
        f"# {title}: secondary views",
        "",
        "**Not Table 2's numbers**, for comparison with other conventions only "
        "(docs/protocol.md §8). Table 2 integrates against the measured K̄.",
        "",
        f"- *(nominal)*: the normalised AUC over [{low:.0f}, {high:.0f}] against the *nominal* "
        "count int(600·s²) instead of K̄. K̄ differs from the nominal count (below it without EC, "
        "above it with EC for the deep methods), so each point moves along K between the views.",
        f"- AMR, AUE, AUV: the reference benchmark's average metrics (computeAverageMetric) over "
        f"the actual K̄ ∈ [{a_low}, {a_high}], in percent, lower is better: 100/{a_high - a_low}"
        "·∫(1 − v) dK for BR (average miss rate) and EV (average unexplained variation), "
        f"100/{a_high - a_low}·∫ UE_np dK for AUE. Where the measured K̄ ends below {a_high} "
        "(the paper's 13 scales end near K̄ = 1350), the benchmark's end rule holds the last "
        f"value out to {a_high}: most of that range is not measured. They "
        "integrate Table 2's curves (mean over every (image, annotation) pair); the benchmark's "
        "eval_average_cli takes the worst annotation per image instead (min BR, max UE_np, "
        "min EV), so they are its rule, not its numbers.",
        "- Mean over seeds, ± sample standard deviation when there is more than one seed.",
        "",
        *markdown_table(header, body),
        "",
    ]
    if frame.filter(like="_extrapolated").to_numpy(dtype=bool).any():
        lines += [
            f"{EXTRAPOLATED_MARK} An end of the range is not bracketed by measured points: "
            "extrapolated (nominal AUC: linearly, from the two nearest points; average metrics: "
            "by the benchmark's end rules).",
            "",
        ]
    if frame[[avg.name for avg in AVERAGE_METRICS]].isna().to_numpy().any():
        lines += [
            f"“—”: undefined by the benchmark's rules (every measured K̄ outside [{a_low}, "
            f"{a_high}], or fewer than 3 scales).",
            "",
        ]
    return "\n".join(lines)
