"""The λ_LAP sweep: connectivity and accuracy against the weight of the Laplacian loss.

A *sweep* is a set of runs of one method, on one dataset/split, whose variants differ only in the
effective LAP weight λ = ``lambda_lap`` if ``use_lap`` else 0 (λ = 0 means LAP off): they agree in
``use_msd``, ``use_wr``, ``msd_mode``, ``weights`` and ``train_steps``. A group is a sweep when it
has at least ``min_points`` (default 3) distinct λ, so the default ``base``/``lap`` pair (which
also differs in MSD and WR) is not one. The project's config names such runs ``lap_l90``,
``lap_l1440``, ... (λ = 0 is ``abl_msd_wr``, its switches' name, and the profile's λ is the
variant ``lap``); if two variants of a group share a λ, the one named ``lap_l*`` is kept.

Per sweep point (all no-EC, seeds averaged, ± sample sd over seeds):

- XC, Stray, ASA and CO: the normalised AUC of Table 2
  (:func:`~spbench.report.aggregate.compute_auc`);
- **zero-XC fraction**: at each scale, the fraction of test *images* whose no-EC prediction has
  XC = 0 (XC is per prediction, so the annotation rows of an image agree); this fraction is then
  averaged (plain mean) over the scales whose no-EC K̄ lies inside the AUC range [low, high]
  (the paper: "XC ≈ 0 for nearly half the test images at λ_LAP = 5760").

No torch is imported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from spbench.metrics import Metric, metric
from spbench.report.aggregate import (
    DEFAULT_AUC_RANGE,
    RUN_KEYS,
    markdown_table,
    model_label,
)
from spbench.report.figures import set_title
from spbench.report.tables import EXTRAPOLATED_MARK, format_cell

__all__ = [
    "SWEEP_GROUP_ATTRIBUTES",
    "SWEEP_METRICS",
    "ZERO_XC_FRACTION",
    "find_sweeps",
    "format_sweep_markdown",
    "plot_lambda_sweep",
    "sweep_frame",
    "zero_xc_fraction",
]

ZERO_XC_FRACTION = Metric(
    "zero_xc_fraction", "images with XC = 0", True, 3, with_ec=False, per_pair=False
)
"""The sweep's own metric: the fraction of images without excess components (see above)."""

SWEEP_METRICS: tuple[Metric, ...] = (*map(metric, ("xc", "stray", "asa", "co")), ZERO_XC_FRACTION)
"""Columns of the sweep table and panels of the figure."""

SWEEP_GROUP_ATTRIBUTES: tuple[str, ...] = (
    "use_msd",
    "use_wr",
    "msd_mode",
    "weights",
    "train_steps",
)
"""Run attributes that must agree within a sweep (everything but the LAP weight)."""

_SWEEP_NAME = re.compile(r"^lap_l\d")


def _effective_lambda(use_lap: object, lambda_lap: object) -> float:
    if not isinstance(use_lap, (bool, np.bool_)):
        return math.nan  # seeds disagree on the switch
    if not use_lap:
        return 0.0
    try:
        return float(lambda_lap)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def find_sweeps(
    summary: pd.DataFrame, *, method: str | None = None, min_points: int = 3
) -> pd.DataFrame:
    """The runs that form λ_LAP sweeps (see the module docstring).

    Parameters
    ----------
    summary
        :func:`~spbench.report.aggregate.summarise_seeds` output (EC rows are ignored).
    method
        Only this method (``None``: every method that has a sweep).
    min_points
        Minimum number of distinct λ for a group to count as a sweep.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, split, method, variant, model, lambda_eff, sweep_id`` (one row per
        sweep point, sorted by λ within a sweep; ``sweep_id`` numbers the sweeps from 0).
    """
    columns = ["dataset", "split", "method", "variant", "model", "lambda_eff", "sweep_id"]
    noec = summary[~summary["ec"].astype(bool)]
    if method is not None:
        noec = noec[noec["method"] == method]
    if noec.empty:
        return pd.DataFrame(columns=columns)
    noec = noec.assign(
        lambda_eff=[
            _effective_lambda(u, lam)
            for u, lam in zip(noec["use_lap"], noec["lambda_lap"], strict=True)
        ]
    )
    noec = noec[np.isfinite(noec["lambda_eff"].to_numpy(dtype=float))]
    keys = ["dataset", "split", "method", *SWEEP_GROUP_ATTRIBUTES]
    parts = []
    sweep_id = 0
    for _, group in noec.astype({a: str for a in SWEEP_GROUP_ATTRIBUTES}).groupby(
        keys, sort=True, dropna=False
    ):
        group = group.assign(
            _pref=[0 if _SWEEP_NAME.match(v) else 1 for v in group["variant"]]
        ).sort_values(["lambda_eff", "_pref", "variant"], kind="stable")
        group = group.drop_duplicates("lambda_eff", keep="first")
        if len(group) < min_points:
            continue
        parts.append(group.assign(sweep_id=sweep_id)[columns])
        sweep_id += 1
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)


def zero_xc_fraction(
    scores: pd.DataFrame,
    curves: pd.DataFrame,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
) -> pd.DataFrame:
    """Per run (seed), the fraction of images with XC = 0 without EC, averaged over scales.

    The scales are chosen by their nominal count, the same for every run: a run's no-EC K̄
    stays below the nominal count (a cell can be empty), so choosing by K̄ would drop a scale
    at the range's end from one run and keep it in another.

    Parameters
    ----------
    scores
        Score rows.
    curves
        Their :func:`~spbench.report.aggregate.aggregate_curves` (gives each scale's nominal
        count).
    auc_range
        Scales whose nominal count lies in ``[low, high]`` (inclusive) are averaged.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, seed): ``zero_xc_fraction`` (NaN if no
        scale's nominal count is in range), ``n_scales_in_range`` and ``n_images`` (images at
        those scales).
    """
    low, high = (float(x) for x in auc_range)
    noec = scores[~scores["ec"].astype(bool)]
    keys = list(RUN_KEYS)
    columns = [*keys, "zero_xc_fraction", "n_scales_in_range", "n_images"]
    if noec.empty:
        return pd.DataFrame(columns=columns)
    per_image = noec.groupby([*keys, "scale", "image_id"], sort=True, dropna=False)["xc"].max()
    per_scale = (per_image == 0).groupby(level=[*keys, "scale"], dropna=False).mean()
    n_img = per_image.groupby(level=[*keys, "scale"], dropna=False).size()
    nominal = curves[~curves["ec"].astype(bool)].set_index([*keys, "scale"])["n_nominal"]
    frame = pd.DataFrame({"fraction": per_scale, "n_images": n_img}).join(nominal, how="left")
    frame = frame[(frame["n_nominal"] >= low) & (frame["n_nominal"] <= high)]
    out = frame.groupby(level=keys, dropna=False).agg(
        zero_xc_fraction=("fraction", "mean"),
        n_scales_in_range=("fraction", "size"),
        n_images=("n_images", "max"),
    )
    runs = noec[keys].drop_duplicates().set_index(keys)
    out = runs.join(out, how="left").reset_index()
    out["n_scales_in_range"] = out["n_scales_in_range"].fillna(0).astype(int)
    out["n_images"] = out["n_images"].fillna(0).astype(int)
    return out[columns]


def sweep_frame(
    scores: pd.DataFrame,
    curves: pd.DataFrame,
    auc: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    method: str | None = None,
    min_points: int = 3,
) -> pd.DataFrame:
    """The sweep table: one row per sweep point, metrics averaged over seeds.

    Parameters
    ----------
    scores, curves, auc, summary
        Score rows and their aggregates (:func:`~spbench.report.aggregate.aggregate_curves`,
        :func:`~spbench.report.aggregate.compute_auc`,
        :func:`~spbench.report.aggregate.summarise_seeds`).
    auc_range
        AUC range (for the zero-XC fraction's scale selection).
    method, min_points
        See :func:`find_sweeps`.

    Returns
    -------
    pandas.DataFrame
        ``sweep_id, dataset, split, method, variant, model, lambda_lap`` (effective λ; reference
        methods that were not trained, such as SLIC, close the table with ``sweep_id`` −1 and
        λ NaN),
        ``n_seeds``, per column of :data:`SWEEP_METRICS` its seed mean, ``<c>_std`` (sample
        sd, NaN for one seed) and ``<c>_extrapolated`` (an AUC of some seed extrapolated at an
        unbracketed end; False for the zero-XC fraction), ``n_scales_in_range``, ``n_images``,
        ``auc_extrapolated``, ``auc_low``, ``auc_high``. Empty if there is no sweep.
    """
    points = find_sweeps(summary, method=method, min_points=min_points)
    metric_cols = [m.name for m in SWEEP_METRICS]
    columns = [
        "sweep_id", "dataset", "split", "method", "variant", "model", "lambda_lap", "n_seeds",
        *(f"{c}{s}" for c in metric_cols for s in ("", "_std", "_extrapolated")),
        "n_scales_in_range", "n_images", "auc_extrapolated", "auc_low", "auc_high",
    ]  # fmt: skip
    if points.empty:
        return pd.DataFrame(columns=columns)
    keys = ["dataset", "split", "method", "variant"]
    # Untrained reference methods (SLIC, the grid) close the table, as in every table.
    refs = scores.loc[scores["train_steps"] == 0, keys].drop_duplicates()
    refs = refs[~refs["method"].isin(points["method"])]
    wanted = pd.concat([points[keys], refs]).drop_duplicates()
    in_sweep = scores.merge(wanted, on=keys, how="inner")
    zero = zero_xc_fraction(in_sweep, curves, auc_range=auc_range)
    per_seed = (
        auc[~auc["ec"].astype(bool)]
        .drop(columns=["n_images", "n_pairs"])  # the zero-XC fraction's count is the sweep's
        .merge(zero, on=list(RUN_KEYS), how="inner")
    )
    records = [
        {**rec, "lambda_eff": float(rec["lambda_eff"])} for rec in points.to_dict("records")
    ] + [{**rec, "sweep_id": -1, "lambda_eff": math.nan} for rec in refs.to_dict("records")]
    rows = []
    for rec in records:
        g = per_seed[
            (per_seed["dataset"] == rec["dataset"])
            & (per_seed["split"] == rec["split"])
            & (per_seed["method"] == rec["method"])
            & (per_seed["variant"] == rec["variant"])
        ]
        row = {
            "sweep_id": rec["sweep_id"],
            **{c: rec[c] for c in keys},
            "model": model_label(rec["method"], rec["variant"]),
            "lambda_lap": rec["lambda_eff"],
            "n_seeds": int(g["seed"].nunique()),
        }
        for col in metric_cols:
            values = g[col].to_numpy(dtype=float)
            row[col] = float(np.mean(values)) if len(values) else math.nan
            row[f"{col}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            flag = f"{col}_extrapolated"  # the zero-XC fraction has none: it is no AUC
            row[flag] = bool(g[flag].any()) if flag in g else False
        row["n_scales_in_range"] = int(g["n_scales_in_range"].min()) if len(g) else 0
        row["n_images"] = int(g["n_images"].max()) if len(g) else 0
        flags = [f"{m}_extrapolated" for m in metric_cols if f"{m}_extrapolated" in g]
        row["auc_extrapolated"] = bool(g[flags].to_numpy().any()) if len(g) else False
        row["auc_low"], row["auc_high"] = (float(x) for x in auc_range)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def format_sweep_markdown(table: pd.DataFrame, *, title: str = "λ_LAP sweep") -> str:
    """Render :func:`sweep_frame` as Markdown with the definitions in the header.

    Returns
    -------
    str
        The Markdown document, ending with a newline.
    """
    lines = [f"# {title}", ""]
    if table.empty:
        lines.append(
            "No sweep: no method has three or more runs that differ only in λ_LAP "
            "(variants `lap_l<λ>`, λ = 0 meaning LAP off)."
        )
        return "\n".join(lines) + "\n"
    low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
    lines += [
        "- Runs of one method that differ only in the LAP weight λ_LAP (λ = 0: LAP off); all "
        "numbers **without EC**, mean over seeds (± sample sd when there are several).",
        f"- XC, Stray, ASA, CO: normalised AUC over K̄ ∈ [{low:.0f}, {high:.0f}] as in Table 2.",
        "- **images with XC = 0**: at each scale, the fraction of test images whose no-EC "
        "prediction has no excess component (XC = 0); averaged over the scales whose nominal "
        f"superpixel count lies in [{low:.0f}, {high:.0f}], the same for every run (the number "
        "of such scales is given).",
        "",
    ]
    header = ["Model", "λ_LAP", "seeds", *(m.header for m in SWEEP_METRICS), "scales"]
    rows: list[list[str]] = []
    for _, row in table.iterrows():
        lam = row["lambda_lap"]
        lam_text = "reference" if pd.isna(lam) else f"{lam:g}"
        cells = [str(row["model"]), lam_text, str(int(row["n_seeds"]))]
        for fact in SWEEP_METRICS:
            cells.append(
                format_cell(row, fact.name, fact.decimals, pm=" ± ", mark=EXTRAPOLATED_MARK)
            )
        cells.append(str(int(row["n_scales_in_range"])))
        rows.append(cells)
    lines += markdown_table(header, rows)
    if table["auc_extrapolated"].any():
        lines += [
            "",
            f"{EXTRAPOLATED_MARK} The measured K̄ does not bracket [{low:.0f}, {high:.0f}] for "
            "this run: the AUC uses a linear extrapolation at the unbracketed end "
            "(docs/protocol.md §8) and is less reliable.",
        ]
    return "\n".join(lines) + "\n"


def plot_lambda_sweep(
    table: pd.DataFrame,
    *,
    title: str = "",
    metrics: Sequence[Metric] = SWEEP_METRICS,
) -> Figure:
    """One panel per metric against λ_LAP (symlog x axis, so λ = 0 is shown).

    Parameters
    ----------
    table
        Output of :func:`sweep_frame`.
    title
        Figure title prefix.
    metrics
        One metric per panel.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not saved, not closed). Error bars: ± 1 sd over seeds where there are several.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    ncols = 3
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.8 * nrows), squeeze=False)
    table = table[table["sweep_id"] >= 0] if not table.empty else table  # references: no λ axis
    sweeps = list(table.groupby("sweep_id", sort=True)) if not table.empty else []
    colours = sns.color_palette("colorblind", n_colors=max(len(sweeps), 1))
    positive = table["lambda_lap"][table["lambda_lap"] > 0] if not table.empty else []
    linthresh = float(np.min(positive)) if len(positive) else 1.0
    handles = []
    for ax, fact in zip(axes.flat, metrics, strict=False):
        drawn = _plot_sweep_panel(ax, fact, sweeps, colours)
        if fact.name == metrics[0].name:
            handles = drawn
        _lambda_axis(ax, table, linthresh)
        ax.set_ylabel(fact.header)
        ax.set_title(fact.label)
        if fact.name == "zero_xc_fraction":
            ax.set_ylim(-0.02, 1.05)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    if not sweeps:
        fig.text(0.5, 0.5, "no λ_LAP sweep in the score rows", ha="center", va="center")
    else:
        fig.legend(
            [h for h, _ in handles],
            [n for _, n in handles],
            loc="lower center",
            ncol=min(len(handles), 5),
            frameon=False,
        )
    low_high = ""
    if not table.empty:
        low, high = float(table["auc_low"].iloc[0]), float(table["auc_high"].iloc[0])
        low_high = (
            f" (no EC; AUCs over K̄ ∈ [{low:.0f}, {high:.0f}], images with XC = 0: mean over "
            "the scales whose nominal count is in that range; bars ± s.d. over seeds)"
        )
    set_title(fig, (f"{title}: " if title else "") + "λ_LAP sweep" + low_high)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig


def _plot_sweep_panel(ax: Axes, fact: Metric, sweeps: list, colours: list) -> list[tuple]:
    """Draw one metric of every sweep against λ on ``ax``; return (artist, label) per sweep."""
    col = fact.name
    handles = []
    for (_, g), colour in zip(sweeps, colours, strict=False):
        g = g.sort_values("lambda_lap")
        method = model_label(str(g["method"].iloc[0]), "base")
        name = f"{method} ({g['dataset'].iloc[0]}/{g['split'].iloc[0]})"
        std = g[f"{col}_std"].to_numpy(dtype=float)
        container = ax.errorbar(
            g["lambda_lap"],
            g[col],
            yerr=np.where(np.isfinite(std), std, 0.0) if np.isfinite(std).any() else None,
            color=colour,
            marker="o",
            markersize=5,
            linewidth=1.6,
            capsize=3,
            label=name,
        )
        handles.append((container, name))
        for lam, value in zip(g["lambda_lap"], g[col], strict=True):
            if col == "zero_xc_fraction" and np.isfinite(value):
                ax.annotate(
                    f"{value:.2f}", (lam, value), textcoords="offset points", xytext=(0, 6),
                    fontsize=7, ha="center", color=colour,
                )  # fmt: skip
    return handles


def _lambda_axis(ax: Axes, table: pd.DataFrame, linthresh: float) -> None:
    """Put λ on a symlog x axis (so λ = 0 shows) with one tick per swept λ."""
    ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
    if not table.empty:
        ticks = sorted(table["lambda_lap"].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], rotation=45 if len(ticks) > 6 else 0)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlim(-0.3 * linthresh, max(ticks) * 1.6 if max(ticks) > 0 else 1.0)
    ax.set_xlabel("λ_LAP (symlog; 0 = LAP off)")
