"""Selective scan with ``d_state = 1`` in pure PyTorch (``docs/baselines.md`` §5.6).

VMamba's ``v05`` forward calls the CUDA extension ``selective_scan_cuda_oflex``
(``jiaxhm/SSMamba: models/csms6s.py``, ``SelectiveScanOflex``). With one state per channel the
scan is a scalar first-order linear recurrence per (batch, direction, channel)::

    Δ_t = softplus(δ_t + δ_bias)            (delta_softplus=True)
    h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·u_t   (h_{−1} = 0)
    y_t = C_t·h_t + D·u_t

:func:`linear_scan` evaluates ``h_t = a_t·h_{t−1} + b_t`` in chunks of ``T`` steps: inside every
chunk (all chunks at once, in memory-bounded groups) by the segment-sum form
``h_t = Σ_{s≤t} exp(S_t − S_s)·b_s`` with ``S = cumsum(log a)`` (every exponent is ≤ 0, so it
is stable), and across chunks by a sequential carry (a Python loop over the ⌈L/T⌉ chunk
states, never over ``L``). Its autograd function saves only ``log a`` and ``h`` and runs the
adjoint recurrence (the same chunked scan, reversed in time) in the backward, so the saved
memory is ``O(L)`` per channel instead of ``O(L·T)``. The work is ``O(L·T)``: on CPU
``T = 16–32`` is fastest (the model default is 32, ``scan_chunk``).

:func:`selective_scan_reference` is the plain sequential loop used to validate it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "linear_scan",
    "linear_scan_reference",
    "selective_scan",
    "selective_scan_reference",
]


#: Upper bound on the elements of the transient ``[..., chunks, T, T]`` weight tensor.
_MAX_TRANSIENT = 1 << 26


@torch.no_grad()
def _chunked_scan(log_a: Tensor, b: Tensor, chunk: int) -> Tensor:
    """Solve ``h_t = exp(log_a_t)·h_{t−1} + b_t`` (``h_{−1} = 0``) along the last dimension.

    The sequence is padded to ``nc`` chunks of ``T``. Inside every chunk (all chunks at once,
    in groups bounded by ``_MAX_TRANSIENT`` elements) ``h⁰_t = Σ_{s≤t} exp(S_t − S_s)·b_s``
    with ``S`` the in-chunk cumulative sum of ``log_a``; the state entering chunk ``k`` is
    carried sequentially (``c_k = exp(S_last,k−1)·c_{k−1} + h⁰_last,k−1``, a loop over chunks
    on ``[..., nc]`` tensors) and added as ``exp(S_t)·c_k``. Every exponent is ≤ 0.

    Parameters
    ----------
    log_a, b : Tensor
        ``[..., L]``; ``log_a ≤ 0`` (decay in log space).
    chunk : int
        Chunk length ``T``.

    Returns
    -------
    Tensor
        ``h``, ``[..., L]``, in the dtype of ``b``.
    """
    length = b.shape[-1]
    t = min(chunk, length)
    pad = (-length) % t
    lead = b.shape[:-1]
    nc = (length + pad) // t
    la = F.pad(log_a.to(b.dtype), (0, pad)).view(*lead, nc, t)
    bb = F.pad(b, (0, pad)).view(*lead, nc, t)
    seg = torch.cumsum(la, dim=-1)  # S_t within each chunk, ≤ 0
    lower = torch.ones(t, t, dtype=torch.bool, device=b.device).tril_()
    h = torch.empty_like(bb)
    per_chunk = max(1, b[..., 0].numel() * t * t)
    step = max(1, _MAX_TRANSIENT // per_chunk)
    for k0 in range(0, nc, step):
        s = seg[..., k0 : k0 + step, :]
        # exp(S_t − S_s) for s ≤ t; masked to −inf above the diagonal before exp (no inf·0).
        weights = (s.unsqueeze(-1) - s.unsqueeze(-2)).masked_fill_(~lower, float("-inf")).exp_()
        h[..., k0 : k0 + step, :] = (weights * bb[..., k0 : k0 + step, :].unsqueeze(-2)).sum(-1)
    if nc > 1:
        decay = torch.exp(seg[..., -1])  # [..., nc]: decay over a whole chunk
        last = h[..., -1]
        carry = torch.zeros_like(bb[..., 0])  # [..., nc]
        state = torch.zeros_like(last[..., 0])
        for k in range(1, nc):
            state = decay[..., k - 1] * state + last[..., k - 1]
            carry[..., k] = state
        h = h + torch.exp(seg) * carry.unsqueeze(-1)
    return h.view(*lead, nc * t)[..., :length]


class _LinearScanFn(torch.autograd.Function):
    """``h = scan(log_a, b)`` with the adjoint recurrence as backward."""

    @staticmethod
    def forward(ctx, log_a: Tensor, b: Tensor, chunk: int) -> Tensor:  # type: ignore[override]
        h = _chunked_scan(log_a, b, chunk).contiguous()
        ctx.save_for_backward(log_a, h)
        ctx.chunk = chunk
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        log_a, h = ctx.saved_tensors
        # λ_t = g_t + a_{t+1}·λ_{t+1}: the same recurrence run backwards in time.
        log_a_next = F.pad(log_a[..., 1:], (0, 1))
        lam = _chunked_scan(
            log_a_next.flip(-1), grad_h.to(h.dtype).flip(-1).contiguous(), ctx.chunk
        ).flip(-1)
        grad_b = lam if ctx.needs_input_grad[1] else None
        grad_log_a = None
        if ctx.needs_input_grad[0]:
            h_prev = F.pad(h[..., :-1], (1, 0))
            grad_log_a = lam * torch.exp(log_a) * h_prev
        return grad_log_a, grad_b, None


def linear_scan(log_a: Tensor, b: Tensor, chunk: int = 128) -> Tensor:
    """First-order linear recurrence ``h_t = exp(log_a_t)·h_{t−1} + b_t`` along the last axis.

    Parameters
    ----------
    log_a : Tensor
        ``[..., L]`` log decay, ≤ 0 (``Δ·A`` with ``A < 0``).
    b : Tensor
        ``[..., L]`` input term, broadcast-compatible shape equal to ``log_a``'s.
    chunk : int
        Chunk length (64–256 recommended).

    Returns
    -------
    Tensor
        ``h``, ``[..., L]`` (``h_{−1} = 0``); differentiable in ``log_a`` and ``b``.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    log_a, b = torch.broadcast_tensors(log_a, b)
    return _LinearScanFn.apply(log_a.contiguous(), b.contiguous(), int(chunk))


def linear_scan_reference(log_a: Tensor, b: Tensor) -> Tensor:
    """Sequential reference of :func:`linear_scan` (a Python loop over ``L``; tests only)."""
    a = torch.exp(log_a)
    h = torch.zeros_like(b[..., 0])
    out = []
    for t in range(b.shape[-1]):
        h = a[..., t] * h + b[..., t]
        out.append(h)
    return torch.stack(out, dim=-1)


def _expand_groups(x: Tensor, channels: int) -> Tensor:
    """``[B, G, 1, L]`` (or ``[B, G, L]``) → ``[B, G·(channels/G), L]`` (per-group B/C)."""
    if x.dim() == 4:
        if x.shape[2] != 1:
            raise ValueError(f"only d_state = 1 is supported, got B/C of shape {tuple(x.shape)}")
        x = x[:, :, 0]
    bsz, groups, length = x.shape
    if channels % groups:
        raise ValueError(f"{channels} channels do not split into {groups} groups")
    return x.unsqueeze(2).expand(bsz, groups, channels // groups, length).reshape(bsz, channels, -1)


def _scan_terms(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, delta_bias: Tensor | None, softplus: bool
) -> tuple[Tensor, Tensor]:
    """``(log a, b)`` of the recurrence from the selective-scan inputs."""
    if A.dim() == 2:
        if A.shape[1] != 1:
            raise ValueError(f"only d_state = 1 is supported, got A of shape {tuple(A.shape)}")
        A = A[:, 0]
    if delta_bias is not None:
        delta = delta + delta_bias.view(1, -1, 1)
    if softplus:
        delta = F.softplus(delta)
    log_a = delta * A.view(1, -1, 1)
    b = delta * _expand_groups(B, u.shape[1]) * u
    return log_a, b


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = True,
    chunk: int = 128,
) -> Tensor:
    """Mamba selective scan with ``d_state = 1``; same arguments as ``selective_scan_fn``.

    Follows ``SelectiveScanOflex`` (``jiaxhm/SSMamba: models/csms6s.py``), called by
    ``SS2D.forward_corev2`` with grouped B and C (one per scan direction).

    Parameters
    ----------
    u : Tensor
        ``[B, K·D, L]`` input sequence.
    delta : Tensor
        ``[B, K·D, L]`` raw step sizes (before ``delta_bias`` and softplus).
    A : Tensor
        ``[K·D, 1]`` (or ``[K·D]``) state matrix, negative.
    B, C : Tensor
        ``[B, K, 1, L]``: input and output projections shared by the ``D`` channels of a group.
    D : Tensor, optional
        ``[K·D]`` skip term.
    delta_bias : Tensor, optional
        ``[K·D]`` added to ``delta`` before the softplus.
    delta_softplus : bool
        Apply softplus to the step sizes.
    chunk : int
        Chunk length of the parallel scan.

    Returns
    -------
    Tensor
        ``y``, ``[B, K·D, L]``, float32 for half-precision inputs (as ``SelectiveScanOflex``
        with ``oflex=True``), else the dtype of ``u``.
    """
    # Like SelectiveScanOflex, accumulate in float32 at least (bf16/fp16 inputs under autocast).
    dtype = torch.promote_types(u.dtype, torch.float32)
    u32, delta32, b32, c32 = (t.to(dtype) for t in (u, delta, B, C))
    log_a, b = _scan_terms(u32, delta32, A.to(dtype), b32, delta_bias, delta_softplus)
    h = linear_scan(log_a, b, chunk)
    y = _expand_groups(c32, u.shape[1]) * h
    if D is not None:
        y = y + D.view(1, -1, 1) * u32
    return y


def selective_scan_reference(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = True,
) -> Tensor:
    """Sequential reference of :func:`selective_scan` (loop over ``L``; tests only)."""
    log_a, b = _scan_terms(u, delta, A, B, delta_bias, delta_softplus)
    h = linear_scan_reference(log_a, b)
    y = _expand_groups(C, u.shape[1]) * h
    if D is not None:
        y = y + D.view(1, -1, 1) * u
    return y
