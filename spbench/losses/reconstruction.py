"""SCN base loss terms: semantic and position reconstruction (``docs/method.md`` §2).

With the same assignment ``Q``, ``Ŷ = upfeat(poolfeat(Y))`` and ``P̂ = upfeat(poolfeat(P))``
(``fuy34/superpixel_fcn: loss.py: compute_semantic_pos_loss``). Both terms are *sums* over
pixels averaged over the batch, so at 208² ``L_sem`` is in the thousands before SCN's 0.005.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spbench.constants import CELL_SIZE
from spbench.grid import poolfeat, upfeat

__all__ = [
    "LOG_EPS",
    "pixel_cross_entropy",
    "position_reconstruction_loss",
    "reconstruct",
    "semantic_reconstruction_loss",
]

#: ε inside the log of the reconstructed label distribution (upstream value).
LOG_EPS = 1e-8


def reconstruct(features: Tensor, q: Tensor, stride: int = CELL_SIZE) -> Tensor:
    """Pool pixel features to superpixels and unpool them again with the same ``Q``.

    Parameters
    ----------
    features : Tensor
        ``[B, C, H, W]`` pixel features.
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    stride : int
        Cell size in pixels.

    Returns
    -------
    Tensor
        ``[B, C, H, W]`` reconstruction ``upfeat(poolfeat(features, q), q)``, in feature units.
        Channels are independent, so pooling several feature maps together gives the same
        values as pooling them one at a time.
    """
    return upfeat(poolfeat(features, q, stride), q, stride)


def pixel_cross_entropy(onehot: Tensor, reconstructed: Tensor) -> Tensor:
    """Per-pixel cross entropy ``E(p) = -Σ_c Y_c(p) log(Ŷ_c(p) + 1e-8)``.

    Returns
    -------
    Tensor
        ``[B, 1, H, W]``, in nats.
    """
    return -(onehot * torch.log(reconstructed + LOG_EPS)).sum(dim=1, keepdim=True)


def semantic_reconstruction_loss(
    q: Tensor, onehot: Tensor, stride: int = CELL_SIZE, pixel_weights: Tensor | None = None
) -> Tensor:
    """``L_sem``: cross entropy of the reconstructed labels, summed over pixels.

    Parameters
    ----------
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    onehot : Tensor
        ``[B, C, H, W]`` one-hot (or soft) ground truth ``Y``.
    stride : int
        Cell size in pixels.
    pixel_weights : Tensor, optional
        ``[B, 1, H, W]`` per-pixel weights; with the normalised weights of
        :func:`spbench.losses.mixed_cell_weights` this is ``L_WR`` (§5).

    Returns
    -------
    Tensor
        Scalar, nats summed over pixels (and classes) and averaged over the batch (unweighted by
        SCN's 0.005).
    """
    ce = pixel_cross_entropy(onehot, reconstruct(onehot, q, stride))
    if pixel_weights is not None:
        ce = ce * pixel_weights
    return ce.sum() / q.shape[0]


def position_reconstruction_loss(q: Tensor, coords: Tensor, stride: int = CELL_SIZE) -> Tensor:
    """``L_pos``: Euclidean distance between each pixel and its reconstructed position.

    Parameters
    ----------
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    coords : Tensor
        ``[B, 2, H, W]`` pixel coordinates in pixels (see :func:`spbench.grid.pixel_coordinates`).
    stride : int
        Cell size in pixels.

    Returns
    -------
    Tensor
        Scalar, pixels: ``(1/B) Σ_b Σ_p ‖P̂_b(p) − P_b(p)‖₂`` (the norm, **not** squared), before
        the weight ``0.005·m/S``.
    """
    diff = reconstruct(coords, q, stride) - coords
    return torch.linalg.vector_norm(diff, ord=2, dim=1).sum() / q.shape[0]
