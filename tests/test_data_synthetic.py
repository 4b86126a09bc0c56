"""The embedded synthetic dataset and the prepared on-disk format."""

import numpy as np
import pytest

from spbench.data.prepared import cap_labels, load_split, read_manifest
from spbench.data.synthetic import generate_synthetic, synthesize_image
from spbench.io import CorruptFileError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    generate_synthetic(root, seed=3, n_train=3, n_val=2, n_test=3, height=64, width=96)
    return root


def test_generator_is_deterministic():
    a_img, a_gt = synthesize_image(7, 49, 65)
    b_img, b_gt = synthesize_image(7, 49, 65)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_gt, b_gt)
    c_img, _ = synthesize_image(8, 49, 65)
    assert not np.array_equal(a_img, c_img)


def test_annotations_differ_like_human_ones():
    _, gts = synthesize_image(11, 97, 145, n_annotations=5)
    assert gts.shape == (5, 97, 145)
    counts = [np.unique(g).size for g in gts]
    assert min(counts) >= 2
    assert len(set(counts)) > 1 or any(not np.array_equal(gts[0], g) for g in gts[1:])
    assert all(g.min() >= 1 for g in gts)  # raw ids are 1..K like BSDS


def test_load_split_max_images_decodes_a_prefix_in_id_order(synthetic):
    full = load_split(synthetic, "test")
    first = load_split(synthetic, "test", max_images=2)
    assert [s.image_id for s in first.samples] == [s.image_id for s in full.samples][:2]
    assert [s.image_id for s in full.samples] == sorted(s.image_id for s in full.samples)
    np.testing.assert_array_equal(first.samples[1].image, full.samples[1].image)


def test_splits_shapes_and_pairs(synthetic):
    manifest = read_manifest(synthetic)
    assert set(manifest["splits"]) == {"train", "val", "test"}
    train = load_split(synthetic, "train")
    test = load_split(synthetic, "test", with_raw=True)
    # train/val cropped top-left to height x width, test kept one pixel larger (BSDS's 321x481)
    assert {s.image.shape[:2] for s in train.samples} <= {(64, 96), (96, 64)}
    assert {s.image.shape[:2] for s in test.samples} == {(65, 97), (97, 65)}
    assert test.n_pairs == sum(s.n_annotations for s in test.samples)
    assert next(iter(test.pairs())) == (0, 0)
    for s in test.samples:
        assert s.annotations.shape[1:] == s.image.shape[:2]
        np.testing.assert_array_equal(
            s.annotations, np.stack([cap_labels(r) for r in s.raw_annotations])
        )
    assert manifest["splits"]["test"]["pairs"] == test.n_pairs


def test_cap_labels_follows_upstream_order():
    raw = np.arange(1, 61).reshape(6, 10)  # 60 ids
    capped = cap_labels(raw)
    assert capped[0, 0] == 0 and capped.flat[49] == 49
    assert (capped.flat[50:] == 0).all()  # ids 51.. merge into label 0 (raw id 1)


def test_corrupt_split_is_named(synthetic, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(synthetic, copy)
    data = (copy / "val.npz").read_bytes()
    (copy / "val.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"val\.npz"):
        load_split(copy, "val")
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_split(tmp_path / "nothing", "val")
