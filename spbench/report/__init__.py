"""Report stage: score Parquet in, one artefact per command (tables, AUCs, figures) out.

Entry points: :func:`build_table2`, :func:`build_table3` and :func:`build_sweep` (the files each
writes: :data:`~spbench.report.artefacts.ARTEFACT_FILES`). The submodules are

- :mod:`spbench.report.artefacts` — every artefact's files, read by the builders and the workflow;
- :mod:`spbench.report.paper` — the paper's reported numbers, with provenance;
- :mod:`spbench.report.aggregate` — per-scale means and normalised AUCs
  (``docs/protocol.md`` §6, §8);
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

import importlib
from typing import Any

#: Public name → the submodule that defines it. Imported on first use, so that the workflow can
#: read :mod:`spbench.report.artefacts` without loading pandas, matplotlib and seaborn.
_EXPORTS = {
    "MissingColumnsError": "aggregate",
    "aggregate_curves": "aggregate",
    "compute_auc": "aggregate",
    "load_scores": "aggregate",
    "summarise_seeds": "aggregate",
    "build_sweep": "build",
    "build_table2": "build",
    "build_table3": "build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'spbench.report' has no attribute {name!r}")
    return getattr(importlib.import_module(f"spbench.report.{_EXPORTS[name]}"), name)
