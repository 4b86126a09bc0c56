"""Prediction files (label maps) and the network input size of a scale, without torch.

``spbench predict`` writes one compressed ``.npz`` per (run, scale): the arrays
``noec/<image_id>`` and ``ec/<image_id>`` (``uint16`` label maps at the original resolution) and
``meta``, a JSON string with the run identity, the scale, ``n_nominal`` and ``image_ids``. This
module reads and writes them with NumPy and :mod:`json` only, so the score and report stages (and
anyone else) can use the files without importing torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spbench.constants import CELL_SIZE
from spbench.errors import UserError
from spbench.io import CorruptFileError, atomic_path

__all__ = [
    "OffGridScaleError",
    "format_scale",
    "load_predictions",
    "network_size",
    "off_grid",
    "save_predictions",
]


class OffGridScaleError(UserError, ValueError):
    """A prediction scale whose network input is not a multiple of the 16-px grid."""


def network_size(
    height: int, width: int, scale: float, base_size: Sequence[int]
) -> tuple[int, int]:
    """Return the network input ``(height, width)`` in pixels for an image at ``scale``.

    Landscape images (``width >= height``) map to ``(short·s, long·s)``, portrait ones to
    ``(long·s, short·s)``; both sides must come out as multiples of the 16-px grid.

    Raises
    ------
    OffGridScaleError
        If a side is not a multiple of 16 (a scale the protocol does not allow for this
        ``predict.base_size``).
    """
    problem = off_grid(scale, base_size)
    if problem:
        raise OffGridScaleError(f"predict.scales: {problem}")
    short, long = base_size
    h, w = (short, long) if width >= height else (long, short)
    return round(h * scale), round(w * scale)


def off_grid(scale: float, base_size: Sequence[int]) -> str | None:
    """Return why ``scale`` gives a network input off the 16-px grid, or None if it does not
    (both orientations have the same two sides, ``base_size`` × ``scale``, in pixels)."""
    short, long = base_size
    sides = [d * scale for d in (short, long)]
    if all(abs(x - round(x)) <= 1e-6 and round(x) % CELL_SIZE == 0 for x in sides):
        return None
    return (
        f"scale {scale:g} gives a {sides[0]:g}×{sides[1]:g} network input, not a multiple of "
        f"{CELL_SIZE} px; choose scales s for which both sides of predict.base_size "
        f"({short}×{long}) times s are multiples of {CELL_SIZE}"
    )


def format_scale(scale: float) -> str:
    """Return the canonical text of a scale used in file names (``0.3``, ``1``, ``1.25``)."""
    return f"{float(scale):.4f}".rstrip("0").rstrip(".")


def load_predictions(
    path: str | os.PathLike[str],
) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a prediction file written by :func:`spbench.predict.predict`.

    Parameters
    ----------
    path
        The ``.npz`` file.

    Returns
    -------
    meta : dict
        Run identity and prediction settings.
    noec, ec : dict of str to numpy.ndarray
        Label maps per image id, without and with enforced connectivity.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    spbench.io.CorruptFileError
        If it exists but cannot be read (truncated archive, bad JSON, missing array); the message
        names the file and says to re-run its prediction job.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the prediction files (.npz) in it")
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            noec = {i: archive[f"noec/{i}"] for i in meta["image_ids"]}
            ec = {i: archive[f"ec/{i}"] for i in meta["image_ids"]}
    except FileNotFoundError:
        raise
    except Exception as err:  # zipfile, zlib and json errors all mean the same thing here
        raise CorruptFileError(
            f"{path} cannot be read ({err}); delete it and re-run its prediction job"
        ) from err
    return meta, noec, ec


def save_predictions(
    path: str | os.PathLike[str],
    meta: dict,
    noec: dict[str, np.ndarray],
    ec: dict[str, np.ndarray],
) -> Path:
    """Write one prediction file atomically, the format :func:`load_predictions` reads.

    ``meta`` must be JSON-serialisable; its ``image_ids`` are set to the keys of ``noec`` (and
    ``ec`` must have the same keys). Returns the path written.
    """
    if list(noec) != list(ec):
        raise ValueError("noec and ec must hold the same image ids, in the same order")
    arrays = {f"noec/{i}": labels for i, labels in noec.items()}
    arrays |= {f"ec/{i}": labels for i, labels in ec.items()}
    arrays["meta"] = np.array(json.dumps({**meta, "image_ids": list(noec)}))
    # Through a file object: given a name, NumPy appends ".npz" to one without it, and the
    # data would miss the temporary file that replaces ``path``.
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        np.savez_compressed(stream, **arrays)
    return Path(path)
