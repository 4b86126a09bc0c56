"""Trade-off figures: metric vs K̄ per model, and ASA against CO.

All figures are drawn with matplotlib's Agg backend (no display needed) and seaborn styling, and
saved as PNG (150 dpi) and PDF through :func:`spbench.io.atomic_path`. Curves are the per-scale
means of :func:`spbench.report.aggregate.aggregate_curves`, averaged over seeds (the shading
around a line is ± one standard deviation over seeds where there are several).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D

from spbench.io import atomic_path
from spbench.metrics import metric

__all__ = [
    "FIGURE_DPI",
    "FIGURE_METRICS",
    "line_style",
    "method_colours",
    "plot_asa_co_tradeoff",
    "plot_metrics_vs_k",
    "save_figure",
    "seed_mean_curves",
    "set_title",
]

FIGURE_DPI = 150


def set_title(fig: Figure, text: str) -> None:
    """Set ``fig``'s title, wrapped to the figure's width (a long run title once ran off both
    edges of the canvas)."""
    points = FontProperties(size=plt.rcParams["figure.titlesize"]).get_size_in_points()
    per_inch = 72.0 / (0.6 * points)  # a character is about 0.6 em wide on average
    fig.suptitle(textwrap.fill(text, width=max(20, int(0.95 * fig.get_figwidth() * per_inch))))


FIGURE_METRICS: tuple[str, ...] = ("asa", "co", "bp", "br", "xc", "stray")
"""Panels of the metric-vs-K̄ figure (axis labels from :mod:`spbench.metrics.facts`); with EC,
the metrics that are 0 by construction (XC, Stray) are left out."""

K_LABEL = "number of superpixels K̄ (mean actual count)"
REFERENCE_METHODS: dict[str, str] = {"slic": "0.45", "grid": "0.7"}
"""Untrained reference methods (SLIC, the plain grid), each drawn in its own fixed grey with a
dotted line."""
_VARIANT_STYLES = {"base": "-", "lap": "--"}
_OTHER_STYLES = (
    "-.",
    (0, (5, 1, 1, 1)),
    (0, (8, 2, 2, 2, 2, 2)),
    (0, (3, 1, 1, 1, 1, 1)),
    (0, (10, 3)),
    (0, (2, 1, 6, 1)),
)
_REFERENCE_STYLE = ":"


def seed_mean_curves(curves: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Average per-seed curve points over seeds, per (dataset, split, model, EC, scale).

    Parameters
    ----------
    curves
        Output of :func:`spbench.report.aggregate.aggregate_curves`.
    columns
        Metric columns to average.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, split, method, variant, model, ec, scale, k_mean, n_seeds``, and per
        column ``c`` the mean ``c`` and the sample standard deviation ``c_std`` over seeds (NaN
        for one seed).
    """
    keys = ["dataset", "split", "method", "variant", "model", "ec", "scale"]
    grouped = curves.groupby(keys, sort=True, dropna=False)
    cols = ["k_mean", *columns]
    out = grouped[cols].mean()
    std = grouped[list(columns)].std(ddof=1).add_suffix("_std")
    out = out.join(std)
    out["n_seeds"] = grouped["seed"].nunique()
    return out.reset_index().sort_values([*keys[:6], "k_mean"], kind="stable")


def line_style(method: str, variant: str, others: list[str]) -> object:
    """Line style of a model: reference methods (SLIC) dotted, ``base`` solid, ``lap`` dashed.

    Any other variant gets the next unused dash pattern of a fixed cycle, in order of first
    appearance (``others`` records that order; pass the same list for all lines of a figure).
    """
    if method in REFERENCE_METHODS:
        return _REFERENCE_STYLE
    if variant in _VARIANT_STYLES:
        return _VARIANT_STYLES[variant]
    if variant not in others:
        others.append(variant)
    return _OTHER_STYLES[others.index(variant) % len(_OTHER_STYLES)]


def variant_marker(method: str, variant: str) -> str:
    """Marker of a model's points: ``"o"`` for ``base`` and the references, ``"^"`` for every
    other variant, so that two variants of one method (one colour) differ in the legend too."""
    return "o" if variant == "base" or method in REFERENCE_METHODS else "^"


def method_colours(methods: Sequence[str]) -> dict[str, object]:
    """One colorblind-palette colour per learned method; reference methods (SLIC) grey."""
    learned = [m for m in methods if m not in REFERENCE_METHODS]
    colours = sns.color_palette("colorblind", n_colors=max(len(learned), 1))
    palette: dict[str, object] = dict(zip(learned, colours, strict=False))
    for method in methods:
        if method in REFERENCE_METHODS:
            palette[method] = REFERENCE_METHODS[method]
    return palette


def save_figure(fig: Figure, stem: Path) -> dict[str, Path]:
    """Save ``fig`` as ``<stem>.png`` (150 dpi) and ``<stem>.pdf`` atomically and close it.

    Returns
    -------
    dict[str, Path]
        ``{"png": path, "pdf": path}``.
    """
    paths = {}
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=FIGURE_DPI, format=ext)
        paths[ext] = path
    plt.close(fig)
    return paths


def plot_metrics_vs_k(
    curves: pd.DataFrame,
    *,
    ec: bool,
    auc_range: tuple[float, float],
    title: str = "",
    metrics: Sequence[str] = FIGURE_METRICS,
) -> Figure:
    """Grid of metric-vs-K̄ panels for one EC setting.

    One colour per method, line style per variant (``base`` solid, ``lap`` dashed, other variants
    such as ablations distinct dash-dot patterns; the ``slic`` reference grey and dotted), markers
    at the measured scales, a ± 1 sd band over seeds where a model has several, the AUC range
    [low, high] shaded grey.

    Parameters
    ----------
    curves
        Output of :func:`spbench.report.aggregate.aggregate_curves`.
    ec
        Which EC setting to draw.
    auc_range
        ``(low, high)`` superpixels, shaded in every panel.
    title
        Figure title prefix.
    metrics
        Curve column per panel; with EC those that are 0 by construction are skipped.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not saved, not closed).
    """
    sns.set_theme(style="whitegrid", context="notebook")
    facts = [metric(m) for m in metrics if not ec or metric(m).with_ec]
    data = curves[curves["ec"].astype(bool) == ec]
    mean = seed_mean_curves(data, [f.name for f in facts]) if not data.empty else data
    ncols = 3
    nrows = int(np.ceil(len(facts) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.8 * nrows), squeeze=False)
    methods = sorted(mean["method"].unique()) if not mean.empty else []
    palette = method_colours(methods)
    others: list[str] = []
    low, high = auc_range
    handles: dict[str, Line2D] = {}
    multi_data = not mean.empty and mean[["dataset", "split"]].drop_duplicates().shape[0] > 1
    for ax, fact in zip(axes.flat, facts, strict=False):
        ax.axvspan(low, high, color="0.85", alpha=0.5, zorder=0, lw=0)
        if mean.empty:
            continue
        for name, line in _plot_curves(ax, mean, fact.name, palette, others, multi_data):
            handles.setdefault(name, line)
        ax.set_xlabel(K_LABEL)
        ax.set_ylabel(fact.axis_label)
        ax.set_title(fact.label)
    for ax in list(axes.flat)[len(facts) :]:
        ax.set_visible(False)
    shade = plt.Rectangle((0, 0), 1, 1, color="0.85", alpha=0.5)
    labels = [*handles, f"AUC range [{low:.0f}, {high:.0f}]"]
    artists: list[object] = [*handles.values(), shade]
    seeded = sorted(mean.loc[mean["n_seeds"] > 1, "method"].unique()) if not mean.empty else []
    if seeded:
        # The bands take their method's colour: the legend's patch shows one, not a grey that
        # reads as the AUC range's.
        rgb = to_rgb(palette[seeded[0]])
        artists.append(
            plt.Rectangle((0, 0), 1, 1, facecolor=(*rgb, 0.15), edgecolor=(*rgb, 0.5), lw=0.8)
        )
        each = " (in each method's colour)" if len(methods) > 1 else ""
        labels.append(f"± 1 s.d. over seeds{each}")
    fig.legend(
        artists,
        labels,
        loc="lower center",
        ncol=min(len(labels), 7),
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    ec_text = "with EC" if ec else "without EC"
    set_title(fig, f"{title}: metrics vs K̄, {ec_text}" if title else f"Metrics vs K̄, {ec_text}")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    if mean.empty:
        fig.text(0.5, 0.5, f"no runs {ec_text}", ha="center", va="center", fontsize=14)
    return fig


def _plot_curves(
    ax: Axes,
    mean: pd.DataFrame,
    column: str,
    palette: dict[str, object],
    others: list[str],
    multi_data: bool,
) -> list[tuple[str, Line2D]]:
    """Draw ``column`` against K̄ for every model of ``mean`` on ``ax``, with its ± 1 sd band.

    Returns (legend label, line) per model; ``others`` collects the line styles of variants
    beyond base and lap (:func:`line_style`).
    """
    drawn = []
    for (dataset, split, method, variant, model), g in mean.groupby(
        ["dataset", "split", "method", "variant", "model"], sort=True
    ):
        g = g.sort_values("k_mean")
        name = f"{model} ({dataset}/{split})" if multi_data else model
        (line,) = ax.plot(
            g["k_mean"],
            g[column],
            linestyle=line_style(method, variant, others),
            color=palette[method],
            marker=variant_marker(method, variant),
            markersize=3.5,
            linewidth=1.6,
            label=name,
        )
        std = g[f"{column}_std"].to_numpy(dtype=float)
        if np.isfinite(std).any():
            ax.fill_between(
                g["k_mean"],
                g[column] - np.nan_to_num(std),
                g[column] + np.nan_to_num(std),
                color=palette[method],
                alpha=0.15,
                lw=0,
            )
        drawn.append((name, line))
    return drawn


def _label_k(
    ax: Axes, curve: pd.DataFrame, colour: object, offset: tuple[int, int], gap: float = 0.025
) -> None:
    """Label the points of one ASA–CO curve with their K̄, skipping a point closer than ``gap``
    (fraction of the axes, after autoscaling) to the last labelled one, whose label it would
    overprint (SLIC's count saturates: its last scales land on one spot)."""
    ax.autoscale_view()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    last = None
    for co, asa, k in zip(curve["co"], curve["asa"], curve["k_mean"], strict=True):
        here = np.array([(co - x0) / (x1 - x0), (asa - y0) / (y1 - y0)])
        if last is not None and np.hypot(*(here - last)) < gap:
            continue
        ax.annotate(
            f"{k:.0f}",
            (co, asa),
            textcoords="offset points",
            xytext=offset,
            fontsize=7,
            color=colour,
        )
        last = here


def plot_asa_co_tradeoff(curves: pd.DataFrame, *, title: str = "") -> Figure:
    """ASA against CO: one panel per EC setting, one line per model, points labelled with K̄.

    Colour per method, line style per variant (``base`` solid, ``lap`` dashed), marker per
    variant (``base`` circles, others triangles). The y axes are shared so the panels compare.

    Parameters
    ----------
    curves
        Output of :func:`spbench.report.aggregate.aggregate_curves`.
    title
        Figure title prefix.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not saved, not closed).
    """
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 2, figsize=(13.0, 5.8), sharey=True, squeeze=False)
    mean = seed_mean_curves(curves, ["asa", "co"]) if not curves.empty else curves
    methods = sorted(mean["method"].unique()) if not mean.empty else []
    palette = method_colours(methods)
    others: list[str] = []
    handles: dict[str, Line2D] = {}
    for ax, ec in zip(axes[0], (True, False), strict=True):
        ax.set_title("with EC" if ec else "without EC")
        ax.set_xlabel("compactness CO ↑")
        data = mean[mean["ec"].astype(bool) == ec] if not mean.empty else mean
        if data.empty:
            ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
            continue
        labelled = []
        for (method, variant, model), g in data.groupby(["method", "variant", "model"], sort=True):
            g = g.sort_values("k_mean")
            (line,) = ax.plot(
                g["co"],
                g["asa"],
                color=palette[method],
                linestyle=line_style(method, variant, others),
                marker=variant_marker(method, variant),
                markersize=5,
                linewidth=1.5,
                label=model,
            )
            handles.setdefault(model, line)
            labelled.append((g, palette[method], (4, -9) if variant == "base" else (4, 4)))
        for g, colour, offset in labelled:
            _label_k(ax, g, colour, offset)
    axes[0][0].set_ylabel("achievable segmentation accuracy ASA ↑")
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="lower center",
            ncol=min(len(handles), 6),
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
    set_title(fig, (f"{title}: " if title else "") + "ASA–CO trade-off (points labelled with K̄)")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig
