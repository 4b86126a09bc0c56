"""Prediction stage: a checkpoint's hard superpixel labels at every scale, with and without EC.

Protocol (``docs/protocol.md`` §2–3): each test image is resized with OpenCV bicubic on its
``uint8`` pixels to ``(short·s) × (long·s)`` (320s × 480s for BSDS500, portrait images transposed),
normalised, run once through the network in eval mode (batch 1), turned into hard grid labels
(arg-max over the 9 candidates), and nearest-upsampled back to the original size with PyTorch's
legacy ``nearest`` mode. That map is the "no EC" output; the "EC" output applies the SLIC
enforce-connectivity procedure to it with sizes derived from the grid's cell count.

One compressed ``.npz`` per scale holds ``noec/<image_id>`` and ``ec/<image_id>`` (``uint16``)
and a ``meta`` JSON string (run identity, scale, grid size, device, CPU threads, TF32 flags,
weights).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from spbench import __version__
from spbench.checkpoint import load_checkpoint
from spbench.config import import_method_modules
from spbench.constants import CELL_SIZE
from spbench.data.loader import normalize
from spbench.data.prepared import PreparedSplit, load_split
from spbench.errors import UserError
from spbench.grid import hard_labels
from spbench.metrics import enforce_connectivity
from spbench.models import create_model, get_method
from spbench.predictions import format_scale, network_size, save_predictions
from spbench.train import resolve_device

log = logging.getLogger(__name__)


def upsample_labels(labels: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Nearest-upsample a ``[h, w]`` label map to ``[height, width]`` (PyTorch legacy ``nearest``).

    The legacy mode's source index is ``min(floor(fl32(dst · fl32(in/out))), in − 1)``, which is
    what DLM and SCN evaluate with (``docs/protocol.md`` §2); labels are exact in float32 below 2²⁴.
    """
    up = F.interpolate(labels[None, None].float(), size=(height, width), mode="nearest")
    return up[0, 0].to(torch.int64).cpu().numpy()


@torch.inference_mode()
def predict_image(
    model: torch.nn.Module,
    image: np.ndarray,
    scale: float,
    base_size: Sequence[int],
    device: torch.device,
) -> tuple[np.ndarray, int]:
    """Return the no-EC hard label map at the image's size and the grid's cell count.

    Parameters
    ----------
    model
        A superpixel network in eval mode returning ``SuperpixelOutput``.
    image
        ``[H, W, 3]`` ``uint8`` RGB.
    scale
        Resize factor of the protocol.
    base_size
        ``(short, long)`` network input size at scale 1.

    Returns
    -------
    labels : numpy.ndarray
        ``[H, W]`` int64 grid-cell ids.
    n_cells : int
        Number of grid cells (the nominal superpixel count, ``int(600·s·s)`` for BSDS500).
    """
    height, width = image.shape[:2]
    h_in, w_in = network_size(height, width, scale, base_size)
    resized = cv2.resize(image, (w_in, h_in), interpolation=cv2.INTER_CUBIC)  # cv2 takes (W, H)
    x = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))[None].to(device)
    q = model(normalize(x)).assignment
    labels = hard_labels(q, CELL_SIZE)[0]
    return upsample_labels(labels, height, width), (h_in // CELL_SIZE) * (w_in // CELL_SIZE)


def label_maps(
    samples: Sequence,
    scale: float,
    base_size: Sequence[int],
    *,
    model: torch.nn.Module,
    segment: Callable[[np.ndarray, int], np.ndarray] | None,
    device: torch.device,
    threads: int = 1,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Return each sample's no-EC and EC label maps at one scale, and the grid's cell count.

    A network predicts one image after another (torch already spreads each forward pass over
    the job's threads); a classical method (``segment`` given, e.g. SLIC) segments ``threads``
    images at once, since scikit-image's SLIC and EC release the GIL (1.9x faster on 2 cores).

    Parameters
    ----------
    samples
        Prepared samples (``.image``: ``[H, W, 3]`` ``uint8`` RGB).
    scale, base_size
        As :func:`predict_image`.
    model, device
        The network and its device (unused when ``segment`` is given).
    segment
        A classical method's ``segment(image, n_segments)``, or None for a network.
    threads
        How many images a classical method segments at once.

    Returns
    -------
    maps : list of (numpy.ndarray, numpy.ndarray)
        Per sample, in order, the ``[H, W]`` ``uint16`` labels without and with EC.
    n_cells : int
        The last image's grid cell count (the nominal superpixel count of the scale).
    """

    def label(sample) -> tuple[np.ndarray, np.ndarray, int]:
        if segment is not None:  # a classical method: same superpixel count, no network
            h_in, w_in = network_size(*sample.image.shape[:2], scale, base_size)
            n_cells = (h_in // CELL_SIZE) * (w_in // CELL_SIZE)
            noec = segment(sample.image, n_cells)
        else:
            noec, n_cells = predict_image(model, sample.image, scale, base_size, device)
        ec = enforce_connectivity(noec, n_cells)
        return _storable(noec, sample.image_id), _storable(ec, sample.image_id), n_cells

    if segment is not None and threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            labelled = list(pool.map(label, samples))
    else:
        labelled = [label(sample) for sample in samples]
    n_cells = labelled[-1][2] if labelled else 0
    return [(noec, ec) for noec, ec, _ in labelled], n_cells


def _storable(labels: np.ndarray, image_id: str) -> np.ndarray:
    """Return ``labels`` as the ``uint16`` map a prediction file stores, same partition.

    Ids above 65535 (a plug-in method's hashed or sparse ids) are renumbered ``0..n-1``
    rather than wrapped, which would merge distinct superpixels silently; every metric uses
    the partition only, so none changes.
    """
    limit = np.iinfo(np.uint16).max
    if labels.size and labels.max() > limit:
        ids, inverse = np.unique(labels, return_inverse=True)
        if ids.size > limit + 1:
            raise UserError(
                f"image {image_id}: {ids.size} superpixels in one label map, more than a "
                f"prediction file holds ({limit + 1}); segment it into fewer."
            )
        labels = inverse.reshape(labels.shape)
    return labels.astype(np.uint16)


def predict(
    checkpoint: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    outputs: dict[float, str | os.PathLike[str]],
    *,
    settings: dict,
) -> list[Path]:
    """Predict every image of the configured split at every scale and write one file per scale.

    Parameters
    ----------
    checkpoint
        A spbench checkpoint (:mod:`spbench.checkpoint`; read without running code from it).
    data_root
        Prepared dataset folder.
    outputs
        ``{scale: output .npz path}``; the scales predicted are its keys.
    settings
        The job's settings (split, scales, base_size, max_images; :func:`spbench.jobs.predict_job`)
        and its runtime settings (device, method_modules, threads;
        :func:`spbench.jobs.predict_runtime`). ``threads`` caps the CPU threads of torch and
        OpenCV, whose default of one per core oversubscribes the CPU when jobs run side by side,
        and is how many images a classical method segments at once (:func:`label_maps`).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of ``outputs``.
    """
    import_method_modules(settings.get("method_modules", []))
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
        cv2.setNumThreads(settings["threads"])
    device = resolve_device(settings.get("device", "auto"))
    ckpt = load_checkpoint(checkpoint, map_location=device)
    segment = get_method(ckpt["method"]).segment
    model = create_model(ckpt["method"]).to(device)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:  # the network changed since the checkpoint was trained
        raise UserError(
            f"{checkpoint} does not fit today's {ckpt['method']} network "
            f"({str(err).splitlines()[0]} ...): the method's code changed after training; "
            f"retrain it: delete its checkpoints, or name them to snakemake "
            f"(--forcerun {Path(checkpoint).parent.parent.parent}/*/seed*/*.pt)"
        ) from err
    model.eval()
    split = load_split(data_root, settings["split"], max_images=settings.get("max_images") or None)
    samples = split.samples
    run_meta = _run_meta(ckpt, checkpoint, split, device)
    written = []
    for scale, out in outputs.items():
        maps, n_cells = label_maps(
            samples,
            scale,
            settings["base_size"],
            model=model,
            segment=segment,
            device=device,
            threads=settings.get("threads") or 1,
        )
        ids = [s.image_id for s in samples]
        written.append(
            save_predictions(
                out,
                {**run_meta, "scale": float(scale), "n_nominal": int(n_cells)},
                noec=dict(zip(ids, (noec for noec, _ in maps), strict=True)),
                ec=dict(zip(ids, (ec for _, ec in maps), strict=True)),
            )
        )
        log.info("scale %s: %d images -> %s", format_scale(scale), len(samples), out)
    return written


def _run_meta(
    ckpt: dict, checkpoint: str | os.PathLike[str], split: PreparedSplit, device: torch.device
) -> dict:
    """Return what every prediction file of this run records: the run and how it was predicted."""
    return {
        "method": ckpt["method"],
        "variant": ckpt["variant"],
        "seed": ckpt["seed"],
        "loss_config": ckpt["loss_config"],
        "weights": ckpt["weights"],
        "train_steps": ckpt["step"],
        # train.budget: the fraction of the profile's step counts this run trained (1: all).
        "budget": (ckpt.get("settings") or {}).get("budget", 1),
        "checkpoint": str(checkpoint),
        "dataset": split.dataset,
        "split": split.split,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "spbench_version": __version__,
    }
