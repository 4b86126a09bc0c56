"""Torch-side data: normalisation, training batches (random crops and flips) and validation crops.

The whole training set is held on the training device as ``uint8`` tensors, and crops and flips
are tensor slicing on that device, so the input pipeline costs a few small kernels per step and no
host-to-device copies (``protocol.md`` §1.6–1.7; DLM's SCN augmentation: random crop, then
vertical and horizontal flips with p = 0.5, then normalisation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from spbench.data.prepared import PreparedSplit

#: Per-channel RGB mean subtracted after dividing by 255 (protocol.md §1.6; std is 1).
RGB_MEAN = (0.411, 0.432, 0.45)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Normalise ``uint8`` RGB images ``[B, 3, H, W]`` to float: ``x / 255 − mean`` (std 1).

    Returns
    -------
    torch.Tensor
        ``float32`` tensor of the same shape, roughly in [−0.45, 0.59].
    """
    mean = torch.tensor(RGB_MEAN, device=images.device, dtype=torch.float32).view(1, 3, 1, 1)
    return images.to(torch.float32) / 255.0 - mean


class PairBank:
    """Every (image, annotation) pair of one or more splits, as tensors on one device.

    Parameters
    ----------
    splits
        Prepared splits whose pairs become samples (DLM's tv stage: train and val).
    device
        Where the tensors live.
    min_size
        Smallest allowed image side; a smaller image raises a ``ValueError`` naming it and the
        ``train.crop`` / ``train.val_crop`` config keys.
    """

    def __init__(
        self, splits: Sequence[PreparedSplit], device: torch.device | str, min_size: int = 0
    ) -> None:
        self.images: list[torch.Tensor] = []  # one [3, H, W] uint8 per image
        self.labels: list[torch.Tensor] = []  # one [A, H, W] uint8 per image
        self.pairs: list[tuple[int, int]] = []
        for split in splits:
            for sample in split.samples:
                h, w = sample.annotations.shape[1:]
                if min(h, w) < min_size:
                    raise ValueError(
                        f"{split.dataset}/{split.split}/{sample.image_id} is {h}×{w}, smaller than "
                        f"the {min_size}-px crop; lower train.crop / train.val_crop in the config"
                    )
                index = len(self.images)
                image = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1)))
                self.images.append(image.to(device))
                self.labels.append(torch.from_numpy(sample.annotations).to(device))
                self.pairs.extend((index, k) for k in range(sample.n_annotations))
        if not self.pairs:
            raise ValueError("no (image, annotation) pairs to train on")
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.pairs)

    def random_batches(
        self, batch_size: int, crop: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield training batches forever: random pairs, random crops, random flips.

        Randomness comes only from ``generator`` (a CPU generator), so a seeded run is
        reproducible and its state can be checkpointed.

        Yields
        ------
        images : torch.Tensor
            ``[B, 3, crop, crop]`` normalised float32.
        labels : torch.Tensor
            ``[B, crop, crop]`` int64 labels 0..49.
        """
        while True:
            picks = torch.randint(len(self.pairs), (batch_size,), generator=generator).tolist()
            uniforms = torch.rand(batch_size, 4, generator=generator).tolist()
            images, labels = [], []
            for pick, (u_y, u_x, u_vflip, u_hflip) in zip(picks, uniforms, strict=True):
                index, k = self.pairs[pick]
                image, label = self.images[index], self.labels[index][k]
                h, w = label.shape
                top = int(u_y * (h - crop + 1))
                left = int(u_x * (w - crop + 1))
                image = image[:, top : top + crop, left : left + crop]
                label = label[top : top + crop, left : left + crop]
                if u_vflip < 0.5:
                    image, label = image.flip(-2), label.flip(-2)
                if u_hflip < 0.5:
                    image, label = image.flip(-1), label.flip(-1)
                images.append(image)
                labels.append(label)
            yield normalize(torch.stack(images)), torch.stack(labels).long()

    def center_batches(
        self, batch_size: int, crop: int, max_batches: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield validation batches: the centre ``crop × crop`` of every pair, in order.

        Yields
        ------
        images : torch.Tensor
            ``[b, 3, crop, crop]`` normalised float32 (the last batch may be smaller).
        labels : torch.Tensor
            ``[b, crop, crop]`` int64.
        """
        n_batches = 0
        for start in range(0, len(self.pairs), batch_size):
            if max_batches is not None and n_batches >= max_batches:
                return
            images, labels = [], []
            for index, k in self.pairs[start : start + batch_size]:
                h, w = self.labels[index].shape[1:]
                top, left = (h - crop) // 2, (w - crop) // 2
                images.append(self.images[index][:, top : top + crop, left : left + crop])
                labels.append(self.labels[index][k, top : top + crop, left : left + crop])
            n_batches += 1
            yield normalize(torch.stack(images)), torch.stack(labels).long()
