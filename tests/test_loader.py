"""Training and validation batches (``spbench.data.loader``) against hand-made crops."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from spbench.data.loader import RGB_MEAN, PairBank, normalize
from spbench.data.prepared import load_split
from spbench.data.synthetic import generate_synthetic


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("loader") / "data"
    generate_synthetic(out, seed=0, n_train=3, n_val=1, n_test=1, height=48, width=64)
    return out


@pytest.fixture(scope="module")
def bank(root: Path) -> PairBank:
    return PairBank([load_split(root, "train")], "cpu", min_size=32)


def test_scn_batches_are_the_drawn_crops_and_flips(bank: PairBank) -> None:
    """Each sample is the crop and flips its draws name, of the uint8 image, normalised."""
    generator = torch.Generator().manual_seed(5)
    replay = torch.Generator().manual_seed(5)
    batches = bank.random_batches(3, 32, generator, "scn")
    for _ in range(2):
        batch = next(batches)
        picks = torch.randint(len(bank.pairs), (3,), generator=replay).tolist()
        uniforms = torch.rand(3, 5, generator=replay).tolist()
        for i, (pick, (u_y, u_x, u_v, u_h, _)) in enumerate(zip(picks, uniforms, strict=True)):
            index, k = bank.pairs[pick]
            h, w = bank.labels[index].shape[1:]
            top, left = int(u_y * (h - 31)), int(u_x * (w - 31))
            image = bank.images[index][:, top : top + 32, left : left + 32]
            labels = bank.labels[index][k][top : top + 32, left : left + 32]
            dims = [d for d, u in ((-2, u_v), (-1, u_h)) if u < 0.5]
            if dims:
                image, labels = image.flip(dims), labels.flip(dims)
            assert torch.equal(batch.images[i], normalize(image[None])[0])
            assert torch.equal(batch.labels[i], labels.long())
    assert batch.images.dtype == torch.float32 and batch.labels.dtype == torch.int64
    assert batch.edges is None


def _nearest_source(n_out: int, n_in: int) -> np.ndarray:
    """PyTorch's legacy nearest index min(⌊fl32(dst·fl32(in/out))⌋, in − 1).

    See docs/protocol.md §2.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, n_in - 1)


def test_rescaled_batches_keep_the_crop_and_the_labels(bank: PairBank) -> None:
    """Each sample is the crop and flips its draws name, of the image rescaled by the drawn factor.

    Expected values come from OpenCV's bicubic resize of the uint8 image (CDS's upstream
    augmentation) and the nearest-neighbour index formula; torch's bicubic replicates the border
    where OpenCV reflects it, so image pixels whose 4×4 kernel reaches the border are skipped.
    """
    generator = torch.Generator().manual_seed(1)
    replay = torch.Generator().manual_seed(1)
    batch = next(bank.random_batches(4, 32, generator, "rescale_bicubic"))
    picks = torch.randint(len(bank.pairs), (4,), generator=replay).tolist()
    uniforms = torch.rand(4, 5, generator=replay).tolist()
    factors = set()
    for i, (pick, (u_y, u_x, u_v, u_h, u_s)) in enumerate(zip(picks, uniforms, strict=True)):
        index, k = bank.pairs[pick]
        factor = (7 + min(int(u_s * 8), 7)) / 10  # f ∈ {0.7, …, 1.4}
        factors.add(factor)
        source = bank.images[index].permute(1, 2, 0).numpy()
        h, w = round(source.shape[0] * factor), round(source.shape[1] * factor)
        image = cv2.resize(source, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        labels = bank.labels[index][k].numpy()
        labels = labels[
            np.ix_(_nearest_source(h, labels.shape[0]), _nearest_source(w, labels.shape[1]))
        ]
        inner = np.zeros((h, w), bool)
        margin = math.ceil(2 * factor) + 1
        inner[margin:-margin, margin:-margin] = True
        top, left = int(u_y * (h - 31)), int(u_x * (w - 31))
        window = (slice(top, top + 32), slice(left, left + 32))
        image, labels, inner = image[window], labels[window], inner[window]
        for axis, u in ((0, u_v), (1, u_h)):
            if u < 0.5:
                image, labels, inner = (np.flip(a, axis) for a in (image, labels, inner))
        np.testing.assert_array_equal(batch.labels[i].numpy(), labels)
        got = (
            batch.images[i].permute(1, 2, 0).numpy()
            - normalize(torch.zeros(1, 3, 1, 1))[0, :, 0, 0].numpy()
        )
        np.testing.assert_allclose(got[inner] * 255, image[inner], atol=1.0 + 1e-3)
    assert len(factors) > 1  # the draws exercise more than one factor


def test_same_seed_same_batches(bank: PairBank) -> None:
    def first(seed: int):
        return next(bank.random_batches(2, 32, torch.Generator().manual_seed(seed)))

    assert torch.equal(first(3).images, first(3).images)
    assert not torch.equal(first(3).images, first(4).images)


def test_center_batches(bank: PairBank) -> None:
    batches = list(bank.center_batches(2, 32))
    assert sum(len(b.images) for b in batches) == len(bank)
    index, k = bank.pairs[0]
    h, w = bank.labels[index].shape[1:]
    top, left = (h - 32) // 2, (w - 32) // 2
    assert torch.equal(
        batches[0].labels[0], bank.labels[index][k][top : top + 32, left : left + 32]
    )
    assert len(list(bank.center_batches(2, 32, max_batches=1))) == 1


def test_small_images_name_the_config_keys(root: Path) -> None:
    with pytest.raises(ValueError, match=r"train\.crop / train\.val_crop"):
        PairBank([load_split(root, "train")], "cpu", min_size=1000)


def test_normalize_subtracts_the_mean() -> None:
    pixels = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    expected = torch.tensor([1 - m for m in RGB_MEAN]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalize(pixels), expected)
