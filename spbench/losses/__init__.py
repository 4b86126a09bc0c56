"""Superpixel losses: pure functions of tensors (``docs/method.md`` §2–§7).

Only :mod:`torch` and :mod:`spbench.grid` are imported here, never models or data.
"""

from spbench.losses.laplacian import (
    NORMALISERS,
    laplacian_loss,
    laplacian_normaliser,
    laplacian_window_traces,
    superpixel_windows,
)
from spbench.losses.msd import MSD_MODES, min_semantic_distance_loss, sample_class_pixels
from spbench.losses.recipe import LOSS_KEYS, LossConfig, superpixel_loss
from spbench.losses.reconstruction import (
    pixel_cross_entropy,
    position_reconstruction_loss,
    reconstruct,
    semantic_reconstruction_loss,
)
from spbench.losses.weighted_reconstruction import mixed_cell_weights, weighted_reconstruction_loss

__all__ = [
    "LOSS_KEYS",
    "MSD_MODES",
    "NORMALISERS",
    "LossConfig",
    "laplacian_loss",
    "laplacian_normaliser",
    "laplacian_window_traces",
    "min_semantic_distance_loss",
    "mixed_cell_weights",
    "pixel_cross_entropy",
    "position_reconstruction_loss",
    "reconstruct",
    "sample_class_pixels",
    "semantic_reconstruction_loss",
    "superpixel_loss",
    "superpixel_windows",
    "weighted_reconstruction_loss",
]
