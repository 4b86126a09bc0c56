"""Normalised AUC and the benchmark's average metric."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spbench.metrics import AUCResult, average_metric, normalized_auc

# docs/paper.md §5: SSMamba's own results.csv means (EC applied), nominal 54 .. 1944.
SSM_TABLE = np.array(
    [
        # mean #SP, ASA, BR, BP, CO
        [57.1, 0.9204, 0.5259, 0.2062, 0.3799],
        [101.3, 0.9419, 0.6543, 0.1946, 0.3718],
        [157.9, 0.9539, 0.7425, 0.1810, 0.3656],
        [226.8, 0.9611, 0.7932, 0.1675, 0.3625],
        [308.4, 0.9657, 0.8303, 0.1555, 0.3592],
        [401.2, 0.9688, 0.8538, 0.1451, 0.3575],
        [507.0, 0.9715, 0.8751, 0.1368, 0.3564],
        [626.6, 0.9737, 0.8914, 0.1297, 0.3560],
        [770.6, 0.9750, 0.9043, 0.1217, 0.3627],
        [930.2, 0.9761, 0.9151, 0.1146, 0.3682],
        [1089.1, 0.9770, 0.9246, 0.1087, 0.3734],
        [1286.4, 0.9780, 0.9338, 0.1032, 0.3783],
        [1485.2, 0.9788, 0.9414, 0.0986, 0.3827],
        [1655.6, 0.9792, 0.9463, 0.0945, 0.3859],
        [2179.1, 0.9809, 0.9592, 0.0877, 0.3926],
    ]
)


@pytest.mark.parametrize(
    ("column", "expected"), [(1, 0.9745), (2, 0.9010), (3, 0.1225), (4, 0.3641)]
)
@pytest.mark.parametrize("rows", [slice(0, 13), slice(None)])
def test_ssm_test_vector(column, expected, rows):
    res = normalized_auc(SSM_TABLE[rows, 0], SSM_TABLE[rows, column])
    assert isinstance(res, AUCResult)
    assert round(res.value, 4) == expected
    assert res.extrapolated is False


def test_order_does_not_matter():
    perm = np.random.default_rng(0).permutation(13)
    a = normalized_auc(SSM_TABLE[:13, 0], SSM_TABLE[:13, 1])
    b = normalized_auc(SSM_TABLE[perm, 0], SSM_TABLE[perm, 1])
    assert a.value == pytest.approx(b.value, abs=1e-15)


def test_hand_interpolation_and_extrapolation():
    # v(5) = 5, v(10) = 10, v(15) = 5: area (5+10)/2·5·2 = 75 over 10
    assert normalized_auc([0, 10, 20], [0, 10, 0], low=5, high=15) == (7.5, False)
    # v = K on [2, 12], only 0..10 measured: extrapolated, area 70 over 10
    res = normalized_auc([0, 10], [0, 10], low=2, high=12)
    assert res.value == pytest.approx(7.0) and res.extrapolated
    res = normalized_auc([5, 10, 20], [5, 10, 20], low=2, high=15)
    assert res.value == pytest.approx(8.5) and res.extrapolated
    # ends exactly on points are bracketed
    assert normalized_auc([384, 1200], [1.0, 3.0]) == (2.0, False)


def test_without_ec_upper_end_unbracketed():
    x = SSM_TABLE[:11, 0]  # ends at 1089.1 < 1200
    res = normalized_auc(x, SSM_TABLE[:11, 1])
    assert res.extrapolated
    assert res.value == pytest.approx(0.9745, abs=2e-4)


def test_points_at_the_same_k_merge_into_their_mean():
    # scikit-image's SLIC gives the same K for its two largest scales: the upper end is
    # extrapolated from the two distinct K (900 and 1000, the merged value 0.6), not refused.
    res = normalized_auc([400, 900, 1000, 1000], [0.2, 0.5, 0.5, 0.7], low=400, high=1100)
    v_high = 0.6 + (0.6 - 0.5) / 100 * 100
    area = 0.5 * (0.2 + 0.5) * 500 + 0.5 * (0.5 + 0.6) * 100 + 0.5 * (0.6 + v_high) * 100
    assert res.extrapolated and res.value == pytest.approx(area / 700)
    with pytest.raises(ValueError, match="2 distinct K"):
        normalized_auc([500, 500], [0.9, 0.8])


def test_errors():
    with pytest.raises(ValueError, match="NaN"):
        normalized_auc([400, 800, 1300], [0.9, math.nan, 0.95])
    with pytest.raises(ValueError, match="NaN"):
        normalized_auc([400, math.nan, 1300], [0.9, 0.9, 0.95])
    with pytest.raises(ValueError):
        normalized_auc([400], [0.9])
    with pytest.raises(ValueError):
        normalized_auc([400, 500], [0.9, 0.8, 0.7])
    with pytest.raises(ValueError):
        normalized_auc([400, 500], [0.9, 0.8], low=10, high=5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(1, 5000), min_size=2, max_size=15, unique=True),
    st.floats(-10, 10),
)
def test_constant_curve(xs, c):
    if max(xs) - min(xs) < 1e-6:
        return
    res = normalized_auc(xs, [c] * len(xs))
    assert res.value == pytest.approx(c, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1, 5000), min_size=2, max_size=15, unique=True))
def test_linear_curve_is_exact(xs):
    if max(xs) - min(xs) < 1.0:
        return
    res = normalized_auc(xs, [0.001 * x + 0.2 for x in xs])
    assert res.value == pytest.approx(0.001 * (384 + 1200) / 2 + 0.2, rel=1e-9)


def test_average_metric_hand():
    # lower end interpolated (K=100 ≤ 200 < 1000): v(200) = 0.5 + 0.2·100/900; the point at
    # K = 1000 (second-to-last) is dropped; 3000's value goes to 5200
    v200 = 0.5 + 0.2 * 100 / 900
    expected = 100 * (1 - (v200 + 0.9) / 2)
    got = average_metric([100, 1000, 3000], [0.5, 0.7, 0.9])
    assert got == pytest.approx(expected, rel=1e-5)
    # upper end with points ≥ 5200: keep (200, .5) const, (300, .5), (1000, .6) -> extrapolated
    # to 1.2 at 5200 replacing (1000, .6); integral of 1 - v = 50 + 4900·0.15
    got = average_metric([300, 1000, 3000, 6000, 7000], [0.5, 0.6, 0.7, 0.8, 0.9])
    assert got == pytest.approx(100 * (50 + 4900 * 0.15) / 5000, rel=1e-5)


def test_average_metric_keeps_points_at_equal_k():
    """As the benchmark: the upper rule drops the second-to-last point, here the first of the two
    at K = 300, and moves the last (0.8) to 5200; v(200) = 0.55 from (100, 0.5) and (300, 0.6).
    Merging them (0.7 at K = 300) would give 35.0."""
    got = average_metric([100, 300, 300], [0.5, 0.6, 0.8])
    assert got == pytest.approx(100 * (0.2 * 5000 + 0.5 * 0.25 * 5000) / 5000, rel=1e-5)  # 32.5


def test_average_metric_lower_is_better_and_constant():
    xs = [150, 400, 900, 1400]
    assert average_metric(xs, [0.9] * 4) == pytest.approx(10.0, rel=1e-5)
    assert average_metric(xs, [0.1] * 4, lower_is_better=True) == pytest.approx(10.0, rel=1e-5)
    with pytest.raises(ValueError):
        average_metric([100, 200], [0.1, 0.2])
