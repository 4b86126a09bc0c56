"""``L_WR``, the mixed-cell weighted reconstruction loss (``docs/method.md`` §5).

DLM ``MyModules.py: _scn_weighted_recon_loss_pool_sum``: pixels of grid cells that contain a
single class get weight 0.1, pixels of mixed cells 1.0; the weights are normalised to mean 1 per
image and detached, and they weight the per-pixel cross entropy of ``L_sem``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spbench.constants import CELL_SIZE
from spbench.grid import as_label_map, grid_shape
from spbench.losses.reconstruction import semantic_reconstruction_loss

__all__ = ["mixed_cell_weights", "weighted_reconstruction_loss"]


def mixed_cell_weights(
    labels: Tensor,
    stride: int = CELL_SIZE,
    single: float = 0.1,
    mixed: float = 1.0,
    *,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Normalised per-pixel weights of ``L_WR``.

    Parameters
    ----------
    labels : LongTensor
        ``[B, H, W]`` integer label map (the augmented training label).
    stride : int
        Cell size in pixels; blocks are the grid cells.
    single, mixed : float
        Raw weight of a pixel whose cell holds one class / more than one class.
    dtype : torch.dtype, optional
        Floating dtype of the result (default: torch's default dtype).

    Returns
    -------
    Tensor
        ``[B, 1, H, W]`` detached weights ``w̃_b(p) = w_b(p)·H·W / Σ_p' w_b(p')`` (dimensionless,
        mean 1 per image).
    """
    labels = as_label_map(labels)
    b, h, w = labels.shape
    n_h, n_w = grid_shape(h, w, stride)
    with torch.no_grad():
        cells = labels.reshape(b, n_h, stride, n_w, stride)
        # A cell holds exactly one class iff its minimum equals its maximum.
        is_single = cells.amin(dim=(2, 4)) == cells.amax(dim=(2, 4))  # [B, n_h, n_w]
        dtype = dtype or torch.get_default_dtype()
        # Arithmetic on the mask, not scalar tensors: no host-to-device copy (CUDA graphs).
        raw = is_single.to(dtype) * (single - mixed) + mixed
        raw = raw.repeat_interleave(stride, dim=1).repeat_interleave(stride, dim=2)
        weights = raw * (h * w) / raw.sum(dim=(1, 2), keepdim=True)
    return weights.unsqueeze(1)


def weighted_reconstruction_loss(
    q: Tensor, onehot: Tensor, labels: Tensor, stride: int = CELL_SIZE
) -> Tensor:
    """``L_WR`` (§5).

    Parameters
    ----------
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    onehot : Tensor
        ``[B, C, H, W]`` one-hot ground truth.
    labels : LongTensor
        ``[B, H, W]`` the same ground truth as integers (used for the cell weights).
    stride : int
        Cell size in pixels.

    Returns
    -------
    Tensor
        Scalar, nats: ``(1/B) Σ_b Σ_p w̃_b(p) E_b(p)``, before the weight ``λ_WR·0.005``. Equals
        ``L_sem`` for an image whose cells are all single-class or all mixed.
    """
    weights = mixed_cell_weights(labels.to(q.device), stride, dtype=q.dtype)
    return semantic_reconstruction_loss(q, onehot, stride, pixel_weights=weights)
