"""SSMamba's edge loss L_edge (``docs/baselines.md`` §5.4; ``jiaxhm/SSMamba: loss.py``).

``L_edge = 10 · mean_pixels( w · BCE-with-logits(logit, target) )`` with class-balancing
weights counted over the whole batch:

- edge pixels (target 1): ``w = N_neg / (N_pos + N_neg)``;
- non-edge pixels (target 0): ``w = 1.1 · N_pos / (N_pos + N_neg)``;
- ignored pixels (target 2): ``w = 0`` (still counted in the mean's denominator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["EDGE_LOSS_WEIGHT", "edge_loss", "edge_weights"]

#: Multiplier of the BCE term in the code (the SSMamba paper's λ = 100 is not what ran; §8 #16).
EDGE_LOSS_WEIGHT = 10.0


def edge_weights(targets: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Per-pixel BCE weights of ``cross_entropy_loss_edge``.

    Parameters
    ----------
    targets : Tensor
        Integer edge targets with values 0 (background), 1 (edge), 2 (ignore), any shape.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    Tensor
        Weights of ``targets``' shape. Upstream overwrites a float copy of the labels in
        sequence (1 → w_pos, then entries equal to 0 → w_neg, then entries equal to 2 → 0);
        this function reproduces that order, including the degenerate case ``N_neg = 0``
        where the edge weight 0 is then overwritten by ``w_neg``.
    """
    t = targets.long()
    n_pos = (t == 1).sum().to(torch.float32)
    n_neg = (t == 0).sum().to(torch.float32)
    total = n_pos + n_neg
    mask = t.to(torch.float32)
    mask = torch.where(mask == 1, n_neg / total, mask)
    mask = torch.where(mask == 0, 1.1 * n_pos / total, mask)
    mask = torch.where(mask == 2, torch.zeros_like(mask), mask)
    return mask.to(dtype)


def edge_loss(logits: Tensor, targets: Tensor, weight: float = EDGE_LOSS_WEIGHT) -> Tensor:
    """Class-balanced BCE-with-logits edge loss.

    Parameters
    ----------
    logits : Tensor
        ``[B, 1, H, W]`` or ``[B, H, W]`` raw edge logits.
    targets : Tensor
        ``[B, H, W]`` (or ``[B, 1, H, W]``) integer targets in {0, 1, 2}.
    weight : float
        Loss multiplier (10, as coded upstream).

    Returns
    -------
    Tensor
        Scalar (unitless): ``weight · mean(w · BCE)`` over every pixel of the batch.
    """
    if logits.dim() == 4 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if targets.dim() == 4 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if logits.shape != targets.shape:
        raise ValueError(
            f"edge logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ"
        )
    targets = targets.to(logits.device)
    w = edge_weights(targets, dtype=torch.float32)
    bce = F.binary_cross_entropy_with_logits(
        logits.float(), targets.float(), weight=w, reduction="mean"
    )
    return weight * bce
