"""SLIC (scikit-image) as a reference method: classical, connected by design, no training.

SLIC is run as it is used, with scikit-image's own connectivity step (``enforce_connectivity``,
on by default), so its "no EC" rows are already connected (XC and Stray 0) and have fewer
superpixels than asked; spbench's EC then changes little. Its Table 2 run line says so.

Every table carries it as a row so that readers see where learned methods stand against the
classical algorithm at the same superpixel counts. It segments the original test image directly
(no rescaling), asking for the grid's cell count at each scale, and goes through the same EC,
scoring and report code as the networks.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import slic as skimage_slic
from torch import nn

from spbench.catalogue import NO_TRAINING
from spbench.models.registry import register_method

#: scikit-image's default compactness for RGB input (CIELAB distances).
SLIC_COMPACTNESS = 10.0


def slic_segment(image: np.ndarray, n_segments: int) -> np.ndarray:
    """Segment an ``[H, W, 3]`` ``uint8`` RGB image with SLIC into about ``n_segments`` regions.

    Returns
    -------
    numpy.ndarray
        ``[H, W]`` int64 labels from 0 (scikit-image's ``slic`` with ``compactness=10``,
        ``start_label=0`` and its own connectivity enforcement).
    """
    labels = skimage_slic(
        image,
        n_segments=int(n_segments),
        compactness=SLIC_COMPACTNESS,
        start_label=0,
        channel_axis=-1,
    )
    return labels.astype(np.int64)


class NoNetwork(nn.Module):
    """Placeholder module of a classical method: nothing to train or run."""

    def forward(self, image):  # pragma: no cover - predict calls Method.segment instead
        raise RuntimeError("SLIC has no network; spbench.predict uses Method.segment")


@register_method(
    "slic",
    recipe=NO_TRAINING,
    segment=slic_segment,
    description=(
        f"classical method, no training: scikit-image SLIC, compactness {SLIC_COMPACTNESS:g}, "
        "one segment asked per 16-px grid cell, with SLIC's own connectivity step (so its "
        "no-EC row is connected already)"
    ),
)
def slic(**kwargs: object) -> nn.Module:
    """Build the parameter-free placeholder of the SLIC reference."""
    return NoNetwork(**kwargs)
