"""Shared helpers: input validation and compact relabelling of integer label maps."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["as_label_map", "compact", "default_tolerance"]

# Above this maximum label (relative to the pixel count), compacting uses np.unique (a sort)
# instead of a lookup table built by bincount.
_LUT_FACTOR = 4
_LUT_SLACK = 1 << 16
# The benchmark passes the tolerance factor as a C++ float (0.0025f).
_D_FLOAT32 = float(np.float32(0.0025))


def as_label_map(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """Validate a 2-D map of non-negative integer labels and return it as an ndarray.

    Raises
    ------
    ValueError
        If the array is not 2-D, not of an integer (or boolean) dtype, empty, or has a negative
        label.
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D label map [H, W], got shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must have an integer dtype, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "i" and arr.min() < 0:
        raise ValueError(f"{name} has negative labels; labels must be non-negative integers")
    return arr


def compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map the labels present to ``0..n-1`` (ascending label order).

    Parameters
    ----------
    labels
        Validated integer label map (see :func:`as_label_map`).

    Returns
    -------
    index : numpy.ndarray
        ``intp`` array of the same shape with the compact index of each pixel's label.
    sizes : numpy.ndarray
        ``int64`` pixel count of each compact label (all > 0); ``n = sizes.size``.
    """
    flat = labels.ravel()
    top = int(flat.max())
    if top < _LUT_FACTOR * flat.size + _LUT_SLACK:
        counts = np.bincount(flat.astype(np.intp, copy=False), minlength=top + 1)
        present = counts > 0
        lut = np.cumsum(present, dtype=np.intp) - 1
        index = lut[flat]
        sizes = counts[present].astype(np.int64, copy=False)
    else:
        _, index, sizes = np.unique(flat, return_inverse=True, return_counts=True)
        index = index.astype(np.intp, copy=False)
        sizes = sizes.astype(np.int64, copy=False)
    return index.reshape(labels.shape), sizes


def default_tolerance(shape: tuple[int, ...]) -> int:
    """Boundary tolerance r = round(0.0025·√(H² + W²)) of the reference benchmark.

    ``std::round`` rounds halves away from zero, so ``floor(x + 0.5)`` is used (not Python's
    banker's ``round``). The benchmark's factor is the C++ ``float`` 0.0025f, promoted to
    ``double``; it is reproduced here. For BSDS500 (321×481) r = 1 (``docs/protocol.md`` §4).
    """
    h, w = int(shape[0]), int(shape[1])
    return math.floor(_D_FLOAT32 * math.sqrt(h * h + w * w) + 0.5)
