"""``L_MSD``, the minimal-semantic-distance embedding loss (``docs/method.md`` §4).

As coded in DLM (``utils/lossutils.py: EmbedLoss``): for each image and each class present, 100
pixels are sampled; two classes are as far apart as the *paired* distance
``δ(c, c′) = min_k ‖E_c[:, k] − E_c′[:, k]‖₂`` between their k-th samples; an image's distance
``ρ_b`` is the minimum over its class pairs (0 for a single-class image); and
``L_MSD = max(0, m − mean_b ρ_b)²`` (batch mean *before* the hinge).

Two modes (§4.4):

- ``"per_image"`` (default): each image's classes are compared inside its own embedding map;
- ``"original"``: the released code's flat-list indexing bug (§4.3), where flat entry ``b + i``
  is used instead of ``o_b + i`` (``o_b`` = number of classes in the images before ``b``) both
  for the sampled coordinates and for the pair members.

The sampling (:func:`sample_class_pixels_dense`) and the ``"per_image"`` loss use static shapes
(one slot per class id, a presence mask) and never read a tensor on the host, so a training step
with MSD can be captured in a CUDA graph; ``"original"`` needs the host-side flat list.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spbench.grid import as_label_map

__all__ = [
    "MSD_MODES",
    "min_semantic_distance_loss",
    "sample_class_pixels",
    "sample_class_pixels_dense",
]

#: Accepted values of ``mode``.
MSD_MODES = ("per_image", "original")


def _uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """float64 U[0, 1) numbers drawn on the generator's device, returned on ``device``."""
    rng_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=rng_device, dtype=torch.float64).to(device)


def sample_class_pixels_dense(
    labels: Tensor,
    n_classes: int,
    n_samples: int = 100,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample ``n_samples`` pixels of every class of every image (§4.2), one slot per class id.

    For a class with ``n`` pixels: ``n > n_samples`` → the first ``n_samples`` of a random
    permutation (distinct pixels); ``n = n_samples`` → all pixels in random order;
    ``n < n_samples`` → ``n_samples`` draws with replacement. Sorting each image's pixels by
    ``label + u`` (``u`` uniform in [0, 1)) groups them by class in an independent uniform random
    order within every class at once, with no loop over images or classes and no
    data-dependent shape.

    Parameters
    ----------
    labels : LongTensor
        ``[B, H, W]`` integer labels in ``0..n_classes-1``.
    n_classes : int
        Number of class slots ``C``.
    n_samples : int
        Samples per (image, class).
    generator : torch.Generator, optional
        The run's seeded generator; numbers are drawn on its device and moved to the labels'
        device. Without one, torch's global RNG on the labels' device is used (the only choice
        inside a CUDA graph).

    Returns
    -------
    coords : LongTensor
        ``[B, C, n_samples]`` flat pixel indices ``y·W + x`` of the samples of class ``c`` in
        image ``b`` (meaningless where the class is absent).
    present : BoolTensor
        ``[B, C]``, whether class ``c`` occurs in image ``b``.
    """
    labels = as_label_map(labels)
    device = labels.device
    b = labels.shape[0]
    flat = labels.reshape(b, -1)
    n_pix = flat.shape[1]
    with torch.no_grad():
        counts = torch.zeros(b, n_classes, dtype=torch.long, device=device)
        counts.scatter_add_(1, flat, torch.ones_like(flat))
        keys = flat.to(torch.float64) + _uniform((b, n_pix), generator, device)
        pixel_order = keys.argsort(dim=1)  # by class, uniformly shuffled within each class
        starts = counts.cumsum(dim=1) - counts
        rnd = _uniform((b, n_classes, n_samples), generator, device)
        with_repl = (rnd * counts[..., None]).long().clamp(max=counts[..., None] - 1)
        ramp = torch.arange(n_samples, device=device)
        # n ≥ n_samples: the first n_samples of the permutation; else uniform with replacement.
        pos = torch.where(counts[..., None] >= n_samples, ramp, with_repl)
        index = (starts[..., None] + pos).clamp(0, n_pix - 1)  # absent classes read pixel 0
        coords = pixel_order.gather(1, index.reshape(b, -1)).reshape(b, n_classes, n_samples)
    return coords, counts > 0


def sample_class_pixels(
    labels: Tensor, n_samples: int = 100, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample like :func:`sample_class_pixels_dense`, as the flat list over (image, class).

    Parameters
    ----------
    labels : LongTensor
        ``[B, H, W]`` integer labels.
    n_samples : int
        Samples per (image, class).
    generator : torch.Generator, optional
        The run's seeded generator.

    Returns
    -------
    coords : LongTensor
        ``[F, n_samples]`` flat pixel indices ``y·W + x``, where ``F = Σ_b |C_b|`` is the flat list
        over (image, class), images in order and classes ascending within an image.
    image_of_entry : LongTensor
        ``[F]`` image index of each flat entry.
    n_classes : LongTensor
        ``[B]`` number of classes ``|C_b|`` per image.
    """
    labels = as_label_map(labels)
    coords, present = sample_class_pixels_dense(labels, int(labels.max()) + 1, n_samples, generator)
    image_of_entry = torch.arange(labels.shape[0], device=labels.device)[:, None]
    image_of_entry = image_of_entry.expand_as(present)[present]
    return coords[present], image_of_entry, present.sum(dim=1)


def _image_distances(samples: Tensor, valid_pairs: Tensor) -> Tensor:
    """``ρ_b``: the minimum paired distance over the valid slot pairs of each image.

    ``samples`` is ``[B, K, n, D]`` (slot, sample, dimension) and ``valid_pairs`` ``[B, K, K]``;
    an image without a valid pair gets 0.
    """
    b, k, n, d = samples.shape
    if samples.dtype not in (torch.float32, torch.float64):
        samples = samples.float()  # distances and their minimum in full precision under autocast
    per_sample = samples.transpose(1, 2).reshape(b * n, k, d)
    # Every pair's distance on its own, not via a matrix product, for exact small distances.
    dist = torch.cdist(per_sample, per_sample, compute_mode="donot_use_mm_for_euclid_dist")
    delta = dist.reshape(b, n, k, k).amin(dim=1)  # paired distance δ, [B, K, K]
    masked = torch.where(valid_pairs, delta, torch.full_like(delta, torch.inf))
    rho = masked.flatten(1).amin(dim=1)
    return torch.where(valid_pairs.flatten(1).any(dim=1), rho, torch.zeros_like(rho))


def min_semantic_distance_loss(
    embedding: Tensor,
    labels: Tensor,
    *,
    margin: float = 1.5,
    n_samples: int = 100,
    mode: str = "per_image",
    generator: torch.Generator | None = None,
    n_classes: int | None = None,
) -> Tensor:
    """``L_MSD`` (§4), unweighted.

    Parameters
    ----------
    embedding : Tensor
        ``[B, D, H, W]`` raw pixel embedding ``z`` (no normalisation).
    labels : LongTensor
        ``[B, H, W]`` integer labels (the augmented training label map).
    margin : float
        Hinge margin ``m`` in embedding units.
    n_samples : int
        Samples per (image, class).
    mode : {"per_image", "original"}
        ``"per_image"`` (the paper's intent) or ``"original"`` (the released flat-index bug).
    generator : torch.Generator, optional
        The run's seeded generator for the sampling.
    n_classes : int, optional
        Labels lie in ``0..n_classes-1``. Give it to keep ``"per_image"`` free of host reads
        (CUDA graphs); by default it is read from the labels.

    Returns
    -------
    Tensor
        Scalar ``max(0, m − (1/B) Σ_b ρ_b)²`` in squared embedding units (float32 or wider);
        gradients flow into ``embedding`` through the sampled pixels.
    """
    if mode not in MSD_MODES:
        raise ValueError(f"unknown MSD mode {mode!r}; expected one of {MSD_MODES}")
    labels = as_label_map(labels)
    b, d, h, w = embedding.shape
    if labels.shape != (b, h, w):
        raise ValueError(
            f"labels {tuple(labels.shape)} do not match embedding {tuple(embedding.shape)}"
        )
    labels = labels.to(embedding.device)
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    coords, present = sample_class_pixels_dense(labels, n_classes, n_samples, generator)
    z = embedding.reshape(b, d, h * w).transpose(1, 2)  # [B, HW, D]
    if mode == "per_image":
        # Slot c of image b is class c of image b.
        samples = z.gather(1, coords.reshape(b, -1, 1).expand(-1, -1, d))
        samples = samples.reshape(b, n_classes, n_samples, d)
        pairs = present[:, :, None] & present[:, None, :]
    else:
        samples, pairs = _original_slots(z, coords, present)
    upper = torch.ones(pairs.shape[1:], dtype=torch.bool, device=pairs.device).triu(diagonal=1)
    rho = _image_distances(samples, pairs & upper)
    return torch.relu(margin - rho.mean()).square()


def _original_slots(z: Tensor, coords: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Slots of the released code's flat-list indexing (§4.3).

    Flat entry ``f = o_a + i`` (class ``i`` of image ``a``) is sampled in image ``a`` at the
    coordinates of entry ``a + i``, and image ``b``'s slot ``i`` holds entry ``b + i``. Returns
    ``[B, K, n, D]`` samples and the ``[B, K, K]`` mask of slot pairs ``i, j < |C_b|``.
    """
    b, _, n_samples = coords.shape
    d = z.shape[-1]
    flat_coords = coords[present]  # [F, n], (image, class) in order
    owner = torch.arange(b, device=z.device)[:, None].expand_as(present)[present]
    n_cls = present.sum(dim=1)
    offsets = torch.cumsum(n_cls, 0) - n_cls  # o_b
    local = torch.arange(owner.shape[0], device=z.device) - offsets[owner]
    entry_coords = flat_coords[owner + local]  # entry a + i, where a is the owner
    entry_samples = z[owner[:, None], entry_coords]  # [F, n, D]
    k = int(n_cls.max())
    slot = torch.arange(k, device=z.device)
    entry = (torch.arange(b, device=z.device)[:, None] + slot).clamp(max=owner.shape[0] - 1)
    samples = entry_samples[entry]  # [B, K, n, D]
    in_image = slot[None, :] < n_cls[:, None]
    return samples.reshape(b, k, n_samples, d), in_image[:, :, None] & in_image[:, None, :]
