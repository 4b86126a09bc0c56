"""``L_LAP``, the graph-Laplacian trace loss as coded in DLM (``docs/method.md`` §3).

For every superpixel ``s`` the probabilities ``q_p(s)`` of the pixels in the 3×3 cells around
``s`` are tiled into one ``3S×3S`` window ``X_s`` (zeros outside the image). ``X_s`` is the node
signal of an 8-connected grid graph with edge weights ``w_ij = x_i x_j``, whose Laplacian trace
is ``tr(L_s) = Σ_i x_i Σ_{j∈N8(i)} x_j`` (no matrix is built). The loss is
``1 − mean_{b,s} tr(L_{b,s}) / Z_S``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spbench.constants import CELL_SIZE
from spbench.grid import N_CANDIDATES, OFFSETS, grid_shape

__all__ = [
    "NORMALISERS",
    "laplacian_loss",
    "laplacian_normaliser",
    "laplacian_window_traces",
    "superpixel_windows",
]

#: Accepted values of ``normaliser`` (§3.3).
NORMALISERS = ("trace_max", "eight_ns")


def laplacian_normaliser(stride: int, normaliser: str = "trace_max") -> float:
    """Trace normaliser ``Z`` of one window.

    Parameters
    ----------
    stride : int
        Cell size ``S`` in pixels; the window is ``n×n`` with ``n = 3S``.
    normaliser : {"trace_max", "eight_ns"}
        ``"trace_max"``: ``Z_S = 4(3S−1)(6S−1)``, the degree sum of an all-ones ``n×n``
        8-connected grid (the coded 17860 at S = 16; spbench default). ``"eight_ns"``: the paper
        text's ``8·(3S)²`` (18432 at S = 16), which no window can reach.

    Returns
    -------
    float
        ``Z`` (dimensionless, a sum of probability products).
    """
    n = 3 * stride
    if normaliser == "trace_max":
        return float(4 * (n - 1) * (2 * n - 1))
    if normaliser == "eight_ns":
        return float(8 * n * n)
    raise ValueError(f"unknown Laplacian normaliser {normaliser!r}; expected one of {NORMALISERS}")


def superpixel_windows(q: Tensor, stride: int = CELL_SIZE) -> Tensor:
    """Tile each superpixel's ``3S×3S`` window of ``q_p(s)`` (§3.1).

    Parameters
    ----------
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    stride : int
        Cell size ``S`` in pixels.

    Returns
    -------
    Tensor
        ``[B, M, 3S, 3S]`` with ``M = n_h·n_w`` in row-major cell order. Block ``(dr, dc)`` of the
        window of ``s = (r, c)`` holds channel ``8 − j`` (``j = 3(dr+1) + (dc+1)``) of cell
        ``(r+dr, c+dc)``, i.e. the probability that those pixels belong to ``s``; cells outside the
        image are zero.
    """
    if q.dim() != 4 or q.shape[1] != N_CANDIDATES:
        raise ValueError(f"assignment must have shape [B, 9, H, W], got {tuple(q.shape)}")
    b, _, h, w = q.shape
    n_h, n_w = grid_shape(h, w, stride)
    s = stride
    # Zero-pad by one cell so that border windows read zeros (§3.1 step 1).
    cells = F.pad(q, (s, s, s, s)).reshape(b, N_CANDIDATES, n_h + 2, s, n_w + 2, s)
    blocks = []
    for j, (dr, dc) in enumerate(OFFSETS):
        # Block j of every window at once: a strided slice of the padded cell grid, channel 8 − j.
        blocks.append(cells[:, 8 - j, 1 + dr : 1 + dr + n_h, :, 1 + dc : 1 + dc + n_w, :])
    # [9, B, n_h, S, n_w, S] -> [B, n_h, n_w, 3 (dr), S, 3 (dc), S]
    win = torch.stack(blocks).reshape(3, 3, b, n_h, s, n_w, s)
    win = win.permute(2, 3, 5, 0, 4, 1, 6)
    return win.reshape(b, n_h * n_w, 3 * s, 3 * s)


def laplacian_window_traces(q: Tensor, stride: int = CELL_SIZE) -> Tensor:
    """Laplacian trace of every superpixel's window graph (§3.2).

    Parameters
    ----------
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    stride : int
        Cell size ``S`` in pixels.

    Returns
    -------
    Tensor
        ``[B, M]`` traces ``tr(L_s) = Σ_i x_i Σ_{j∈N8(i)} x_j`` (dimensionless), differentiable in
        ``q``. Memory is ``O(B·M·(3S)²)``.
    """
    win = superpixel_windows(q, stride)
    b, m, n, _ = win.shape
    x = win.reshape(b * m, 1, n, n)
    # Sum of the 8 neighbours of each pixel; zero padding = no neighbours outside the window.
    # In full precision under autocast too: bf16 neighbour sums bias the gradient (~0.2 %).
    with torch.autocast(q.device.type, enabled=False):
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        kernel = torch.ones(1, 1, 3, 3, dtype=x.dtype, device=q.device)
        kernel[..., 1, 1] = 0.0
        neighbour_sum = F.conv2d(x, kernel, padding=1)
        return (x * neighbour_sum).sum(dim=(1, 2, 3)).reshape(b, m)


def laplacian_loss(q: Tensor, stride: int = CELL_SIZE, normaliser: str = "trace_max") -> Tensor:
    """``L_LAP = 1 − (1/(B·M)) Σ_b Σ_s tr(L_{b,s}) / Z`` (§3.4), unweighted.

    Parameters
    ----------
    q : Tensor
        ``[B, 9, H, W]`` assignment.
    stride : int
        Cell size ``S`` in pixels.
    normaliser : {"trace_max", "eight_ns"}
        See :func:`laplacian_normaliser`.

    Returns
    -------
    Tensor
        Scalar, dimensionless, typically in [0.88, 0.99]; 0.89586 for the hard initial grid at
        S = 16. Multiply by ``λ_LAP = 360`` for the total loss. The mean runs over all ``M``
        superpixels, border ones included.
    """
    z = laplacian_normaliser(stride, normaliser)
    return 1.0 - laplacian_window_traces(q, stride).mean() / z
