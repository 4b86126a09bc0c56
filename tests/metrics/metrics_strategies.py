"""Shared hypothesis strategies for the metrics tests: blocky multi-label maps with fragments.

Independent per-pixel draws (or ``hnp.arrays`` without ``fill=``, which draws mostly constant
arrays) rarely give what the metrics are about: regions, the boundaries between them, and labels
split into several pieces. These strategies build a map in three steps, each visible to
shrinking:

1. a grid of ``bh×bw`` blocks (at least two blocks when the map has two pixels), each given one of
   k ≥ 2 labels, with at least two different labels: regions and straight boundaries;
2. up to three rectangles painted over it: boundaries off the block grid and labels split in two;
3. up to H·W/6 single pixels relabelled: stray fragments and 8-connected diagonal contacts.

``test_strategies_draw_non_trivial_maps`` checks the mix (multi-label share, GT boundaries,
fragmented labels).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def _blocky(draw, h: int, w: int, k: int) -> np.ndarray:
    """``int64 [h, w]`` map of labels ``0..k-1`` (block grid, rectangles, stray pixels)."""
    bh = draw(st.integers(1, max(1, h // 2)))
    bw = draw(st.integers(1, max(1, w // 2)))
    gh, gw = -(-h // bh), -(-w // bw)
    cells = draw(st.lists(st.integers(0, k - 1), min_size=gh * gw, max_size=gh * gw))
    if gh * gw > 1 and len(set(cells)) == 1:
        cells[-1] = (cells[0] + 1) % k  # at least two labels
    m = np.kron(np.array(cells, np.int64).reshape(gh, gw), np.ones((bh, bw), np.int64))[:h, :w]
    for _ in range(draw(st.integers(0, 3))):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
        m[y0:y1, x0:x1] = draw(st.integers(0, k - 1))
    n_stray = draw(st.integers(0, h * w // 6))
    for _ in range(n_stray):
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = draw(st.integers(0, k - 1))
    return m


@st.composite
def _ids(draw, k: int) -> np.ndarray:
    """k unique label ids in [0, 10⁶], 0 included half the time (gaps and large ids)."""
    ids = np.array(draw(st.lists(st.integers(0, 10**6), min_size=k, max_size=k, unique=True)))
    if draw(st.booleans()) and 0 not in ids:
        ids[0] = 0
    return ids


@st.composite
def label_maps(draw, max_side: int = 9, max_labels: int = 5, min_side: int = 1):
    """Blocky integer label maps with non-contiguous, possibly large, ids (0 included).

    ``max_labels`` ≥ 2 bounds the number of distinct labels; every map of two or more pixels has
    at least two.
    """
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    k = draw(st.integers(2, max(2, max_labels)))
    return draw(_ids(k))[draw(_blocky(h, w, k))]


@st.composite
def label_pairs(draw, max_side: int = 9, max_labels: int = 5):
    """(labels, gt) pairs of the same shape.

    Half the ground truths are drawn independently of the prediction; the other half merge the
    prediction's labels (a coarser partition sharing some of its boundaries) and then relabel a few
    pixels, so that boundaries and regions partly agree, as for a real prediction.
    """
    labels = draw(label_maps(max_side=max_side, max_labels=max_labels))
    h, w = labels.shape
    k = draw(st.integers(2, max(2, max_labels)))
    if draw(st.booleans()):
        return labels, draw(_blocky(h, w, k))
    ids, inverse = np.unique(labels, return_inverse=True)
    merge = draw(st.lists(st.integers(0, k - 1), min_size=ids.size, max_size=ids.size))
    if ids.size > 1 and len(set(merge)) == 1:
        merge[-1] = (merge[0] + 1) % k  # keep a GT boundary
    merge = np.array(merge)
    gt = merge[inverse.reshape(h, w)]
    for _ in range(draw(st.integers(0, h * w // 8))):
        gt[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = draw(st.integers(0, k - 1))
    return labels, gt
