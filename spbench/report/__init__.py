"""Report stage: score Parquet in, one artefact per command (tables, AUCs, figures) out.

Entry points: :func:`build_table2`, :func:`build_table3` and :func:`build_sweep` (the files each
writes: :data:`~spbench.report.artefacts.ARTEFACT_FILES`). The submodules are

- :mod:`spbench.report.artefacts` — every artefact's files, read by the builders and the workflow;
- :mod:`spbench.report.paper` — the paper's reported numbers, with provenance;
- :mod:`spbench.report.aggregate` — per-scale means and normalised AUCs (``protocol.md`` §6, §8);
- :mod:`spbench.report.tables` — Table 2 and Table 3 (loss-switch ablation);
- :mod:`spbench.report.figures` — metric-vs-K̄ and ASA–CO figures;
- :mod:`spbench.report.stats` — paired variant − base comparison with an image bootstrap;
- :mod:`spbench.report.sweep` — the λ_LAP sweep table and figure;
- :mod:`spbench.report.ec_change` — how much EC relabels (score column ``ec_relabelled``);
- :mod:`spbench.report.qualitative` — the image grid from prediction files;
- :mod:`spbench.report.provenance` — how each checkpoint was made;
- :mod:`spbench.report.build` — the builders.

Nothing here imports torch.
"""

from spbench.report.aggregate import (
    MissingColumnsError,
    aggregate_curves,
    compute_auc,
    load_scores,
    summarise_seeds,
)
from spbench.report.build import build_sweep, build_table2, build_table3

__all__ = [
    "MissingColumnsError",
    "aggregate_curves",
    "build_sweep",
    "build_table2",
    "build_table3",
    "compute_auc",
    "load_scores",
    "summarise_seeds",
]
