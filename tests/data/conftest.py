"""Fixtures for the data tests: the real BSDS500 archive, small fake archives, an HTTP server."""

from __future__ import annotations

import filecmp
import hashlib
import io
import os
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

ARCHIVE_ENV = "SPBENCH_BSDS500_ARCHIVE"


# ------------------------------------------------------------------------------- real archive


@pytest.fixture(scope="session")
def bsds500_archive() -> Path:
    """The real BSDS500 archive named by ``$SPBENCH_BSDS500_ARCHIVE``.

    Skips when the variable is unset, except on CI (``CI=true``), where a missing archive fails.
    """
    value = os.environ.get(ARCHIVE_ENV)
    on_ci = os.environ.get("CI", "").lower() == "true"
    if not value:
        if on_ci:
            pytest.fail(f"CI=true but ${ARCHIVE_ENV} is unset; set it to BSR_bsds500_data.tgz")
        pytest.skip(f"${ARCHIVE_ENV} is unset (path of BSR_bsds500.tgz or the data-only copy)")
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        message = f"${ARCHIVE_ENV}={value} does not exist"
        if on_ci:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def prepared_bsds500(bsds500_archive, tmp_path_factory) -> Path:
    """The real BSDS500 prepared once per test session (about 30 s on 2 cores), through the
    command line (``spbench data bsds500``: the archive is copied beside the folder, no network)."""
    from spbench.cli import main

    out = tmp_path_factory.mktemp("bsds500") / "prepared"
    argv = ["data", "bsds500", "--archive", str(bsds500_archive), "--out", str(out)]
    assert main([*argv, "--workers", "2", "--url", "http://127.0.0.1:9/unused.tgz"]) == 0
    assert filecmp.cmp(out.parent / "BSR_bsds500.tgz", bsds500_archive, shallow=False)
    return out


# ---------------------------------------------------------------------------- fake archives


@dataclass
class FakeArchive:
    """A small archive in the BSDS500 layout, with its per-file sha256 list."""

    path: Path
    manifest: dict[str, str]  # path relative to BSR/ -> sha256
    pairs: dict[str, int]
    files: dict[str, bytes] = field(repr=False)  # path relative to BSR/ -> content

    def manifest_file(self, folder: Path) -> Path:
        """Write the sha256 list in ``sha256sum`` format and return its path."""
        path = folder / "fake.sha256"
        path.write_text("".join(f"{h}  {p}\n" for p, h in sorted(self.manifest.items())))
        return path


def jpeg_bytes(height: int, width: int, seed: int = 0) -> bytes:
    """Encode a random ``height``×``width`` RGB image as JPEG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def mat_bytes(segmentations: list[np.ndarray], *, variable: str = "groundTruth") -> bytes:
    """Encode annotations as a MATLAB v5 file with a 1×n cell of structs, as BSDS500 does."""
    from scipy.io import savemat

    cells = np.empty((1, len(segmentations)), dtype=object)
    for k, seg in enumerate(segmentations):
        cells[0, k] = {"Segmentation": seg, "Boundaries": np.zeros(seg.shape, np.uint8)}
    buf = io.BytesIO()
    savemat(buf, {variable: cells})
    return buf.getvalue()


def _segmentation(height: int, width: int, n_labels: int, seed: int) -> np.ndarray:
    """Labels 1..n_labels, each present at least once, in random positions."""
    rng = np.random.default_rng(seed)
    flat = np.concatenate(
        [np.arange(1, n_labels + 1), rng.integers(1, n_labels + 1, height * width - n_labels)]
    )
    return rng.permutation(flat).reshape(height, width).astype(np.uint16)


# Two images per split: one landscape (9×13), one portrait (13×9); 2 or 3 annotations each; the
# first train annotation has 60 labels (over the 50-label cap).
FAKE_LAYOUT = {
    "train": [("1001", 9, 13, [60, 4]), ("1002", 13, 9, [3, 5, 2])],
    "val": [("2001", 9, 13, [2, 7]), ("2002", 13, 9, [4, 4, 4])],
    "test": [("3001", 9, 13, [5, 6]), ("3002", 13, 9, [3, 2])],
}


def build_fake_files(*, layout: dict = FAKE_LAYOUT) -> dict[str, bytes]:
    """Return ``{path relative to BSR/: content}`` of a small BSDS500-like data tree."""
    files: dict[str, bytes] = {}
    seed = 0
    for split, images in layout.items():
        for image_id, height, width, labels in images:
            seed += 1
            files[f"BSDS500/data/images/{split}/{image_id}.jpg"] = jpeg_bytes(height, width, seed)
            segs = [_segmentation(height, width, n, seed * 10 + k) for k, n in enumerate(labels)]
            files[f"BSDS500/data/groundTruth/{split}/{image_id}.mat"] = mat_bytes(segs)
    return files


def pack(path: Path, files: dict[str, bytes], *, prefix: str = "BSR/", fmt: str = "tgz") -> Path:
    """Pack ``files`` (names relative to ``prefix``) as ``.tgz`` or ``.zip`` at ``path``."""
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in sorted(files.items()):
                zf.writestr(prefix + name, data)
        return path
    with tarfile.open(path, "w:gz") as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def make_fake_archive(tmp_path: Path) -> Callable[..., FakeArchive]:
    """Factory for fake archives.

    ``make_fake_archive(name, *, prefix="BSR/", fmt="tgz", replace={path: bytes}, extra={...},
    drop=[...])`` builds the fake tree, records its sha256 list, then applies ``replace`` (content
    changed after the list was made, i.e. an altered file unless ``rehash=True``), ``extra`` and
    ``drop``, and packs it.
    """

    def factory(
        name: str = "fake.tgz",
        *,
        prefix: str = "BSR/",
        fmt: str = "tgz",
        replace: dict[str, bytes] | None = None,
        extra: dict[str, bytes] | None = None,
        drop: tuple[str, ...] = (),
        rehash: bool = False,
    ) -> FakeArchive:
        files = build_fake_files()
        manifest = {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
        files.update(replace or {})
        files.update(extra or {})
        for path in drop:
            files.pop(path)
        if rehash:
            manifest = {
                p: hashlib.sha256(d).hexdigest()
                for p, d in files.items()
                if p.endswith((".jpg", ".mat"))
            }
        pairs = {s: sum(len(i[3]) for i in images) for s, images in FAKE_LAYOUT.items()}
        return FakeArchive(
            pack(tmp_path / name, files, prefix=prefix, fmt=fmt), manifest, pairs, files
        )

    return factory


@pytest.fixture
def fake_archive(make_fake_archive) -> FakeArchive:
    """An intact fake archive (official layout, ``BSR/`` prefix)."""
    return make_fake_archive()


# ------------------------------------------------------------------------------- HTTP server


@dataclass
class Route:
    """How the server answers one path.

    ``mode``: ``"ok"`` (with Range support), ``"404"``, ``"500"`` (for the first ``times``
    requests, then ok), ``"cut"`` (the first ``times`` responses announce the full length but the
    connection is closed after ``cut_after`` bytes; later requests are served normally),
    ``"truncated"`` (the first ``cut_after`` bytes served as if they were the whole file),
    ``"norange"`` (ignores Range requests), ``"stall"`` (the first ``times`` requests wait
    ``delay`` seconds before answering, then are served normally). ``etag``: send an ETag
    (a server may send no validator at all). ``encoding``: a ``Content-Encoding`` header to
    send whatever the client accepts (Apache's ``AddEncoding x-gzip .tgz`` labels a .tgz so).
    """

    data: bytes
    mode: str = "ok"
    cut_after: int = 0
    times: int = 1
    delay: float = 0.0
    etag: bool = True
    encoding: str | None = None


@dataclass
class LoggedRequest:
    path: str
    headers: dict[str, str]
    status: int = 0


class ArchiveServer:
    """Threaded HTTP server on 127.0.0.1 serving in-memory files by :class:`Route`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (``/name``) on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, data: bytes, mode: str = "ok", **kwargs) -> str:
        """Register a route and return its URL."""
        self.routes[path] = Route(data, mode, **kwargs)
        return self.url(path)

    def requests_for(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.log if r.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        try:
            self._respond(h)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to do

    def _respond(self, h: BaseHTTPRequestHandler) -> None:
        entry = LoggedRequest(h.path, {k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.log.append(entry)
            route = self.routes.get(h.path)
            mode = route.mode if route else "404"
            if route and mode in ("500", "cut", "stall"):
                if route.times > 0:
                    route.times -= 1
                else:
                    mode = "ok"
        if mode == "404" or route is None:
            entry.status = 404
            h.send_error(404, "Not Found")
            return
        if mode == "stall":
            time.sleep(route.delay)
            mode = "ok"
        if mode == "500":
            entry.status = 500
            h.send_error(500, "Internal Server Error")
            return
        data = route.data[: route.cut_after] if mode == "truncated" else route.data
        start = 0
        range_header = h.headers.get("Range")
        if range_header and mode not in ("norange", "cut"):
            spec = range_header.removeprefix("bytes=").split("-")
            start = int(spec[0])
            end = int(spec[1]) if spec[1] else len(data) - 1
            if start >= len(data):
                entry.status = 416
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.end_headers()
                return
            body = data[start : end + 1]
            entry.status = 206
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        else:
            body = data
            entry.status = 200
            h.send_response(200)
            h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/gzip")
        h.send_header("Content-Length", str(len(body)))
        if route.etag:
            h.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()[:16]}"')
        if route.encoding:
            h.send_header("Content-Encoding", route.encoding)
        h.end_headers()
        if mode == "cut" and not range_header:
            h.wfile.write(body[: route.cut_after])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(body)


@pytest.fixture
def http_server() -> Iterator[ArchiveServer]:
    """A fresh :class:`ArchiveServer` on 127.0.0.1 (random port), stopped after the test."""
    server = ArchiveServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fake_tools():
    """The fake-archive helpers (``jpeg_bytes``, ``mat_bytes``, ``pack``, ``build_fake_files``)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        jpeg_bytes=jpeg_bytes,
        mat_bytes=mat_bytes,
        pack=pack,
        build_fake_files=build_fake_files,
        layout=FAKE_LAYOUT,
    )
