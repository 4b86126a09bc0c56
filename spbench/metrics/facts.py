"""One table of facts about every benchmark metric, read by scoring, tables, comparisons, figures.

Each :class:`Metric` says what a score column is called in a table, which direction is better,
how many decimals a table shows, whether it means anything with enforced connectivity (XC and
Stray are 0 by construction there) and whether :class:`~spbench.metrics.PredictionScorer`
computes it per (prediction, annotation) pair or :func:`~spbench.metrics.fragmentation` per
prediction. Which metrics a particular table shows is that table's choice; everything else about
a metric is read from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRICS", "Metric", "metric", "metric_names"]


@dataclass(frozen=True)
class Metric:
    """Facts about one metric (one score column).

    Attributes
    ----------
    name
        Score column (``"asa"``, ``"ue_np"``, ...).
    label
        Short display name (``"ASA"``, ``"UE_np"``).
    higher_is_better
        Direction of improvement.
    decimals
        Decimals shown in tables.
    with_ec
        False where the metric is 0 by construction with EC (XC, Stray): EC comparisons skip it.
    per_pair
        True: :meth:`PredictionScorer.score <spbench.metrics.PredictionScorer.score>` returns it
        per (prediction, annotation) pair; False: counted per prediction by
        :func:`~spbench.metrics.fragmentation`.
    note
        What the label means, for axis labels (``"the paper's B"``); empty if the label says it.
    """

    name: str
    label: str
    higher_is_better: bool
    decimals: int
    with_ec: bool = True
    per_pair: bool = True
    note: str = ""

    @property
    def arrow(self) -> str:
        """``"↑"`` if higher is better, else ``"↓"``."""
        return "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        """Table header: label and arrow (``"ASA ↑"``)."""
        return f"{self.label} {self.arrow}"

    @property
    def axis_label(self) -> str:
        """Figure axis label: label, note in parentheses, arrow (``"XC (excess components) ↓"``)."""
        note = f" ({self.note})" if self.note else ""
        return f"{self.label}{note} {self.arrow}"


METRICS: tuple[Metric, ...] = (
    Metric("asa", "ASA", True, 4),
    Metric("ue", "UE", False, 4),
    Metric("ue_np", "UE_np", False, 4),
    Metric("ue_levin", "UE_Levin", False, 4),
    Metric("oe", "OE", False, 4),
    Metric("co", "CO", True, 4),
    Metric("br", "BR", True, 4),
    Metric("bp", "BP", True, 4, note="the paper's B"),
    Metric("ev", "EV", True, 4),
    Metric("xc", "XC", False, 1, with_ec=False, per_pair=False, note="excess components"),
    Metric("stray", "Stray", False, 1, with_ec=False, per_pair=False, note="stray pixels"),
)
"""Every metric of a score file, in score-column order (``docs/protocol.md`` §4–§5)."""

_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> Metric:
    """Return the :class:`Metric` of score column ``name`` (``KeyError`` naming the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(_BY_NAME)}") from None


def metric_names(*, per_pair: bool | None = None) -> tuple[str, ...]:
    """Score columns of :data:`METRICS`, optionally only those (not) computed per pair."""
    return tuple(m.name for m in METRICS if per_pair is None or m.per_pair == per_pair)
