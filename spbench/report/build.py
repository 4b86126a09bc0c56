"""One builder per report artefact: score Parquet in, that artefact's files out (and no others).

Each builder is told its experiment by the caller (the workflow passes the configured ablation
and sweep methods); none guesses it from the scores. The files each writes are
:data:`spbench.report.artefacts.ARTEFACT_FILES`, always all of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from matplotlib.figure import Figure

from spbench.catalogue import PUBLISHED_PREFIX
from spbench.errors import UserError
from spbench.io import atomic_path, write_text
from spbench.report.aggregate import (
    DEFAULT_AUC_RANGE,
    aggregate_curves,
    compute_auc,
    load_scores,
    summarise_seeds,
)
from spbench.report.artefacts import artefact_paths
from spbench.report.ec_change import ec_change_frame, format_ec_change_markdown, plot_ec_change
from spbench.report.figures import plot_asa_co_tradeoff, plot_metrics_vs_k, save_figure
from spbench.report.secondary import format_secondary_markdown, secondary_frame
from spbench.report.stats import (
    BASE_VARIANT,
    PAIRED_COLUMNS,
    format_paired_markdown,
    paired_differences,
)
from spbench.report.sweep import format_sweep_markdown, plot_lambda_sweep, sweep_frame
from spbench.report.tables import (
    format_table2_latex,
    format_table2_markdown,
    format_table3_latex,
    format_table3_markdown,
    table2_frame,
    table3_frame,
)

__all__ = ["build_sweep", "build_table2", "build_table3", "write_parquet"]

TABLE2_HEADINGS = {"table2": "Table 2", "published": "Table 2, published weights"}
"""Heading of Table 2 per experiment that tabulates it."""

TABLE2_BASES = {"table2": BASE_VARIANT, "published": f"{PUBLISHED_PREFIX}{BASE_VARIANT}"}
"""The variant every other one is paired with, per experiment of Table 2."""


class Aggregates(NamedTuple):
    """Score rows and what every table is computed from."""

    scores: pd.DataFrame
    curves: pd.DataFrame
    auc: pd.DataFrame
    summary: pd.DataFrame


def aggregate(score_files: Sequence[Path], auc_range: tuple[float, float]) -> Aggregates:
    """Load score files and compute per-scale curves, per-seed AUCs and the seed summary."""
    scores = load_scores(score_files)
    curves = aggregate_curves(scores)
    auc = compute_auc(curves, auc_range=auc_range)
    return Aggregates(scores, curves, auc, summarise_seeds(auc))


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` as Parquet atomically (no index) and return the path."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def _save(fig: Figure, paths: dict[str, Path], stem: str) -> None:
    """Save ``fig`` as the files ``<stem>_png`` and ``<stem>_pdf`` of ``paths``."""
    save_figure(fig, paths[f"{stem}_png"].with_suffix(""))


def build_table2(
    score_files: Sequence[Path],
    out_dir: Path,
    *,
    experiment: str = "table2",
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    title: str = "spbench report",
    bootstrap: int = 2000,
    seed: int = 0,
    ec_change_at_k: float = 600.0,
) -> dict[str, Path]:
    """Write Table 2 with its curves, AUCs, paired comparison, EC change and figures.

    Parameters
    ----------
    score_files
        Score Parquet files of the experiment's runs (``spbench score``).
    out_dir
        Output folder (created if needed).
    experiment
        ``"table2"`` (the trained runs) or ``"published"`` (the published weights): the heading.
    auc_range
        ``(low, high)`` bounds of the normalised AUC, in superpixels.
    title
        Title prefix of the tables and figures.
    bootstrap, seed
        Resamples and generator seed of the paired comparison's image bootstrap.
    ec_change_at_k
        K̄ at which the EC-change table reads its single-scale value.

    Returns
    -------
    dict[str, Path]
        Key → path of every file of ``ARTEFACT_FILES["table2"]``: ``table2.md/.csv/.tex``;
        ``curves.parquet`` (per-scale means per run, EC and scale), ``auc.parquet`` (per-seed
        normalised AUCs), ``auc_summary.parquet`` (mean/std over seeds); ``paired.md/.parquet``
        (variant − base with bootstrap intervals; a note if no method has ``base`` and another
        variant); ``ec_change.md/.csv`` (pixels EC relabels); ``secondary.md/.csv`` (the AUC
        against the nominal count and the benchmark's average metrics, labelled as secondary
        views); and PNG + PDF under ``figures/`` of
        ``metrics_vs_k_noec``, ``metrics_vs_k_ec``, ``asa_co_tradeoff`` and ``ec_change``.

    Raises
    ------
    spbench.errors.UserError
        If ``experiment`` is not one that tabulates Table 2.
    spbench.report.aggregate.MissingColumnsError
        If a score file lacks a required column (the message names the file).
    FileNotFoundError
        If a score file does not exist.
    """
    if experiment not in TABLE2_HEADINGS:
        raise UserError(
            f"Table 2 is made for the experiments {', '.join(TABLE2_HEADINGS)}, not {experiment!r}"
        )
    data = aggregate(score_files, auc_range)
    paths = artefact_paths(experiment, out_dir)
    table = table2_frame(data.summary)
    heading = f"{title}: {TABLE2_HEADINGS[experiment]}"
    write_parquet(data.curves, paths["curves"])
    write_parquet(data.auc, paths["auc"])
    write_parquet(data.summary, paths["auc_summary"])
    write_text(paths["table2_md"], format_table2_markdown(table, title=heading))
    _write_csv(table, paths["table2_csv"])
    write_text(paths["table2_tex"], format_table2_latex(table))

    base = TABLE2_BASES[experiment]
    paired = paired_differences(
        data.scores, data.curves, auc_range=auc_range, n_boot=bootstrap, seed=seed, base=base
    )
    write_parquet(paired, paths["paired"])
    empty = f"No method has both a `{base}` run and another variant: nothing to compare."
    write_text(
        paths["paired_md"],
        format_paired_markdown(
            paired, title=f"{heading}: paired comparison with {base}", empty=empty
        ),
    )
    change = ec_change_frame(data.scores, auc_range=auc_range, at_k=ec_change_at_k)
    write_text(
        paths["ec_change_md"],
        format_ec_change_markdown(change, title=f"{heading}: pixels changed by EC"),
    )
    _write_csv(change, paths["ec_change_csv"])
    secondary = secondary_frame(data.curves, auc_range=auc_range)
    write_text(paths["secondary_md"], format_secondary_markdown(secondary, title=heading))
    _write_csv(secondary, paths["secondary_csv"])
    _save(plot_ec_change(data.scores, change, auc_range=auc_range, title=title), paths, "ec_change")
    for stem, ec in (("metrics_vs_k_ec", True), ("metrics_vs_k_noec", False)):
        fig = plot_metrics_vs_k(data.curves, ec=ec, auc_range=auc_range, title=title)
        _save(fig, paths, stem)
    _save(plot_asa_co_tradeoff(data.curves, title=title), paths, "asa_co_tradeoff")
    return paths


def build_table3(
    score_files: Sequence[Path],
    out_dir: Path,
    *,
    method: str,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    title: str = "spbench report",
    bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write Table 3, the loss-switch ablation of ``method``, and its paired comparison.

    Parameters
    ----------
    score_files
        Score files of the ablation's runs (and the reference methods).
    out_dir
        Output folder.
    method
        The ablated method (``config.ablation.method``).
    auc_range, title, bootstrap, seed
        As :func:`build_table2`.

    Returns
    -------
    dict[str, Path]
        Key → path of every file of ``ARTEFACT_FILES["table3"]``: ``table3.md/.csv/.tex`` and
        ``paired.md/.parquet`` (each configuration − the all-off baseline, without EC, with
        image-bootstrap intervals; a note where there is no baseline run).
    """
    data = aggregate(score_files, auc_range)
    paths = artefact_paths("table3", out_dir)
    table = table3_frame(data.summary, method=method)
    write_text(paths["table3_md"], format_table3_markdown(table, title=f"{title}: Table 3"))
    _write_csv(table, paths["table3_csv"])
    write_text(paths["table3_tex"], format_table3_latex(table))
    runs = table[table["method"] == method]
    switches = runs[["use_lap", "use_msd", "use_wr"]].astype(bool)
    baseline = runs.loc[~switches.any(axis=1), "variant"]
    _write_paired(
        data,
        paths["table3_paired"],
        paths["table3_paired_md"],
        method=method,
        base=baseline.iloc[0] if len(baseline) else None,
        order=list(runs["variant"]),
        title=f"{title}: Table 3, each configuration against the baseline (no EC)",
        empty=f"No {method} run with every loss switch off: nothing to compare with.",
        auc_range=auc_range,
        bootstrap=bootstrap,
        seed=seed,
    )
    return paths


def build_sweep(
    score_files: Sequence[Path],
    out_dir: Path,
    *,
    method: str,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    title: str = "spbench report",
    bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the λ_LAP sweep of ``method``, its figure and its paired comparison.

    Parameters
    ----------
    score_files
        Score files of the sweep's runs (and the reference methods).
    out_dir
        Output folder.
    method
        The swept method (``config.sweep.method``).
    auc_range, title, bootstrap, seed
        As :func:`build_table2`.

    Returns
    -------
    dict[str, Path]
        Key → path of every file of ``ARTEFACT_FILES["sweep"]``: ``sweep.md/.csv``,
        ``figures/lambda_sweep.{png,pdf}`` and ``paired.md/.parquet`` (each λ − the λ = 0 run,
        without EC, with image-bootstrap intervals; a note where the sweep has no λ = 0).
    """
    data = aggregate(score_files, auc_range)
    paths = artefact_paths("sweep", out_dir)
    sweep = sweep_frame(*data, auc_range=auc_range, method=method)
    write_text(paths["sweep_md"], format_sweep_markdown(sweep, title=f"{title}: λ_LAP sweep"))
    _write_csv(sweep, paths["sweep_csv"])
    _save(plot_lambda_sweep(sweep, title=title), paths, "lambda_sweep")
    points = sweep[sweep["sweep_id"] == 0] if not sweep.empty else sweep
    off = points.loc[points["lambda_lap"] == 0, "variant"]
    _write_paired(
        data,
        paths["sweep_paired"],
        paths["sweep_paired_md"],
        method=method,
        base=off.iloc[0] if len(off) else None,
        order=list(points["variant"]),
        title=f"{title}: λ_LAP sweep, each λ against λ = 0 (no EC)",
        empty=f"The λ_LAP sweep of {method} has no λ = 0 run: nothing to compare with.",
        auc_range=auc_range,
        bootstrap=bootstrap,
        seed=seed,
    )
    return paths


def _write_paired(
    data: Aggregates,
    parquet: Path,
    markdown: Path,
    *,
    method: str,
    base: str | None,
    order: list[str],
    title: str,
    empty: str,
    auc_range: tuple[float, float],
    bootstrap: int,
    seed: int,
) -> None:
    """Write the no-EC paired comparison of ``method``'s runs in ``order`` with ``base``.

    Rows follow ``order``; without a ``base`` run the Parquet file is empty and the Markdown
    says ``empty``.
    """
    if base is None:
        paired = pd.DataFrame(columns=list(PAIRED_COLUMNS))
    else:
        keep = ~data.scores["ec"].astype(bool) & (data.scores["method"] == method)
        keep &= data.scores["variant"].isin(order)
        paired = paired_differences(
            data.scores[keep], auc_range=auc_range, n_boot=bootstrap, seed=seed, base=base
        )
    rank = {variant: i for i, variant in enumerate(order)}
    paired = paired.iloc[paired["variant"].map(rank).argsort(kind="stable")].reset_index(drop=True)
    write_parquet(paired, parquet)
    write_text(markdown, format_paired_markdown(paired, title=title, empty=empty))
