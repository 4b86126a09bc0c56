"""The shared strategies draw what the property tests need: regions, boundaries, fragments."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from spbench.metrics import boundary_map, fragmentation

from .metrics_strategies import label_pairs


def test_strategies_draw_non_trivial_maps():
    seen = []

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(label_pairs())
    def collect(pair):
        labels, gt = pair
        assert labels.shape == gt.shape
        seen.append(
            (
                np.unique(labels).size > 1,
                bool(boundary_map(gt).any()),
                fragmentation(labels)[0] > 0,
            )
        )

    collect()
    multi, gt_boundary, fragmented = np.mean(seen, axis=0)
    # the old per-pixel strategy: 40 % multi-label, 25 % with a GT boundary
    assert multi > 0.9
    assert gt_boundary > 0.9
    assert fragmented > 0.5
