"""AINet's boundary-perceiving loss (BPL) and its patch sampler, vectorised.

See ``docs/baselines.md`` §3.2.

Upstream (``YanFangCS/AINET``) samples the patches in the data loader with NumPy / Python
``random`` (``datasets/data_util.py: local_patch_sampler, select_label``, L145–216) and evaluates
the loss with a Python loop over images and patches (``loss.py: boundary_perceiving_loss,
patch_classify``). Here both run on the label map's device:

1. :func:`thick_boundaries` — ``skimage.segmentation.find_boundaries(label)`` (thick mode,
   connectivity 1): a pixel is a boundary pixel when one of its 4-neighbours inside the image has
   a different label.
2. :func:`sample_boundary_patches` — ``patch_num = min(500, Σbd // 5)`` before a 5-pixel border
   is zeroed; up to ``N`` draws with replacement among the ``N`` remaining boundary pixels; a 5×5
   patch centred on a draw is kept when it holds exactly two labels; drawing stops as soon as
   ``patch_num`` patches are kept (after the first draw when ``patch_num = 0``). Each kept patch
   gets four binary masks ``A1, A2, B1, B2`` (A = smaller label; each label's pixels split in
   raster order, first ``n // 2`` to the first half). Images without any kept patch get the
   upstream dummy patch at ``(1, 1)`` whose four masks are all ones.
3. :func:`boundary_perceiving_loss` — all patches of the batch are gathered from the embedding
   with one index operation (``[B, K, 5, 5, D]``, masks ``[B, K, 4, 5, 5]``, padded with a
   validity mask) and the loss of ``patch_classify`` is evaluated at once.

**Deviation (sampling order, distributionally identical).** Upstream draws one index at a time
with ``random.randint`` and tests the stop rule after every draw. Here all ``N`` candidate draws
of an image are generated at once (i.i.d. uniform over the ``N`` boundary pixels, from a
``torch.Generator``) and the first ``patch_num`` valid ones are kept *in draw order*. The
sequential loop is a deterministic function of the same i.i.d. stream that only stops reading it
early: for any fixed stream both keep exactly the same patches in the same order (tested against
a sequential reference in ``tests/test_ainet.py``), so the kept-patch distribution is identical.
Only the RNG stream (torch instead of Python's ``random``) differs. Sampling also runs in the loss
(on the augmented labels of the batch) instead of in the data-loader workers; upstream samples on
the label after crop and flips, which is what the batch holds, and before patch jitter, which
DLM never runs (``docs/baselines.md`` §3.3).

Only :mod:`torch` is imported (pure tensor functions).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "BPL_EPS",
    "DUMMY_PATCH_LOSS",
    "MAX_PATCHES",
    "PATCH_BORDER",
    "PATCH_SIZE",
    "BoundaryPatches",
    "boundary_perceiving_loss",
    "bpl_from_labels",
    "patch_halves",
    "sample_boundary_patches",
    "thick_boundaries",
]

#: Side of the square patches in pixels (upstream ``patch_height = patch_width = 5``).
PATCH_SIZE = 5
#: Width of the image border excluded from patch centres (upstream: ``patch_height``).
PATCH_BORDER = 5
#: Upper bound on the number of patches per image (upstream ``max_patch``).
MAX_PATCHES = 500
#: ε inside the logarithms of ``patch_classify``.
BPL_EPS = 1e-8
#: Loss of the dummy patch: ``−½·2·log(1e-8) + (−log(1 + 1e-8)) ≈ 18.42`` (zero gradient).
DUMMY_PATCH_LOSS = -math.log(BPL_EPS) - math.log1p(BPL_EPS)


class BoundaryPatches(NamedTuple):
    """The sampled patches of a batch, padded to ``K`` slots per image.

    Attributes
    ----------
    positions : LongTensor
        ``[B, K, 2]`` top-left ``(row, col)`` of each 5×5 patch, in pixels (upstream
        ``patch_posi[:, [0, 2]]``). Padding slots hold ``(0, 0)``.
    masks : BoolTensor
        ``[B, K, 4, 5, 5]`` binary masks ``A1, A2, B1, B2`` (cast to the embedding's dtype by
        :func:`boundary_perceiving_loss`). All false in padding slots.
    valid : BoolTensor
        ``[B, K]``; ``True`` for kept patches (and for the dummy patch), in draw order.
    dummy : BoolTensor
        ``[B]``; ``True`` where no patch was found and slot 0 holds the dummy patch.
    patch_num : LongTensor
        ``[B]`` the target ``min(500, Σbd // 5)`` (before the border is zeroed).
    """

    positions: Tensor
    masks: Tensor
    valid: Tensor
    dummy: Tensor
    patch_num: Tensor


def thick_boundaries(labels: Tensor) -> Tensor:
    """Thick label boundaries, ``skimage.segmentation.find_boundaries(label, mode="thick")``.

    skimage computes ``dilation(label, cross) != erosion(label, cross)`` with reflected borders,
    i.e. a pixel is on a boundary iff a 4-neighbour *inside the image* has another label.

    Parameters
    ----------
    labels : Tensor
        ``[B, H, W]`` integer label map.

    Returns
    -------
    BoolTensor
        ``[B, H, W]`` boundary mask (both sides of every label change are marked).
    """
    if labels.dim() != 3:
        raise ValueError(f"labels must have shape [B, H, W], got {tuple(labels.shape)}")
    bd = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    dv = labels[:, 1:, :] != labels[:, :-1, :]  # vertical neighbours differ
    dh = labels[:, :, 1:] != labels[:, :, :-1]  # horizontal neighbours differ
    bd[:, 1:, :] |= dv
    bd[:, :-1, :] |= dv
    bd[:, :, 1:] |= dh
    bd[:, :, :-1] |= dh
    return bd


def _window_offsets(size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column offsets ``0..size-1`` of a ``size×size`` window, raster order, ``[size²]``."""
    r = torch.arange(size, device=device)
    return r.repeat_interleave(size), r.repeat(size)


def patch_halves(windows: Tensor) -> Tensor:
    """Masks ``A1, A2, B1, B2`` of two-label patches (upstream ``select_label``).

    Parameters
    ----------
    windows : Tensor
        ``[..., P]`` label values of patches flattened in raster order (``P = 25``), each holding
        exactly two distinct labels (other rows give meaningless masks; callers mask them out).

    Returns
    -------
    BoolTensor
        ``[..., 4, P]``: ``A1, A2`` split the pixels of the smaller label ``A`` in raster order,
        the first ``n_A // 2`` to ``A1``; ``B1, B2`` likewise for the larger label.
    """
    lo = windows.min(dim=-1, keepdim=True).values
    hi = windows.max(dim=-1, keepdim=True).values
    out = []
    for value in (lo, hi):
        member = windows == value
        rank = torch.cumsum(member, dim=-1) - 1  # raster rank among the label's pixels
        half = member.sum(dim=-1, keepdim=True) // 2
        first = member & (rank < half)
        out += [first, member & ~first]
    return torch.stack(out, dim=-2)


@torch.no_grad()
def sample_boundary_patches(
    labels: Tensor,
    *,
    generator: torch.Generator | None = None,
    max_patches: int = MAX_PATCHES,
    patch_size: int = PATCH_SIZE,
    border: int = PATCH_BORDER,
) -> BoundaryPatches:
    """Sample the BPL patches of a batch (upstream ``local_patch_sampler``), vectorised.

    No Python loop over patches, pixels or images: all images are sampled at once on the labels'
    device. See the module docstring for the rule and for why drawing all candidates at once is
    distributionally identical to upstream's sequential loop.

    Parameters
    ----------
    labels : Tensor
        ``[B, H, W]`` (or ``[B, 1, H, W]``) integer ground truth after crop and flips;
        ``H, W > 2·border``.
    generator : torch.Generator, optional
        The run's seeded generator; random numbers are drawn on its device and moved to the
        labels' device. Without one, torch's global RNG on the labels' device is used.
    max_patches, patch_size, border : int
        Upstream constants 500, 5 and 5 (``patch_size`` must be odd).

    Returns
    -------
    BoundaryPatches
        Positions, masks (bool), validity, dummy flags and targets; ``K = max(1, max kept)``.
    """
    if labels.dim() == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dim() != 3:
        raise ValueError(f"labels must have shape [B, H, W], got {tuple(labels.shape)}")
    if patch_size % 2 != 1:
        raise ValueError(f"patch_size must be odd, got {patch_size}")
    _, h, w = labels.shape
    if h <= 2 * border or w <= 2 * border or border < patch_size // 2:
        raise ValueError(f"labels {h}x{w} too small for a {border}-pixel border")
    patch_num, n_bd, cand, two = _boundary_candidates(labels, patch_size, border, max_patches)
    pix, valid = _draw_patches(patch_num, n_bd, cand, two, generator, labels.device)
    # Padding slots point at a safe interior pixel; their masks are cleared in _patches_at.
    pix = torch.where(valid, pix, torch.full_like(pix, border * w + border))
    return _patches_at(labels, pix, valid, patch_num, patch_size)


def _boundary_candidates(
    labels: Tensor, patch_size: int, border: int, max_patches: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Return each image's patch target, candidate count, the candidates and their 2-label test.

    ``patch_num [B]`` is upstream's ``min(max_patches, Σbd // patch_size)``, counted before the
    border is zeroed; ``n_bd [B]`` the candidate centres per image; ``cand`` the flat pixel index
    of every candidate of the batch, image by image in raster order (``np.where`` order); ``two``
    whether each candidate's window holds exactly two labels.
    """
    b, h, w = labels.shape
    half_p = patch_size // 2
    bd = thick_boundaries(labels)
    # Upstream: Σbd // (max(patch_h, patch_w)·disc), disc = 1, before the border is zeroed.
    patch_num = torch.clamp(bd.sum(dim=(1, 2)) // patch_size, max=max_patches)
    bd[:, :border, :] = False
    bd[:, h - border :, :] = False
    bd[:, :, :border] = False
    bd[:, :, w - border :] = False
    flat = bd.view(b, -1)
    n_bd = flat.sum(dim=1)  # N_b, the number of candidate centres
    owner, cand = torch.nonzero(flat).unbind(dim=1)  # raster-ordered candidates (np.where order)
    # Two-label test once per candidate pixel (flat list over the batch, no padding):
    # a window holds exactly two labels iff min < max and every value is the min or the max.
    dr, dc = _window_offsets(patch_size, labels.device)
    cy_all, cx_all = cand // w, cand % w
    win = labels[owner[:, None], (cy_all - half_p)[:, None] + dr, (cx_all - half_p)[:, None] + dc]
    lo = win.min(dim=1, keepdim=True).values
    hi = win.max(dim=1, keepdim=True).values
    two = (lo < hi).squeeze(1) & ((win == lo) | (win == hi)).all(dim=1)
    return patch_num, n_bd, cand, two


def _draw_patches(
    patch_num: Tensor,
    n_bd: Tensor,
    cand: Tensor,
    two: Tensor,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Draw candidates as upstream's loop does; return the kept pixels ``[B, K]`` and validity.

    Kept draws are compacted to the front in draw order; ``K = max(1, max kept)``. Padding
    slots hold an arbitrary pixel and ``valid`` False.
    """
    b = n_bd.shape[0]
    start = torch.cumsum(n_bd, 0) - n_bd
    n_max = int(n_bd.max()) if b else 0
    # Draw t of image b is uniform over its N_b candidates; only the first n_draw_b draws exist
    # (N_b of them, or 1 when patch_num = 0: upstream's stop test then fires after one draw).
    rng_device = generator.device if generator is not None else device
    u = torch.rand(b, max(n_max, 1), generator=generator, device=rng_device, dtype=torch.float64)
    u = u.to(device)
    j = torch.minimum((u * n_bd[:, None]).long(), (n_bd[:, None] - 1).clamp(min=0))
    n_draw = torch.where(patch_num > 0, n_bd, n_bd.clamp(max=1))
    drawn = torch.arange(u.shape[1], device=device)[None, :] < n_draw[:, None]
    flat_idx = (start[:, None] + j).clamp(max=max(cand.numel() - 1, 0))
    if cand.numel():
        ok = drawn & two[flat_idx]
    else:
        ok = torch.zeros_like(drawn)
    # Stop rule: keep the first max(patch_num, 1) valid draws, in draw order.
    rank = torch.cumsum(ok, dim=1)
    keep = ok & (rank <= patch_num.clamp(min=1)[:, None])
    k = max(int(keep.sum(dim=1).max()) if b else 0, 1)
    # Compact the kept draws to the front, preserving draw order.
    order = torch.sort(keep.to(torch.uint8), dim=1, descending=True, stable=True).indices[:, :k]
    valid = torch.gather(keep, 1, order)
    if cand.numel():
        pix = cand[torch.gather(flat_idx, 1, order)]
    else:
        pix = torch.zeros_like(order)
    return pix, valid


def _patches_at(
    labels: Tensor, pix: Tensor, valid: Tensor, patch_num: Tensor, patch_size: int
) -> BoundaryPatches:
    """Cut the patches centred on ``pix [B, K]`` and add the dummy patch where none is valid."""
    b, _, w = labels.shape
    k = pix.shape[1]
    device = labels.device
    half_p = patch_size // 2
    dr, dc = _window_offsets(patch_size, device)
    top, left = pix // w - half_p, pix % w - half_p
    bidx = torch.arange(b, device=device)[:, None, None]
    windows = labels[bidx, top[..., None] + dr, left[..., None] + dc]  # [B, K, P²], raster order
    masks = patch_halves(windows) & valid[..., None, None]
    masks = masks.view(b, k, 4, patch_size, patch_size)
    positions = torch.stack([top, left], dim=-1)
    positions = torch.where(valid[..., None], positions, torch.zeros_like(positions))

    # Dummy patch (upstream L214–216): slot 0 at (1, 1), all four masks ones.
    dummy = valid.sum(dim=1) == 0
    slot0 = torch.zeros(b, k, dtype=torch.bool, device=device)
    slot0[:, 0] = True
    dslot = dummy[:, None] & slot0
    valid = valid | dslot
    masks = masks | dslot[..., None, None, None]
    positions = torch.where(dslot[..., None], torch.ones_like(positions), positions)
    return BoundaryPatches(positions, masks, valid, dummy, patch_num)


def _similarity(a: Tensor, b: Tensor) -> Tensor:
    """``2 / (1 + clamp(exp(‖a − b‖₁), 1e-8, 1e15))`` over the last dim (``patch_classify``)."""
    dist = (a - b).abs().sum(dim=-1)
    return 2.0 / (1.0 + torch.exp(dist).clamp(min=1e-8, max=1e15))


def boundary_perceiving_loss(embedding: Tensor, patches: BoundaryPatches) -> Tensor:
    """BPL of a batch (upstream ``loss.py: boundary_perceiving_loss`` + ``patch_classify``).

    For each patch the four mask means ``m = Σ z·mask / (Σ mask + 1)`` are compared:
    ``same = −½[log(sim(A1, A2) + ε) + log(sim(B1, B2) + ε)]``,
    ``cross = −½[log(1 − sim(A1, B1) + ε) + log(1 − sim(A2, B2) + ε)]``; per image the loss is
    ``mean_patches(same) + mean_patches(cross)``; the batch loss is the sum over images / B.

    Parameters
    ----------
    embedding : Tensor
        ``z`` = AINet's ``out_conv0_1``, ``[B, D, H, W]``.
    patches : BoundaryPatches
        From :func:`sample_boundary_patches` on the batch's labels.

    Returns
    -------
    Tensor
        Scalar, unweighted and unitless (the dummy patch contributes ≈ 18.42 with zero gradient).
        Computed in full precision under autocast too: ``−log(1 − sim + ε)`` amplifies bf16's
        rounding of small distances (10–40 % gradient error).
    """
    with torch.autocast(embedding.device.type, enabled=False):
        if embedding.dtype in (torch.float16, torch.bfloat16):
            embedding = embedding.float()
        return _patch_loss(embedding, patches)


def _patch_loss(embedding: Tensor, patches: BoundaryPatches) -> Tensor:
    """The body of :func:`boundary_perceiving_loss`, in ``embedding``'s dtype."""
    b = embedding.shape[0]
    pos, valid = patches.positions, patches.valid
    if pos.shape[0] != b:
        raise ValueError(f"patches for {pos.shape[0]} images, embedding for {b}")
    p = patches.masks.shape[-1]
    device = embedding.device
    pos, valid = pos.to(device), valid.to(device)
    masks = patches.masks.to(device=device, dtype=embedding.dtype)
    # One gather of every patch of the batch: [B, K, P, P, D].
    r = torch.arange(p, device=device)
    rows = pos[..., 0, None, None] + r[:, None]
    cols = pos[..., 1, None, None] + r[None, :]
    bidx = torch.arange(b, device=device)[:, None, None, None]
    feat = embedding.permute(0, 2, 3, 1)[bidx, rows, cols]
    sums = torch.einsum("bkmyx,bkyxd->bkmd", masks, feat)
    means = sums / (masks.sum(dim=(-2, -1)) + 1.0)[..., None]  # [B, K, 4, D]
    a1, a2, b1, b2 = means.unbind(dim=2)
    same = -(torch.log(_similarity(a1, a2) + BPL_EPS) + torch.log(_similarity(b1, b2) + BPL_EPS))
    cross = -(
        torch.log(1.0 - _similarity(a1, b1) + BPL_EPS)
        + torch.log(1.0 - _similarity(a2, b2) + BPL_EPS)
    )
    weight = valid.to(embedding.dtype)
    n = weight.sum(dim=1).clamp(min=1.0)
    per_image = 0.5 * ((same * weight).sum(dim=1) + (cross * weight).sum(dim=1)) / n
    return per_image.sum() / b


def bpl_from_labels(
    embedding: Tensor, labels: Tensor, *, generator: torch.Generator | None = None
) -> Tensor:
    """Sample patches from ``labels`` and return :func:`boundary_perceiving_loss` (unweighted).

    Parameters
    ----------
    embedding : Tensor
        ``[B, D, H, W]`` pixel embedding.
    labels : Tensor
        ``[B, H, W]`` integer ground truth.
    generator : torch.Generator, optional
        The run's seeded generator for the sampling.

    Returns
    -------
    Tensor
        Scalar BPL.
    """
    patches = sample_boundary_patches(labels.to(embedding.device), generator=generator)
    return boundary_perceiving_loss(embedding, patches)
