"""Superpixel metrics of the protocol (``docs/protocol.md`` §3–§8): pure NumPy/SciPy/scikit-image.

Region metrics (:mod:`.region`), boundary metrics (:mod:`.boundary`), fragmentation XC/Stray
(:mod:`.fragmentation`), enforced connectivity (:mod:`.connectivity`), curve summaries
(:mod:`.auc`), a class API that shares work between metrics (:mod:`.collection`) and the facts
about each metric (label, direction, decimals, meaning with EC; :mod:`.facts`).
Label maps are integer arrays ``[H, W]`` with non-negative ids, used as given.
"""

from spbench.metrics.auc import AUCResult, average_metric, normalized_auc
from spbench.metrics.boundary import (
    boundary_map,
    boundary_precision,
    boundary_recall,
    default_tolerance,
    dilate_square,
)
from spbench.metrics.collection import (
    SCORE_KEYS,
    LabelMapStats,
    PredictionScorer,
    score_image,
    score_pair,
)
from spbench.metrics.connectivity import ECSizes, ec_sizes, enforce_connectivity
from spbench.metrics.facts import METRICS, Metric, metric, metric_names
from spbench.metrics.fragmentation import excess_components, fragmentation, stray_pixels
from spbench.metrics.region import (
    achievable_segmentation_accuracy,
    asa,
    compactness,
    explained_variation,
    n_superpixels,
    oe,
    oversegmentation_error,
    ue,
    ue_levin,
    ue_np,
    undersegmentation_error,
    undersegmentation_error_levin,
    undersegmentation_error_np,
)

__all__ = [
    "METRICS",
    "SCORE_KEYS",
    "AUCResult",
    "ECSizes",
    "LabelMapStats",
    "Metric",
    "PredictionScorer",
    "achievable_segmentation_accuracy",
    "asa",
    "average_metric",
    "boundary_map",
    "boundary_precision",
    "boundary_recall",
    "compactness",
    "default_tolerance",
    "dilate_square",
    "ec_sizes",
    "enforce_connectivity",
    "excess_components",
    "explained_variation",
    "fragmentation",
    "metric",
    "metric_names",
    "n_superpixels",
    "normalized_auc",
    "oe",
    "oversegmentation_error",
    "score_image",
    "score_pair",
    "stray_pixels",
    "ue",
    "ue_levin",
    "ue_np",
    "undersegmentation_error",
    "undersegmentation_error_levin",
    "undersegmentation_error_np",
]
