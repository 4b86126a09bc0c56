"""Torch-side data: normalisation, training batches (augmented crops) and validation crops.

The whole training set is held on the training device as ``uint8`` tensors, and crops, flips and
rescales are tensor operations on that device, so the input pipeline costs a few small kernels
per step and no host-to-device copies. Augmentations (``docs/protocol.md`` §1.7), chosen by the
method's recipe:

``"scn"``
    random crop, vertical flip (p 0.5), horizontal flip (p 0.5), normalise (SCN, AINet).
``"rescale_bicubic"``
    a random factor f ∈ {0.7, 0.8, …, 1.4} on both axes first (image bicubic, rounded and
    saturated like OpenCV on ``uint8``; labels nearest), then as ``"scn"`` (CDS).
``"ssm"``
    the rescale with a bilinear image, crop and flips, then SSD-style photometric distortion on
    the float pixels before normalisation; consensus edge targets follow every geometric step
    (SSM).

Torch's bicubic and bilinear kernels match OpenCV's coefficients (a = −0.75) but not its
border handling (edge replication vs. reflection), which moves border pixels of a rescaled
training crop slightly; evaluation resizes with OpenCV itself (``spbench.predict``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from spbench.config import ConfigError
from spbench.data.prepared import PreparedSplit

AUGMENTATIONS = ("scn", "rescale_bicubic", "ssm")
RESCALE_FACTORS = tuple(0.7 + k / 10 for k in range(8))  # 0.7 + U{0..7}/10 (docs/protocol.md §1.7)


class Batch(NamedTuple):
    """One training or validation batch, all tensors on the training device.

    Attributes
    ----------
    images : torch.Tensor
        ``[B, 3, H, W]`` normalised float32 RGB.
    labels : torch.Tensor
        ``[B, H, W]`` int64 labels 0..49.
    edges : torch.Tensor or None
        ``[B, H, W]`` uint8 edge targets (0 background, 1 edge, 2 ignored), for methods whose
        recipe needs them; ``None`` otherwise.
    """

    images: torch.Tensor
    labels: torch.Tensor
    edges: torch.Tensor | None = None


#: Per-channel RGB mean subtracted after dividing by 255 (docs/protocol.md §1.6; std is 1).
RGB_MEAN = (0.411, 0.432, 0.45)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Normalise ``uint8`` RGB images ``[B, 3, H, W]`` to float: ``x / 255 − mean`` (std 1).

    Returns
    -------
    torch.Tensor
        ``float32`` tensor of the same shape, roughly in [−0.45, 0.59].
    """
    return images.to(torch.float32) / 255.0 - _rgb_mean(images.device)


_MEANS: dict[torch.device, torch.Tensor] = {}


def _rgb_mean(device: torch.device) -> torch.Tensor:
    """``RGB_MEAN`` as a ``[1, 3, 1, 1]`` tensor on ``device``, made once: a host-to-device copy
    per batch would make the host wait for the GPU."""
    if device not in _MEANS:
        _MEANS[device] = torch.tensor(RGB_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return _MEANS[device]


class PairBank:
    """Every (image, annotation) pair of one or more splits, as tensors on one device.

    Parameters
    ----------
    splits
        Prepared splits whose pairs become samples (DLM's tv stage: train and val).
    device
        Where the tensors live.
    min_size
        Smallest allowed image side; a smaller image raises a
        :class:`~spbench.config.ConfigError` (a ``ValueError``) naming it and the
        ``train.crop`` / ``train.val_crop`` config keys.
    with_edges
        Also hold each image's consensus edge targets (``docs/protocol.md`` §1.7, SSM).
    """

    def __init__(
        self,
        splits: Sequence[PreparedSplit],
        device: torch.device | str,
        min_size: int = 0,
        *,
        with_edges: bool = False,
    ) -> None:
        self.images: list[torch.Tensor] = []  # one [3, H, W] uint8 per image
        self.labels: list[torch.Tensor] = []  # one [A, H, W] uint8 per image
        self.edges: list[torch.Tensor] | None = [] if with_edges else None
        self.pairs: list[tuple[int, int]] = []
        for split in splits:
            for sample in split.samples:
                h, w = sample.annotations.shape[1:]
                if min(h, w) < min_size:
                    raise ConfigError(
                        f"{split.dataset}/{split.split}/{sample.image_id} is {h}×{w}, smaller than "
                        f"the {min_size}-px crop; lower train.crop / train.val_crop in the config"
                    )
                index = len(self.images)
                image = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1)))
                self.images.append(image.to(device))
                self.labels.append(torch.from_numpy(sample.annotations).to(device))
                if self.edges is not None:
                    from spbench.data.augment import consensus_edges

                    edges = consensus_edges(sample.annotations)
                    self.edges.append(torch.from_numpy(edges).to(device))
                self.pairs.extend((index, k) for k in range(sample.n_annotations))
        if not self.pairs:
            raise ValueError("no (image, annotation) pairs to train on")
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.pairs)

    def random_batches(
        self, batch_size: int, crop: int, generator: torch.Generator, augment: str = "scn"
    ) -> Iterator[Batch]:
        """Yield augmented training batches forever (see the module docstring for ``augment``).

        Randomness comes only from ``generator`` (a CPU generator), so a seeded run is
        reproducible and its state can be checkpointed.

        Yields
        ------
        Batch
            ``[B, 3, crop, crop]`` normalised images, ``[B, crop, crop]`` labels, and edges when
            the bank holds them.
        """
        if augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {augment!r}; expected one of {AUGMENTATIONS}")
        rescale = augment in ("rescale_bicubic", "ssm")
        mode = "bicubic" if augment == "rescale_bicubic" else "bilinear"
        while True:
            picks = torch.randint(len(self.pairs), (batch_size,), generator=generator).tolist()
            uniforms = torch.rand(batch_size, 5, generator=generator).tolist()
            images, labels, edges = [], [], []
            for pick, (u_y, u_x, u_vflip, u_hflip, u_scale) in zip(picks, uniforms, strict=True):
                index, k = self.pairs[pick]
                image = self.images[index]  # uint8; cropped before any conversion
                maps = [self.labels[index][k]]
                if self.edges is not None:
                    maps.append(self.edges[index])
                if rescale:
                    factor = RESCALE_FACTORS[min(int(u_scale * 8), 7)]
                    image, maps = _rescale(image.float(), maps, factor, mode)
                h, w = maps[0].shape
                if min(h, w) < crop:
                    raise ValueError(f"a rescaled training image is {h}×{w}, below the crop {crop}")
                top = int(u_y * (h - crop + 1))
                left = int(u_x * (w - crop + 1))
                image = image[:, top : top + crop, left : left + crop]
                maps = [m[top : top + crop, left : left + crop] for m in maps]
                if u_vflip < 0.5:
                    image, maps = image.flip(-2), [m.flip(-2) for m in maps]
                if u_hflip < 0.5:
                    image, maps = image.flip(-1), [m.flip(-1) for m in maps]
                images.append(image)
                labels.append(maps[0])
                if self.edges is not None:
                    edges.append(maps[1])
            pixels = torch.stack(images)
            if augment == "ssm":
                from spbench.data.augment import photometric_distortion

                pixels = photometric_distortion(pixels, generator)
            yield Batch(
                normalize(pixels),
                torch.stack(labels).long(),
                torch.stack(edges) if self.edges is not None else None,
            )

    def center_batches(
        self, batch_size: int, crop: int, max_batches: int | None = None
    ) -> Iterator[Batch]:
        """Yield validation batches: the centre ``crop × crop`` of every pair, in order.

        Yields
        ------
        Batch
            ``[b, 3, crop, crop]`` normalised images and ``[b, crop, crop]`` labels (the last
            batch may be smaller); edges as held by the bank.
        """
        n_batches = 0
        for start in range(0, len(self.pairs), batch_size):
            if max_batches is not None and n_batches >= max_batches:
                return
            images, labels, edges = [], [], []
            for index, k in self.pairs[start : start + batch_size]:
                h, w = self.labels[index].shape[1:]
                window = (
                    slice((h - crop) // 2, (h - crop) // 2 + crop),
                    slice((w - crop) // 2, (w - crop) // 2 + crop),
                )
                images.append(self.images[index][(slice(None), *window)])
                labels.append(self.labels[index][k][window])
                if self.edges is not None:
                    edges.append(self.edges[index][window])
            n_batches += 1
            yield Batch(
                normalize(torch.stack(images)),
                torch.stack(labels).long(),
                torch.stack(edges) if self.edges is not None else None,
            )


def _rescale(
    image: torch.Tensor, maps: list[torch.Tensor], factor: float, mode: str
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Rescale a float ``[3, H, W]`` image (rounded and saturated like ``uint8``) and label maps.

    Returns the image in [0, 255] and the maps resized by nearest neighbour to the same size,
    ``round(H·factor) × round(W·factor)`` as OpenCV's ``fx``/``fy`` resize gives.
    """
    h, w = image.shape[1:]
    size = (round(h * factor), round(w * factor))
    scaled = F.interpolate(image[None], size=size, mode=mode, align_corners=False)[0]
    scaled = scaled.round().clamp(0, 255)
    resized = [
        F.interpolate(m[None, None].float(), size=size, mode="nearest")[0, 0].to(m.dtype)
        for m in maps
    ]
    return scaled, resized
