"""The prediction file format: what save_predictions writes, load_predictions reads back."""

from __future__ import annotations

import numpy as np
import pytest

from spbench.predictions import load_predictions, save_predictions


def test_prediction_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    noec = {i: rng.integers(0, 600, size=(7, 11), dtype=np.uint16) for i in ("b", "a")}
    ec = {i: labels // 2 for i, labels in noec.items()}
    path = save_predictions(tmp_path / "scale1.npz", {"scale": 1.0, "method": "scn"}, noec, ec)
    meta, noec_back, ec_back = load_predictions(path)
    assert meta == {"scale": 1.0, "method": "scn", "image_ids": ["b", "a"]}  # order kept
    for image_id in noec:
        assert np.array_equal(noec_back[image_id], noec[image_id])
        assert np.array_equal(ec_back[image_id], ec[image_id])
        assert noec_back[image_id].dtype == np.uint16
    assert [p.name for p in tmp_path.iterdir()] == ["scale1.npz"]  # no temporary file left


def test_prediction_file_needs_the_same_images_with_and_without_ec(tmp_path):
    labels = np.zeros((4, 4), dtype=np.uint16)
    with pytest.raises(ValueError, match="same image ids"):
        save_predictions(tmp_path / "x.npz", {}, {"a": labels}, {"b": labels})
    assert not (tmp_path / "x.npz").exists()


def test_a_folder_is_not_taken_for_a_corrupt_prediction_file(tmp_path):
    """A folder given for a prediction file is named as such, not called corrupt (the old
    advice was to delete it)."""
    with pytest.raises(IsADirectoryError, match="is a folder; give the prediction files"):
        load_predictions(tmp_path)


def test_a_destination_without_npz_suffix_gets_the_data(tmp_path):
    """NumPy appends ".npz" to a name without it: the data went to a stray temporary file and
    an empty file replaced the destination."""
    labels = {"a": np.arange(6, dtype=np.uint16).reshape(2, 3)}
    path = save_predictions(tmp_path / "pred_scale1", {"scale": 1.0}, labels, labels)
    meta, noec, _ = load_predictions(path)
    assert meta["image_ids"] == ["a"] and (noec["a"] == labels["a"]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred_scale1"]
