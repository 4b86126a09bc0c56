"""Boundary metrics of the reference benchmark (``docs/protocol.md`` §4).

A *boundary pixel* is a pixel whose label differs from one of its existing 4-neighbours (both
sides of a contour are marked; the image border is no boundary), which equals
``skimage.segmentation.find_boundaries(L, connectivity=1, mode="thick")``. Matches are searched in
the square window (2r + 1)², clipped at the image border, with r = round(0.0025·√(H² + W²))
(1 px for BSDS500); there is no one-to-one matching. Source:
``davidstutz/superpixel-benchmark: lib_eval/evaluation.cpp`` (``computeBoundaryRecall``,
``computeBoundaryPrecision``, ``is4ConnectedBoundaryPixel``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spbench.metrics._common import as_label_map, default_tolerance

__all__ = [
    "boundary_counts",
    "boundary_map",
    "boundary_precision",
    "boundary_recall",
    "default_tolerance",
    "dilate_square",
]


def boundary_map(labels: np.ndarray) -> np.ndarray:
    """Thick 4-connected boundary map.

    Parameters
    ----------
    labels
        Integer label map ``[H, W]``.

    Returns
    -------
    numpy.ndarray
        ``bool [H, W]``: True where a 4-neighbour inside the image has a different label.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {lab.shape}")
    out = np.zeros(lab.shape, dtype=bool)
    diff_h = lab[:, 1:] != lab[:, :-1]
    out[:, 1:] |= diff_h
    out[:, :-1] |= diff_h
    diff_v = lab[1:, :] != lab[:-1, :]
    out[1:, :] |= diff_v
    out[:-1, :] |= diff_v
    return out


def dilate_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a boolean map with the all-ones (2r + 1)² square, clipped at the border.

    Parameters
    ----------
    mask
        ``bool [H, W]``.
    radius
        r ≥ 0; r = 0 returns the mask unchanged.

    Returns
    -------
    numpy.ndarray
        ``bool [H, W]``: True where the window around the pixel holds a True pixel.
    """
    if radius < 0:
        raise ValueError(f"tolerance must be >= 0, got {radius}")
    if radius == 0:
        return mask
    size = 2 * radius + 1
    out = ndimage.maximum_filter1d(mask.view(np.uint8), size, axis=0, mode="constant", cval=0)
    out = ndimage.maximum_filter1d(out, size, axis=1, mode="constant", cval=0)
    return out.view(bool)


def boundary_counts(
    s_boundary: np.ndarray,
    s_dilated: np.ndarray,
    g_boundary: np.ndarray,
    g_dilated: np.ndarray,
) -> tuple[int, int, int]:
    """TP, FN and FP of the benchmark from precomputed (dilated) boundary maps.

    TP counts GT-boundary pixels with an S-boundary pixel in their window; FN the other GT-boundary
    pixels; FP the S-boundary pixels with no GT-boundary pixel in their window (such pixels are
    never GT-boundary pixels themselves, since the window holds its centre).

    Returns
    -------
    tuple of int
        ``(tp, fn, fp)``.
    """
    n_gt = int(np.count_nonzero(g_boundary))
    tp = int(np.count_nonzero(g_boundary & s_dilated))
    fp = int(np.count_nonzero(s_boundary & ~g_dilated))
    return tp, n_gt - tp, fp


def _counts(labels, gt, tolerance: int | None) -> tuple[int, int, int]:
    labels = as_label_map(labels, "labels")
    gt = as_label_map(gt, "gt")
    if labels.shape != gt.shape:
        raise ValueError(f"labels {labels.shape} and gt {gt.shape} differ in shape")
    r = default_tolerance(gt.shape) if tolerance is None else int(tolerance)
    sb = boundary_map(labels)
    gb = boundary_map(gt)
    return boundary_counts(sb, dilate_square(sb, r), gb, dilate_square(gb, r))


def boundary_recall(labels: np.ndarray, gt: np.ndarray, *, tolerance: int | None = None) -> float:
    """Boundary recall BR (the benchmark's ``rec``).

    BR = TP / (TP + FN): the fraction of GT-boundary pixels that have a superpixel-boundary pixel
    within the (2r + 1)² window. Range [0, 1], higher is better; 0 if the GT has no boundary.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.
    gt
        Ground-truth label map ``[H, W]``.
    tolerance
        r in pixels; default round(0.0025·√(H² + W²)) (1 for BSDS500).

    Returns
    -------
    float
        BR in [0, 1].

    Notes
    -----
    Source: ``Evaluation::computeBoundaryRecall`` (``docs/protocol.md`` §4).
    """
    tp, fn, _ = _counts(labels, gt, tolerance)
    return tp / (tp + fn) if tp + fn > 0 else 0.0


def boundary_precision(
    labels: np.ndarray, gt: np.ndarray, *, tolerance: int | None = None
) -> float:
    """Boundary precision BP (the benchmark's ``pre``, the paper's "B").

    BP = TP / (TP + FP), with TP the GT-based count of :func:`boundary_recall` and FP the
    superpixel-boundary pixels that are not GT-boundary pixels and have no GT-boundary pixel in
    their window (those near but not on the GT count as neither). Range [0, 1] (about 0.1 on
    BSDS500), higher is better; 0 if TP + FP = 0.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.
    gt
        Ground-truth label map ``[H, W]``.
    tolerance
        r in pixels; default round(0.0025·√(H² + W²)) (1 for BSDS500).

    Returns
    -------
    float
        BP in [0, 1].

    Notes
    -----
    Source: ``Evaluation::computeBoundaryPrecision`` (``docs/protocol.md`` §4).
    """
    tp, _, fp = _counts(labels, gt, tolerance)
    return tp / (tp + fp) if tp + fp > 0 else 0.0
