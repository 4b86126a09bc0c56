"""The prepared on-disk dataset format shared by BSDS500 and the synthetic dataset.

Layout of a prepared dataset folder::

    <root>/dataset.json    manifest: name, format version, decoder, per-split counts, sha256
    <root>/<split>.npz     one NumPy zip per split (train, val, test)

Each split file holds

``ids``
    The image ids, a 1-D unicode array, in the split's order.
``image/<id>``
    The image as an *encoded* byte string (``uint8``, 1-D): the original JPEG for BSDS500, PNG for
    synthetic data. Keeping the original bytes makes the prepared data compact (BSDS500: about
    60 MB instead of 230 MB of pixels) and means every annotation of an image is evaluated on one
    decode, with one recorded decoder (``docs/protocol.md`` §1.5).
``gt/<id>``
    ``uint8`` array ``[A, H, W]``: the A human annotations after the protocol's 50-label cap, as
    0-based labels (0..49). ``H, W`` are the image's size *after* the protocol's crop; the decoded
    image is cropped top-left to this size on load.
``gt_raw/<id>``
    ``uint16`` array ``[A, H, W]``: the raw annotation ids (1..K), cropped the same way, for the
    optional evaluation against uncapped ground truth.

``dataset.json`` is written last, so its presence means the folder is complete; it is the file the
workflow declares as output. Every split file's sha256 is recorded in it and checked on load, so a
truncated or altered file is reported by name instead of being read as data.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spbench import __version__
from spbench.io import CorruptFileError, atomic_path, read_json, sha256_file, write_json

FORMAT_NAME = "spbench-prepared"
FORMAT_VERSION = 1
MANIFEST = "dataset.json"
SPLITS = ("train", "val", "test")
LABEL_CAP = 50


def decoder_name() -> str:
    """Return the name and version of the image decoder used for every prepared image."""
    import PIL
    from PIL import features

    return f"Pillow {PIL.__version__} (libjpeg {features.version('jpg')})"


def decode_image(data: bytes | np.ndarray) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG) to an ``[H, W, 3]`` ``uint8`` RGB array."""
    from PIL import Image

    raw = data.tobytes() if isinstance(data, np.ndarray) else data
    with Image.open(io.BytesIO(raw)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Encode an ``[H, W, 3]`` ``uint8`` array losslessly as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(buf, "PNG")
    return buf.getvalue()


def cap_labels(raw: np.ndarray, cap: int = LABEL_CAP) -> np.ndarray:
    """Apply the upstream 50-label cap to one raw annotation (``docs/protocol.md`` §1.4).

    The distinct raw ids are taken in ascending order; the t-th (t < ``cap``) becomes label t and
    every later id becomes label 0, as SCN's ``convert_label`` (an all-zero one-hot row whose
    arg-max is 0) does.

    Parameters
    ----------
    raw
        Integer label map of any shape (raw BSDS ids are 1..K).
    cap
        Number of ids kept.

    Returns
    -------
    numpy.ndarray
        ``uint8`` labels in ``0..cap-1``, same shape as ``raw``.
    """
    raw = np.asarray(raw)
    if raw.size and raw.min() < 0:
        raise ValueError("annotation labels must be non-negative")
    # A lookup table over the id range is ~10x faster than np.unique's sort on BSDS maps.
    present = np.flatnonzero(np.bincount(raw.ravel(), minlength=1))
    table = np.zeros(present[-1] + 1 if present.size else 1, dtype=np.uint8)
    table[present[:cap]] = np.arange(min(cap, present.size), dtype=np.uint8)
    return table[raw]


@dataclass(frozen=True)
class Sample:
    """One image with all its annotations.

    Attributes
    ----------
    image_id
        The dataset's id of the image (BSDS500: the file stem, e.g. ``"100007"``).
    image
        ``[H, W, 3]`` ``uint8`` RGB pixels, already cropped by the protocol.
    annotations
        ``[A, H, W]`` ``uint8`` 0-based labels after the 50-label cap.
    raw_annotations
        ``[A, H, W]`` raw ids, or ``None`` if the split file has none.
    """

    image_id: str
    image: np.ndarray
    annotations: np.ndarray
    raw_annotations: np.ndarray | None = None

    @property
    def n_annotations(self) -> int:
        """Number of human annotations of this image."""
        return int(self.annotations.shape[0])


@dataclass(frozen=True)
class PreparedSplit:
    """A split of a prepared dataset held in memory.

    Every (image, annotation) pair is one sample of the protocol; :meth:`pairs` enumerates them.
    """

    dataset: str
    split: str
    samples: list[Sample]
    manifest: dict = field(repr=False, default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def n_pairs(self) -> int:
        """Number of (image, annotation) pairs."""
        return sum(s.n_annotations for s in self.samples)

    def pairs(self) -> Iterator[tuple[int, int]]:
        """Yield ``(image_index, annotation_index)`` for every pair, image-major."""
        for i, sample in enumerate(self.samples):
            for k in range(sample.n_annotations):
                yield i, k


def write_split(
    root: str | os.PathLike[str],
    split: str,
    records: Iterable[tuple[str, bytes, np.ndarray, np.ndarray | None]],
) -> dict:
    """Write one split file ``<root>/<split>.npz`` atomically.

    Parameters
    ----------
    root
        Prepared dataset folder.
    split
        Split name (``train``, ``val`` or ``test``).
    records
        ``(image_id, encoded_image_bytes, capped_annotations, raw_annotations_or_None)`` per
        image, annotations shaped ``[A, H, W]``.

    Returns
    -------
    dict
        The split's manifest entry: file name, sha256, number of images and of pairs, and the
        number of annotations whose raw labels exceeded the cap.
    """
    arrays: dict[str, np.ndarray] = {}
    ids: list[str] = []
    n_pairs = 0
    n_capped = 0
    for image_id, encoded, gt, raw in records:
        gt = np.asarray(gt)
        if gt.ndim != 3:
            raise ValueError(f"{split}/{image_id}: annotations must be [A, H, W], got {gt.shape}")
        if gt.min(initial=0) < 0 or gt.max(initial=0) >= LABEL_CAP:
            raise ValueError(f"{split}/{image_id}: capped labels must lie in 0..{LABEL_CAP - 1}")
        ids.append(image_id)
        arrays[f"image/{image_id}"] = np.frombuffer(encoded, dtype=np.uint8)
        arrays[f"gt/{image_id}"] = gt.astype(np.uint8)
        if raw is not None:
            raw = np.asarray(raw)
            if raw.shape != gt.shape:
                raise ValueError(f"{split}/{image_id}: raw and capped annotations differ in shape")
            arrays[f"gt_raw/{image_id}"] = raw.astype(np.uint16)
            n_capped += sum(np.count_nonzero(np.bincount(a.ravel())) > LABEL_CAP for a in raw)
        n_pairs += gt.shape[0]
    arrays["ids"] = np.asarray(ids, dtype=np.str_)
    path = Path(root) / f"{split}.npz"
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "images": len(ids),
        "pairs": n_pairs,
        "annotations_over_cap": int(n_capped),
    }


def write_manifest(
    root: str | os.PathLike[str], name: str, splits: dict[str, dict], **extra
) -> Path:
    """Write ``<root>/dataset.json`` (last, so that it marks a complete folder) and return its path.

    ``extra`` keyword arguments (source, codec, generator settings, ...) are stored verbatim.
    """
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "label_cap": LABEL_CAP,
        "decoder": decoder_name(),
        "created_by": f"spbench {__version__}",
        "splits": splits,
        **extra,
    }
    return write_json(Path(root) / MANIFEST, manifest)


def read_manifest(root: str | os.PathLike[str]) -> dict:
    """Read and check a prepared dataset's manifest.

    Raises
    ------
    FileNotFoundError
        If the folder holds no ``dataset.json`` (the dataset was never prepared, or its
        preparation did not finish), with the command that prepares it.
    CorruptFileError
        If the manifest is not a spbench prepared-dataset manifest of a known version.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {root} is not a prepared dataset. Prepare it first "
            "(`spbench data synthetic --out DIR` or `spbench data bsds500 --out DIR`)."
        )
    manifest = read_json(path)
    if not isinstance(manifest, dict):  # valid JSON, but a list or a number
        raise CorruptFileError(
            f"{path} holds a JSON {type(manifest).__name__}, not a {FORMAT_NAME} manifest; "
            "delete the folder and prepare the dataset again"
        )
    if manifest.get("format") != FORMAT_NAME or manifest.get("format_version") != FORMAT_VERSION:
        raise CorruptFileError(
            f"{path} is not a {FORMAT_NAME} v{FORMAT_VERSION} manifest; re-prepare the dataset"
        )
    return manifest


def load_split(
    root: str | os.PathLike[str],
    split: str,
    *,
    verify: bool = True,
    with_raw: bool = False,
    max_images: int | None = None,
) -> PreparedSplit:
    """Load one split of a prepared dataset into memory.

    Parameters
    ----------
    root
        Prepared dataset folder (holding ``dataset.json``).
    split
        Split name.
    verify
        Check the split file's sha256 against the manifest first (about 0.1 s per 50 MB).
    with_raw
        Also load the raw (uncapped) annotations.
    max_images
        Decode only the first ``max_images`` images in the split's stored (sorted id) order;
        ``None`` decodes them all.

    Returns
    -------
    PreparedSplit
        Decoded, cropped images and their annotations.
    """
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise KeyError(f"{root} has no split {split!r}; it has {sorted(manifest['splits'])}")
    entry = manifest["splits"][split]
    path = Path(root) / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing although {root}/{MANIFEST} lists it; re-prepare"
        )
    if verify and sha256_file(path) != entry["sha256"]:
        raise CorruptFileError(
            f"{path} does not match the sha256 recorded in {root}/{MANIFEST} (truncated or "
            "altered); delete the folder and prepare the dataset again"
        )
    samples = []
    try:
        with np.load(path, allow_pickle=False) as archive:
            for image_id in archive["ids"].tolist()[:max_images]:
                gt = archive[f"gt/{image_id}"]
                image = decode_image(archive[f"image/{image_id}"])
                h, w = gt.shape[1:]
                if image.shape[0] < h or image.shape[1] < w:
                    raise CorruptFileError(
                        f"{path}: image {image_id} decodes to {image.shape[:2]}, smaller than its "
                        f"annotations {gt.shape[1:]}"
                    )
                raw_key = f"gt_raw/{image_id}"
                raw = archive[raw_key] if with_raw and raw_key in archive.files else None
                samples.append(Sample(image_id, image[:h, :w], gt, raw))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise CorruptFileError(f"{path} cannot be read ({err}); re-prepare the dataset") from err
    return PreparedSplit(manifest["name"], split, samples, manifest)
