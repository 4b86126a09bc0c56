"""From score rows to per-scale curves and normalised AUCs (``docs/protocol.md`` §6 and §8).

The score Parquet written by ``spbench score`` holds one row per (run, scale, EC, image,
annotation). This module

1. reads and checks those files (:func:`load_scores`),
2. averages every metric over the (image, annotation) rows of each (run, EC, scale) — the curve
   point (K̄, v̄) with K̄ the mean *actual* number of superpixels (:func:`aggregate_curves`),
3. integrates each curve over [low, high] with :func:`spbench.metrics.normalized_auc`, one AUC per
   seed (:func:`compute_auc`), and
4. summarises the seeds as mean ± standard deviation (:func:`summarise_seeds`).

No torch is imported here.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spbench.catalogue import model_label
from spbench.errors import UserError
from spbench.io import CorruptFileError
from spbench.metrics import metric_names, normalized_auc

__all__ = [
    "AUC_METRICS",
    "DEFAULT_AUC_RANGE",
    "METRICS",
    "REQUIRED_COLUMNS",
    "RUN_ATTRIBUTES",
    "RUN_KEYS",
    "MissingColumnsError",
    "MixedProtocolError",
    "aggregate_curves",
    "compute_auc",
    "load_scores",
    "markdown_table",
    "model_label",
    "summarise_seeds",
    "validate_scores",
]

DEFAULT_AUC_RANGE: tuple[float, float] = (384.0, 1200.0)
"""Default AUC range in superpixels (``docs/protocol.md`` §8)."""

METRICS: tuple[str, ...] = metric_names()
"""Per-row metric columns of a score file (:data:`spbench.metrics.facts.METRICS`); each is averaged
over (image, annotation) rows."""

AUC_METRICS: tuple[str, ...] = (*METRICS, "xc_per_image", "stray_per_image")
"""Curve columns that get a normalised AUC (the per-image XC/Stray means included)."""

RUN_KEYS: tuple[str, ...] = ("dataset", "split", "method", "variant", "seed")
"""Columns that identify one trained run on one evaluation split."""

RUN_ATTRIBUTES: tuple[str, ...] = (
    "use_lap",
    "use_msd",
    "use_wr",
    "lambda_lap",
    "msd_mode",
    "weights",
    "train_steps",
    "budget",
    "gt_cap50",
    "max_annotations",
)
"""Run description columns; they must be constant within a run (:data:`RUN_KEYS`)."""

SAMPLE_COLUMNS: tuple[str, ...] = ("image_id", "annotation", "scale", "n_nominal", "ec")

REQUIRED_COLUMNS: tuple[str, ...] = (
    *RUN_KEYS,
    *RUN_ATTRIBUTES,
    *SAMPLE_COLUMNS,
    "n_superpixels",
    *METRICS,
)
"""Every column a score file must have."""

CURVE_KEYS: tuple[str, ...] = (*RUN_KEYS, "ec", "scale")
AUC_KEYS: tuple[str, ...] = (*RUN_KEYS, "ec")
SUMMARY_KEYS: tuple[str, ...] = ("dataset", "split", "method", "variant", "ec")


class MissingColumnsError(UserError, ValueError):
    """A score table lacks required columns; the message names the file and the columns."""


class ScoreFilesError(UserError, ValueError):
    """Score files that cannot make one table (none, no rows, a sample twice, a run whose
    rows disagree); the message names the files or rows and what to do."""


def validate_scores(frame: pd.DataFrame, source: str | os.PathLike[str] = "<frame>") -> None:
    """Check that ``frame`` has every column of :data:`REQUIRED_COLUMNS`.

    Parameters
    ----------
    frame
        A score table.
    source
        Name of the file it came from, used in the error message.

    Raises
    ------
    MissingColumnsError
        If a column is missing; the message names ``source`` and the missing columns.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{source}: score table lacks required column(s) {', '.join(missing)}; "
            "re-create it with `spbench score`"
        )


def load_scores(score_files: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read and concatenate score Parquet files, checking their columns.

    Parameters
    ----------
    score_files
        Paths of Parquet files written by ``spbench score``.

    Returns
    -------
    pandas.DataFrame
        All rows, with a ``source_file`` column naming the file of each row.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    CorruptFileError
        If a file is not a readable Parquet file (truncated, damaged, another format).
    MissingColumnsError
        If a file lacks a required column (the message names the file).
    ScoreFilesError
        If no file is given or the same sample occurs twice (e.g. a file passed twice).
    """
    score_files = [Path(p) for p in score_files]
    frames = []
    for path in score_files:
        if not path.is_file():
            raise FileNotFoundError(f"score file {path} does not exist")
        frame = _read_score_file(path)
        if "budget" not in frame:  # score files written before train.budget existed
            frame["budget"] = 1.0
        validate_scores(frame, path)
        frames.append(frame.assign(source_file=str(path)))
    if not frames:
        raise ScoreFilesError("no score files given")
    scores = pd.concat(frames, ignore_index=True)
    if scores.empty:
        raise ScoreFilesError(
            "the score files hold no rows: " + ", ".join(str(p) for p in score_files)
        )
    _check_duplicates(scores)
    return scores


def _read_score_file(path: Path) -> pd.DataFrame:
    """Read one score Parquet file; a damaged one raises :class:`CorruptFileError` naming it."""
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, ValueError) as err:  # ArrowInvalid is also a ValueError
        raise CorruptFileError(
            f"{path} is not a readable score file ({err}); delete it and re-run its scoring "
            "job (`spbench score`, or the workflow's score rule)"
        ) from None


def _check_duplicates(scores: pd.DataFrame) -> None:
    keys = [*CURVE_KEYS, "image_id", "annotation"]
    dup = scores.duplicated(subset=keys, keep=False)
    if dup.any():
        first = scores.loc[dup, [*keys, *(["source_file"] if "source_file" in scores else [])]]
        raise ScoreFilesError(
            f"{int(dup.sum())} score rows share a (run, EC, scale, image, annotation) key, e.g.\n"
            f"{first.head(4).to_string(index=False)}\n"
            "was a score file passed twice, or do two runs share method/variant/seed?"
        )


def _check_run_attributes(scores: pd.DataFrame) -> None:
    counts = scores.groupby(list(RUN_KEYS), dropna=False)[list(RUN_ATTRIBUTES)].nunique(
        dropna=False
    )
    bad = counts[(counts > 1).any(axis=1)]
    if not bad.empty:
        run = dict(zip(RUN_KEYS, bad.index[0], strict=True))
        cols = [c for c in RUN_ATTRIBUTES if bad.iloc[0][c] > 1]
        raise ScoreFilesError(
            f"run {run} mixes rows with different {', '.join(cols)}; "
            "give different runs different seeds or variants"
        )


def aggregate_curves(scores: pd.DataFrame) -> pd.DataFrame:
    """Average the score rows into one curve point per (run, EC, scale).

    Parameters
    ----------
    scores
        Score rows (:data:`REQUIRED_COLUMNS`), e.g. from :func:`load_scores`.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, seed, ec, scale), sorted, with

        - the run attributes (:data:`RUN_ATTRIBUTES`), ``model`` (table label) and ``n_nominal``;
        - ``k_mean``: K̄, the mean actual number of superpixels over the rows (the curve's x);
          ``k_std``, its standard deviation over rows;
        - one column per metric of :data:`METRICS`: the plain mean over all (image, annotation)
          rows (``docs/protocol.md`` §6; XC and Stray count per prediction, repeated per
          annotation);
        - ``xc_per_image``, ``stray_per_image``: XC and Stray averaged first within each image
          and then over images (each image weighs once);
        - ``n_rows`` and ``n_images``.
    """
    validate_scores(scores)
    if scores.empty:
        raise ValueError("no score rows to aggregate")
    _check_duplicates(scores)
    _check_run_attributes(scores)
    nan_counts = scores[["n_superpixels", *METRICS]].isna().sum()
    if nan_counts.any():
        warnings.warn(
            "score rows hold NaN (left out of the means): "
            + ", ".join(f"{c} {n}" for c, n in nan_counts.items() if n),
            RuntimeWarning,
            stacklevel=2,
        )
    keys = list(CURVE_KEYS)
    grouped = scores.groupby(keys, sort=True, dropna=False)
    curves = grouped[list(METRICS)].mean()
    curves["k_mean"] = grouped["n_superpixels"].mean()
    curves["k_std"] = grouped["n_superpixels"].std(ddof=0)
    curves["n_rows"] = grouped.size()
    curves["n_images"] = grouped["image_id"].nunique()
    nominal = grouped["n_nominal"].agg(["min", "max"])
    if (nominal["min"] != nominal["max"]).any():
        raise ValueError("n_nominal differs between rows of one (run, EC, scale)")
    curves["n_nominal"] = nominal["min"]
    per_image = scores.groupby([*keys, "image_id"], sort=True, dropna=False)[["xc", "stray"]].mean()
    per_image = per_image.groupby(level=keys, dropna=False).mean()
    curves["xc_per_image"] = per_image["xc"]
    curves["stray_per_image"] = per_image["stray"]
    attrs = scores.groupby(list(RUN_KEYS), sort=True, dropna=False)[list(RUN_ATTRIBUTES)].first()
    curves = curves.reset_index().merge(attrs.reset_index(), on=list(RUN_KEYS), how="left")
    curves.insert(
        0,
        "model",
        [model_label(m, v) for m, v in zip(curves["method"], curves["variant"], strict=True)],
    )
    lead = ["model", *keys, "n_nominal", "k_mean", "k_std", "n_rows", "n_images"]
    rest = [*METRICS, "xc_per_image", "stray_per_image", *RUN_ATTRIBUTES]
    return curves[lead + rest].reset_index(drop=True)


def _auc(k: np.ndarray, v: np.ndarray, low: float, high: float) -> tuple[float, bool]:
    # A scale where the metric is undefined for every pair leaves a gap in the curve: bridging
    # it would print an AUC nobody measured, so the AUC is missing (NaN) instead; likewise a
    # curve whose points all sit at one K̄ (SLIC's floored grid at its top scales) has no slope.
    finite = np.isfinite(k).all() and np.isfinite(v).all()
    if not finite or np.unique(k).size < 2:
        return float("nan"), False
    order = np.argsort(k, kind="stable")
    result = normalized_auc(k[order], v[order], low=low, high=high)
    return float(result.value), bool(result.extrapolated)


def compute_auc(
    curves: pd.DataFrame,
    *,
    auc_range: tuple[float, float] = DEFAULT_AUC_RANGE,
    metrics: Sequence[str] = AUC_METRICS,
    k_column: str = "k_mean",
) -> pd.DataFrame:
    """Normalised AUC of every metric, per (run, EC), against the actual K̄ (by default).

    Parameters
    ----------
    curves
        Output of :func:`aggregate_curves`.
    auc_range
        ``(low, high)`` in superpixels; the AUC is (1/(high − low))·∫ v(K) dK over that range.
    metrics
        Curve columns to integrate.
    k_column
        The curve column used as K: ``"k_mean"`` (the actual K̄, the protocol's primary x-axis)
        or ``"n_nominal"`` (the nominal count, a secondary view; :mod:`spbench.report.secondary`).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, seed, ec) with the run attributes, ``model``,
        ``auc_low``, ``auc_high``, ``n_scales``, ``n_images`` and ``n_pairs`` (test images and
        (image, annotation) pairs scored, at the scale with most), ``k_min``/``k_max`` (the K̄
        range measured; of ``k_column``),
        one column per metric (the normalised AUC, in the metric's units), ``<metric>_extrapolated``
        per metric, and ``auc_extrapolated`` (any metric extrapolated at an unbracketed end).
    """
    low, high = (float(x) for x in auc_range)
    if not high > low:
        raise ValueError(f"auc_range must have high > low, got {auc_range}")
    rows = []
    for key, group in curves.groupby(list(AUC_KEYS), sort=True, dropna=False):
        group = group.sort_values(k_column, kind="stable")
        k = group[k_column].to_numpy(dtype=float)
        row: dict[str, object] = dict(zip(AUC_KEYS, key, strict=True))
        row["model"] = group["model"].iloc[0]
        for attr in RUN_ATTRIBUTES:
            row[attr] = group[attr].iloc[0]
        row.update(
            auc_low=low,
            auc_high=high,
            n_scales=len(group),
            n_images=int(group["n_images"].max()),
            n_pairs=int(group["n_rows"].max()),
            k_min=float(np.nanmin(k)),
            k_max=float(np.nanmax(k)),
        )
        flags = []
        for metric in metrics:
            value, extrapolated = _auc(k, group[metric].to_numpy(dtype=float), low, high)
            row[metric] = value
            row[f"{metric}_extrapolated"] = extrapolated
            flags.append(extrapolated)
        row["auc_extrapolated"] = any(flags)
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_seeds(auc: pd.DataFrame, *, metrics: Sequence[str] = AUC_METRICS) -> pd.DataFrame:
    """Mean and standard deviation of the per-seed AUCs of each (model, EC).

    Parameters
    ----------
    auc
        Output of :func:`compute_auc`.
    metrics
        AUC columns to summarise.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, split, method, variant, ec) with ``model``, ``n_seeds``, ``seeds``
        (comma-separated), ``<metric>`` (mean over seeds), ``<metric>_std`` (sample standard
        deviation, ddof 1; NaN for one seed), ``<metric>_extrapolated`` (any seed extrapolated),
        ``auc_extrapolated``, ``k_min``/``k_max`` (the K̄ range covered by every seed: the largest
        per-seed minimum and smallest per-seed maximum), ``auc_low``/``auc_high``, ``n_images``
        and ``n_pairs`` (the most of any seed) and the
        run attributes that are constant over seeds (``weights``, ``msd_mode`` ...; joined with
        ``"; "`` if they differ).
    """
    rows = []
    for key, group in auc.groupby(list(SUMMARY_KEYS), sort=True, dropna=False):
        _check_same_protocol(group)
        row: dict[str, object] = dict(zip(SUMMARY_KEYS, key, strict=True))
        row["model"] = group["model"].iloc[0]
        row["n_seeds"] = int(group["seed"].nunique())
        row["seeds"] = ",".join(str(s) for s in sorted(group["seed"].unique()))
        for metric in metrics:
            values = group[metric].to_numpy(dtype=float)
            row[metric] = float(np.mean(values))
            row[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
            row[f"{metric}_extrapolated"] = bool(group[f"{metric}_extrapolated"].any())
        row["auc_extrapolated"] = bool(group["auc_extrapolated"].any())
        row["k_min"] = float(group["k_min"].max())
        row["k_max"] = float(group["k_max"].min())
        row["auc_low"] = float(group["auc_low"].iloc[0])
        row["auc_high"] = float(group["auc_high"].iloc[0])
        row["n_images"] = int(group["n_images"].max())
        row["n_pairs"] = int(group["n_pairs"].max())
        for attr in RUN_ATTRIBUTES:
            uniq = list(dict.fromkeys(group[attr].tolist()))
            row[attr] = uniq[0] if len(uniq) == 1 else "; ".join(map(str, uniq))
        rows.append(row)
    summary = pd.DataFrame(rows)
    for attr in RUN_ATTRIBUTES:  # seeds that differ in an attribute: the column becomes text
        if attr in summary and summary[attr].map(type).nunique() > 1:
            summary[attr] = summary[attr].astype(str)
    return summary


#: What a seed was scored on; seeds of one table row must agree on it (docs/protocol.md §1.3):
#: a seed with a scale fewer (its prediction or scoring missing there) has another curve.
PROTOCOL_COLUMNS: tuple[str, ...] = (
    "gt_cap50",
    "max_annotations",
    "n_images",
    "n_pairs",
    "n_scales",
)


class MixedProtocolError(UserError, ValueError):
    """The seeds of one table row were scored on different protocols (GT cap, annotations,
    images); the message names the model and what differs."""


def _check_same_protocol(seeds: pd.DataFrame) -> None:
    """Raise :class:`MixedProtocolError` if the per-seed AUC rows ``seeds`` differ in a
    :data:`PROTOCOL_COLUMNS` value: their mean would be a number of no protocol."""
    columns = [c for c in PROTOCOL_COLUMNS if c in seeds]
    differ = [c for c in columns if seeds[c].nunique(dropna=False) > 1]
    if differ:
        shown = seeds[["seed", *differ]].to_string(index=False)
        raise MixedProtocolError(
            f"{seeds['model'].iloc[0]} (EC {seeds['ec'].iloc[0]}): its seeds were scored "
            f"with different {', '.join(differ)}:\n{shown}\nscore them alike (the same "
            "evaluate settings) or report them separately"
        )


def format_number(value: object, decimals: int, *, sign: bool = False) -> str:
    """Format a table cell: ``decimals`` digits (with a sign if asked), "—" for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):{'+' if sign else ''}.{decimals}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Return the lines of a GitHub Markdown table: header, separator (``|---|``), one line per row.

    Parameters
    ----------
    header : Sequence[str]
        Column titles.
    rows : Iterable[Sequence[str]]
        Cells of each body row, already formatted as text.

    Returns
    -------
    list[str]
        ``"| a | b |"``, ``"|---|---|"``, then one ``"| x | y |"`` line per row; no
        trailing newlines.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines
