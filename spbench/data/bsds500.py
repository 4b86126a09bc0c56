"""BSDS500: download, verification and preparation into the spbench prepared format.

The Berkeley Segmentation Data Set 500 (P. Arbeláez, M. Maire, C. Fowlkes, J. Malik, "Contour
Detection and Hierarchical Image Segmentation", IEEE TPAMI 33(5), 2011) is provided for research
and education; cite it when you use it.

Steps (``docs/protocol.md`` §1):

1. :func:`download_bsds500` obtains ``BSR_bsds500.tgz`` (a local copy first, else the official
   URLs and mirrors, with resume and retries);
2. :func:`prepare_bsds500` extracts its ``BSDS500/data`` tree safely, checks every file against
   the per-file sha256 list shipped with spbench (:func:`verify_bsds500_tree`), reads every
   annotation, applies the 50-label cap and the train/val crop and writes the prepared dataset
   (:mod:`spbench.data.prepared`).
"""

from __future__ import annotations

import logging
import lzma
import os
import re
import shutil
import signal
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from spbench.data import prepared
from spbench.data.download import DownloadError, copy_local, fetch
from spbench.io import CorruptFileError, sha256_file

log = logging.getLogger(__name__)

__all__ = [
    "ARCHIVE_NAME",
    "EXPECTED_PAIRS",
    "OFFICIAL_URLS",
    "DownloadError",
    "archive_problem",
    "download_bsds500",
    "load_file_manifest",
    "prepare_bsds500",
    "verify_bsds500_tree",
]

ARCHIVE_NAME = "BSR_bsds500.tgz"
OFFICIAL_URLS: tuple[str, ...] = (
    "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
)
#: Published MD5 of the official archive (70,763,455 bytes).
OFFICIAL_MD5 = "0b17383ff0b21fe43d2f28e624203169"
#: sha256 of the project's data-only stand-in ``shared/data/BSR_bsds500_data.tgz``.
DATA_ONLY_SHA256 = "7ddb256c057d2421e26b610ff8fee77e8dee657785938517d51d59868d0e5ce3"

SPLITS = prepared.SPLITS
KINDS = ("images", "groundTruth")
SUFFIX = {"images": ".jpg", "groundTruth": ".mat"}
#: (image, annotation) pairs per split (``docs/protocol.md`` §1.3).
EXPECTED_PAIRS: dict[str, int] = {"train": 1087, "val": 546, "test": 1063}
#: Images per split (``docs/protocol.md`` §1.1).
EXPECTED_IMAGES: dict[str, int] = {"train": 200, "val": 100, "test": 200}
#: Largest data-tree file extracted (the largest BSDS500 file is 0.12 MiB) and the largest total
#: (the 1000 files are 57 MiB): a decompression bomb stops before it fills the disk.
MAX_MEMBER_BYTES = 16 << 20
MAX_TREE_BYTES = 1 << 30
#: Splits cropped top-left by one row and one column (321×481 -> 320×480).
CROPPED_SPLITS = ("train", "val")

CONFIG_HINT = (
    "Set `dataset.bsds500.archive` in the config (or pass `--archive PATH`) to a local copy of "
    f"{ARCHIVE_NAME} (the project's data-only copy shared/data/BSR_bsds500_data.tgz works too)."
)

# Member names of the data tree, with an optional single leading folder (BSR/ in the official
# archive, none in the GitHub copy BIDS/BSDS500, BSDS500-master/ in its zip download).
_MEMBER = re.compile(
    r"^(?:\./)?(?P<prefix>(?:[^/]+/)?)BSDS500/data/(?P<kind>images|groundTruth)/"
    r"(?P<split>train|val|test)/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)$"
)


# --------------------------------------------------------------------------------------- download


def download_bsds500(
    dest: Path,
    *,
    archive: str | Path | None = None,
    urls: Sequence[str] = OFFICIAL_URLS,
    mirrors: Sequence[str] = (),
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = True,
    backoff: float = 1.0,
) -> Path:
    """Obtain the BSDS500 archive at ``dest``.

    An existing local ``archive`` is used first, with no network access: it is copied to ``dest``
    atomically. Otherwise ``urls`` then ``mirrors`` are tried in order (see
    :func:`spbench.data.download.fetch`: streaming, resume with HTTP ``Range``, retries with
    exponential back-off for transient errors only, unreachable hosts and 4xx skipped at once).

    Parameters
    ----------
    dest
        Path of the archive to write; if it is an existing folder, ``dest / "BSR_bsds500.tgz"``.
        An existing file there is reused if it reads as an archive holding the data tree
        (:func:`archive_problem`), and downloaded again if not.
    archive
        Local copy of the archive (official ``BSR_bsds500.tgz``, the data-only copy, or the
        GitHub ``BIDS/BSDS500`` tree packed as ``.tar.gz``/``.zip``).
    urls, mirrors
        HTTP(S) sources, tried in this order.
    timeout
        Seconds without an answer or data before a source counts as timed out.
    retries
        Retries per source after a transient failure.
    progress
        Show a progress bar.
    backoff
        First retry delay in seconds (doubled per retry).

    Returns
    -------
    Path
        The archive's path (``dest``). Its integrity is checked per file by
        :func:`prepare_bsds500`.

    Raises
    ------
    FileNotFoundError
        If ``archive`` is given but does not exist (a mistyped path is never replaced silently
        by an older download).
    CorruptFileError
        If ``archive`` is given but is not an archive holding the data tree; ``dest`` is left
        as it was.
    DownloadError
        If no source delivered the archive; the message lists every source tried with its
        failure and how to point ``dataset.bsds500.archive`` at a local copy.
    """
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / ARCHIVE_NAME
    if archive is not None:
        if not Path(archive).is_file():
            raise FileNotFoundError(
                f"dataset.bsds500.archive (--archive): {archive} does not exist; correct the path, "
                "or set it to null to use the copy already downloaded or the URLs"
            )
        problem = archive_problem(Path(archive))
        if problem:  # refused before it replaces an earlier, good copy at dest
            raise CorruptFileError(
                f"dataset.bsds500.archive (--archive): {archive} {problem}; point it at an "
                f"intact copy of {ARCHIVE_NAME}"
            )
        return copy_local(Path(archive), dest)
    if dest.is_file():
        problem = archive_problem(dest)
        if not problem:
            return dest
        log.warning("%s %s: deleted, downloading it again", dest, problem)
        dest.unlink()
    sources = [*urls, *mirrors]
    try:
        return fetch(
            dest,
            sources,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            progress=progress,
            hint=CONFIG_HINT,
            check=archive_problem,
        )
    except DownloadError as err:
        failures = list(err.failures)
        lines = [f"could not obtain the BSDS500 archive {dest}; sources tried:"]
        lines += [f"  - {failure}" for failure in failures] or ["  (no URL given)"]
        lines += ["  - local archive: not set", CONFIG_HINT]
        raise DownloadError("\n".join(lines), failures) from None


# ------------------------------------------------------------------------------------ verification


def load_file_manifest(manifest: str | os.PathLike[str] | Mapping[str, str] | None = None) -> dict:
    """Read a per-file sha256 list (``sha256sum`` format) into ``{path: sha256}``.

    Paths are made relative to the ``BSDS500/data`` folder (``images/test/100007.jpg``); the
    shipped list (``spbench/resources/bsds500_data.sha256``, paths relative to ``BSR/``) is used
    when ``manifest`` is ``None``. A mapping is taken as is (after the same path normalisation).
    """
    if manifest is None:
        text = resources.files("spbench").joinpath("resources/bsds500_data.sha256").read_text()
        entries = _parse_sha256sum(text, "spbench/resources/bsds500_data.sha256")
    elif isinstance(manifest, Mapping):
        entries = dict(manifest)
    else:
        entries = _parse_sha256sum(Path(manifest).read_text(encoding="utf-8"), str(manifest))
    out = {}
    for path, digest in entries.items():
        rel = path.replace("\\", "/").removeprefix("./")
        rel = re.sub(r"^(?:[^/]+/)?BSDS500/data/", "", rel)
        out[rel] = digest.lower()
    return out


def _parse_sha256sum(text: str, source: str) -> dict[str, str]:
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.match(r"^([0-9a-fA-F]{64}) [ *](.+)$", line.strip())
        if not match:
            raise CorruptFileError(f"{source}:{number}: not a 'sha256  path' line: {line!r}")
        entries[match.group(2)] = match.group(1)
    return entries


def verify_bsds500_tree(
    data_dir: Path,
    *,
    manifest: str | os.PathLike[str] | Mapping[str, str] | None = None,
    source: str | os.PathLike[str] | None = None,
) -> None:
    """Check an extracted ``BSDS500/data`` folder file by file against the sha256 list.

    Every listed image and ground-truth file must exist and match its sha256, and no unlisted
    ``.jpg``/``.mat`` may sit in a split folder. Other files (``Thumbs.db``, the official
    archive's ``bench/`` and ``ucm2/`` folders) are ignored.

    Parameters
    ----------
    data_dir
        The ``.../BSDS500/data`` folder (holding ``images/`` and ``groundTruth/``).
    manifest
        sha256 list to check against (see :func:`load_file_manifest`); default: the shipped list
        of the 1000 official files.
    source
        What the error names as the checked data (the archive ``data_dir`` was extracted from,
        whose temporary folder is gone when the user reads it); default: ``data_dir``.

    Raises
    ------
    CorruptFileError
        Listing the first problems (missing, altered, unexpected files, by name) and their count.
    """
    data_dir = Path(data_dir)
    expected = load_file_manifest(manifest)
    problems: list[str] = []
    for rel, digest in sorted(expected.items()):
        path = data_dir / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif sha256_file(path) != digest:
            problems.append(f"altered (sha256 differs): {rel}")
    for kind in KINDS:
        for split in SPLITS:
            folder = data_dir / kind / split
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                rel = f"{kind}/{split}/{path.name}"
                if path.suffix.lower() in (".jpg", ".mat") and rel not in expected:
                    problems.append(f"unexpected file: {rel}")
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise CorruptFileError(
            f"{source or data_dir} does not match the BSDS500 file list ({len(problems)} "
            f"problem(s) in "
            f"{len(expected)} listed files):\n  {shown}{more}\n"
            "The archive is incomplete or altered: download it again, or point "
            "`dataset.bsds500.archive` (`--archive`) at an intact copy."
        )


# ------------------------------------------------------------------------------------- extraction


def _archive_error(archive: Path, err: BaseException) -> CorruptFileError:
    return CorruptFileError(
        f"{archive} is truncated or not a valid archive ({type(err).__name__}: {err}). Delete it "
        "and download it again, or point `dataset.bsds500.archive` (`--archive`) at an intact "
        f"copy of {ARCHIVE_NAME}."
    )


def _members(archive: Path) -> Iterator[tuple[re.Match, object, object]]:
    """Yield ``(match, opener, member)`` for the data-tree files of a tar or zip archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                match = _MEMBER.match(info.filename)
                if match and not info.is_dir():
                    yield match, zf.open, info
        return
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:  # reads the archive to its end, so truncation is always detected
            match = _MEMBER.match(member.name)
            if match and member.isfile():  # links, devices and folders are never extracted
                yield match, tf.extractfile, member


def archive_problem(archive: Path) -> str | None:
    """Return why ``archive`` cannot be a BSDS500 archive, or None if it can.

    Reads a tar to its end (a gzip cut short fails) and a zip's member list, extracting
    nothing; each file's content is checked by :func:`verify_bsds500_tree` when it is prepared.

    Returns
    -------
    str or None
        ``"is truncated or not a tar or zip archive (...)"``, ``"holds no BSDS500 data tree"``,
        or None.
    """
    try:
        n_files = sum(1 for _ in _members(Path(archive)))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as err:
        return f"is truncated or not a tar or zip archive ({type(err).__name__}: {err})"
    if n_files == 0:
        return "holds no BSDS500/data/{images,groundTruth}/{train,val,test} files"
    return None


def extract_data_tree(archive: Path, into: Path) -> Path:
    """Extract the ``BSDS500/data`` image and ground-truth files of ``archive`` into ``into``.

    Only regular files named ``[<prefix>/]BSDS500/data/{images,groundTruth}/{split}/<name>`` with
    a ``.jpg`` or ``.mat`` suffix are written, each to a path built from the matched parts, so no
    member can write outside ``into`` (no ``..``, absolute names or links are followed).

    Returns
    -------
    Path
        ``into / "BSDS500" / "data"``.

    Raises
    ------
    CorruptFileError
        If the archive is truncated, unreadable, or holds no BSDS500 data tree.
    """
    archive, into = Path(archive), Path(into)
    data_dir = into / "BSDS500" / "data"
    prefix = None
    count = total = 0
    try:
        for match, opener, member in _members(archive):
            if Path(match["name"]).suffix.lower() not in (".jpg", ".mat"):
                continue
            # tar and zip readers stop at the declared size, so checking it bounds what is written
            size = member.size if isinstance(member, tarfile.TarInfo) else member.file_size
            total += size
            if size > MAX_MEMBER_BYTES or total > MAX_TREE_BYTES:
                raise CorruptFileError(
                    f"{archive}: {match.group(0)} declares {size} bytes ({total} so far), more "
                    f"than BSDS500 holds (at most {MAX_MEMBER_BYTES} per file, {MAX_TREE_BYTES} "
                    f"in all): the archive is not BSDS500 or was altered. {CONFIG_HINT}"
                )
            if prefix is None:
                prefix = match["prefix"]
            elif match["prefix"] != prefix:
                raise CorruptFileError(
                    f"{archive} holds two BSDS500 data trees ({prefix!r} and "
                    f"{match['prefix']!r}); use an archive with one"
                )
            target = data_dir / match["kind"] / match["split"] / match["name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            with opener(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            count += 1
    except CorruptFileError:
        raise
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        OSError,
        NotImplementedError,  # a zip compression method Python lacks
        RuntimeError,  # an encrypted zip member
    ) as err:
        raise _archive_error(archive, err) from err
    if count == 0:
        raise CorruptFileError(
            f"{archive} holds no BSDS500/data/{{images,groundTruth}}/{{train,val,test}} files; "
            f"is it {ARCHIVE_NAME}? {CONFIG_HINT}"
        )
    return data_dir


# ------------------------------------------------------------------------------------ preparation


def _read_pair(args: tuple[str, str, str, bool]) -> tuple[str, bytes, np.ndarray, np.ndarray, int]:
    """Read one image and its annotations; return the record for ``write_split``.

    Returns ``(image_id, jpeg_bytes, capped [A, h, w] uint8, raw [A, h, w] uint16, n_over_cap)``
    where ``n_over_cap`` counts annotations with more than 50 segments at full resolution.
    """
    from PIL import Image
    from scipy.io import loadmat

    image_id, jpg, mat, crop = args
    encoded = Path(jpg).read_bytes()
    try:
        with Image.open(Path(jpg)) as img:
            img.load()  # full decode: a corrupt JPEG fails here, not at training time
            width, height = img.size
    except Exception as err:
        raise CorruptFileError(f"{jpg}: not a decodable JPEG image ({err})") from err
    try:
        content = loadmat(mat, simplify_cells=True)
    except Exception as err:
        raise CorruptFileError(f"{mat}: not a readable MATLAB v5 file ({err})") from err
    if "groundTruth" not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise CorruptFileError(f"{mat}: no variable `groundTruth` (found {keys})")
    cells = content["groundTruth"]
    if isinstance(cells, dict):  # a single annotation is simplified to a bare struct
        cells = [cells]
    cells = list(np.atleast_1d(np.asarray(cells, dtype=object)).ravel())
    if not cells:
        raise CorruptFileError(f"{mat}: `groundTruth` holds no annotation")
    capped, raw, over = [], [], 0
    for k, cell in enumerate(cells):
        if not isinstance(cell, dict) or "Segmentation" not in cell:
            raise CorruptFileError(f"{mat}: annotation {k} has no `Segmentation` field")
        seg = np.asarray(cell["Segmentation"])
        if seg.shape != (height, width):
            raise CorruptFileError(
                f"{mat}: annotation {k} is {seg.shape[0]}×{seg.shape[1]} (H×W) but the image "
                f"{Path(jpg).name} is {height}×{width}"
            )
        if not np.issubdtype(seg.dtype, np.integer):
            if not np.array_equal(seg, np.round(seg)):
                raise CorruptFileError(f"{mat}: annotation {k} has non-integer labels")
            seg = seg.astype(np.int64)
        if seg.min() < 0:
            raise CorruptFileError(f"{mat}: annotation {k} has negative labels (min {seg.min()})")
        if seg.max() > np.iinfo(np.uint16).max:
            raise CorruptFileError(f"{mat}: annotation {k} has labels above 65535")
        # the cap runs on the full-resolution map, the crop after it (SCN pre_process_bsd500.py,
        # DLM datasets/BSD.py): an id present only in the dropped row/column still takes a slot
        cap = prepared.cap_labels(seg)
        over += int(np.count_nonzero(np.bincount(seg.ravel())) > prepared.LABEL_CAP)
        if crop:
            cap, seg = cap[:-1, :-1], seg[:-1, :-1]
        capped.append(cap)
        raw.append(seg.astype(np.uint16))
    return image_id, encoded, np.stack(capped), np.stack(raw), over


def _split_jobs(data_dir: Path, split: str) -> list[tuple[str, str, str, bool]]:
    images = {p.stem: p for p in (data_dir / "images" / split).glob("*.jpg")}
    truths = {p.stem: p for p in (data_dir / "groundTruth" / split).glob("*.mat")}
    if set(images) != set(truths):
        lonely = sorted(set(images) ^ set(truths))
        raise CorruptFileError(
            f"{data_dir}: images and groundTruth of split {split!r} differ: {lonely[:5]} have "
            "only one of the two files"
        )
    return [
        (stem, str(images[stem]), str(truths[stem]), split in CROPPED_SPLITS)
        for stem in sorted(images)
    ]


def prepare_bsds500(
    archive: Path,
    out: Path,
    *,
    workers: int = 1,
    manifest: str | os.PathLike[str] | Mapping[str, str] | None = None,
    expected_pairs: Mapping[str, int] | None = EXPECTED_PAIRS,
) -> Path:
    """Turn the BSDS500 archive into a prepared dataset (``docs/protocol.md`` §1).

    Extracts the data tree into a temporary folder beside ``out``, verifies it per file, reads all
    annotations of every image in file order, applies the 50-label cap to the full-resolution map
    and then crops train and val top-left by one row and one column (321×481 -> 320×480, the
    image crop is implied by the annotation shape), keeps test at full resolution, and writes
    ``train/val/test.npz`` and finally ``dataset.json``. Images are stored as the original JPEG
    bytes. On the real archive this takes about 25 s of wall time on 2 idle cores (``workers=2``,
    about 0.6 GB peak memory) and writes about 53 MB.

    Parameters
    ----------
    archive
        ``BSR_bsds500.tgz`` or any tar/zip holding ``[BSR/]BSDS500/data/...``.
    out
        Prepared dataset folder (created).
    workers
        Processes reading the images and annotations.
    manifest
        Per-file sha256 list (default: the shipped list of the official files).
    expected_pairs
        Required (image, annotation) pairs per split, or ``None`` to skip the check.

    Returns
    -------
    Path
        ``out / "dataset.json"``, written only after everything else succeeded.

    Raises
    ------
    FileNotFoundError
        If ``archive`` does not exist.
    CorruptFileError
        For a truncated/invalid archive, a file that fails verification, an undecodable JPEG, a
        ``.mat`` without ``groundTruth``, an image/annotation size mismatch, negative labels, or
        pair counts that differ from ``expected_pairs``; the message names the file.
    """
    archive, out = Path(archive), Path(out)
    if not archive.is_file():
        raise FileNotFoundError(f"BSDS500 archive {archive} not found. {CONFIG_HINT}")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    archive_sha256 = sha256_file(archive)
    tmp = Path(tempfile.mkdtemp(prefix=".bsds500-extract-", dir=out.parent))
    try:
        data_dir = extract_data_tree(archive, tmp)
        verify_bsds500_tree(data_dir, manifest=manifest, source=archive)
        # Only now: a bad archive leaves an earlier prepared folder as it was. From here the
        # folder is incomplete until dataset.json is written again, at the end.
        (out / prepared.MANIFEST).unlink(missing_ok=True)
        splits, counts = _write_splits(data_dir, out, archive, workers, expected_pairs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prepared.write_manifest(
        out,
        "bsds500",
        splits,
        source=_source_record(archive, archive_sha256, manifest),
        codec="original JPEG bytes",
        protocol=_protocol_record(expected_pairs),
        counts=counts,
        preparation_seconds=round(time.perf_counter() - started, 2),
        citation=(
            "P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, Contour Detection and Hierarchical "
            "Image Segmentation, IEEE TPAMI 33(5), 2011"
        ),
    )


def _write_splits(
    data_dir: Path,
    out: Path,
    archive: Path,
    workers: int,
    expected_pairs: Mapping[str, int] | None,
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Read and write every split of the verified tree ``data_dir`` into ``out``.

    Returns each split's manifest entry and its counts (images, pairs, annotations over the
    label cap at full resolution). ``archive`` only names the file in errors.
    """
    splits, counts = {}, {}
    # spawn, not Linux's default fork: forking a process that may hold other threads' locks can
    # deadlock the child (Python 3.12 warns; 3.14 no longer forks by default).
    pool = (
        ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_start)
        if workers > 1
        else None
    )
    try:
        for split in SPLITS:
            jobs = _split_jobs(data_dir, split)
            mapper = pool.map(_read_pair, jobs, chunksize=8) if pool else map(_read_pair, jobs)
            over: list[int] = []

            def records(results=mapper, over=over):
                # a generator, so that only write_split's copy of the split is held in memory
                for image_id, encoded, capped, raw, n_over in results:
                    over.append(n_over)
                    yield image_id, encoded, capped, raw

            entry = prepared.write_split(out, split, records())
            n_pairs = entry["pairs"]
            if expected_pairs is not None and n_pairs != expected_pairs.get(split):
                raise CorruptFileError(
                    f"{archive}: split {split!r} has {n_pairs} (image, annotation) pairs in "
                    f"{entry['images']} images, the protocol expects "
                    f"{expected_pairs.get(split)} (docs/protocol.md §1.3); the archive is "
                    "not the official BSDS500"
                )
            counts[split] = {
                "images": entry["images"],
                "pairs": n_pairs,
                "annotations_over_cap_full_resolution": sum(over),
            }
            splits[split] = entry
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # a stop (SIGTERM, an error) drops queued reads
    return splits, counts


def _worker_start() -> None:
    """Give a reader process the default SIGTERM (it may inherit the CLI's handler), so that
    stopping the command stops its workers at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _source_record(
    archive: Path, sha256: str, manifest: str | os.PathLike[str] | Mapping[str, str] | None
) -> dict:
    """Return the manifest's ``source``: the archive's name, sha256, size and file list."""
    if manifest is None:
        file_list = "spbench/resources/bsds500_data.sha256"
    else:
        file_list = "custom mapping" if isinstance(manifest, Mapping) else str(manifest)
    return {
        "archive": archive.name,
        "sha256": sha256,
        "bytes": archive.stat().st_size,
        "file_list": file_list,
    }


def _protocol_record(expected_pairs: Mapping[str, int] | None) -> dict:
    """Return the manifest's ``protocol``: how samples, the label cap and the crops were made."""
    return {
        "reference": "docs/protocol.md §1",
        "samples": "every (image, annotation) pair; annotations in .mat cell order",
        "label_cap": prepared.LABEL_CAP,
        "label_cap_rule": "raw ids ascending, t-th id -> t for t < 50, later ids -> 0 (SCN)",
        "cap_then_crop": True,
        "crop": {
            "train": "top-left, last row and column dropped (320x480 / 480x320)",
            "val": "top-left, last row and column dropped (320x480 / 480x320)",
            "test": "none (321x481 / 481x321)",
        },
        "expected_pairs": dict(expected_pairs) if expected_pairs is not None else None,
    }
