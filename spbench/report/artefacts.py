"""The report's artefacts and the files each one writes: the single list both the builders
(:mod:`spbench.report.build`, ``spbench report <artefact>``) and the workflow's rule outputs read.

An artefact is one command of ``spbench report`` with one output folder; it writes exactly these
files, every time (a note where the data gives nothing to show), so the workflow can declare all
of them and a stale file cannot outlive a configuration change. ``published`` is Table 2 of the
published weights and writes the files of ``table2``.

Pure Python: importing this module imports neither pandas nor torch.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ARTEFACTS", "ARTEFACT_FILES", "artefact_paths"]

_FIGURE_EXTENSIONS = ("png", "pdf")


def _figures(*stems: str) -> dict[str, str]:
    return {f"{s}_{e}": f"figures/{s}.{e}" for s in stems for e in _FIGURE_EXTENSIONS}


_TABLE2_FILES: dict[str, str] = {
    "table2_md": "table2.md",
    "table2_csv": "table2.csv",
    "table2_tex": "table2.tex",
    "curves": "curves.parquet",
    "auc": "auc.parquet",
    "auc_summary": "auc_summary.parquet",
    "paired_md": "paired.md",
    "paired": "paired.parquet",
    "ec_change_md": "ec_change.md",
    "ec_change_csv": "ec_change.csv",
    "secondary_md": "secondary.md",
    "secondary_csv": "secondary.csv",
    **_figures("metrics_vs_k_noec", "metrics_vs_k_ec", "asa_co_tradeoff", "ec_change"),
}

ARTEFACT_FILES: dict[str, dict[str, str]] = {
    "table2": _TABLE2_FILES,
    "published": _TABLE2_FILES,
    "table3": {
        "table3_md": "table3.md",
        "table3_csv": "table3.csv",
        "table3_tex": "table3.tex",
        "table3_paired_md": "paired.md",
        "table3_paired": "paired.parquet",
    },
    "sweep": {
        "sweep_md": "sweep.md",
        "sweep_csv": "sweep.csv",
        **_figures("lambda_sweep"),
        "sweep_paired_md": "paired.md",
        "sweep_paired": "paired.parquet",
    },
    "figures": {"qualitative_png": "qualitative.png", "qualitative_pdf": "qualitative.pdf"},
    "provenance": {"provenance_md": "provenance.md", "provenance_csv": "provenance.csv"},
}
"""Artefact → {key: path relative to the artefact's output folder} of every file it writes.

The first file of each lies at the top of the folder: the workflow passes its folder as
``--out-dir``."""

ARTEFACTS: tuple[str, ...] = tuple(ARTEFACT_FILES)
"""The subcommands of ``spbench report``."""


def artefact_paths(artefact: str, out_dir: str | Path) -> dict[str, Path]:
    """Return {key: path} of every file ``artefact`` writes under ``out_dir``.

    Raises
    ------
    KeyError
        If ``artefact`` is not one of :data:`ARTEFACTS` (the message lists them).
    """
    if artefact not in ARTEFACT_FILES:
        raise KeyError(f"unknown report artefact {artefact!r}; known: {', '.join(ARTEFACTS)}")
    return {key: Path(out_dir) / rel for key, rel in ARTEFACT_FILES[artefact].items()}
