"""Boundary recall / precision: hand-worked examples and brute-force comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.segmentation import find_boundaries

from spbench.metrics import (
    boundary_map,
    boundary_precision,
    boundary_recall,
    default_tolerance,
    dilate_square,
)

from .metrics_reference import ref_bp, ref_br
from .metrics_strategies import label_maps, label_pairs

# 5×5, GT split between columns 1|2 (GT boundary: cols 1, 2); prediction split 3|4
# (boundary: cols 3, 4).
GT = np.zeros((5, 5), int)
GT[:, 2:] = 1
SP = np.zeros((5, 5), int)
SP[:, 4:] = 7


def test_default_tolerance():
    assert default_tolerance((321, 481)) == 1  # round(1.4457)
    assert default_tolerance((481, 321)) == 1
    assert default_tolerance((5, 5)) == 0
    # 0.0025f·200 = 0.49999998... in the C++ code, so r = 0 (not 1 as 0.0025·200 = 0.5 gives)
    assert default_tolerance((120, 160)) == 0
    assert default_tolerance((1200, 1600)) == 5


def test_hand_boundary_r1():
    # col 2 sees col 3 -> TP 5; col 1 (window cols 0..2) sees none -> FN 5
    assert boundary_recall(SP, GT, tolerance=1) == pytest.approx(0.5)
    # FP: col 4 (window cols 3..4) has no GT boundary; col 3 sees col 2 -> neither TP nor FP
    assert boundary_precision(SP, GT, tolerance=1) == pytest.approx(5 / 10)


def test_hand_boundary_r0_and_r2():
    assert default_tolerance(GT.shape) == 0
    assert boundary_recall(SP, GT) == 0.0
    assert boundary_precision(SP, GT) == 0.0  # TP = 0, FP = 10
    assert boundary_recall(SP, GT, tolerance=2) == 1.0
    assert boundary_precision(SP, GT, tolerance=2) == 1.0


def test_window_is_square_and_clipped():
    gt = np.zeros((4, 4), int)
    gt[0, 0] = 1  # GT boundary: (0,0), (0,1), (1,0)
    sp = np.zeros((4, 4), int)
    sp[2, 2] = 1  # SP boundary: (2,2), (1,2), (3,2), (2,1), (2,3)
    # (0,0): window rows 0..1, cols 0..1 (clipped) has no SP boundary -> FN
    # (0,1): (1,2) is a diagonal neighbour -> TP; (1,0): (2,1) diagonal -> TP
    assert boundary_recall(sp, gt, tolerance=1) == pytest.approx(2 / 3)
    # FP: (2,2), (3,2), (2,3) see no GT boundary; (1,2) and (2,1) do -> BP = 2 / (2 + 3)
    assert boundary_precision(sp, gt, tolerance=1) == pytest.approx(2 / 5)
    # a 4-neighbourhood (cross) window would have found no TP at all
    assert boundary_recall(sp, gt, tolerance=0) == 0.0


def test_no_gt_boundary():
    flat = np.zeros((6, 6), int)
    assert boundary_recall(SP[:5, :5], np.zeros((5, 5), int), tolerance=1) == 0.0
    assert boundary_precision(flat, flat, tolerance=1) == 0.0
    # prediction without boundary: TP = 0, FP = 0 -> BP 0; BR 0
    assert boundary_recall(flat[:5, :5], GT, tolerance=1) == 0.0
    assert boundary_precision(flat[:5, :5], GT, tolerance=1) == 0.0


def test_image_border_is_no_boundary():
    m = np.array([[3, 3], [3, 3]])
    assert not boundary_map(m).any()
    one = np.array([[0, 0, 0], [0, 5, 0], [0, 0, 0]])
    assert boundary_map(one).sum() == 5  # centre + its 4-neighbours, not the corners


@settings(max_examples=40, deadline=None)
@given(label_maps(max_side=9, max_labels=4))
def test_boundary_map_matches_find_boundaries(labels):
    np.testing.assert_array_equal(
        boundary_map(labels), find_boundaries(labels, connectivity=1, mode="thick")
    )


@settings(max_examples=40, deadline=None)
@given(label_maps(max_side=9, max_labels=2), st.integers(0, 3))
def test_dilate_square_matches_loops(labels, r):
    mask = labels == labels.flat[0]
    got = dilate_square(mask, r)
    h, w = mask.shape
    for y in range(h):
        for x in range(w):
            assert got[y, x] == mask[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].any()


@settings(max_examples=50, deadline=None)
@given(label_pairs(max_side=9, max_labels=4), st.integers(0, 2))
def test_br_bp_match_brute_force(pair, r):
    labels, gt = pair
    assert boundary_recall(labels, gt, tolerance=r) == pytest.approx(ref_br(labels, gt, r))
    assert boundary_precision(labels, gt, tolerance=r) == pytest.approx(ref_bp(labels, gt, r))


@settings(max_examples=40, deadline=None)
@given(label_pairs(max_side=9, max_labels=4), st.integers(0, 2))
def test_br_is_one_when_prediction_refines_gt(pair, r):
    noise, gt = pair
    refined = gt * 1000 + np.unique(noise, return_inverse=True)[1].reshape(gt.shape)
    if boundary_map(gt).any():
        assert boundary_recall(refined, gt, tolerance=r) == 1.0
        # BP: every TP is matched, so BP = TP / (TP + FP) > 0
        assert boundary_precision(refined, gt, tolerance=r) > 0.0
