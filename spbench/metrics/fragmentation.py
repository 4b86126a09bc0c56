"""Fragmentation metrics XC and Stray (``docs/protocol.md`` §5).

Source: DLM ``eval_spixel/infer_newmetrics.py``. Both are computed per prediction (not per
annotation), on the no-EC full-resolution map, with **8-connectivity**.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label as _cc_label

from spbench.metrics._common import as_label_map, compact

__all__ = ["excess_components", "fragmentation", "stray_pixels"]


def fragmentation(labels: np.ndarray) -> tuple[int, int]:
    """Excess components and stray pixels in one connected-component pass.

    For each label l present, let c_1..c_k be its 8-connected components (full 3×3 neighbourhood).

    - XC = Σ_l (k_l − 1), the excess components;
    - Stray = Σ_l (|l| − max_m |c_m|), where the largest size is taken as 0 if two or more
      components share it (tie rule: then all pixels of l are stray). Labels with one component
      contribute 0; there is no size threshold.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]`` (non-negative integers, used as given).

    Returns
    -------
    tuple of int
        ``(xc, stray)``, both ≥ 0; both are 0 exactly when every label is 8-connected.

    Notes
    -----
    Source: DLM ``eval_spixel/infer_newmetrics.py`` (``docs/protocol.md`` §5). One call of
    ``skimage.measure.label(labels + 1, connectivity=2, background=0)`` labels the regions of equal
    value; XC = #regions − #labels and Stray comes from bincounts of region sizes per label.
    """
    labels = as_label_map(labels)
    index, sizes = compact(labels)
    n_labels = sizes.size
    shifted = index + 1
    if n_labels < np.iinfo(np.int32).max:  # skimage labels int32 input about 2× faster
        shifted = shifted.astype(np.int32)
    regions = _cc_label(shifted, connectivity=2, background=0)
    flat = regions.ravel()
    n_regions = int(flat.max())
    xc = n_regions - n_labels
    if xc == 0:
        return 0, 0
    region_label = np.empty(n_regions + 1, dtype=np.intp)
    region_label[flat] = index.ravel()
    region_label = region_label[1:]
    region_size = np.bincount(flat, minlength=n_regions + 1)[1:]
    largest = np.zeros(n_labels, dtype=np.int64)
    np.maximum.at(largest, region_label, region_size)
    n_largest = np.bincount(region_label[region_size == largest[region_label]], minlength=n_labels)
    largest[n_largest >= 2] = 0
    stray = int(np.sum(sizes - largest))
    return int(xc), stray


def excess_components(labels: np.ndarray) -> int:
    """Excess components XC = Σ_l (#8-connected components of l − 1).

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.

    Returns
    -------
    int
        XC ≥ 0 (lower is better); 0 iff every label is 8-connected.

    Notes
    -----
    Source: DLM ``eval_spixel/infer_newmetrics.py`` (``docs/protocol.md`` §5). Use
    :func:`fragmentation` to get XC and Stray from one pass.
    """
    return fragmentation(labels)[0]


def stray_pixels(labels: np.ndarray) -> int:
    """Stray pixels: Σ_l (|l| − size of l's largest 8-connected component), with the tie rule.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.

    Returns
    -------
    int
        Stray ≥ 0 (lower is better). If the largest size is shared by two or more components of
        l, all |l| pixels of l count as stray.

    Notes
    -----
    Source: DLM ``eval_spixel/infer_newmetrics.py`` (``docs/protocol.md`` §5). Use
    :func:`fragmentation` to get XC and Stray from one pass.
    """
    return fragmentation(labels)[1]
