"""SSM-specific augmentation helpers (``docs/protocol.md`` §1.7), pure functions for the loader.

- :func:`photometric_distortion`: SSD-style photometric distortion of SSMamba
  (``jiaxhm/SSMamba: flow_transforms.py: PhotometricDistort``, copied in DLM
  ``eval_spixel/ssm_flow_transforms.py``), batched on float tensors in [0, 255], with
  OpenCV's float ``COLOR_BGR2HSV``/``COLOR_HSV2BGR`` formulas applied to the **RGB** array (as
  upstream does) and no clipping anywhere.
- :func:`consensus_edges`: DLM's consensus thick-boundary edge targets (``prep_edge_files``).
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import find_boundaries
from torch import Tensor

__all__ = [
    "BRIGHTNESS_DELTA",
    "CONTRAST_RANGE",
    "HUE_DELTA",
    "SATURATION_RANGE",
    "apply_photometric",
    "consensus_edges",
    "cv_bgr_to_hsv",
    "cv_hsv_to_bgr",
    "photometric_distortion",
    "photometric_params",
]

#: ``RandomBrightness(delta=32)``: additive, in 8-bit intensity units.
BRIGHTNESS_DELTA = 32.0
#: ``RandomContrast(0.5, 1.5)``: multiplicative.
CONTRAST_RANGE = (0.5, 1.5)
#: ``RandomSaturation(0.5, 1.5)``: multiplies the S channel.
SATURATION_RANGE = (0.5, 1.5)
#: ``RandomHue(delta=18)``: degrees added to the H channel.
HUE_DELTA = 18.0

_FLT_EPSILON = float(np.finfo(np.float32).eps)
# OpenCV HSV2RGB_native: (b, g, r) = tab[sector_data[sector]], tab = [v, p, q, t].
_SECTOR_DATA = torch.tensor([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])


def cv_bgr_to_hsv(img: Tensor) -> Tensor:
    """OpenCV's float ``cv2.cvtColor(img, COLOR_BGR2HSV)`` on channel-first tensors.

    Parameters
    ----------
    img : Tensor
        ``[..., 3, H, W]`` float; channel 0 is read as B and channel 2 as R (so an RGB array
        is converted as if it were BGR, as SSMamba does). Any range, negative values included.

    Returns
    -------
    Tensor
        ``[..., 3, H, W]`` float32: H in degrees [0, 360), ``S = (V − min)/(|V| + ε)``,
        ``V = max`` (``RGB2HSV_f`` in OpenCV's ``color_hsv.simd.hpp``; ε = FLT_EPSILON).
    """
    x = img.to(torch.float32)
    b, g, r = x.unbind(-3)
    v = torch.maximum(torch.maximum(r, g), b)
    vmin = torch.minimum(torch.minimum(r, g), b)
    diff = v - vmin
    s = diff / (v.abs() + _FLT_EPSILON)
    scale = 60.0 / (diff + _FLT_EPSILON)
    h = torch.where(
        v == r,
        (g - b) * scale,
        torch.where(v == g, (b - r) * scale + 120.0, (r - g) * scale + 240.0),
    )
    h = torch.where(h < 0, h + 360.0, h)
    return torch.stack([h, s, v], dim=-3)


def cv_hsv_to_bgr(hsv: Tensor) -> Tensor:
    """OpenCV's float ``cv2.cvtColor(hsv, COLOR_HSV2BGR)`` on channel-first tensors.

    Parameters
    ----------
    hsv : Tensor
        ``[..., 3, H, W]``: H in degrees (wrapped modulo 360), S, V.

    Returns
    -------
    Tensor
        ``[..., 3, H, W]`` float32 in OpenCV's (B, G, R) channel order (``HSV2RGB_native``:
        ``S = 0`` gives ``V`` on every channel; no clipping).
    """
    h, s, v = hsv.to(torch.float32).unbind(-3)
    hh = h * torch.tensor(6.0 / 360.0, dtype=torch.float32)
    hh = torch.fmod(hh, 6.0)
    hh = torch.where(hh < 0, hh + 6.0, hh)
    sector = torch.floor(hh)
    hh = hh - sector
    sector = sector.long()
    bad = (sector < 0) | (sector >= 6)
    sector = torch.where(bad, torch.zeros_like(sector), sector)
    hh = torch.where(bad, torch.zeros_like(hh), hh)
    tab = torch.stack([v, v * (1.0 - s), v * (1.0 - s * hh), v * (1.0 - s * (1.0 - hh))], dim=-3)
    idx = _SECTOR_DATA.to(sector.device)[sector]  # [..., H, W, 3]
    out = torch.gather(tab, -3, idx.movedim(-1, -3))
    grey = (s == 0).unsqueeze(-3)
    return torch.where(grey, v.unsqueeze(-3).expand_as(out), out)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def photometric_params(
    n: int, generator: torch.Generator | None = None, *, probability: float = 0.5
) -> dict[str, Tensor]:
    """Draw the random parameters of :func:`photometric_distortion` for ``n`` images.

    Every value is drawn, in a fixed order, whether or not its coin succeeds; a failed coin
    sets the factor to its neutral value (0 for additive, 1 for multiplicative terms).

    Parameters
    ----------
    n : int
        Number of images.
    generator : torch.Generator, optional
        CPU generator (the run's seeded one).
    probability : float
        Probability of the brightness, contrast, saturation and hue coins (0.5 upstream).
        The order coin is always 0.5.

    Returns
    -------
    dict of str to Tensor
        float64 ``[n]`` tensors: ``brightness`` (added), ``contrast_first`` (bool),
        ``contrast1`` (factor before the HSV block), ``saturation`` (factor), ``hue``
        (degrees added, 0 when its coin fails), ``hue_on`` (bool), ``contrast2`` (factor after
        the HSV block).
    """

    def coin(p: float) -> Tensor:
        return torch.rand(n, generator=generator, dtype=torch.float64) < p

    do_bright, bright = (
        coin(probability),
        _uniform(n, -BRIGHTNESS_DELTA, BRIGHTNESS_DELTA, generator),
    )
    contrast_first = coin(0.5)
    do_c1, alpha1 = coin(probability), _uniform(n, *CONTRAST_RANGE, generator)
    do_sat, sat = coin(probability), _uniform(n, *SATURATION_RANGE, generator)
    do_hue, hue = coin(probability), _uniform(n, -HUE_DELTA, HUE_DELTA, generator)
    do_c2, alpha2 = coin(probability), _uniform(n, *CONTRAST_RANGE, generator)
    return {
        "brightness": torch.where(do_bright, bright, 0.0),
        "contrast_first": contrast_first,
        "contrast1": torch.where(contrast_first & do_c1, alpha1, 1.0),
        "saturation": torch.where(do_sat, sat, 1.0),
        "hue": torch.where(do_hue, hue, 0.0),
        "hue_on": do_hue,
        "contrast2": torch.where(~contrast_first & do_c2, alpha2, 1.0),
    }


def apply_photometric(images: Tensor, params: dict[str, Tensor]) -> Tensor:
    """Apply drawn photometric parameters (:func:`photometric_params`) to a batch.

    Parameters
    ----------
    images : Tensor
        ``[B, 3, H, W]`` float RGB in [0, 255].
    params : dict of str to Tensor
        ``[B]`` parameters.

    Returns
    -------
    Tensor
        ``[B, 3, H, W]``, input dtype, no clipping (float32 arithmetic, as OpenCV's).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected [B, 3, H, W] images, got {tuple(images.shape)}")
    n = images.shape[0]

    def col(v: Tensor) -> Tensor:
        return v.to(device=images.device, dtype=torch.float32).view(n, 1, 1)

    x = images.to(torch.float32)
    x = x + col(params["brightness"]).unsqueeze(1)
    x = x * col(params["contrast1"]).unsqueeze(1)
    h, s, v = cv_bgr_to_hsv(x).unbind(1)
    s = s * col(params["saturation"])
    shifted = h + col(params["hue"])
    shifted = torch.where(shifted > 360.0, shifted - 360.0, shifted)
    shifted = torch.where(shifted < 0.0, shifted + 360.0, shifted)
    h = torch.where(col(params["hue_on"]) > 0, shifted, h)
    x = cv_hsv_to_bgr(torch.stack([h, s, v], dim=1))
    x = x * col(params["contrast2"]).unsqueeze(1)
    return x.to(images.dtype)


def photometric_distortion(
    images: Tensor,
    generator: torch.Generator | None = None,
    *,
    probability: float = 0.5,
) -> Tensor:
    """SSMamba's ``PhotometricDistort`` on a batch, each image with its own draws.

    Per image (``docs/protocol.md`` §1.7): brightness ``+U(−32, 32)`` (p 0.5); then with p 0.5
    either *contrast → HSV block* or *HSV block → contrast*. Contrast is ``×U(0.5, 1.5)``
    (p 0.5). The HSV block always converts with OpenCV's "BGR→HSV" formulas on the RGB array,
    multiplies S by ``U(0.5, 1.5)`` (p 0.5), adds ``U(−18, 18)`` degrees to H (p 0.5; then
    values > 360 get −360 and values < 0 get +360, so exactly 360 is kept) and converts back.
    There is no clipping (values may leave [0, 255]). The upstream draws come from NumPy's
    global RNG; here they come from ``generator`` (:func:`photometric_params`).

    Parameters
    ----------
    images : Tensor
        ``[B, 3, H, W]`` float RGB in [0, 255] (before normalisation).
    generator : torch.Generator, optional
        Source of every draw (CPU generator); same generator state, same result.
    probability : float
        Probability of each brightness/contrast/saturation/hue coin. ``0`` leaves only the
        HSV round trip (≈ identity for non-negative input).

    Returns
    -------
    Tensor
        ``[B, 3, H, W]`` in the input dtype; a new tensor, the input is not modified.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected [B, 3, H, W] images, got {tuple(images.shape)}")
    params = photometric_params(images.shape[0], generator, probability=probability)
    return apply_photometric(images, params)


def consensus_edges(annotations: np.ndarray) -> np.ndarray:
    """DLM's SSM edge targets: consensus of thick boundaries over the annotations.

    Parameters
    ----------
    annotations : np.ndarray
        ``[A, H, W]`` integer label maps of one image (50-capped, cropped), or ``[H, W]``.

    Returns
    -------
    np.ndarray
        ``[H, W]`` uint8: 1 where more than half of the annotations have a
        ``find_boundaries(mode="thick")`` boundary (edge), 2 where some but at most half do
        (ignored by L_edge), 0 where none do.
    """
    ann = np.asarray(annotations)
    if ann.ndim == 2:
        ann = ann[None]
    if ann.ndim != 3 or ann.shape[0] == 0:
        raise ValueError(f"expected [A, H, W] annotations, got shape {ann.shape}")
    frac = np.mean([find_boundaries(a, mode="thick") for a in ann], axis=0)
    out = np.zeros(frac.shape, dtype=np.uint8)
    out[frac > 0] = 2
    out[frac > 0.5] = 1
    return out
