"""Region metrics: hand-worked examples and brute-force comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from spbench.metrics import (
    asa,
    compactness,
    explained_variation,
    n_superpixels,
    oe,
    ue,
    ue_levin,
    ue_np,
    undersegmentation_error_levin,
)
from spbench.metrics import region as region_mod

from .metrics_reference import (
    ref_asa,
    ref_co,
    ref_ev,
    ref_oe,
    ref_ue,
    ref_ue_levin,
    ref_ue_np,
)
from .metrics_strategies import label_maps, label_pairs

# Hand example: prediction splits a 2×3 image diagonally, GT horizontally.
S = np.array([[0, 0, 1], [0, 1, 1]])
G = np.array([[0, 0, 0], [1, 1, 1]])


def test_hand_region_metrics():
    # S0 = {(0,0),(0,1),(1,0)}: n = (2, 1); S1 = {(0,2),(1,1),(1,2)}: n = (1, 2).
    assert asa(S, G) == pytest.approx(4 / 6)
    assert ue(S, G) == pytest.approx(2 / 6)
    # min(2,1) + min(1,2) + min(1,2) + min(2,1) = 4
    assert ue_np(S, G) == pytest.approx(4 / 6)
    # each G_i has 3 px, best overlap 2 -> 1 + 1
    assert oe(S, G) == pytest.approx(2 / 6)
    # each G_i touches both superpixels: (3 + 3 - 3)/3 = 1; |G| = 2
    assert ue_levin(S, G) == pytest.approx(1.0)


def test_levin_counts_absent_gt_labels():
    # GT ids 5 and 6: |G| = 7 (ids 0..4 absent) -> (1 + 1) / 7
    assert ue_levin(S, G + 5) == pytest.approx(2 / 7)
    assert undersegmentation_error_levin(S, G, n_gt_labels=3) == pytest.approx(2 / 3)
    # every other metric ignores the GT offset
    assert asa(S, G + 5) == asa(S, G)


def test_refinement_and_identity():
    assert asa(G, G) == 1.0
    assert ue(G, G) == 0.0 and ue_np(G, G) == 0.0 and oe(G, G) == 0.0
    one = np.zeros_like(G)
    # one superpixel: ASA = 3/6, UE_NP = min(3,3)+min(3,3) = 6/6, OE = 0
    assert asa(one, G) == pytest.approx(0.5)
    assert ue_np(one, G) == pytest.approx(1.0)
    assert oe(one, G) == 0.0
    # singleton superpixels: ASA = 1, OE = (2 + 2)/6
    singles = np.arange(6).reshape(2, 3) * 7
    assert asa(singles, G) == 1.0
    assert oe(singles, G) == pytest.approx(4 / 6)


def test_compactness_crack_length():
    square = np.zeros((2, 2), int)
    assert compactness(square) == pytest.approx(math.pi / 4)  # P = 8, A = 4
    # 3×3 with a one-pixel label in the centre: label 0 has A = 8, P = 12 + 4 = 16;
    # the centre has A = 1, P = 4.  CO = (8·4π·8/256 + 1·4π/16) / 9 = (π + π/4) / 9
    m = np.zeros((3, 3), int)
    m[1, 1] = 9
    assert compactness(m) == pytest.approx((math.pi + math.pi / 4) / 9)
    # 10×10 square inside a 12×12 image: P = 40 (skimage's perimeter would say 36)
    big = np.zeros((12, 12), int)
    big[1:11, 1:11] = 3
    p_outer = 4 * 12 + 40  # outer frame: image border 48 + inner crack 40
    expected = (100 * 4 * math.pi * 100 / 40**2 + 44 * 4 * math.pi * 44 / p_outer**2) / 144
    assert compactness(big) == pytest.approx(expected)


def test_compactness_fragmented_label_is_penalised():
    a = np.array([[0, 1, 0, 1]])
    # label 0: two single pixels, A = 2, P = 8; label 1: A = 2, P = 4 + 4 = 8
    assert compactness(a) == pytest.approx(2 * (2 * 4 * math.pi * 2 / 64) / 4)


def test_explained_variation_hand():
    img = np.zeros((1, 3, 3), np.uint8)
    img[0, :, 0] = [0, 0, 30]  # only the red channel varies; channels are pooled
    # mu = 10: bottom = 100 + 100 + 400 = 600
    assert explained_variation(np.array([[0, 0, 1]]), img) == pytest.approx(1.0)
    # mu_0 = 0, mu_1 = 15: top = 1·100 + 2·25 = 150
    assert explained_variation(np.array([[0, 1, 1]]), img) == pytest.approx(0.25)
    assert explained_variation(np.array([[4, 4, 4]]), img) == pytest.approx(0.0)
    assert math.isnan(explained_variation(np.array([[0, 1, 1]]), np.full((1, 3, 3), 7, np.uint8)))


def test_n_superpixels():
    assert n_superpixels(np.array([[0, 5, 5], [900, 0, 5]])) == 3
    assert n_superpixels(np.zeros((4, 4), np.uint8)) == 1


def test_input_validation():
    with pytest.raises(ValueError):
        asa(np.array([[-1, 0]]), np.array([[0, 0]]))
    with pytest.raises(ValueError):
        asa(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError):
        compactness(np.zeros((2, 2), float))
    with pytest.raises(ValueError):
        compactness(np.zeros((2, 2, 2), int))


@settings(max_examples=60, deadline=None)
@given(label_pairs())
def test_region_metrics_match_brute_force(pair):
    labels, gt = pair
    # the reference loops over 0..max(labels), so give it small ids (a relabelling)
    small = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    assert asa(labels, gt) == pytest.approx(ref_asa(small, gt), abs=1e-12)
    assert ue(labels, gt) == pytest.approx(ref_ue(small, gt), abs=1e-12)
    assert ue_np(labels, gt) == pytest.approx(ref_ue_np(small, gt), abs=1e-12)
    assert oe(labels, gt) == pytest.approx(ref_oe(small, gt), abs=1e-12)
    assert ue_levin(small, gt) == pytest.approx(ref_ue_levin(small, gt), rel=1e-12)
    assert asa(labels, gt) + ue(labels, gt) == pytest.approx(1.0, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(label_maps(max_side=10, max_labels=6))
def test_compactness_and_ev_match_brute_force(labels):
    small = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    assert compactness(labels) == pytest.approx(ref_co(small), rel=1e-12)
    rng = np.random.default_rng(labels.size)
    img = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    expected = ref_ev(small, img)
    got = explained_variation(labels, img)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(label_pairs(max_side=8, max_labels=6))
def test_sparse_contingency_path(pair):
    labels, gt = pair
    from spbench.metrics._common import compact

    s_idx, s_sizes = compact(labels)
    g_idx, g_sizes = compact(gt)
    dense = region_mod.region_scores(s_idx, s_sizes, g_idx, g_sizes, int(gt.max()) + 1)
    old = region_mod._DENSE_LIMIT
    region_mod._DENSE_LIMIT = -1
    try:
        sparse = region_mod.region_scores(s_idx, s_sizes, g_idx, g_sizes, int(gt.max()) + 1)
    finally:
        region_mod._DENSE_LIMIT = old
    for key, value in dense.items():
        assert sparse[key] == pytest.approx(value, abs=1e-12), key


def test_huge_label_ids_use_unique_path():
    labels = np.array([[0, 2**40, 2**40], [7, 7, 2**40]], dtype=np.int64)
    assert n_superpixels(labels) == 3
    assert asa(labels, np.array([[0, 1, 1], [0, 0, 1]])) == pytest.approx(1.0)
