"""The table of metric facts agrees with what the scorer computes and with what EC does."""

from __future__ import annotations

import numpy as np
import pytest

from spbench.metrics import (
    METRICS,
    SCORE_KEYS,
    enforce_connectivity,
    fragmentation,
    metric,
    metric_names,
    score_pair,
)


def test_every_score_column_has_facts_and_the_scorer_computes_the_per_pair_ones():
    labels = np.random.default_rng(0).integers(0, 6, size=(24, 32))
    gt = np.repeat(np.arange(4), 8)[None, :].repeat(24, axis=0)
    computed = set(score_pair(labels, gt)) - {"n_superpixels"}
    assert computed == set(metric_names(per_pair=True))
    assert SCORE_KEYS == (*metric_names(per_pair=True), "n_superpixels")
    assert set(metric_names(per_pair=False)) == {"xc", "stray"}  # from fragmentation()
    assert len(metric_names()) == len(METRICS) == len({m.name for m in METRICS})


def test_metrics_without_meaning_under_ec_are_zero_after_ec():
    labels = np.random.default_rng(1).integers(0, 9, size=(48, 48))
    xc, stray = fragmentation(labels)
    assert xc > 0 and stray > 0  # random labels are fragmented
    ec_xc, ec_stray = fragmentation(enforce_connectivity(labels, 9))
    assert (ec_xc, ec_stray) == (0, 0)
    assert {m.name for m in METRICS if not m.with_ec} == {"xc", "stray"}


def test_labels_and_directions():
    assert metric("ue_np").header == "UE_np ↓" and metric("asa").header == "ASA ↑"
    assert metric("bp").axis_label == "BP (the paper's B) ↑"
    assert metric("xc").decimals == 1 and metric("co").decimals == 4
    with pytest.raises(KeyError, match=r"unknown metric 'b'.*asa"):
        metric("b")
