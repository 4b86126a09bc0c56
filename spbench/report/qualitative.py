"""Qualitative figure: superpixels of several models on a few test images, with and without EC.

Grid: one row per image, two columns per model (no EC, EC), in the order the models are given
(e.g. ``{"SCN": base.npz, "SCN-LAP": lap.npz}`` gives base no-EC, base EC, LAP no-EC, LAP EC).
Every panel shows the image with the superpixel boundaries (pixels whose right or lower neighbour
has another label) in yellow. In the no-EC panels the **stray pixels** are filled red: pixels
outside the largest 8-connected fragment of their label, with the tie rule of
``docs/protocol.md`` §5 (if two fragments share the largest size, all pixels of the label
count) — so the red area is exactly the Stray metric. Each panel is captioned with the number
of labels K, and XC / Stray for no-EC panels.

Inputs are prediction files of ``spbench predict`` (one per model, all at the same scale; read
with :func:`spbench.predictions.load_predictions`) and the prepared dataset
(:func:`spbench.data.prepared.load_split`). No torch is imported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from skimage.measure import label as _cc_label

from spbench.data.prepared import load_split
from spbench.errors import UserError
from spbench.io import atomic_path
from spbench.metrics import fragmentation
from spbench.predictions import load_predictions
from spbench.report.figures import FIGURE_DPI

__all__ = [
    "BOUNDARY_COLOUR",
    "STRAY_COLOUR",
    "boundary_mask",
    "build_qualitative",
    "plot_qualitative",
    "render_panel",
    "stray_mask",
]

BOUNDARY_COLOUR = np.array([1.0, 0.9, 0.0])
STRAY_COLOUR = np.array([0.9, 0.0, 0.0])
PANEL_WIDTH_IN = 3.3


class FigureInputError(UserError, ValueError):
    """Predictions or image ids that cannot make the figure; the message says which."""


def stray_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels outside the largest 8-connected fragment of their label (``docs/protocol.md`` §5).

    With the tie rule: if two or more fragments of a label share the largest size, all of its
    pixels are stray. ``stray_mask(L).sum() == spbench.metrics.stray_pixels(L)``.

    Parameters
    ----------
    labels
        ``[H, W]`` non-negative integer label map.

    Returns
    -------
    numpy.ndarray
        ``[H, W]`` bool.
    """
    labels = np.asarray(labels)
    _, index = np.unique(labels, return_inverse=True)
    index = index.reshape(labels.shape)
    regions = _cc_label(index + 1, connectivity=2, background=0)
    n_regions = int(regions.max())
    region_label = np.zeros(n_regions + 1, dtype=np.intp)
    region_label[regions.ravel()] = index.ravel()
    size = np.bincount(regions.ravel(), minlength=n_regions + 1)
    size[0] = 0
    n_labels = int(index.max()) + 1
    largest = np.zeros(n_labels, dtype=np.int64)
    np.maximum.at(largest, region_label[1:], size[1:])
    is_largest = size == largest[region_label]
    is_largest[0] = False
    n_largest = np.bincount(region_label[1:][is_largest[1:]], minlength=n_labels)
    keep = is_largest & (n_largest[region_label] == 1)
    return ~keep[regions]


def boundary_mask(labels: np.ndarray) -> np.ndarray:
    """Thin boundaries: pixels whose right or lower 4-neighbour has a different label."""
    labels = np.asarray(labels)
    mask = np.zeros(labels.shape, dtype=bool)
    mask[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    mask[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return mask


def render_panel(image: np.ndarray, labels: np.ndarray, *, show_stray: bool) -> np.ndarray:
    """RGB float image with boundaries (yellow) and optionally the stray pixels (red).

    Parameters
    ----------
    image
        ``[H, W, 3]`` uint8 RGB.
    labels
        ``[H, W]`` label map of the same size.
    show_stray
        Fill the stray pixels (:func:`stray_mask`) red, 85 % opaque, over the boundaries.

    Returns
    -------
    numpy.ndarray
        ``[H, W, 3]`` float in [0, 1].
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {labels.shape} differ in size")
    rgb = image[..., :3].astype(float) / 255.0
    rgb[boundary_mask(labels)] = BOUNDARY_COLOUR
    if show_stray:  # on top of the boundaries: a 1-pixel fragment is all boundary
        stray = stray_mask(labels)
        rgb[stray] = 0.15 * rgb[stray] + 0.85 * STRAY_COLOUR
    return rgb


def plot_qualitative(
    images: Mapping[str, np.ndarray],
    predictions: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
    image_ids: Sequence[str],
    *,
    title: str = "",
) -> Figure:
    """Draw the grid: rows = ``image_ids``, columns = (model no EC, model EC) per model.

    Parameters
    ----------
    images
        Image id → ``[H, W, 3]`` uint8 RGB.
    predictions
        Model label → ``(noec, ec)``, each image id → label map.
    image_ids
        Images to show, in row order.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not saved, not closed).
    """
    if not image_ids or not predictions:
        raise FigureInputError("need at least one image and one model")
    models = list(predictions)
    ncols = 2 * len(models)
    heights = [images[i].shape[0] / images[i].shape[1] for i in image_ids]
    row_in = [PANEL_WIDTH_IN * h + 0.3 for h in heights]
    fig = plt.figure(figsize=(PANEL_WIDTH_IN * ncols, sum(row_in) + (1.2 if title else 0.9)))
    grid = fig.add_gridspec(len(image_ids), ncols, height_ratios=row_in, hspace=0.12, wspace=0.04)
    for r, image_id in enumerate(image_ids):
        image = images[image_id]
        for m, model in enumerate(models):
            noec, ec = predictions[model]
            for c, (labels, is_noec) in enumerate(((noec[image_id], True), (ec[image_id], False))):
                ax = fig.add_subplot(grid[r, 2 * m + c])
                ax.imshow(render_panel(image, labels, show_stray=is_noec), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                k = int(np.unique(labels).size)
                if is_noec:
                    xc, stray = fragmentation(labels)
                    caption = f"K = {k}, XC = {xc}, Stray = {stray}"
                else:
                    caption = f"K = {k}"
                ax.set_xlabel(caption, fontsize=8)
                if r == 0:
                    ax.set_title(f"{model}, {'no EC' if is_noec else 'EC'}", fontsize=10)
                if m == 0 and c == 0:
                    ax.set_ylabel(image_id, fontsize=9)
    legend = [
        plt.Rectangle((0, 0), 1, 1, color=BOUNDARY_COLOUR),
        plt.Rectangle((0, 0), 1, 1, color=STRAY_COLOUR),
    ]
    fig.legend(
        legend,
        ["superpixel boundary", "stray pixels (outside the largest 8-connected fragment; no EC)"],
        loc="lower center",
        ncol=2,
        frameon=False,
        fontsize=9,
    )
    height = fig.get_figheight()
    top_in = 0.45  # room for the column titles
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
        top_in += 0.3  # and above them the figure title, without overlap
    fig.subplots_adjust(left=0.03, right=0.99, top=1 - top_in / height, bottom=0.45 / height)
    return fig


def _select_images(
    noec: Mapping[str, np.ndarray], candidates: Sequence[str], n_images: int
) -> list[str]:
    stray = {i: fragmentation(noec[i])[1] for i in candidates}
    ranked = sorted(candidates, key=lambda i: (-stray[i], candidates.index(i)))
    return ranked[:n_images]


def build_qualitative(
    prediction_files: Mapping[str, str | os.PathLike[str]],
    data_root: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    *,
    image_ids: Sequence[str] | None = None,
    n_images: int = 3,
    title: str = "",
) -> dict[str, Path]:
    """Write the qualitative figure as PNG and PDF (atomically).

    Parameters
    ----------
    prediction_files
        Model label → prediction ``.npz`` of that model at one scale, e.g.
        ``{"SCN": ".../scn-base-s0/1.0.npz", "SCN-LAP": ".../scn-lap-s0/1.0.npz"}``. All files
        must hold the same scale and split.
    data_root
        Prepared dataset folder holding that split.
    out_png
        Destination of the PNG; the PDF goes beside it with suffix ``.pdf``.
    image_ids
        Images to show. ``None``: the ``n_images`` images, among those every file has, with the
        most stray pixels in the *first* model's no-EC prediction (ties: file order).
    n_images
        Number of images when ``image_ids`` is ``None``.
    title
        The run's title (the profile's ``report.title``), put before what the files'
        metadata say (dataset, split, scale and nominal count), which make the whole title
        when it is empty.

    Returns
    -------
    dict[str, Path]
        ``{"png": path, "pdf": path}``.

    Raises
    ------
    ValueError
        If no file is given, the files differ in scale or split, or an image id is missing.
    """
    if not prediction_files:
        raise ValueError("no prediction files given")
    loaded = {name: load_predictions(path) for name, path in prediction_files.items()}
    metas = [meta for meta, _, _ in loaded.values()]
    for key in ("scale", "split"):
        values = {str(meta.get(key)) for meta in metas}
        if len(values) > 1:
            raise FigureInputError(f"prediction files differ in {key}: {sorted(values)}")
    split = load_split(data_root, metas[0]["split"])
    images = {s.image_id: s.image for s in split.samples}
    common = [i for i in metas[0]["image_ids"] if all(i in m["image_ids"] for m in metas)]
    common = [i for i in common if i in images]
    if image_ids is None:
        first_noec = next(iter(loaded.values()))[1]
        image_ids = _select_images(first_noec, common, n_images)
    missing = [i for i in image_ids if i not in common]
    if missing:
        raise FigureInputError(
            f"image id(s) {missing} are not in every prediction file and in split "
            f"{metas[0]['split']!r} of {data_root}"
        )
    meta = metas[0]
    where = (
        f"{meta.get('dataset', '')}/{meta['split']}, scale {meta['scale']:g} "
        f"(nominal {meta.get('n_nominal', '?')} superpixels)"
    )
    title = f"{title}: {where}" if title else where
    predictions = {name: (noec, ec) for name, (_, noec, ec) in loaded.items()}
    fig = plot_qualitative(images, predictions, list(image_ids), title=title)
    out_png = Path(out_png)
    paths = {}
    for ext, path in (("png", out_png), ("pdf", out_png.with_suffix(".pdf"))):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=FIGURE_DPI, format=ext)
        paths[ext] = path
    plt.close(fig)
    return paths
