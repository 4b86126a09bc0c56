"""``L_MSD``, the minimal-semantic-distance embedding loss (``method.md`` §4).

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
"""

from __future__ import annotations

import torch
from torch import Tensor

from spbench.grid import as_label_map

__all__ = ["MSD_MODES", "min_semantic_distance_loss", "sample_class_pixels"]

#: Accepted values of ``mode``.
MSD_MODES = ("per_image", "original")


def sample_class_pixels(
    labels: Tensor, n_samples: int = 100, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample ``n_samples`` pixels of every class of every image (§4.2).

    For a class with ``n`` pixels: ``n > n_samples`` → the first ``n_samples`` of a random
    permutation (distinct pixels); ``n = n_samples`` → all pixels in random order;
    ``n < n_samples`` → ``n_samples`` draws with replacement. One random permutation per image,
    stably sorted by class, gives an independent uniform permutation of every class at once, so
    there is no Python loop over classes.

    Parameters
    ----------
    labels : LongTensor
        ``[B, H, W]`` integer labels.
    n_samples : int
        Samples per (image, class).
    generator : torch.Generator, optional
        The run's seeded generator. Random numbers are drawn on its device and moved to the
        labels' device; without one, torch's global RNG on the labels' device is used.

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
    device = labels.device
    rng_device = generator.device if generator is not None else device
    b = labels.shape[0]
    flat = labels.reshape(b, -1)
    n_pix = flat.shape[1]
    coords, owners, counts_per_image = [], [], []
    with torch.no_grad():
        for i in range(b):  # a loop over images only; classes are handled together
            perm = torch.randperm(n_pix, generator=generator, device=rng_device).to(device)
            sorted_lab, order = torch.sort(flat[i][perm], stable=True)
            pixel_order = perm[order]  # pixels grouped by class, randomly ordered within a class
            _, counts = torch.unique_consecutive(sorted_lab, return_counts=True)
            starts = torch.cumsum(counts, 0) - counts
            k = counts.shape[0]
            rnd = torch.rand(
                k, n_samples, generator=generator, device=rng_device, dtype=torch.float64
            )
            rnd = rnd.to(device)
            ramp = torch.arange(n_samples, device=device).expand(k, -1)
            with_repl = (rnd * counts[:, None]).long().clamp(max=counts[:, None] - 1)
            # n ≥ n_samples: the first n_samples of the permutation; else uniform with replacement.
            pos = torch.where(counts[:, None] >= n_samples, ramp, with_repl)
            coords.append(pixel_order[starts[:, None] + pos])
            owners.append(torch.full((k,), i, dtype=torch.long, device=device))
            counts_per_image.append(k)
    return (
        torch.cat(coords),
        torch.cat(owners),
        torch.tensor(counts_per_image, dtype=torch.long, device=device),
    )


def min_semantic_distance_loss(
    embedding: Tensor,
    labels: Tensor,
    *,
    margin: float = 1.5,
    n_samples: int = 100,
    mode: str = "per_image",
    generator: torch.Generator | None = None,
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

    Returns
    -------
    Tensor
        Scalar ``max(0, m − (1/B) Σ_b ρ_b)²`` in squared embedding units; gradients flow into
        ``embedding`` through the sampled pixels.
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
    coords, owner, n_cls = sample_class_pixels(labels, n_samples, generator)
    offsets = torch.cumsum(n_cls, 0) - n_cls  # o_b, the start of image b in the flat list
    # Flat entry (b, i) reads the coordinates of entry o_b + i (per_image) or b + i (original).
    local = torch.arange(owner.shape[0], device=owner.device) - offsets[owner]
    base = offsets if mode == "per_image" else torch.arange(b, device=owner.device)
    entry_coords = coords[base[owner] + local]  # [F, n_samples]
    z = embedding.reshape(b, d, h * w).transpose(1, 2)  # [B, HW, D]
    samples = z[owner[:, None], entry_coords]  # [F, n_samples, D], from each entry's own image

    # Class pairs i < j of every image, as flat indices (base_b + i, base_b + j).
    first, second, pair_image = [], [], []
    n_cls_list = n_cls.tolist()
    base_list = base.tolist()
    for i, k in enumerate(n_cls_list):  # a loop over images; pairs are built by triu_indices
        if k < 2:
            continue
        tri = torch.triu_indices(k, k, offset=1, device=owner.device)
        first.append(base_list[i] + tri[0])
        second.append(base_list[i] + tri[1])
        pair_image.append(torch.full((tri.shape[1],), i, dtype=torch.long, device=owner.device))
    rho = embedding.new_zeros(b)  # ρ_b = 0 for single-class images
    if first:
        first_t, second_t, img_t = torch.cat(first), torch.cat(second), torch.cat(pair_image)
        diff = samples[second_t] - samples[first_t]  # [P, n_samples, D]
        delta = torch.linalg.vector_norm(diff, ord=2, dim=2).amin(dim=1)  # paired distance
        rho = rho.scatter_reduce(0, img_t, delta, reduce="amin", include_self=False)
    return torch.relu(margin - rho.mean()).square()
