"""``build_report``: score Parquet in, tables, curves, AUCs and figures out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from spbench.io import atomic_path, write_text
from spbench.report.aggregate import (
    DEFAULT_AUC_RANGE,
    aggregate_curves,
    compute_auc,
    load_scores,
    summarise_seeds,
)
from spbench.report.ec_change import (
    ec_change_frame,
    format_ec_change_markdown,
    has_ec_change,
    plot_ec_change,
)
from spbench.report.figures import plot_asa_co_tradeoff, plot_metrics_vs_k, save_figure
from spbench.report.stats import format_paired_markdown, paired_differences
from spbench.report.sweep import format_sweep_markdown, plot_lambda_sweep, sweep_frame
from spbench.report.tables import (
    format_table2_latex,
    format_table2_markdown,
    format_table3_latex,
    format_table3_markdown,
    table2_frame,
    table3_frame,
)

__all__ = ["build_report", "write_parquet"]


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` as Parquet atomically (no index) and return the path."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def build_report(
    score_files: Sequence[Path],
    out_dir: Path,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    title: str = "spbench report",
    ablation_method: str | None = None,
    sweep_method: str | None = None,
    bootstrap: int = 2000,
    seed: int = 0,
    ec_change_at_k: float = 600.0,
) -> dict[str, Path]:
    """Aggregate score files and write Table 2, curves, AUCs and figures.

    Parameters
    ----------
    score_files
        Score Parquet files written by ``spbench score`` (one row per run, scale, EC, image,
        annotation). Several runs may be spread over several files.
    out_dir
        Output folder (created if needed).
    auc_range
        ``(low, high)`` bounds of the normalised AUC, in superpixels (default 384–1200).
    title
        Title used in the Markdown table and on the figures.
    ablation_method
        Method of Table 3 (``None``: ``cds`` if it has a loss-switch ablation, else the method
        with the most switch combinations; see :func:`~spbench.report.tables.table3_frame`).
    sweep_method
        Restrict the λ_LAP sweep to this method (``None``: every method with a sweep).
    bootstrap
        Bootstrap resamples of the paired comparison.
    seed
        Seed of the bootstrap generator.
    ec_change_at_k
        K̄ at which the EC-change table reads its single-scale value.

    Returns
    -------
    dict[str, Path]
        Artefact name → path: ``table2_md``, ``table2_csv``, ``table2_tex`` (``table2.*``),
        ``curves`` (``curves.parquet``: per-scale means of all metrics per run, EC and scale),
        ``auc`` (``auc.parquet``: per-seed normalised AUCs), ``auc_summary``
        (``auc_summary.parquet``: mean/std over seeds), and per figure ``<stem>_png`` /
        ``<stem>_pdf`` under ``figures/`` for the stems ``metrics_vs_k_ec``,
        ``metrics_vs_k_noec`` and ``asa_co_tradeoff``; ``table3_md``, ``table3_csv``,
        ``table3_tex`` (``table3.*``: loss-switch ablation, always written, with a note if
        there is none). Only when the data allows:

        - ``paired``, ``paired_md`` (``paired.parquet``, ``paired.md``): variant − base per-pair
          AUC differences with bootstrap intervals (:mod:`spbench.report.stats`), when a method
          has ``base`` and another variant;
        - ``sweep_md``, ``sweep_csv``, ``lambda_sweep_png``, ``lambda_sweep_pdf``
          (``sweep.*``, ``figures/lambda_sweep.*``), when runs differ only in λ_LAP
          (:mod:`spbench.report.sweep`);
        - ``ec_change_md``, ``ec_change_csv``, ``ec_change_png``, ``ec_change_pdf``
          (``ec_change.*``, ``figures/ec_change.*``), when the scores carry ``ec_relabelled``
          (:mod:`spbench.report.ec_change`).

    Raises
    ------
    spbench.report.aggregate.MissingColumnsError
        If a score file lacks a required column (the message names the file).
    FileNotFoundError
        If a score file does not exist.
    ValueError
        If no file is given, rows are duplicated, or a run mixes different run attributes.
    """
    out_dir = Path(out_dir)
    scores = load_scores(score_files)
    curves = aggregate_curves(scores)
    auc = compute_auc(curves, auc_range=auc_range)
    summary = summarise_seeds(auc)
    table = table2_frame(summary)

    out: dict[str, Path] = {}
    out["curves"] = write_parquet(curves, out_dir / "curves.parquet")
    out["auc"] = write_parquet(auc, out_dir / "auc.parquet")
    out["auc_summary"] = write_parquet(summary, out_dir / "auc_summary.parquet")
    out["table2_md"] = write_text(
        out_dir / "table2.md", format_table2_markdown(table, title=f"{title}: Table 2")
    )
    out["table2_csv"] = _write_csv(table, out_dir / "table2.csv")
    out["table2_tex"] = write_text(out_dir / "table2.tex", format_table2_latex(table))
    table3 = table3_frame(summary, method=ablation_method)
    out["table3_md"] = write_text(
        out_dir / "table3.md", format_table3_markdown(table3, title=f"{title}: Table 3")
    )
    out["table3_csv"] = _write_csv(table3, out_dir / "table3.csv")
    out["table3_tex"] = write_text(out_dir / "table3.tex", format_table3_latex(table3))

    paired = paired_differences(scores, curves, auc_range=auc_range, n_boot=bootstrap, seed=seed)
    if not paired.empty:
        out["paired"] = write_parquet(paired, out_dir / "paired.parquet")
        out["paired_md"] = write_text(
            out_dir / "paired.md",
            format_paired_markdown(paired, title=f"{title}: paired comparison with base"),
        )
    figures = out_dir / "figures"
    sweep = sweep_frame(scores, curves, auc, summary, auc_range=auc_range, method=sweep_method)
    if not sweep.empty:
        out["sweep_md"] = write_text(
            out_dir / "sweep.md", format_sweep_markdown(sweep, title=f"{title}: λ_LAP sweep")
        )
        out["sweep_csv"] = _write_csv(sweep, out_dir / "sweep.csv")
        fig = plot_lambda_sweep(sweep, title=title)
        for ext, path in save_figure(fig, figures / "lambda_sweep").items():
            out[f"lambda_sweep_{ext}"] = path
    if has_ec_change(scores):
        change = ec_change_frame(scores, auc_range=auc_range, at_k=ec_change_at_k)
        out["ec_change_md"] = write_text(
            out_dir / "ec_change.md",
            format_ec_change_markdown(change, title=f"{title}: pixels changed by EC"),
        )
        out["ec_change_csv"] = _write_csv(change, out_dir / "ec_change.csv")
        fig = plot_ec_change(scores, change, auc_range=auc_range, title=title)
        for ext, path in save_figure(fig, figures / "ec_change").items():
            out[f"ec_change_{ext}"] = path

    for stem, ec in (("metrics_vs_k_ec", True), ("metrics_vs_k_noec", False)):
        fig = plot_metrics_vs_k(curves, ec=ec, auc_range=auc_range, title=title)
        for ext, path in save_figure(fig, figures / stem).items():
            out[f"{stem}_{ext}"] = path
    fig = plot_asa_co_tradeoff(curves, title=title)
    for ext, path in save_figure(fig, figures / "asa_co_tradeoff").items():
        out[f"asa_co_tradeoff_{ext}"] = path
    return out
