"""Curve summaries over the number of superpixels (``docs/protocol.md`` §8).

- :func:`normalized_auc` is the project's primary summary: the mean of the piecewise-linear curve
  over K ∈ [384, 1200].
- :func:`average_metric` is the reference benchmark's ``Evaluation::computeAverageMetric``
  (``davidstutz/superpixel-benchmark: lib_eval/evaluation.cpp``), a *secondary* view only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["AUCResult", "average_metric", "normalized_auc"]


class AUCResult(NamedTuple):
    """Result of :func:`normalized_auc`.

    Attributes
    ----------
    value
        The normalised area (same unit as the metric).
    extrapolated
        True if an end of the range was not bracketed by measured points and was linearly
        extrapolated (the protocol's ``auc_extrapolated`` flag).
    """

    value: float
    extrapolated: bool


def _checked(n_superpixels, values) -> tuple[np.ndarray, np.ndarray]:
    """The points as float64 arrays, sorted by K (stable), after the input checks."""
    x = np.asarray(n_superpixels, dtype=np.float64).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{x.size} superpixel counts but {y.size} values")
    if x.size < 2:
        raise ValueError(f"need at least 2 points, got {x.size}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("NaN in the curve points (superpixel counts or metric values)")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("non-finite value in the curve points")
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _points(n_superpixels, values) -> tuple[np.ndarray, np.ndarray]:
    x, y = _checked(n_superpixels, values)
    # A curve has one value per K: points at the same K (a method whose count saturates) merge
    # into their mean, so an end is never extrapolated along a vertical line.
    k, inverse = np.unique(x, return_inverse=True)
    if k.size < 2:
        raise ValueError(f"need points at 2 distinct K, got all at K = {k[0]}")
    return k, np.bincount(inverse, weights=y) / np.bincount(inverse)


def _line(x0: float, y0: float, x1: float, y1: float, at: float) -> float:
    return y0 + (y1 - y0) * (at - x0) / (x1 - x0)


def _value_at(x: np.ndarray, y: np.ndarray, at: float) -> tuple[float, bool]:
    """Value of the piecewise-linear curve at ``at``; linear extrapolation outside (flagged)."""
    if x[0] <= at <= x[-1]:
        k = int(np.searchsorted(x, at, side="left"))
        if x[k] == at:
            return float(y[k]), False
        return _line(x[k - 1], y[k - 1], x[k], y[k], at), False
    if at < x[0]:
        return _line(x[0], y[0], x[1], y[1], at), True
    return _line(x[-2], y[-2], x[-1], y[-1], at), True


def normalized_auc(
    n_superpixels: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    low: float = 384.0,
    high: float = 1200.0,
) -> AUCResult:
    """Normalised area under a metric-vs-#superpixels curve.

    AUC_norm = (1 / (high − low)) ∫_low^high v(K) dK, with v piecewise linear through the points
    (K_s, v_s) sorted by K. The integral is a trapezoid sum over [low, high]: the values at the
    ends are linearly interpolated between the bracketing points and the interior points are
    kept. An end that no pair of points brackets is linearly extrapolated from the two nearest
    points and flagged. Points at the same K merge into one with their mean value: scikit-image's
    SLIC, for one, floors its grid step, so 1176 and 1350 requested segments give the same
    segmentation and K̄. The AUC of a constant curve is that constant.

    Parameters
    ----------
    n_superpixels
        K of each point (protocol: the mean *actual* number of superpixels K̄ per scale).
    values
        The metric value at each point (same length).
    low, high
        Range of K; defaults 384 and 1200 (``docs/protocol.md`` §8).

    Returns
    -------
    AUCResult
        ``(value, extrapolated)``.

    Raises
    ------
    ValueError
        On NaN or infinite inputs, fewer than 2 points or fewer than 2 distinct K, mismatched
        lengths, or ``high <= low``.

    Notes
    -----
    Source: ``docs/protocol.md`` §8 (project decision). Test vector: the SSMamba table of
    ``docs/paper.md`` §5 gives ASA 0.9745, BR 0.9010, BP 0.1225, CO 0.3641.
    """
    x, y = _points(n_superpixels, values)
    low, high = float(low), float(high)
    if not high > low:
        raise ValueError(f"high ({high}) must exceed low ({low})")
    v_low, ex_low = _value_at(x, y, low)
    v_high, ex_high = _value_at(x, y, high)
    inner = (x > low) & (x < high)
    xs = np.concatenate(([low], x[inner], [high]))
    ys = np.concatenate(([v_low], y[inner], [v_high]))
    area = float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))
    return AUCResult(area / (high - low), bool(ex_low or ex_high))


def average_metric(
    n_superpixels: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    low: int = 200,
    high: int = 5200,
    lower_is_better: bool = False,
) -> float:
    """The reference benchmark's "average metric" (secondary view only).

    avg = 100 / (high − low) · ∫_low^high (1 − v(K)) dK as a trapezoid sum, so lower is better
    (e.g. average miss rate AMR = average of 1 − BR). With ``lower_is_better=True`` (errors such
    as UE) the curve is v itself (avg = 100/(high − low)·∫ v dK). End rules of
    ``computeAverageMetric``, after sorting the points by K (points at equal K are kept, not
    merged as :func:`normalized_auc` merges them):

    - lower end: if some K ≤ low, v(low) is interpolated between the last point with K ≤ low and
      the next one; otherwise the smallest-K value is used as a constant at ``low`` (and that point
      is also kept at its own K);
    - upper end, no K ≥ high: the second-to-last point is dropped and the last point's value is
      placed at K = high;
    - upper end, some K ≥ high: the last point below ``high`` and every point from the first at or
      above ``high`` on are dropped; the line through the last two remaining points is extrapolated
      to ``high`` and replaces the last of them;
    - interior K are truncated to integers.

    The arithmetic is float32, as in the C++ code.

    Parameters
    ----------
    n_superpixels
        K of each point (≥ 3 points).
    values
        Metric values.
    low, high
        Integration range; the benchmark's defaults are 200 and 5200.
    lower_is_better
        Integrate v instead of 1 − v.

    Returns
    -------
    float
        The average metric in percent-like units (lower is better).

    Notes
    -----
    Source: ``Evaluation::computeAverageMetric`` (``docs/protocol.md`` §8), reimplemented from
    its rules.
    spbench's 13 scales reach only K ≈ 1300–1500, so over [200, 5200] this is mostly
    extrapolation; it is listed for completeness.
    """
    # The benchmark sorts the points but keeps those at equal K (its end rules drop or keep
    # them one by one), so they are not merged here.
    x, y = _checked(n_superpixels, values)
    if x.size < 3:
        raise ValueError(f"average_metric needs at least 3 points, got {x.size}")
    f32 = np.float32
    sp = [f32(v) for v in x]
    val = [f32(1.0 - v) if lower_is_better else f32(v) for v in y]
    n = len(sp)
    i_min = 0
    while i_min + 1 < n and sp[i_min + 1] <= low:
        i_min += 1
    i_max = n - 1
    while i_max - 1 >= 0 and sp[i_max - 1] >= high:
        i_max -= 1
    if i_min + 1 >= n or i_max - 1 < 0:
        raise ValueError("all points lie outside the range; the benchmark's rules are undefined")
    cv: list = []  # corrected values (float32)
    cs: list[int] = []  # corrected superpixel counts (int, truncated)
    if sp[i_min] > low:
        cv.append(val[i_min])
        cs.append(int(low))
    else:
        m = f32((val[i_min + 1] - val[i_min]) / (sp[i_min + 1] - sp[i_min]))
        c = f32(val[i_min] - m * sp[i_min])
        cv.append(f32(m * f32(low) + c))
        cs.append(int(low))
        i_min += 1
    for i in range(i_min, i_max - 1):
        cv.append(val[i])
        cs.append(int(sp[i]))
    if sp[i_max] < high:
        cv.append(val[i_max])
        cs.append(int(high))
    else:
        if len(cv) < 2 or cs[-1] == cs[-2]:
            raise ValueError("too few distinct points below `high` to extrapolate")
        m = f32((cv[-1] - cv[-2]) / f32(cs[-1] - cs[-2]))
        c = f32(cv[-1] - m * f32(cs[-1]))
        cv[-1] = f32(m * f32(high) + c)
        cs[-1] = int(high)
    total = f32(0.0)
    for i in range(1, len(cv)):
        width = cs[i] - cs[i - 1]
        if cv[i] > cv[i - 1]:
            a = f32(f32(1.0) - cv[i]) * f32(width)
            b = f32(0.5 * float(f32(cv[i] - cv[i - 1])) * width)
        else:
            a = f32(f32(1.0) - cv[i - 1]) * f32(width)
            b = f32(0.5 * float(f32(cv[i - 1] - cv[i])) * width)
        total = f32(total + f32(a + b))
    return float(f32(f32(100.0) * total) / f32(high - low))
