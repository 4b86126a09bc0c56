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
from spbench.report.figures import plot_asa_co_tradeoff, plot_metrics_vs_k, save_figure
from spbench.report.tables import (
    format_table2_latex,
    format_table2_markdown,
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

    Returns
    -------
    dict[str, Path]
        Artefact name → path: ``table2_md``, ``table2_csv``, ``table2_tex`` (``table2.*``),
        ``curves`` (``curves.parquet``: per-scale means of all metrics per run, EC and scale),
        ``auc`` (``auc.parquet``: per-seed normalised AUCs), ``auc_summary``
        (``auc_summary.parquet``: mean/std over seeds), and per figure ``<stem>_png`` /
        ``<stem>_pdf`` under ``figures/`` for the stems ``metrics_vs_k_ec``,
        ``metrics_vs_k_noec`` and ``asa_co_tradeoff``.

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
    table3 = table3_frame(summary)
    out["table3_md"] = write_text(
        out_dir / "table3.md", format_table3_markdown(table3, title=f"{title}: Table 3")
    )
    out["table3_csv"] = _write_csv(table3, out_dir / "table3.csv")

    figures = out_dir / "figures"
    for stem, ec in (("metrics_vs_k_ec", True), ("metrics_vs_k_noec", False)):
        fig = plot_metrics_vs_k(curves, ec=ec, auc_range=auc_range, title=title)
        for ext, path in save_figure(fig, figures / stem).items():
            out[f"{stem}_{ext}"] = path
    fig = plot_asa_co_tradeoff(curves, title=title)
    for ext, path in save_figure(fig, figures / "asa_co_tradeoff").items():
        out[f"asa_co_tradeoff_{ext}"] = path
    return out
