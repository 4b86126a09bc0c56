"""Robust download of one file from a list of sources.

:func:`fetch` streams a file over HTTP(S) to ``<dest>.part`` and renames it to ``dest`` only once it
is complete, trying each source in turn.

Why not ``pooch.retrieve``? Its :class:`pooch.HTTPDownloader` (a) restarts from zero after a
broken connection instead of resuming with an HTTP ``Range`` request, which matters for a 70 MB
archive on a flaky link, (b) retries every error the same way, so an offline machine waits through
the full back-off for every URL instead of failing in seconds, and (c) stops at the first failing
URL instead of reporting all of them. The small loop below adds exactly these three things on top
of ``requests`` (which pooch itself uses); hashes are :func:`spbench.io.sha256_file`'s.

Error policy per source
-----------------------
* connection errors (DNS failure, connection refused, connect timeout): the host is unreachable,
  move on to the next source at once, without back-off;
* HTTP 4xx (404, 403, ...): the file is not there, move on at once;
* read timeouts, HTTP 5xx and 429, a connection broken mid-body: transient, retry the same source
  up to ``retries`` times with exponential back-off, resuming from the bytes already received.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spbench.errors import UserError

__all__ = ["DownloadError", "SourceFailure", "fetch", "part_path"]

CHUNK = 1 << 16


class DownloadError(UserError, RuntimeError):
    """No source delivered the file; ``failures`` lists every source tried and why it failed."""

    def __init__(self, message: str, failures: Sequence[SourceFailure] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


@dataclass(frozen=True)
class SourceFailure:
    """One source that did not deliver the file and the reason (human readable)."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class _Transient(Exception):
    """A failure worth retrying on the same source (timeout, 5xx, broken transfer)."""


class _Fatal(Exception):
    """A failure that makes the source useless now (unreachable host, 4xx): try the next one."""


def part_path(dest: Path) -> Path:
    """Return the temporary name used while ``dest`` is being downloaded (``<dest>.part``)."""
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def _install(tmp: Path, dest: Path) -> None:
    """fsync ``tmp`` and rename it to ``dest`` (atomic on one file system)."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, dest)


def copy_local(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` atomically (temporary name, fsync, rename); return ``dest``.

    A copy rather than a hard link: ``dest`` gets its own inode and a fresh modification time,
    so that workflow tools that compare or touch timestamps never alter the (often read-only,
    shared) source. Nothing is written when ``src`` and ``dest`` are the same file.
    """
    src, dest = Path(src), Path(dest)
    if dest.exists() and os.path.samefile(src, dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        _install(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _load_meta(dest: Path) -> dict:
    try:
        return json.loads(_meta_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_meta(dest: Path, meta: dict) -> None:
    _meta_path(dest).write_text(json.dumps(meta), encoding="utf-8")


def _attempt(
    session,
    url: str,
    dest: Path,
    *,
    timeout: float,
    progress: bool,
    check: Callable[[Path], str | None] | None = None,
) -> None:
    """Download ``url`` into ``<dest>.part`` (resuming when possible) and rename it to ``dest``.

    A partial file is resumed with ``Range: bytes=<n>-`` only if it came from the same URL with a
    validator (ETag or Last-Modified, recorded in ``<dest>.part.json``), which ``If-Range`` sends
    so that a file changed on the server is fetched anew. The server may ignore the range
    (status 200): the partial file is then discarded and the download starts over.
    """
    part = part_path(dest)
    meta = _load_meta(dest)
    offset = part.stat().st_size if part.is_file() else 0
    if offset and (meta.get("url") != url or not meta.get("validator")):
        # A partial file from another source, or one the server gave no ETag or Last-Modified
        # for (so If-Range cannot tell whether the file changed since), may be another file's
        # prefix: start over.
        offset = 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    with _request(session, url, headers, timeout) as response:
        offset, total = _body_range(response, offset, part)
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        _save_meta(dest, {"url": url, "validator": validator, "total": total})
        received = _stream_body(response, part, offset, total, desc=dest.name, progress=progress)
    if total is not None and received != total:
        raise _Transient(f"incomplete transfer: {received} of {total} bytes")
    reason = check(part) if check else None
    if reason:
        part.unlink()
        _meta_path(dest).unlink(missing_ok=True)
        raise _Fatal(f"not the file sought: {reason}")
    _install(part, dest)
    _meta_path(dest).unlink(missing_ok=True)


def _request(session, url: str, headers: dict[str, str], timeout: float):
    """Return the streamed response to GET ``url``; raise _Fatal or _Transient if none came."""
    import requests

    # a short connect timeout: an unreachable host is an error to skip, not to wait for
    connect_timeout = min(timeout, 10.0)
    try:
        return session.get(
            url,
            headers=headers,
            stream=True,
            timeout=(connect_timeout, timeout),
            allow_redirects=True,
        )
    except requests.exceptions.ConnectionError as err:  # includes ConnectTimeout, DNS failure
        raise _Fatal(f"cannot connect ({_short(err)})") from err
    except requests.exceptions.Timeout as err:
        raise _Transient(f"timed out after {timeout:g} s") from err
    except requests.exceptions.RequestException as err:
        raise _Fatal(f"request failed ({_short(err)})") from err


def _body_range(response, offset: int, part: Path) -> tuple[int, int | None]:
    """Return (offset, total bytes or None) of the body ``response`` carries, from its status.

    206 continues ``part`` at ``offset``; 200 starts over at 0. A range the server cannot extend
    (416) or answers with another range deletes ``part`` and is transient; 4xx is fatal.
    """
    status = response.status_code
    if status == 416 and offset:
        # the partial file is not a prefix the server can extend: start over
        part.unlink(missing_ok=True)
        raise _Transient("HTTP 416 (range not satisfiable); restarting from zero")
    if status >= 500 or status == 429:
        raise _Transient(f"HTTP {status} {response.reason}")
    if status >= 400:
        raise _Fatal(f"HTTP {status} {response.reason}")
    if status == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            part.unlink(missing_ok=True)
            raise _Transient("server answered the range request with an unexpected range")
        return offset, None if match.group(3) == "*" else int(match.group(3))
    if status == 200:
        length = response.headers.get("Content-Length")
        return 0, int(length) if length and length.isdigit() else None
    raise _Fatal(f"unexpected HTTP {status} {response.reason}")


def _stream_body(
    response, part: Path, offset: int, total: int | None, *, desc: str, progress: bool
) -> int:
    """Write the body to ``part`` (appended after ``offset`` bytes, or anew at offset 0).

    Returns the size of ``part`` in bytes once the body ends.
    """
    import requests
    import urllib3
    from tqdm.auto import tqdm

    received = offset
    bar = tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not progress,
        leave=False,
    )
    try:
        with open(part, "ab" if offset else "wb") as handle:
            # The bytes as sent: a server that labels a .tgz `Content-Encoding: gzip` (Apache's
            # AddEncoding) would otherwise have it unpacked on the way.
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as err:
        # during the body every network error is transient (requests reports a read timeout
        # here as ConnectionError); local write errors (plain OSError) propagate unchanged
        raise _Transient(f"connection broken after {received} bytes ({_short(err)})") from err
    finally:
        bar.close()
    return received


def _short(err: BaseException) -> str:
    text = str(err)
    for pattern in (
        "Name or service not known",
        "Connection refused",
        "Temporary failure in name resolution",
        "No route to host",
        "Network is unreachable",
        "timed out",
    ):
        if pattern in text:
            return pattern
    return text if len(text) < 160 else text[:157] + "..."


def fetch(
    dest: str | os.PathLike[str],
    urls: Sequence[str],
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool = True,
    hint: str = "",
    check: Callable[[Path], str | None] | None = None,
) -> Path:
    """Download a file from the first source in ``urls`` that delivers it.

    Parameters
    ----------
    dest
        Final path of the file. It appears only once complete; meanwhile the data goes to
        ``<dest>.part`` (kept on failure, so that the next call resumes it).
    urls
        HTTP(S) URLs, tried in order.
    timeout
        Seconds to wait for the server to answer or to send the next block (connecting waits at
        most ``min(timeout, 10)`` seconds).
    retries
        Further attempts per source after a transient failure (timeout, 5xx, broken connection).
    backoff
        Wait before the first retry in seconds; doubled for every further retry (capped at 30 s).
    progress
        Show a tqdm progress bar (bytes).
    hint
        Sentence appended to the error message (what to do instead).
    check
        Called on each complete download before it becomes ``dest``; a returned reason (an
        HTML error page served with status 200, a body cut short without a Content-Length)
        discards it and moves on to the next source.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        If no source delivered the file; the message lists every source with its failure.
    """
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[SourceFailure] = []
    with requests.Session() as session:
        session.headers["User-Agent"] = "spbench (+requests)"
        for url in urls:
            for attempt in range(retries + 1):
                try:
                    _attempt(session, url, dest, timeout=timeout, progress=progress, check=check)
                    return dest
                except _Fatal as err:
                    failures.append(SourceFailure(url, str(err)))
                    break
                except _Transient as err:
                    if attempt == retries:
                        failures.append(
                            SourceFailure(url, f"{err} (gave up after {retries + 1} attempts)")
                        )
                        break
                    time.sleep(min(backoff * 2**attempt, 30.0))
    raise DownloadError(_failure_message(dest, failures, hint), failures)


def _failure_message(dest: Path, failures: Sequence[SourceFailure], hint: str) -> str:
    lines = [f"could not obtain {dest.name}; sources tried:"]
    lines += [f"  - {failure}" for failure in failures] or ["  (none given)"]
    if hint:
        lines.append(hint)
    return "\n".join(lines)
