"""Atomic file output and checked input.

Every artefact spbench writes (prepared data, checkpoints, label maps, Parquet, tables, figures)
goes through :func:`atomic_path`: the producer writes to a temporary name in the destination folder
and the file takes its final name only once it is complete, so a killed job never leaves a truncated
file under a name that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spbench.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


class CorruptFileError(UserError, RuntimeError):
    """A file exists but cannot be read back; the message names the file and what to do."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path
        Final destination. Its parent folder is created if needed.
    suffix
        Suffix of the temporary file (defaults to the destination's, so that libraries that pick a
        format from the extension, such as NumPy's ``savez`` or matplotlib, keep working).

    Yields
    ------
    Path
        The temporary path to write to. On an exception it is removed and ``path`` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.",
        suffix=suffix if suffix is not None else final.suffix,
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs should read like any file
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # flush to disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Return where a log that is still being written lives: ``<path>.partial`` (a training
    job's loss log until it finishes; a job stopped early leaves only this one)."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, raising :class:`CorruptFileError` naming the file if it does not parse."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(
            f"{path} is not valid JSON ({err}); delete it and re-run the step that makes it"
        ) from err


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file's bytes as 64 lowercase hex digits (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """Return the code's commit (``<sha>``, ``<sha>+dirty`` or ``"unknown"``).

    ``SPBENCH_GIT_COMMIT`` wins over ``git``, which runs in ``cwd`` (default: spbench's own
    folder, so that a run in another directory still names the code's commit); a tree with
    uncommitted changes to tracked files is marked ``+dirty``.
    """
    if os.environ.get("SPBENCH_GIT_COMMIT"):
        return os.environ["SPBENCH_GIT_COMMIT"]
    cwd = Path(__file__).resolve().parent if cwd is None else cwd
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha
