"""score_pair / PredictionScorer: keys, agreement with the single metrics, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spbench.metrics as M
from spbench.metrics import SCORE_KEYS, LabelMapStats, PredictionScorer, score_image, score_pair

from .metrics_reference import (
    ref_asa,
    ref_bp,
    ref_br,
    ref_co,
    ref_ev,
    ref_oe,
    ref_ue,
    ref_ue_levin,
    ref_ue_np,
)
from .metrics_strategies import label_pairs

KEYS = ("asa", "ue", "ue_np", "ue_levin", "oe", "co", "br", "bp", "ev", "n_superpixels")


def test_keys_and_types():
    labels = np.array([[0, 0, 1], [0, 1, 1]])
    gt = np.array([[0, 0, 0], [1, 1, 1]])
    out = score_pair(labels, gt)
    assert tuple(out) == KEYS == SCORE_KEYS
    assert math.isnan(out["ev"])
    assert type(out["n_superpixels"]) is int
    assert all(type(out[k]) is float for k in KEYS if k != "n_superpixels")


def test_public_api_exports():
    for name in (
        "asa undersegmentation_error undersegmentation_error_np undersegmentation_error_levin "
        "oversegmentation_error ue ue_np ue_levin oe compactness boundary_recall "
        "boundary_precision explained_variation n_superpixels excess_components stray_pixels "
        "fragmentation enforce_connectivity normalized_auc average_metric score_pair AUCResult"
    ).split():
        assert hasattr(M, name), name
        assert name in M.__all__, name


@settings(max_examples=50, deadline=None)
@given(label_pairs(max_side=9, max_labels=5), st.integers(0, 2))
def test_score_pair_matches_brute_force(pair, r):
    labels, gt = pair
    small = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    img = np.random.default_rng(labels.size).integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    out = score_pair(labels, gt, image=img, tolerance=r)
    expected = {
        "asa": ref_asa(small, gt),
        "ue": ref_ue(small, gt),
        "ue_np": ref_ue_np(small, gt),
        "ue_levin": ref_ue_levin(small, gt),
        "oe": ref_oe(small, gt),
        "co": ref_co(small),
        "br": ref_br(small, gt, r),
        "bp": ref_bp(small, gt, r),
        "ev": ref_ev(small, img),
        "n_superpixels": len(np.unique(labels)),
    }
    for key in KEYS:
        if isinstance(expected[key], float) and math.isnan(expected[key]):
            assert math.isnan(out[key]), key
        else:
            assert out[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key


@settings(max_examples=40, deadline=None)
@given(label_pairs(max_side=9, max_labels=5), st.randoms(use_true_random=False))
def test_invariant_to_relabelling(pair, rnd):
    labels, gt = pair
    ids = np.unique(labels)
    new_ids = np.array(rnd.sample(range(10**9), ids.size), dtype=np.int64)
    relabelled = new_ids[np.searchsorted(ids, labels)]
    g_ids = np.unique(gt)
    g_new = g_ids[np.random.default_rng(0).permutation(g_ids.size)]  # permute within ids
    gt_perm = g_new[np.searchsorted(g_ids, gt)]
    a = score_pair(labels, gt, tolerance=1)
    b = score_pair(relabelled, gt_perm, tolerance=1)
    for key in KEYS:
        if key == "ev":
            continue
        assert b[key] == pytest.approx(a[key], abs=1e-12), key


@settings(max_examples=40, deadline=None)
@given(label_pairs(max_side=9, max_labels=5))
def test_asa_is_one_when_prediction_refines_gt(pair):
    noise, gt = pair
    refined = gt * 1000 + np.unique(noise, return_inverse=True)[1].reshape(gt.shape)
    out = score_pair(refined, gt)
    assert out["asa"] == 1.0
    assert out["ue"] == 0.0
    assert out["ue_np"] == 0.0


def test_scorer_reuses_gt_stats():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    annotations = rng.integers(0, 4, (3, 20, 30))
    labels = np.kron(np.arange(6).reshape(2, 3), np.ones((10, 10), int))
    stats = [LabelMapStats(a) for a in annotations]
    scorer = PredictionScorer(labels, image=image)
    rows = [scorer.score(s) for s in stats]
    assert rows == score_image(labels, annotations, image=image)
    assert rows[1] == score_pair(labels, annotations[1], image=image)
    with pytest.raises(ValueError):
        scorer.score(np.zeros((5, 5), int))
