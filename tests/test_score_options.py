"""Scoring options (``spbench.score``): which ground truth each row is scored against
(``gt_cap50``), how many annotations (``max_annotations``), and ``ec_relabelled``.

One 8×8 test image with two annotations; the first has 60 raw segments, so the 50-label cap
(docs/protocol.md §1.4: raw id r ≤ 50 becomes r − 1, every later id joins raw id 1, i.e. label 0)
changes it. The metric values themselves are checked against the reference tool elsewhere
(``tests/metrics/test_metrics_reference_vectors.py``); here the expected rows are the metrics of
the ground truth each option must select, built by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spbench.data import prepared
from spbench.metrics import score_pair
from spbench.score import score_predictions

H = W = 8
RAW = np.stack(
    [
        np.arange(1, H * W + 1).reshape(H, W).clip(max=60),  # 60 segments, ids 51..60 over cap
        np.repeat([1, 2], H * W // 2).reshape(H, W),  # top / bottom halves
    ]
).astype(np.uint16)
# the cap by hand: ids 1..50 -> 0..49, ids 51..60 -> 0
CAPPED = np.where(RAW <= 50, RAW.astype(np.int64) - 1, 0).astype(np.uint8)
# prediction: left / right halves, with one stray pixel of the left label on the right; its EC
# version merges the stray pixel into the right segment
NOEC = np.repeat([[0, 1]], H, axis=0).repeat(W // 2, axis=1)
NOEC[5, 6] = 0
EC = np.repeat([[0, 1]], H, axis=0).repeat(W // 2, axis=1)
IMAGE = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("score_options")
    data = root / "data"
    split = prepared.write_split(data, "test", [("img", prepared.encode_png(IMAGE), CAPPED, RAW)])
    prepared.write_manifest(data, "synthetic", {"test": split})
    meta = {
        "method": "scn",
        "variant": "lap",
        "seed": 0,
        "loss_config": {
            "use_lap": True,
            "use_msd": True,
            "use_wr": True,
            "lambda_lap": 360.0,
            "msd_mode": "per_image",
        },
        "weights": "trained here",
        "train_steps": 1,
        "dataset": "synthetic",
        "split": "test",
        "scale": 1.0,
        "n_nominal": 4,
        "image_ids": ["img"],
    }
    predictions = root / "pred.npz"
    np.savez_compressed(
        predictions,
        **{"noec/img": NOEC.astype(np.uint16), "ec/img": EC.astype(np.uint16)},
        meta=np.array(json.dumps(meta)),
    )
    return data, predictions


def _score(files, tmp_path, **settings):
    data, predictions = files
    return score_predictions([predictions], data, tmp_path / "s.parquet", settings=settings)


@pytest.mark.parametrize("cap", [True, False], ids=["gt_cap50", "raw_gt"])
def test_rows_are_scored_against_the_selected_ground_truth(files, tmp_path, cap):
    frame = _score(files, tmp_path, gt_cap50=cap, max_annotations=0)
    assert len(frame) == 2 * 2  # EC and no EC × two annotations
    assert set(frame["gt_cap50"]) == {cap} and set(frame["max_annotations"]) == {0}
    # the benchmark's GT files hold capped labels + 1 (only ue_levin notices); raw ids as given
    gts = [g.astype(np.int64) + 1 for g in CAPPED] if cap else [g.astype(np.int64) for g in RAW]
    for row in frame.itertuples():
        labels = EC if row.ec else NOEC
        expected = score_pair(labels, gts[row.annotation], image=IMAGE)
        for key, value in expected.items():
            assert getattr(row, key) == pytest.approx(value, rel=1e-12), (key, row.ec)
    capped, raw = (
        _score(files, tmp_path, gt_cap50=c, max_annotations=0).query("annotation == 0")
        for c in (True, False)
    )
    assert not np.allclose(capped["br"], raw["br"])  # the cap matters for this annotation


def test_max_annotations_keeps_the_first_ones(files, tmp_path):
    frame = _score(files, tmp_path, gt_cap50=True, max_annotations=1)
    assert sorted(frame["annotation"]) == [0, 0]
    assert set(frame["max_annotations"]) == {1}
    everything = _score(files, tmp_path, gt_cap50=True, max_annotations=0)
    first = everything[everything["annotation"] == 0].reset_index(drop=True)
    metrics = ["asa", "br", "bp", "ue_np", "co"]
    assert np.array_equal(frame[metrics].to_numpy(), first[metrics].to_numpy())


def test_ec_relabelled_is_the_share_of_pixels_ec_moves(files, tmp_path):
    frame = _score(files, tmp_path, gt_cap50=True, max_annotations=0)
    # one stray pixel of 64 changes segment; both EC settings' rows carry the value
    assert frame["ec_relabelled"].tolist() == [1 / 64] * 4
    assert frame.loc[~frame["ec"], ["xc", "stray"]].drop_duplicates().values.tolist() == [[1, 1]]
    assert frame.loc[frame["ec"], ["xc", "stray"]].drop_duplicates().values.tolist() == [[0, 0]]


def test_a_prediction_of_another_size_is_named(files, tmp_path):
    """Labels of another shape fail with the file, the image and both shapes, before any
    metric compares them (ASA of EC against no-EC once failed first, with a generic message)."""
    data, predictions = files
    wrong = tmp_path / "wrong.npz"
    with np.load(predictions) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["noec/img"] = arrays["noec/img"][:, :6]
    np.savez_compressed(wrong, **arrays)
    with pytest.raises(ValueError, match=r"wrong\.npz: img labels are \(8, 6\), ground truth"):
        score_predictions([wrong], data, tmp_path / "s.parquet", settings={"gt_cap50": True})


def test_a_prediction_of_another_dataset_is_a_user_error(files, tmp_path):
    """An image the split lacks was a KeyError (a traceback); every mismatch between the
    prediction and the dataset is now a one-line UserError."""
    from spbench.errors import UserError
    from spbench.score import PredictionMismatchError

    data, predictions = files
    other = tmp_path / "other.npz"
    with np.load(predictions) as npz:
        arrays = {key.replace("/img", "/nope"): npz[key] for key in npz.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "image_ids": ["nope"]}))
    np.savez_compressed(other, **arrays)
    with pytest.raises(PredictionMismatchError, match=r"other\.npz: image nope is not in .*test"):
        score_predictions([other], data, tmp_path / "s.parquet", settings={"gt_cap50": True})
    assert issubclass(PredictionMismatchError, UserError)
