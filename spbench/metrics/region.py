"""Region metrics of the reference benchmark (``docs/protocol.md`` §4).

Every function takes integer label maps ``[H, W]`` (any non-negative ids, gaps allowed) and uses
the labels *as given*: a label split into several fragments is one superpixel. The formulas follow
``davidstutz/superpixel-benchmark: lib_eval/evaluation.cpp``; they are computed in float64 from
exact integer counts (the C++ code accumulates in float32, so its last float32 digit may differ).

Notation: N = H·W pixels, S_j the superpixels, G_i the ground-truth segments and
n_ij = |G_i ∩ S_j| their intersection (contingency) matrix.
"""

from __future__ import annotations

import math

import numpy as np

from spbench.metrics._common import as_label_map, compact

__all__ = [
    "achievable_segmentation_accuracy",
    "asa",
    "compactness",
    "explained_variation",
    "n_superpixels",
    "oe",
    "oversegmentation_error",
    "region_scores",
    "ue",
    "ue_levin",
    "ue_np",
    "undersegmentation_error",
    "undersegmentation_error_levin",
    "undersegmentation_error_np",
]

# Largest dense contingency table (entries) before switching to a sparse (sorted pairs) one.
_DENSE_LIMIT = 1 << 24


def _check_pair(labels: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = as_label_map(labels, "labels")
    gt = as_label_map(gt, "gt")
    if labels.shape != gt.shape:
        raise ValueError(f"labels {labels.shape} and gt {gt.shape} differ in shape")
    return labels, gt


def region_scores(
    s_index: np.ndarray,
    s_sizes: np.ndarray,
    g_index: np.ndarray,
    g_sizes: np.ndarray,
    n_gt_labels: int,
) -> dict[str, float]:
    """All contingency-table metrics from compact label indices, sharing one table.

    Parameters
    ----------
    s_index, s_sizes
        Compact superpixel index per pixel (``0..ns-1``) and the size of each superpixel.
    g_index, g_sizes
        The same for the ground truth.
    n_gt_labels
        |G| of the Levin error: the benchmark's ``max(gt) + 1`` (absent labels included).

    Returns
    -------
    dict
        Keys ``asa, ue, ue_np, ue_levin, oe`` (floats); see the public functions for formulas.
    """
    ns, ng = int(s_sizes.size), int(g_sizes.size)
    n_pix = int(s_index.size)
    if ng * ns <= _DENSE_LIMIT:
        table = np.bincount(
            (g_index.ravel() * ns + s_index.ravel()).astype(np.intp, copy=False),
            minlength=ng * ns,
        ).reshape(ng, ns)
        col_max = table.max(axis=0)
        row_max = table.max(axis=1)
        np_sum = int(np.minimum(table, s_sizes[None, :] - table).sum())
        touched = (table > 0).astype(np.int64) @ s_sizes
    else:  # sparse: only the non-zero intersections
        codes = g_index.ravel().astype(np.int64) * ns + s_index.ravel()
        pairs, counts = np.unique(codes, return_counts=True)
        gi, sj = pairs // ns, pairs % ns
        col_max = np.zeros(ns, np.int64)
        np.maximum.at(col_max, sj, counts)
        row_max = np.zeros(ng, np.int64)
        np.maximum.at(row_max, gi, counts)
        np_sum = int(np.minimum(counts, s_sizes[sj] - counts).sum())
        touched = np.bincount(gi, weights=s_sizes[sj].astype(np.float64), minlength=ng)
    hit = int(col_max.sum())
    levin = float(np.sum((touched - g_sizes) / g_sizes)) / n_gt_labels
    return {
        "asa": hit / n_pix,
        "ue": (n_pix - hit) / n_pix,
        "ue_np": np_sum / n_pix,
        "ue_levin": levin,
        "oe": (n_pix - int(row_max.sum())) / n_pix,
    }


def _region(labels: np.ndarray, gt: np.ndarray, n_gt_labels: int | None = None) -> dict:
    labels, gt = _check_pair(labels, gt)
    s_index, s_sizes = compact(labels)
    g_index, g_sizes = compact(gt)
    if n_gt_labels is None:
        n_gt_labels = int(gt.max()) + 1
    return region_scores(s_index, s_sizes, g_index, g_sizes, n_gt_labels)


def achievable_segmentation_accuracy(labels: np.ndarray, gt: np.ndarray) -> float:
    """Achievable segmentation accuracy (ASA).

    ASA = (1/N) Σ_j max_i n_ij: the fraction of pixels correctly labelled when every superpixel
    takes its best-overlapping GT segment. Range [0, 1], higher is better.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]`` (non-negative integers).
    gt
        Ground-truth label map ``[H, W]``.

    Returns
    -------
    float
        ASA in [0, 1].

    Notes
    -----
    Source: ``Evaluation::computeAchievableSegmentationAccuracy`` (``docs/protocol.md`` §4).
    """
    return _region(labels, gt)["asa"]


asa = achievable_segmentation_accuracy


def undersegmentation_error(labels: np.ndarray, gt: np.ndarray) -> float:
    """Undersegmentation error ``ue`` of the benchmark (the "corrected" UE).

    ue = (1/N) Σ_j min_i (|S_j| − n_ij) = (1/N) Σ_j (|S_j| − max_i n_ij) = 1 − ASA.
    Range [0, 1], lower is better.

    Parameters
    ----------
    labels, gt
        Superpixel and ground-truth label maps ``[H, W]``.

    Returns
    -------
    float
        The error in [0, 1].

    Notes
    -----
    Source: ``Evaluation::computeUndersegmentationError`` (``docs/protocol.md`` §4).
    """
    return _region(labels, gt)["ue"]


ue = undersegmentation_error


def undersegmentation_error_np(labels: np.ndarray, gt: np.ndarray) -> float:
    """Neubert–Protzel undersegmentation error ``ue_np`` (the "UE" usually reported).

    UE_NP = (1/N) Σ_i Σ_{j: n_ij > 0} min(n_ij, |S_j| − n_ij). Range [0, 1], lower is better.

    Parameters
    ----------
    labels, gt
        Superpixel and ground-truth label maps ``[H, W]``.

    Returns
    -------
    float
        The error in [0, 1].

    Notes
    -----
    Source: ``Evaluation::computeNPUndersegmentationError`` (``docs/protocol.md`` §4).
    """
    return _region(labels, gt)["ue_np"]


ue_np = undersegmentation_error_np


def undersegmentation_error_levin(
    labels: np.ndarray, gt: np.ndarray, *, n_gt_labels: int | None = None
) -> float:
    """Levin's undersegmentation error ``ue_levin``.

    UE_Levin = (1/|G|) Σ_{i: |G_i| > 0} (Σ_{j: n_ij > 0} |S_j| − |G_i|) / |G_i|, with
    |G| = max(gt) + 1 (absent labels count in |G|). Range [0, ∞), lower is better.

    Parameters
    ----------
    labels, gt
        Superpixel and ground-truth label maps ``[H, W]``. ``gt`` is used *as given*.
    n_gt_labels
        Override |G|. The benchmark reads the 50-capped GT stored as label + 1, i.e. |G| =
        max(0-based gt) + 2; pass ``gt + 1`` (or ``n_gt_labels=gt.max() + 2``) to reproduce it
        from 0-based annotations. This is the only metric that depends on the GT ids themselves.

    Returns
    -------
    float
        The error (≥ 0).

    Notes
    -----
    Source: ``Evaluation::computeLevinUndersegmentationError`` (``docs/protocol.md`` §4).
    """
    return _region(labels, gt, n_gt_labels)["ue_levin"]


ue_levin = undersegmentation_error_levin


def oversegmentation_error(labels: np.ndarray, gt: np.ndarray) -> float:
    """Oversegmentation error ``oe``.

    OE = (1/N) Σ_i min_j |G_i \\ S_j| = (1/N) Σ_i (|G_i| − max_j n_ij). Range [0, 1], lower is
    better.

    Parameters
    ----------
    labels, gt
        Superpixel and ground-truth label maps ``[H, W]``.

    Returns
    -------
    float
        The error in [0, 1].

    Notes
    -----
    Source: ``Evaluation::computeOversegmentationError`` (``docs/protocol.md`` §4).
    """
    return _region(labels, gt)["oe"]


oe = oversegmentation_error


def _crack_perimeter(index: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Crack length per compact label: 4·|S_j| minus 2 per internal 4-neighbour edge."""
    n = sizes.size
    same_h = index[:, 1:] == index[:, :-1]
    same_v = index[1:, :] == index[:-1, :]
    inner = np.bincount(index[:, 1:][same_h], minlength=n) + np.bincount(
        index[1:, :][same_v], minlength=n
    )
    return 4 * sizes - 2 * inner


def compactness_from_index(index: np.ndarray, sizes: np.ndarray) -> float:
    """Compactness from a compact index map (see :func:`compactness`)."""
    perimeter = _crack_perimeter(index, sizes).astype(np.float64)
    area = sizes.astype(np.float64)
    return float(np.sum(area * (4.0 * math.pi * area) / (perimeter * perimeter))) / index.size


def compactness(labels: np.ndarray) -> float:
    """Compactness CO of the benchmark, with the crack-length perimeter.

    CO = Σ_j (|S_j| / N) · 4π|S_j| / P_j², where P_j is the crack length of S_j: for every pixel
    of S_j, each of its 4 sides whose neighbour has another label or lies outside the image counts
    1. A single pixel has P = 4 and a 10×10 square P = 40 (not skimage's ``perimeter``). Range
    (0, 1] for connected square-ish regions (a square gives π/4), higher is better.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.

    Returns
    -------
    float
        CO.

    Notes
    -----
    Source: ``Evaluation::computeCompactness`` (``docs/protocol.md`` §4, §9). Fragmented labels get
    long perimeters, so CO penalises fragmentation.
    """
    labels = as_label_map(labels)
    index, sizes = compact(labels)
    return compactness_from_index(index, sizes)


def explained_variation_from_index(
    index: np.ndarray, sizes: np.ndarray, image: np.ndarray
) -> float:
    """Explained variation from a compact index map (see :func:`explained_variation`)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[:2] != index.shape:
        raise ValueError(f"image {img.shape} does not match labels {index.shape}")
    flat = index.ravel()
    n_pix = flat.size
    top = 0.0
    bottom = 0.0
    for c in range(img.shape[2]):  # loop over colour channels only
        chan = np.ascontiguousarray(img[:, :, c]).ravel()
        if chan.dtype == np.uint8:  # exact integer totals from the 256-bin histogram
            hist = np.bincount(chan, minlength=256).astype(np.int64)
            levels = np.arange(256, dtype=np.int64)
            total = int(hist @ levels)
            total_sq = int(hist @ (levels * levels))
        elif chan.dtype.kind in "iub":
            wide = chan.astype(np.int64)
            total = int(wide.sum())
            total_sq = int(wide @ wide)
        else:
            wide = chan.astype(np.float64)
            total = float(wide.sum())
            total_sq = float(wide @ wide)
        sums = np.bincount(flat, weights=chan, minlength=sizes.size)
        grand = total * total / n_pix
        top += float(np.sum(sums * sums / sizes)) - grand
        bottom += total_sq - grand
    if bottom == 0:
        return math.nan
    return max(top, 0.0) / bottom


def explained_variation(labels: np.ndarray, image: np.ndarray) -> float:
    """Explained variation EV.

    EV = Σ_j |S_j|·‖μ_j − μ‖² / Σ_p ‖I_p − μ‖², with μ the image mean colour, μ_j the mean
    colour of S_j, and ‖·‖² summed over the (pooled) channels. Range [0, 1], higher is better.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.
    image
        Image ``[H, W, 3]`` (``uint8``; the benchmark reads it with OpenCV, BGR, which does not
        change EV because the channels are pooled).

    Returns
    -------
    float
        EV; NaN for a constant image (the benchmark has no guard and divides 0 by 0).

    Notes
    -----
    Source: ``Evaluation::computeExplainedVariation`` (``docs/protocol.md`` §4). Computed in float64
    from exact integer sums; the C++ code accumulates in float32, so expect differences of
    order 1e-5 relative to its output.
    """
    labels = as_label_map(labels)
    index, sizes = compact(labels)
    return explained_variation_from_index(index, sizes, image)


def n_superpixels(labels: np.ndarray) -> int:
    """Number of distinct labels present (the benchmark's ``sp``, the actual count).

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.

    Returns
    -------
    int
        Count of distinct label values; fragments of one label count once (``docs/protocol.md`` §4).

    Notes
    -----
    Source: ``Evaluation::computeSuperpixels``.
    """
    labels = as_label_map(labels)
    return int(compact(labels)[1].size)
