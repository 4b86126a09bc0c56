"""A small class API that scores predictions against annotations while sharing work.

Per label map (prediction or annotation), :class:`LabelMapStats` computes once the compact label
index, the label sizes, the 4-connected boundary map and its (2r + 1)² dilation. A
:class:`PredictionScorer` then scores one prediction against any number of annotations, and
every annotation's :class:`LabelMapStats` can be reused across scales and EC settings. For one
(prediction, annotation) pair the cost is one contingency table (shared by ASA, UE, UE_NP,
UE_Levin, OE) and two masked counts for BR/BP.

Example::

    gts = [LabelMapStats(a) for a in annotations]            # once per image
    scorer = PredictionScorer(labels, image=image)           # once per prediction
    rows = [scorer.score(g) for g in gts]                    # one dict per pair
"""

from __future__ import annotations

import math

import numpy as np

from spbench.metrics._common import as_label_map, compact, default_tolerance
from spbench.metrics.boundary import boundary_counts, boundary_map, dilate_square
from spbench.metrics.facts import metric_names
from spbench.metrics.region import (
    compactness_from_index,
    explained_variation_from_index,
    region_scores,
)

__all__ = ["SCORE_KEYS", "LabelMapStats", "PredictionScorer", "score_image", "score_pair"]

#: Keys of the dict returned by :func:`score_pair` / :meth:`PredictionScorer.score`, in order:
#: the per-pair metrics of :data:`~spbench.metrics.facts.METRICS` and the superpixel count.
SCORE_KEYS: tuple[str, ...] = (*metric_names(per_pair=True), "n_superpixels")


class LabelMapStats:
    """Precomputed statistics of one label map (prediction or annotation).

    Parameters
    ----------
    labels
        Integer label map ``[H, W]`` (non-negative, used as given).

    Attributes
    ----------
    shape
        ``(H, W)``.
    index
        ``intp [H, W]`` compact label index (labels present mapped to ``0..n-1``).
    sizes
        ``int64 [n]`` label sizes.
    n_labels_total
        max(label) + 1, the benchmark's label range (|G| of the Levin error).
    boundary
        ``bool [H, W]`` thick 4-connected boundary map.
    """

    __slots__ = ("_dilated", "boundary", "index", "n_labels_total", "shape", "sizes")

    def __init__(self, labels: np.ndarray) -> None:
        labels = as_label_map(labels)
        self.shape: tuple[int, int] = (int(labels.shape[0]), int(labels.shape[1]))
        self.index, self.sizes = compact(labels)
        self.n_labels_total = int(labels.max()) + 1
        self.boundary = boundary_map(self.index)
        self._dilated: dict[int, np.ndarray] = {}

    @property
    def n_labels(self) -> int:
        """Number of distinct labels present."""
        return int(self.sizes.size)

    def dilated(self, radius: int) -> np.ndarray:
        """Boundary map dilated by the (2r + 1)² square (cached per radius)."""
        out = self._dilated.get(radius)
        if out is None:
            out = dilate_square(self.boundary, radius)
            self._dilated[radius] = out
        return out


class PredictionScorer:
    """Scores one superpixel map against annotations, torchmetrics-style.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``, or its :class:`LabelMapStats`.
    image
        Optional image ``[H, W, 3]`` for EV (NaN without it).
    tolerance
        Boundary tolerance r; default round(0.0025·√(H² + W²)).

    Notes
    -----
    The per-prediction metrics (CO, EV, #superpixels) are computed once, at construction.
    """

    def __init__(
        self,
        labels: np.ndarray | LabelMapStats,
        *,
        image: np.ndarray | None = None,
        tolerance: int | None = None,
    ) -> None:
        self.stats = labels if isinstance(labels, LabelMapStats) else LabelMapStats(labels)
        st = self.stats
        self.tolerance = default_tolerance(st.shape) if tolerance is None else int(tolerance)
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        self.co = compactness_from_index(st.index, st.sizes)
        self.ev = (
            math.nan if image is None else explained_variation_from_index(st.index, st.sizes, image)
        )
        self.n_superpixels = st.n_labels

    def score(
        self, gt: np.ndarray | LabelMapStats, *, n_gt_labels: int | None = None
    ) -> dict[str, float]:
        """Score against one annotation.

        Parameters
        ----------
        gt
            Annotation label map ``[H, W]`` or its :class:`LabelMapStats` (reuse it across
            predictions of the same image).
        n_gt_labels
            Override |G| of the Levin error (default: max(gt) + 1 of the GT as given).

        Returns
        -------
        dict
            Keys :data:`SCORE_KEYS`; ``n_superpixels`` is an int, everything else a float.
        """
        g = gt if isinstance(gt, LabelMapStats) else LabelMapStats(gt)
        st = self.stats
        if g.shape != st.shape:
            raise ValueError(f"labels {st.shape} and gt {g.shape} differ in shape")
        out: dict[str, float] = region_scores(
            st.index,
            st.sizes,
            g.index,
            g.sizes,
            g.n_labels_total if n_gt_labels is None else int(n_gt_labels),
        )
        r = self.tolerance
        tp, fn, fp = boundary_counts(st.boundary, st.dilated(r), g.boundary, g.dilated(r))
        result = {
            "asa": out["asa"],
            "ue": out["ue"],
            "ue_np": out["ue_np"],
            "ue_levin": out["ue_levin"],
            "oe": out["oe"],
            "co": self.co,
            "br": tp / (tp + fn) if tp + fn > 0 else 0.0,
            "bp": tp / (tp + fp) if tp + fp > 0 else 0.0,
            "ev": self.ev,
            "n_superpixels": self.n_superpixels,
        }
        return result


def score_pair(
    labels: np.ndarray,
    gt: np.ndarray,
    *,
    image: np.ndarray | None = None,
    tolerance: int | None = None,
) -> dict[str, float]:
    """All benchmark metrics for one (prediction, annotation) pair.

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]`` (non-negative integers, used as given).
    gt
        Ground-truth label map ``[H, W]`` (used as given; see
        :func:`~spbench.metrics.region.undersegmentation_error_levin` for the +1 of the
        benchmark's GT files, which only ``ue_levin`` notices).
    image
        Optional ``[H, W, 3]`` image for EV.
    tolerance
        Boundary tolerance r; default round(0.0025·√(H² + W²)) (1 for BSDS500).

    Returns
    -------
    dict
        ``asa, ue, ue_np, ue_levin, oe, co, br, bp, ev, n_superpixels`` (``ev`` is NaN without an
        image). XC and Stray are per prediction: see
        :func:`~spbench.metrics.fragmentation.fragmentation`.

    Notes
    -----
    Source: ``docs/protocol.md`` §4; the metrics of ``davidstutz/superpixel-benchmark``'s
    ``eval_summary_cli``.
    """
    return PredictionScorer(labels, image=image, tolerance=tolerance).score(gt)


def score_image(
    labels: np.ndarray,
    annotations: np.ndarray | list[np.ndarray] | list[LabelMapStats],
    *,
    image: np.ndarray | None = None,
    tolerance: int | None = None,
) -> list[dict[str, float]]:
    """Score one prediction against every annotation of its image (one dict per pair).

    Parameters
    ----------
    labels
        Superpixel label map ``[H, W]``.
    annotations
        ``[A, H, W]`` array, or a list of maps or of :class:`LabelMapStats`.
    image
        Optional ``[H, W, 3]`` image for EV.
    tolerance
        Boundary tolerance r (default from the size).

    Returns
    -------
    list of dict
        As :func:`score_pair`, in annotation order.
    """
    scorer = PredictionScorer(labels, image=image, tolerance=tolerance)
    return [scorer.score(a) for a in annotations]
