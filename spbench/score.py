"""Scoring stage: prediction files and ground truth in, one long-format Parquet table out.

One row per (run, scale, EC setting, image, annotation): every (image, annotation) pair is a
sample (``docs/protocol.md`` §6). Columns:

- run: ``method, variant, seed, use_lap, use_msd, use_wr, lambda_lap, msd_mode, weights,
  train_steps, budget`` (the training budget's fraction, 1 for a full run)
- sample: ``dataset, split, image_id, annotation, scale, n_nominal, ec``
- aggregation options: ``gt_cap50``, ``max_annotations`` (0: all annotations)
- metrics: ``n_superpixels, asa, ue, ue_np, ue_levin, oe, co, br, bp, ev`` (per pair),
  ``xc, stray`` (per prediction, repeated on each annotation's row) and ``ec_relabelled``
  (per image and scale, on both EC settings' rows): the fraction of pixels EC moves to another
  segment, ``1 − ASA(EC map, no-EC map)``: a pixel counts when its no-EC label is not the
  majority no-EC label of its EC segment (merged fragments; splits alone move nothing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from spbench.data.prepared import Sample, load_split
from spbench.errors import UserError
from spbench.io import atomic_path
from spbench.metrics import LabelMapStats, PredictionScorer, asa, fragmentation
from spbench.predictions import load_predictions


class PredictionMismatchError(UserError, ValueError):
    """A prediction file that does not fit the dataset it is scored against (an image it lacks,
    another image size) or settings the dataset cannot serve."""


def score_predictions(
    prediction_files: Sequence[str | os.PathLike[str]],
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    settings: dict,
) -> pd.DataFrame:
    """Score prediction files against the ground truth and write the rows as Parquet.

    Parameters
    ----------
    prediction_files
        Files written by :func:`spbench.predict.predict` (any runs and scales).
    data_root
        Prepared dataset folder holding the ground truth of the predicted split.
    out
        Parquet file to write (atomically).
    settings
        The ``score`` config section: ``gt_cap50`` (evaluate against the 50-capped ground truth,
        the paper's protocol) and ``max_annotations`` (5 emulates the reference CLI).

    Returns
    -------
    pandas.DataFrame
        The rows written.

    Raises
    ------
    UserError
        If two files (or one given twice) hold the same run's image at the same scale: the
        rows would be duplicated.
    PredictionMismatchError
        If a file names an image the split lacks, or its label maps are not the ground truth's
        size, or ``gt_cap50`` is false on a dataset prepared without raw annotations.
    """
    rows = []
    splits = {}
    seen: dict[tuple, str | os.PathLike[str]] = {}
    for path in prediction_files:
        meta, noec, ec = load_predictions(path)
        if meta["split"] not in splits:
            split = load_split(data_root, meta["split"], with_raw=not settings["gt_cap50"])
            splits[meta["split"]] = {s.image_id: s for s in split.samples}
        samples = splits[meta["split"]]
        run = _run_columns(meta, settings)
        _refuse_repeats(seen, run, meta["image_ids"], path)
        for image_id in meta["image_ids"]:
            if image_id not in samples:
                raise PredictionMismatchError(
                    f"{path}: image {image_id} is not in {data_root} ({meta['split']} split); "
                    "score the predictions against the dataset they were made from"
                )
            labels = {True: ec[image_id], False: noec[image_id]}
            image_rows = _image_rows(samples[image_id], labels, settings, data_root, path)
            rows += [{**run, **row} for row in image_rows]
    frame = pd.DataFrame(rows)
    frame["n_superpixels"] = frame["n_superpixels"].astype("int64")
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False)
    return frame


def _refuse_repeats(
    seen: dict[tuple, str | os.PathLike[str]],
    run: dict,
    image_ids: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """Record the (run, scale, image) samples of ``path`` in ``seen``; raise
    :class:`~spbench.errors.UserError` for one an earlier file already gave."""
    for image_id in image_ids:
        key = (run["method"], run["variant"], run["seed"], run["scale"], image_id)
        if key in seen:
            raise UserError(
                f"{path}: image {image_id} of {'/'.join(map(str, key[:3]))} at scale "
                f"{key[3]:g} is also in {seen[key]}; give each prediction file once"
            )
        seen[key] = path


def _run_columns(meta: dict, settings: dict) -> dict:
    """Return the columns shared by every row of one prediction file: the run and the scale."""
    loss = meta["loss_config"]
    return {
        "method": meta["method"],
        "variant": meta["variant"],
        "seed": int(meta["seed"]),
        "use_lap": bool(loss["use_lap"]),
        "use_msd": bool(loss["use_msd"]),
        "use_wr": bool(loss["use_wr"]),
        "lambda_lap": float(loss["lambda_lap"]),
        "msd_mode": loss["msd_mode"],
        "weights": meta["weights"],
        "train_steps": int(meta["train_steps"]),
        "budget": float(meta.get("budget", 1)),
        "dataset": meta["dataset"],
        "split": meta["split"],
        "scale": float(meta["scale"]),
        "n_nominal": int(meta["n_nominal"]),
        "gt_cap50": bool(settings["gt_cap50"]),
        "max_annotations": int(settings.get("max_annotations") or 0),
    }


def _image_rows(
    sample: Sample,
    labels: dict[bool, np.ndarray],
    settings: dict,
    data_root: str | os.PathLike[str],
    path: str | os.PathLike[str],
) -> list[dict]:
    """Return one image's rows: every annotation, with EC (``labels[True]``) and without.

    ``path`` and ``data_root`` only name the files in the errors.
    """
    gts = sample.annotations if settings["gt_cap50"] else sample.raw_annotations
    if gts is None:
        raise PredictionMismatchError(
            f"{data_root} has no raw annotations; set score.gt_cap50: true"
        )
    gts = gts[: settings.get("max_annotations") or None]
    # GT as the benchmark reads it (capped labels are stored + 1 in its CSVs); only
    # ue_levin, which counts max label + 1 GT segments, notices the offset.
    offset = 1 if settings["gt_cap50"] else 0
    for is_ec in (True, False):
        if labels[is_ec].shape != gts.shape[1:]:
            raise PredictionMismatchError(
                f"{path}: {sample.image_id} labels are {labels[is_ec].shape}, ground truth "
                f"{gts.shape[1:]}; the prediction does not belong to this dataset"
            )
    gt_stats = [LabelMapStats(g.astype("int64") + offset) for g in gts]
    ec_relabelled = 1.0 - asa(labels[True], labels[False])
    rows = []
    for is_ec in (True, False):
        xc, stray = fragmentation(labels[is_ec])
        scorer = PredictionScorer(labels[is_ec], image=sample.image)
        fragments = {"xc": xc, "stray": stray, "ec_relabelled": ec_relabelled}
        rows += [
            {"image_id": sample.image_id, "annotation": k, "ec": is_ec}
            | scorer.score(stats)
            | fragments
            for k, stats in enumerate(gt_stats)
        ]
    return rows
