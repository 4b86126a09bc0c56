"""XC and Stray: hand-worked examples and the cross-check against scipy.ndimage.label."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import ndimage

from spbench.metrics import excess_components, fragmentation, stray_pixels

from .metrics_reference import ref_fragmentation
from .metrics_strategies import label_maps


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([[0, 1, 0]], (1, 2)),  # label 0: two 1-px components, tie -> both stray
        ([[0, 1, 0, 0]], (1, 1)),  # label 0: sizes 1 and 2 -> 1 stray
        ([[0, 1], [1, 0]], (0, 0)),  # diagonal contact is 8-connected
        ([[5, 1, 5, 1, 5, 5]], (3, 4)),  # 5: sizes 1,1,2 -> XC 2, stray 2; 1: tie -> XC 1, 2
        ([[9, 9], [9, 9]], (0, 0)),
        ([[7]], (0, 0)),
        # label 0 in three pieces of sizes 2, 2, 1 (tie at the top) -> stray 5; label 3 connected
        ([[0, 0, 3, 0], [3, 3, 3, 0], [3, 3, 3, 3], [0, 3, 3, 3]], (2, 5)),
    ],
)
def test_hand_fragmentation(labels, expected):
    arr = np.array(labels)
    assert fragmentation(arr) == expected
    assert excess_components(arr) == expected[0]
    assert stray_pixels(arr) == expected[1]


def test_types():
    xc, stray = fragmentation(np.array([[0, 1, 0]], dtype=np.uint8))
    assert type(xc) is int and type(stray) is int


@settings(max_examples=80, deadline=None)
@given(label_maps(max_side=10, max_labels=4))
def test_matches_scipy_per_label(labels):
    assert fragmentation(labels) == ref_fragmentation(labels)


@settings(max_examples=60, deadline=None)
@given(label_maps(max_side=10, max_labels=4))
def test_zero_iff_every_label_8_connected(labels):
    connected = all(
        ndimage.label(labels == v, structure=np.ones((3, 3)))[1] == 1 for v in np.unique(labels)
    )
    xc, stray = fragmentation(labels)
    assert (xc == 0) == connected
    assert (stray == 0) == connected
