"""Training and validation batches (``spbench.data.loader``) against hand-made crops."""

from __future__ import annotations

from pathlib import Path

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


def test_rescaled_batches_keep_the_crop_and_the_labels(bank: PairBank) -> None:
    batch = next(bank.random_batches(4, 32, torch.Generator().manual_seed(1), "rescale_bicubic"))
    assert batch.images.shape == (4, 3, 32, 32) and batch.labels.shape == (4, 32, 32)
    present = set(torch.cat([lab.unique() for lab in bank.labels]).tolist())
    assert set(batch.labels.unique().tolist()) <= present  # nearest-neighbour labels
    low, high = normalize(torch.tensor([0, 255], dtype=torch.uint8).expand(1, 3, 1, 2)).aminmax()
    assert low <= batch.images.min() and batch.images.max() <= high


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
