"""SSMamba (``docs/baselines.md`` §5) in pure PyTorch; importing this package registers ``"ssm"``.

- :mod:`~spbench.models.ssm.scan`: selective scan with ``d_state = 1`` (chunked parallel scan);
- :mod:`~spbench.models.ssm.vmamba`: VSS blocks, SS2D with CrossScan/CrossMerge, the backbone;
- :mod:`~spbench.models.ssm.ssmamba`: ``GEncoder``, ``LEncoder``, fusion head, loss, registry.
"""

from spbench.models.ssm.scan import selective_scan, selective_scan_reference
from spbench.models.ssm.ssmamba import (
    SSM_RECIPE,
    SSM_STAGES,
    GEncoder,
    LEncoder,
    load_vmamba_weights,
    ssm,
    ssm_training_loss,
)
from spbench.models.ssm.vmamba import Backbone_VSSM, cross_merge, cross_scan, lelu

__all__ = [
    "SSM_RECIPE",
    "SSM_STAGES",
    "Backbone_VSSM",
    "GEncoder",
    "LEncoder",
    "cross_merge",
    "cross_scan",
    "lelu",
    "load_vmamba_weights",
    "selective_scan",
    "selective_scan_reference",
    "ssm",
    "ssm_training_loss",
]
