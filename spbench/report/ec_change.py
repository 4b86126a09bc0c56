"""How much enforced connectivity (EC) changes each model's output.

Uses the optional score column ``ec_relabelled``: per (image, scale), the fraction of pixels whose
EC label's segment differs from the no-EC labelling, repeated on every annotation row and on both
EC rows of that prediction. The paper claims that EC changes LAP-trained models only a little.

Definition, per model (seeds averaged, ± sample sd over seeds):

- per (run, scale): the plain mean of ``ec_relabelled`` over the (image, annotation) rows with
  EC (docs/protocol.md §6 weighting; the no-EC rows are used only if a run has no EC row
  carrying the column), against that run's EC K̄ (mean actual number of superpixels with EC);
- ``ec_relabelled``: the normalised AUC of that curve over [low, high] (docs/protocol.md §8);
- ``at_k``: its value at the scale whose EC K̄ is nearest ``at_k`` (default 600).

No torch is imported here.
"""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from spbench.metrics import normalized_auc
from spbench.report.aggregate import DEFAULT_AUC_RANGE, RUN_KEYS, markdown_table, model_label
from spbench.report.figures import set_title

__all__ = [
    "EC_CHANGE_COLUMN",
    "ec_change_curves",
    "ec_change_frame",
    "format_ec_change_markdown",
    "has_ec_change",
    "plot_ec_change",
]

EC_CHANGE_COLUMN = "ec_relabelled"
"""Optional score column: fraction of pixels relabelled by EC (per image and scale)."""


def _natural(text: str) -> tuple:
    """Sort key that orders ``lap_l90`` before ``lap_l360``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))


def has_ec_change(scores: pd.DataFrame) -> bool:
    """Whether ``scores`` carries at least one finite ``ec_relabelled`` value."""
    return EC_CHANGE_COLUMN in scores and bool(scores[EC_CHANGE_COLUMN].notna().any())


def ec_change_curves(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (run, scale): mean ``ec_relabelled`` over pairs and the EC K̄.

    Returns
    -------
    pandas.DataFrame
        ``dataset, split, method, variant, seed, scale, model, k_mean, ec_relabelled, n_rows``;
        empty if the column is absent.
    """
    columns = [*RUN_KEYS, "scale", "model", "k_mean", EC_CHANGE_COLUMN, "n_rows"]
    if not has_ec_change(scores):
        return pd.DataFrame(columns=columns)
    rows = scores[scores[EC_CHANGE_COLUMN].notna()]
    with_ec = rows[rows["ec"].astype(bool)]
    runs_ec = set(map(tuple, with_ec[list(RUN_KEYS)].drop_duplicates().to_numpy().tolist()))
    fallback = rows[
        ~rows["ec"].astype(bool)
        & ~pd.Series(
            [tuple(r) in runs_ec for r in rows[list(RUN_KEYS)].to_numpy().tolist()],
            index=rows.index,
        )
    ]
    rows = pd.concat([with_ec, fallback])
    keys = [*RUN_KEYS, "scale"]
    grouped = rows.groupby(keys, sort=True, dropna=False)
    # K̄ of the same EC setting, over all rows of that (run, scale), as in the Table 2 curve
    k_rows = scores.merge(rows[[*keys, "ec"]].drop_duplicates(), on=[*keys, "ec"])
    out = pd.DataFrame(
        {
            EC_CHANGE_COLUMN: grouped[EC_CHANGE_COLUMN].mean(),
            "n_rows": grouped.size(),
            "k_mean": k_rows.groupby(keys, sort=True, dropna=False)["n_superpixels"].mean(),
        }
    ).reset_index()
    out["model"] = [model_label(m, v) for m, v in zip(out["method"], out["variant"], strict=True)]
    return out[columns]


def ec_change_frame(
    scores: pd.DataFrame,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    at_k: float = 600.0,
) -> pd.DataFrame:
    """The EC-change table: one row per model (seeds averaged).

    Parameters
    ----------
    scores
        Score rows (with the optional ``ec_relabelled`` column).
    auc_range
        ``(low, high)`` of the AUC.
    at_k
        K̄ at which the single-scale value is read (the scale with the nearest EC K̄).

    Returns
    -------
    pandas.DataFrame
        ``dataset, split, method, variant, model, n_seeds, ec_relabelled`` (AUC),
        ``ec_relabelled_std``, ``at_k`` (value at the scale nearest ``at_k``), ``at_k_std``,
        ``at_k_k`` (that scale's K̄, seed mean), ``at_k_scale``, ``auc_extrapolated``,
        ``auc_low``, ``auc_high``, ``target_k``. Empty if the column is absent.
    """
    columns = [
        "dataset", "split", "method", "variant", "model", "n_seeds",
        "ec_relabelled", "ec_relabelled_std", "at_k", "at_k_std", "at_k_k", "at_k_scale",
        "auc_extrapolated", "auc_low", "auc_high", "target_k",
    ]  # fmt: skip
    curves = ec_change_curves(scores)
    if curves.empty:
        return pd.DataFrame(columns=columns)
    low, high = (float(x) for x in auc_range)
    seeds = _per_seed(curves, low=low, high=high, at_k=at_k)
    rows = []
    order = {"base": 0, "lap": 1}
    for (dataset, split, method, variant), g in seeds.groupby(
        ["dataset", "split", "method", "variant"], sort=True, dropna=False
    ):
        n = len(g)
        rows.append(
            {
                "dataset": dataset,
                "split": split,
                "method": method,
                "variant": variant,
                "model": model_label(method, variant),
                "n_seeds": int(g["seed"].nunique()),
                "ec_relabelled": float(g["auc"].mean()),
                "ec_relabelled_std": float(g["auc"].std(ddof=1)) if n > 1 else math.nan,
                "at_k": float(g["at_k"].mean()),
                "at_k_std": float(g["at_k"].std(ddof=1)) if n > 1 else math.nan,
                "at_k_k": float(g["at_k_k"].mean()),
                "at_k_scale": ", ".join(f"{s:g}" for s in sorted(g["at_k_scale"].unique())),
                "auc_extrapolated": bool(g["extrapolated"].any()),
                "auc_low": low,
                "auc_high": high,
                "target_k": float(at_k),
                "_order": (order.get(variant, 2), _natural(variant)),
            }
        )
    table = pd.DataFrame(rows)
    table = table.sort_values(["dataset", "split", "method", "_order"], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)[columns]


def _per_seed(curves: pd.DataFrame, *, low: float, high: float, at_k: float) -> pd.DataFrame:
    """Return one row per run (seed): the AUC of the EC change, and its value nearest ``at_k``.

    Columns: the run keys, ``auc``, ``extrapolated``, ``at_k``, ``at_k_k`` (that scale's K̄) and
    ``at_k_scale``. A run with fewer than two scales has a NaN AUC.
    """
    per_seed = []
    for key, g in curves.groupby(list(RUN_KEYS), sort=True, dropna=False):
        g = g.sort_values("k_mean", kind="stable")
        k = g["k_mean"].to_numpy(dtype=float)
        v = g[EC_CHANGE_COLUMN].to_numpy(dtype=float)
        if len(g) >= 2:
            result = normalized_auc(k, v, low=low, high=high)
            auc, extrapolated = float(result.value), bool(result.extrapolated)
        else:
            auc, extrapolated = math.nan, False
        nearest = int(np.argmin(np.abs(k - at_k)))
        per_seed.append(
            {
                **dict(zip(RUN_KEYS, key, strict=True)),
                "auc": auc,
                "extrapolated": extrapolated,
                "at_k": float(v[nearest]),
                "at_k_k": float(k[nearest]),
                "at_k_scale": float(g["scale"].iloc[nearest]),
            }
        )
    return pd.DataFrame(per_seed)


def _pct(value: float, std: float, n: int) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    text = f"{100 * value:.2f}"
    if n > 1 and not math.isnan(std):
        text += f" ± {100 * std:.2f}"
    return text


def format_ec_change_markdown(table: pd.DataFrame, *, title: str = "EC change") -> str:
    """Render :func:`ec_change_frame` as Markdown (percent of pixels), definition in the header.

    Returns
    -------
    str
        The Markdown document, ending with a newline.
    """
    lines = [f"# {title}", ""]
    if table.empty:
        lines.append("The score files carry no `ec_relabelled` column: nothing to report.")
        return "\n".join(lines) + "\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    target = float(table["target_k"].iloc[0])
    lines += [
        "- **Relabelled by EC**: per (image, scale), the fraction of pixels EC merges into a "
        "segment whose majority no-EC label is another, 1 − ASA(EC map, no-EC map) (score "
        "column `ec_relabelled`; a fragment EC only splits off counts 0), averaged over the "
        "(image, annotation) pairs of each scale; shown in **percent of pixels**.",
        f"- “AUC”: normalised AUC of that curve over K̄ ∈ [{low:.0f}, {high:.0f}] against the "
        "EC K̄ (mean actual number of superpixels with EC; docs/protocol.md §8).",
        f"- “at K̄ ≈ {target:.0f}”: the value at the scale whose EC K̄ is nearest {target:.0f}.",
        "- Mean over seeds, ± sample standard deviation when there are several. The paper claims "
        "EC changes LAP-trained models only a little.",
        "",
    ]
    header = ["Model", "seeds", "AUC (%)", f"at K̄ ≈ {target:.0f} (%)", "K̄ there", "scale"]
    rows: list[list[str]] = []
    multi = table[["dataset", "split"]].drop_duplicates().shape[0] > 1
    for _, row in table.iterrows():
        n = int(row["n_seeds"])
        name = str(row["model"]) + (f" ({row['dataset']}/{row['split']})" if multi else "")
        auc = _pct(row["ec_relabelled"], row["ec_relabelled_std"], n)
        if row["auc_extrapolated"]:
            auc += "†"
        rows.append(
            [
                name,
                str(n),
                auc,
                _pct(row["at_k"], row["at_k_std"], n),
                f"{row['at_k_k']:.0f}",
                str(row["at_k_scale"]),
            ]
        )
    lines += markdown_table(header, rows)
    if table["auc_extrapolated"].any():
        lines += ["", "† extrapolated at an unbracketed end of the range (docs/protocol.md §8)."]
    return "\n".join(lines) + "\n"


def plot_ec_change(
    scores: pd.DataFrame,
    table: pd.DataFrame,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    title: str = "",
) -> Figure:
    """Left: percent of pixels relabelled by EC vs K̄ per model; right: its AUC per model.

    Line colour per method, style per variant (:func:`spbench.report.figures.line_style`);
    bands and error bars: ± 1 sd over seeds.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not saved, not closed).
    """
    from spbench.report.figures import K_LABEL, line_style, method_colours, variant_marker

    sns.set_theme(style="whitegrid", context="notebook")
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13.0, 4.8), gridspec_kw={"width_ratios": [3, 2]}
    )
    curves = ec_change_curves(scores)
    low, high = auc_range
    left.axvspan(low, high, color="0.85", alpha=0.5, zorder=0, lw=0)
    if curves.empty:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no ec_relabelled column", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        return fig
    palette = method_colours(sorted(curves["method"].unique()))
    others: list[str] = []
    keys = ["dataset", "split", "method", "variant", "model", "scale"]
    mean = curves.groupby(keys, sort=True)[["k_mean", EC_CHANGE_COLUMN]].mean()
    std = curves.groupby(keys, sort=True)[EC_CHANGE_COLUMN].std(ddof=1)
    mean = mean.assign(std=std).reset_index()
    for (method, variant, model), g in mean.groupby(["method", "variant", "model"], sort=True):
        g = g.sort_values("k_mean")
        colour = palette[method]
        y = 100 * g[EC_CHANGE_COLUMN]
        left.plot(
            g["k_mean"], y, color=colour, linestyle=line_style(method, variant, others),
            marker=variant_marker(method, variant), markersize=3.5, linewidth=1.6, label=model,
        )  # fmt: skip
        s = 100 * g["std"].to_numpy(dtype=float)
        if np.isfinite(s).any():
            left.fill_between(g["k_mean"], y - np.nan_to_num(s), y + np.nan_to_num(s),
                              color=colour, alpha=0.15, lw=0)  # fmt: skip
    left.set_xlabel(K_LABEL + ", with EC")
    left.set_ylabel("pixels relabelled by EC (%)")
    left.set_title("EC change per scale")
    left.legend(frameon=False, fontsize=8)
    x = np.arange(len(table))
    colours = [palette.get(m, "0.5") for m in table["method"]]
    err = 100 * table["ec_relabelled_std"].to_numpy(dtype=float)
    right.bar(
        x, 100 * table["ec_relabelled"].to_numpy(dtype=float), color=colours,
        yerr=np.where(np.isfinite(err), err, 0.0), capsize=3,
        hatch=None, edgecolor="0.2", linewidth=0.6,
    )  # fmt: skip
    for patch, variant in zip(right.patches, table["variant"], strict=False):
        if variant != "base":
            patch.set_hatch("//")
    right.set_xticks(x, list(table["model"]), rotation=30, ha="right")
    right.set_ylabel(f"AUC over [{low:.0f}, {high:.0f}] (%)")
    right.set_title("normalised AUC per model")
    set_title(fig, (f"{title}: " if title else "") + "fraction of pixels changed by EC")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
