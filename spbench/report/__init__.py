"""Report stage: score Parquet in, Table 2 (Markdown/CSV/LaTeX), AUCs and figures out.

Entry point: :func:`build_report`. The submodules are

- :mod:`spbench.report.paper` — the paper's reported numbers, with provenance;
- :mod:`spbench.report.aggregate` — per-scale means and normalised AUCs (``protocol.md`` §6, §8);
- :mod:`spbench.report.tables` — Table 2;
- :mod:`spbench.report.figures` — metric-vs-K̄ and ASA–CO figures;
- :mod:`spbench.report.build` — :func:`build_report`.

Nothing here imports torch.
"""

from spbench.report.aggregate import (
    MissingColumnsError,
    aggregate_curves,
    compute_auc,
    load_scores,
    summarise_seeds,
)
from spbench.report.build import build_report

__all__ = [
    "MissingColumnsError",
    "aggregate_curves",
    "build_report",
    "compute_auc",
    "load_scores",
    "summarise_seeds",
]
