"""Enforced connectivity (EC), the SLIC post-processing used by DLM and SCN.

See ``docs/protocol.md`` §3.

Upstream: ``connectivity.pyx`` of DLM (identical to SCN's ``third_party/cython/connectivity.pyx``),
copied from scikit-image's SLIC helper. The compiled scikit-image function
``skimage.segmentation._slic._enforce_label_connectivity_cython`` is called with
``start_label=0`` on a ``(1, H, W)`` ``intp`` array, which is equivalent to the upstream code for
non-negative labels (``docs/protocol.md`` §9; verified against a pure-Python transcription of §3 in
``tests/metrics/test_connectivity.py``). With the default ``start_label=1`` it would treat label 0
as masked background; that mode is never used here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from skimage.segmentation._slic import _enforce_label_connectivity_cython

from spbench.metrics._common import as_label_map

__all__ = ["ECSizes", "ec_sizes", "enforce_connectivity"]


class ECSizes(NamedTuple):
    """EC size parameters derived from the nominal superpixel count."""

    segment_size: float
    min_size: int
    max_size: int


def ec_sizes(shape: tuple[int, int], n_nominal: int) -> ECSizes:
    """EC parameters for an ``H×W`` map and a nominal superpixel count.

    segment_size = H·W / n_nominal, min_size = int(0.06·segment_size),
    max_size = int(3·segment_size) (``docs/protocol.md`` §3; DLM ``eval_spixel/infer.py``).
    For 321×481 and n_nominal = 600 (s = 1.0): (257.3, 15, 772).

    Parameters
    ----------
    shape
        ``(H, W)`` of the map at the original resolution.
    n_nominal
        Nominal number of superpixels, int(600·s·s) in the protocol.

    Returns
    -------
    ECSizes
        ``(segment_size, min_size, max_size)``.
    """
    n_nominal = int(n_nominal)
    if n_nominal <= 0:
        raise ValueError(f"n_nominal must be positive, got {n_nominal}")
    segment_size = int(shape[0]) * int(shape[1]) / n_nominal
    return ECSizes(segment_size, int(0.06 * segment_size), int(3 * segment_size))


def enforce_connectivity(labels: np.ndarray, n_nominal: int) -> np.ndarray:
    """Enforce 4-connectivity as the upstream SLIC post-processing does.

    Raster scan; each unlabelled pixel seeds a breadth-first search over 4-connectivity (neighbour
    order x+1, x−1, y+1, y−1) collecting pixels of its original label. The search stops at
    max_size pixels (the rest is picked up later as a new component). A component with fewer than
    min_size pixels takes the label ``adjacent`` (the new label of the last visited already-labelled
    neighbour with another new label, initially 0) and the label counter is reused; otherwise the
    counter increments.

    Parameters
    ----------
    labels
        No-EC label map ``[H, W]`` (non-negative integers) at the original resolution.
    n_nominal
        Nominal superpixel count; gives segment_size = H·W / n_nominal,
        min_size = int(0.06·segment_size) and max_size = int(3·segment_size).

    Returns
    -------
    numpy.ndarray
        ``int64`` ``[H, W]`` (``intp``) labels, consecutive from 0 in raster order of first
        appearance; every label is 4-connected.

    Raises
    ------
    ValueError
        For a non-2-D or negative map, n_nominal ≤ 0, or max_size < 1 (the upstream BFS buffer would
        be empty: undefined behaviour there).

    Notes
    -----
    Source: DLM ``connectivity.pyx`` (``docs/protocol.md`` §3, §9).
    """
    labels = as_label_map(labels)
    sizes = ec_sizes(labels.shape, n_nominal)
    if sizes.max_size < 1:
        raise ValueError(
            f"max_size = int(3*{sizes.segment_size:g}) < 1: n_nominal={n_nominal} is too large "
            f"for a {labels.shape} map"
        )
    segments = np.ascontiguousarray(labels, dtype=np.intp)[None]
    out = _enforce_label_connectivity_cython(
        segments, sizes.min_size, sizes.max_size, start_label=0
    )
    return np.asarray(out)[0]
