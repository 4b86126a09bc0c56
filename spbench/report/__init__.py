"""Report stage: score Parquet in, Table 2 (Markdown/CSV/LaTeX), AUCs and figures out.

Entry point: :func:`build_report`. The submodules are

- :mod:`spbench.report.paper` — the paper's reported numbers, with provenance;
- :mod:`spbench.report.aggregate` — per-scale means and normalised AUCs (``protocol.md`` §6, §8);
- :mod:`spbench.report.tables` — Table 2 and Table 3 (loss-switch ablation);
- :mod:`spbench.report.figures` — metric-vs-K̄ and ASA–CO figures;
- :mod:`spbench.report.stats` — paired variant − base comparison with an image bootstrap;
- :mod:`spbench.report.sweep` — the λ_LAP sweep table and figure;
- :mod:`spbench.report.ec_change` — how much EC relabels (optional ``ec_relabelled`` column);
- :mod:`spbench.report.qualitative` — the image grid from prediction files (not in
  :func:`build_report`);
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
