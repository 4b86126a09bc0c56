"""A small, deterministic, BSDS-like synthetic dataset for the smoke profile and the tests.

Each image is a hierarchy of regions: a few *coarse* regions, each split into *fine* regions with
warped (non-polygonal) boundaries. Fine regions share their coarse parent's colour with a small
shift and carry their own oriented texture, so coarse boundaries are strong and fine ones weak, as
in natural images. Every image has several human-like annotations that differ the way BSDS500
annotators do: each annotator keeps a different subset of the fine boundaries (coarser and finer
partitions of one scene) and traces them with a little jitter of its own.

Sizes follow BSDS500's shape convention: images are generated one pixel larger than
``height × width`` (BSDS: 321×481), training and validation images are cropped top-left to
``height × width`` (BSDS: 320×480), test images keep their full size; every ``portrait_every``-th
image is portrait. Nothing here needs the network; the same seed gives the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from spbench.data.prepared import cap_labels, encode_png, write_manifest, write_split

SPLIT_SEED_OFFSET = {"train": 0, "val": 10_000, "test": 20_000}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Return a zero-mean, unit-std smooth random field of ``shape`` (Gaussian-filtered noise)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (field - field.mean()) / (field.std() + 1e-12)


def _voronoi(points: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Return the index of the nearest point for every (warped) pixel coordinate."""
    d2 = (ys[..., None] - points[:, 0]) ** 2 + (xs[..., None] - points[:, 1]) ** 2
    return d2.argmin(axis=-1)


def _renumber(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Relabel to raw ids 1..K in a random order (BSDS ids carry no spatial meaning)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    order = rng.permutation(ids.size) + 1
    return order[inverse].reshape(labels.shape).astype(np.uint16)


def synthesize_image(
    seed: int, height: int, width: int, *, n_annotations: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Generate one synthetic image with its annotations.

    Parameters
    ----------
    seed
        Seed of everything random about this image.
    height, width
        Image size in pixels.
    n_annotations
        Number of annotations; by default 3 to 6, drawn from the seed.

    Returns
    -------
    image : numpy.ndarray
        ``[height, width, 3]`` ``uint8`` RGB.
    annotations : numpy.ndarray
        ``[A, height, width]`` ``uint16`` raw region ids (1..K per annotation).
    """
    rng = np.random.default_rng(seed)
    scale = float(min(height, width))
    n_coarse = int(rng.integers(3, 7))
    n_fine = int(rng.integers(10, 26))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    # Warp the coordinates so that region boundaries are curved, not Voronoi polygons.
    warp = 0.06 * scale
    wy = ys + warp * _smooth_field(rng, (height, width), scale / 8)
    wx = xs + warp * _smooth_field(rng, (height, width), scale / 8)
    coarse_pts = rng.uniform((0, 0), (height, width), size=(n_coarse, 2))
    fine_pts = rng.uniform((0, 0), (height, width), size=(n_fine, 2))
    fine = _voronoi(fine_pts, wy, wx)
    parent = _voronoi(coarse_pts, fine_pts[:, 0], fine_pts[:, 1])  # coarse region of each fine one

    # Colours: the coarse parent's colour plus a small per-fine-region shift; oriented texture.
    coarse_rgb = rng.uniform(30, 225, size=(n_coarse, 3))
    fine_rgb = np.clip(coarse_rgb[parent] + rng.normal(0, 18, size=(n_fine, 3)), 0, 255)
    angle = rng.uniform(0, np.pi, size=n_fine)
    freq = rng.uniform(0.08, 0.5, size=n_fine)
    amp = rng.uniform(0, 22, size=n_fine)
    phase = ys * np.sin(angle[fine]) + xs * np.cos(angle[fine])
    texture = amp[fine] * np.sin(freq[fine] * phase)
    image = fine_rgb[fine] + texture[..., None] + rng.normal(0, 4, size=(height, width, 3))
    image = ndimage.gaussian_filter(image, sigma=(0.7, 0.7, 0))  # soft edges, like a camera
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    # Annotators: each keeps a fraction of the fine boundaries, with its own tracing jitter.
    if n_annotations is None:
        n_annotations = int(rng.integers(3, 7))
    annotations = []
    for _ in range(n_annotations):
        keep_fine = rng.uniform() ** 1.5  # some annotators are much coarser than others
        kept = rng.uniform(size=n_fine) < keep_fine
        region_of_fine = np.where(kept, n_coarse + np.arange(n_fine), parent)
        jitter = 0.012 * scale
        ay = wy + jitter * _smooth_field(rng, (height, width), scale / 12)
        ax = wx + jitter * _smooth_field(rng, (height, width), scale / 12)
        labels = region_of_fine[_voronoi(fine_pts, ay, ax)]
        # Split regions into their 4-connected parts, as a person labels what they see.
        parts = np.zeros_like(labels)
        offset = 0
        for value in np.unique(labels):
            comp, n = ndimage.label(labels == value)
            parts[comp > 0] = comp[comp > 0] + offset
            offset += n
        annotations.append(_renumber(parts, rng))
    return image, np.stack(annotations)


def generate_synthetic(
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_train: int = 12,
    n_val: int = 4,
    n_test: int = 6,
    height: int = 160,
    width: int = 240,
    portrait_every: int = 3,
) -> Path:
    """Generate the synthetic dataset in the prepared format and return its manifest path.

    Parameters
    ----------
    out
        Destination folder (created); ``dataset.json`` is written last.
    seed
        Dataset seed; image ``i`` of split ``s`` uses ``seed·10⁶ + offset(s) + i``.
    n_train, n_val, n_test
        Number of images per split.
    height, width
        Landscape size after the train/val crop; generated images are one pixel larger.
    portrait_every
        Every n-th image of each split is portrait (0: none).

    Returns
    -------
    pathlib.Path
        Path of the written ``dataset.json``.

    Raises
    ------
    spbench.config.ConfigError
        For an option the schema's ``dataset.synthetic`` refuses (a negative seed, 4.0 images).
    """
    from spbench.config import validate_section

    options = {"seed": seed, "n_train": n_train, "n_val": n_val, "n_test": n_test}
    options |= {"height": height, "width": width, "portrait_every": portrait_every}
    validate_section(options, "dataset.synthetic")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        records = []
        for i in range(count):
            portrait = portrait_every > 0 and i % portrait_every == portrait_every - 1
            h, w = (width + 1, height + 1) if portrait else (height + 1, width + 1)
            image, raw = synthesize_image(seed * 1_000_000 + SPLIT_SEED_OFFSET[split] + i, h, w)
            if split != "test":  # the protocol's top-left crop of train/val (docs/protocol.md §1.5)
                image, raw = image[:-1, :-1], raw[:, :-1, :-1]
            capped = np.stack([cap_labels(a) for a in raw])
            records.append((f"syn{split[:2]}{i:04d}", encode_png(image), capped, raw))
        splits[split] = write_split(out, split, records)
    return write_manifest(
        out,
        "synthetic",
        splits,
        image_codec="png",
        generator={
            "seed": seed,
            "height": height,
            "width": width,
            "portrait_every": portrait_every,
        },
    )
