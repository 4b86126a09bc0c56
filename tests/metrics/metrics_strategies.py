"""Shared hypothesis strategies for the metrics tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@st.composite
def label_maps(draw, max_side: int = 9, max_labels: int = 5, min_side: int = 1):
    """Small integer label maps with non-contiguous, possibly large, ids (0 included)."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    k = draw(st.integers(1, max_labels))
    base = draw(hnp.arrays(np.int64, (h, w), elements=st.integers(0, k - 1)))
    ids = draw(st.lists(st.integers(0, 10**6), min_size=k, max_size=k, unique=True).map(np.array))
    if draw(st.booleans()):
        ids[0] = 0
    return ids[base]


@st.composite
def label_pairs(draw, max_side: int = 9, max_labels: int = 5):
    """(labels, gt) pairs of the same shape."""
    a = draw(label_maps(max_side=max_side, max_labels=max_labels))
    k = draw(st.integers(1, max_labels))
    gt = draw(hnp.arrays(np.int64, a.shape, elements=st.integers(0, k - 1)))
    return a, gt
