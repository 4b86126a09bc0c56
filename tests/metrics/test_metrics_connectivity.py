"""Enforced connectivity: the compiled scikit-image helper against a transcription of §3."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from spbench.metrics import ec_sizes, enforce_connectivity, fragmentation

from .metrics_reference import ref_enforce_connectivity
from .metrics_strategies import label_maps


def _ref(labels, n_nominal):
    sizes = ec_sizes(labels.shape, n_nominal)
    return ref_enforce_connectivity(labels, sizes.min_size, sizes.max_size)


@pytest.mark.parametrize(
    ("n", "segment", "lo", "hi"),
    [(384, 402.1, 24, 1206), (600, 257.3, 15, 772), (1176, 131.3, 7, 393), (54, 2859.3, 171, 8577)],
)
def test_worked_sizes(n, segment, lo, hi):
    sizes = ec_sizes((321, 481), n)
    assert sizes.segment_size == pytest.approx(segment, abs=0.05)
    assert (sizes.min_size, sizes.max_size) == (lo, hi)


def test_first_component_smaller_than_min_size():
    # 6×6, n = 1: min_size = int(2.16) = 2. The 1-px first component keeps label 0, and the next
    # component (seeded next to it) reuses label 0.
    m = np.full((6, 6), 3)
    m[0, 0] = 7
    out = enforce_connectivity(m, 1)
    assert ec_sizes(m.shape, 1).min_size == 2
    np.testing.assert_array_equal(out, np.zeros((6, 6)))
    np.testing.assert_array_equal(out, _ref(m, 1))


def test_small_component_merges_into_adjacent():
    m = np.zeros((6, 6), int)
    m[2, 2] = 1
    m[4, 4:] = 5  # 2 px: kept (min_size 2)
    out = enforce_connectivity(m, 1)
    expected = np.zeros((6, 6), int)
    expected[4, 4:] = 1
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, _ref(m, 1))


def test_split_at_max_size():
    row = np.full((1, 10), 4)
    # n = 10: segment_size 1, min_size 0, max_size 3
    out = enforce_connectivity(row, 10)
    np.testing.assert_array_equal(out, [[0, 0, 0, 1, 1, 1, 2, 2, 2, 3]])
    np.testing.assert_array_equal(out, _ref(row, 10))


def test_label_zero_is_processed():
    # start_label=1 would treat label 0 as background; here it is an ordinary label
    m = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]])
    out = enforce_connectivity(m, 1)  # min_size int(0.72)=0, max_size 36
    np.testing.assert_array_equal(out, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3]])


def test_output_dtype_and_errors():
    out = enforce_connectivity(np.zeros((3, 3), np.uint8), 1)
    assert out.dtype == np.intp and out.shape == (3, 3)
    with pytest.raises(ValueError):
        enforce_connectivity(np.zeros((3, 3), int), 0)
    with pytest.raises(ValueError):
        enforce_connectivity(np.zeros((3, 3), int), 28)  # max_size = int(3·9/28) = 0
    with pytest.raises(ValueError):
        enforce_connectivity(-np.ones((3, 3), int), 1)


def test_random_maps_exact_equality_bulk():
    rng = np.random.default_rng(1234)
    for _ in range(300):
        h, w = rng.integers(1, 17, size=2)
        k = rng.integers(1, 6)
        m = rng.integers(0, k, size=(h, w))
        if rng.random() < 0.5:  # blocky maps: bigger components
            m = np.kron(rng.integers(0, k, size=(h // 2 + 1, w // 2 + 1)), np.ones((2, 2), int))
            m = m[:h, :w]
        n = int(rng.integers(1, max(2, h * w // 3) + 1))
        if 3 * h * w // n < 1:
            continue
        np.testing.assert_array_equal(enforce_connectivity(m, n), _ref(m, n))


@st.composite
def maps_and_counts(draw):
    labels = draw(label_maps(max_side=14, max_labels=4, min_side=2))
    area = labels.size
    n = draw(st.integers(1, max(1, area // 3)))
    return labels, n


@settings(max_examples=80, deadline=None)
@given(maps_and_counts())
def test_matches_reference_and_properties(case):
    labels, n = case
    out = enforce_connectivity(labels, n)
    np.testing.assert_array_equal(out, _ref(labels, n))
    # consecutive labels from 0, in raster order of first appearance
    first = np.unique(out.ravel(), return_index=True)
    np.testing.assert_array_equal(first[0], np.arange(first[0].size))
    assert np.all(np.diff(first[1]) > 0)
    # every output label is 4-connected (hence XC = Stray = 0)
    for v in first[0]:
        assert ndimage.label(out == v)[1] == 1
    assert fragmentation(out) == (0, 0)
    # no segment below min_size, unless the whole image is one segment
    sizes = np.bincount(out.ravel())
    if sizes.size > 1:
        assert sizes.min() >= ec_sizes(labels.shape, n).min_size
