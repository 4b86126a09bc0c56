"""Tests of the BSDS500 download, verification, preparation and dataset summary."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from spbench.data import bsds500, prepared
from spbench.data.bsds500 import (
    EXPECTED_PAIRS,
    OFFICIAL_URLS,
    download_bsds500,
    prepare_bsds500,
    verify_bsds500_tree,
)
from spbench.data.download import DownloadError, part_path
from spbench.data.summary import summarize_dataset
from spbench.io import CorruptFileError

FAST = {"timeout": 5.0, "retries": 2, "backoff": 0.0, "progress": False}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _archive_bytes(seed: int) -> bytes:
    """A .tgz holding 1 MiB of random bytes as one data-tree file: it reads as a BSDS500
    archive (the download checks that) and is large enough for a cut transfer to leave a
    partial file."""
    content = np.random.default_rng(seed).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("BSR/BSDS500/data/images/test/1.jpg")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return _archive_bytes(1)


# ------------------------------------------------------------------------------------- constants


def test_constants():
    assert len(OFFICIAL_URLS) == 2
    assert OFFICIAL_URLS[0].startswith("http://www.eecs.berkeley.edu/")
    assert OFFICIAL_URLS[1].startswith("https://www2.eecs.berkeley.edu/")
    assert all(u.endswith("/BSR/BSR_bsds500.tgz") for u in OFFICIAL_URLS)
    assert EXPECTED_PAIRS == {"train": 1087, "val": 546, "test": 1063}


def test_shipped_manifest_has_1000_files():
    listed = bsds500.load_file_manifest()
    assert len(listed) == 1000
    assert "images/test/100007.jpg" in listed
    assert sum(p.startswith("groundTruth/") for p in listed) == 500


# -------------------------------------------------------------------------------------- download


def test_download_clean(http_server, payload, tmp_path):
    data = payload
    url = http_server.serve("/BSR_bsds500.tgz", data)
    out = download_bsds500(tmp_path / "dl" / "BSR_bsds500.tgz", urls=[url], **FAST)
    assert out.read_bytes() == data
    assert not part_path(out).exists()
    assert len(http_server.log) == 1


def test_download_into_folder_and_reuse(http_server, payload, tmp_path):
    url = http_server.serve("/a.tgz", payload)
    out = download_bsds500(tmp_path, urls=[url], **FAST)
    assert out == tmp_path / "BSR_bsds500.tgz"
    again = download_bsds500(tmp_path, urls=[url], **FAST)  # complete file: no new request
    assert again == out and len(http_server.log) == 1


def test_download_cut_then_resumed_with_range(http_server, payload, tmp_path):
    data = payload
    cut = len(data) // 2
    url = http_server.serve("/BSR_bsds500.tgz", data, mode="cut", cut_after=cut)
    out = download_bsds500(tmp_path / "BSR_bsds500.tgz", urls=[url], **FAST)
    assert out.read_bytes() == data
    log = http_server.requests_for("/BSR_bsds500.tgz")
    assert len(log) == 2
    assert "range" not in log[0].headers
    # the resume asks for the bytes after those kept (at most one read block short of the cut)
    offset = int(log[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert cut - (1 << 16) <= offset <= cut
    assert log[1].status == 206


def test_partial_file_resumed_by_a_later_call(http_server, payload, tmp_path):
    data = payload
    cut = len(data) // 3
    url = http_server.serve("/x.tgz", data, mode="cut", cut_after=cut, times=10)
    dest = tmp_path / "BSR_bsds500.tgz"
    with pytest.raises(DownloadError):
        download_bsds500(dest, urls=[url], timeout=5, retries=0, backoff=0, progress=False)
    assert not dest.exists()
    kept = part_path(dest).stat().st_size
    assert 0 < kept <= cut
    assert part_path(dest).read_bytes() == data[:kept]
    http_server.routes["/x.tgz"].mode = "ok"
    download_bsds500(dest, urls=[url], **FAST)
    assert dest.read_bytes() == data
    assert http_server.log[-1].headers["range"] == f"bytes={kept}-"
    assert http_server.log[-1].status == 206


def test_no_resume_without_a_validator(http_server, payload, tmp_path):
    """A server that sends neither ETag nor Last-Modified cannot say, through If-Range, whether
    the file changed since the cut: the partial file is not resumed (a resumed splice of two
    versions was once accepted)."""
    old, new = payload, _archive_bytes(2)
    url = http_server.serve("/x.tgz", old, mode="cut", cut_after=len(old) // 3, times=10)
    http_server.routes["/x.tgz"].etag = False
    dest = tmp_path / "BSR_bsds500.tgz"
    with pytest.raises(DownloadError):
        download_bsds500(dest, urls=[url], timeout=5, retries=0, backoff=0, progress=False)
    assert part_path(dest).stat().st_size > 0
    http_server.routes["/x.tgz"].data, http_server.routes["/x.tgz"].mode = new, "ok"
    download_bsds500(dest, urls=[url], **FAST)
    assert dest.read_bytes() == new
    assert "range" not in http_server.log[-1].headers


def test_server_ignoring_range_restarts_cleanly(http_server, payload, tmp_path):
    data = payload
    url = http_server.serve("/x.tgz", data, mode="norange")
    dest = tmp_path / "a.tgz"
    part_path(dest).write_bytes(b"garbage that is not a prefix")
    (dest.with_name(dest.name + ".part.json")).write_text(json.dumps({"url": url}))
    download_bsds500(dest, urls=[url], **FAST)
    assert dest.read_bytes() == data


def test_404_then_second_source(http_server, payload, tmp_path):
    data = payload
    missing = http_server.url("/missing.tgz")
    mirror = http_server.serve("/mirror/BSR_bsds500.tgz", data)
    out = download_bsds500(tmp_path / "a.tgz", urls=[missing], mirrors=[mirror], **FAST)
    assert out.read_bytes() == data
    assert [r.status for r in http_server.log] == [404, 200]  # a 404 is not retried


def test_5xx_is_retried(http_server, payload, tmp_path):
    data = payload
    url = http_server.serve("/x.tgz", data, mode="500", times=2)
    out = download_bsds500(tmp_path / "a.tgz", urls=[url], **FAST)
    assert out.read_bytes() == data
    assert [r.status for r in http_server.log] == [500, 500, 200]


def test_read_timeout_is_retried(http_server, payload, tmp_path):
    url = http_server.serve("/x.tgz", payload, mode="stall", delay=1.5)
    start = time.perf_counter()
    out = download_bsds500(
        tmp_path / "a.tgz", urls=[url], timeout=0.3, retries=2, backoff=0.0, progress=False
    )
    assert out.read_bytes() == payload
    assert len(http_server.log) == 2  # timed out once, then served
    assert time.perf_counter() - start < 5


def test_a_body_that_is_not_the_archive_is_refused_and_the_next_source_tried(
    http_server, payload, tmp_path
):
    """An error page served with status 200, and a body cut short without notice (its
    Content-Length says it is whole), never become the archive: the mirror is used."""
    page = http_server.serve("/page.tgz", b"<html>moved</html>")
    cut = http_server.serve("/cut.tgz", payload, mode="truncated", cut_after=len(payload) // 2)
    good = http_server.serve("/good.tgz", payload)
    dest = tmp_path / "BSR_bsds500.tgz"
    with pytest.raises(DownloadError) as info:
        download_bsds500(dest, urls=[page, cut], **FAST)
    reasons = [failure.reason for failure in info.value.failures]
    assert all(r.startswith("not the file sought: is truncated or not a tar") for r in reasons)
    assert len(http_server.log) == 2  # not retried: the same source gives the same bytes
    assert not dest.exists() and not part_path(dest).exists()
    assert download_bsds500(dest, urls=[page, good], **FAST).read_bytes() == payload


def test_a_reused_download_that_is_not_the_archive_is_fetched_again(http_server, payload, tmp_path):
    dest = tmp_path / "BSR_bsds500.tgz"
    dest.write_bytes(b"<html>an error page saved by an older version</html>")
    url = http_server.serve("/x.tgz", payload)
    assert download_bsds500(dest, urls=[url], **FAST).read_bytes() == payload


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip"])
def test_a_tgz_labelled_content_encoding_gzip_is_saved_as_sent(
    http_server, payload, tmp_path, encoding
):
    """Apache's `AddEncoding x-gzip .tgz` labels the archive itself as gzip-encoded; unpacking
    it on the way once made every attempt fail as an incomplete transfer."""
    url = http_server.serve("/x.tgz", payload, encoding=encoding)
    out = download_bsds500(tmp_path / "a.tgz", urls=[url], **FAST)
    assert out.read_bytes() == payload


def test_a_local_archive_that_is_not_one_leaves_the_earlier_copy(payload, tmp_path):
    dest = tmp_path / "BSR_bsds500.tgz"
    dest.write_bytes(payload)
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(CorruptFileError, match=r"bad\.tgz is truncated or not a tar"):
        download_bsds500(dest, archive=bad, urls=[], **FAST)
    assert dest.read_bytes() == payload


def test_local_archive_used_without_network(http_server, fake_archive, tmp_path):
    url = http_server.serve("/x.tgz", b"never fetched")
    out = download_bsds500(tmp_path / "dl" / "a.tgz", archive=fake_archive.path, urls=[url], **FAST)
    assert out.read_bytes() == fake_archive.path.read_bytes()
    assert http_server.log == []
    # the same file as destination is left alone
    assert download_bsds500(out, archive=out, urls=[url], **FAST) == out


def test_offline_without_archive_fails_fast(closed_port, tmp_path):
    urls = [
        f"http://127.0.0.1:{closed_port}/BSR_bsds500.tgz",
        "http://bsds500.invalid/BSR_bsds500.tgz",  # .invalid never resolves (RFC 6761)
    ]
    mirrors = [f"http://127.0.0.1:{closed_port}/mirror/BSR_bsds500.tgz"]
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        # the default timeout, retries and back-off: connection errors must not wait for them
        download_bsds500(tmp_path / "a.tgz", urls=urls, mirrors=mirrors, progress=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"offline failure took {elapsed:.1f} s"
    message = str(info.value)
    for url in [*urls, *mirrors]:
        assert url in message
    assert "dataset.bsds500.archive" in message and "--archive" in message
    assert "local archive: not set" in message
    assert len(info.value.failures) == 3
    assert not (tmp_path / "a.tgz").exists()


def test_a_configured_archive_that_is_missing_is_an_error(tmp_path):
    """A mistyped ``dataset.bsds500.archive`` once returned the archive downloaded earlier, as if
    it were the one configured."""
    old = tmp_path / "BSR_bsds500.tgz"
    old.write_bytes(b"an earlier download")
    with pytest.raises(FileNotFoundError, match=r"dataset\.bsds500\.archive .*typo/new\.tgz"):
        download_bsds500(old, archive=tmp_path / "typo/new.tgz", urls=[], progress=False)
    assert old.read_bytes() == b"an earlier download"


def test_download_real_archive_and_verify(http_server, bsds500_archive, tmp_path):
    data = bsds500_archive.read_bytes()
    url = http_server.serve("/BSR_bsds500.tgz", data)
    out = download_bsds500(tmp_path / "BSR_bsds500.tgz", urls=[url], **FAST)
    assert _sha(out.read_bytes()) == _sha(data)
    data_dir = bsds500.extract_data_tree(out, tmp_path / "x")
    verify_bsds500_tree(data_dir)  # all 1000 files against the shipped list


# ------------------------------------------------------------------------------------ verification


def _extract(fake, tmp_path):
    return bsds500.extract_data_tree(fake.path, tmp_path / "tree")


def test_verify_fake_tree_ok(fake_archive, tmp_path):
    data_dir = _extract(fake_archive, tmp_path)
    (data_dir / "images" / "train" / "Thumbs.db").write_bytes(b"ignored")
    (data_dir.parent / "ucm2").mkdir()
    (data_dir.parent / "ucm2" / "x.mat").write_bytes(b"ignored")
    verify_bsds500_tree(data_dir, manifest=fake_archive.manifest)
    verify_bsds500_tree(data_dir, manifest=fake_archive.manifest_file(tmp_path))


def test_verify_reports_missing_altered_and_extra(fake_archive, tmp_path):
    data_dir = _extract(fake_archive, tmp_path)
    (data_dir / "images" / "val" / "2001.jpg").unlink()
    (data_dir / "groundTruth" / "test" / "3002.mat").write_bytes(b"altered")
    (data_dir / "images" / "test" / "9999.jpg").write_bytes(b"extra")
    with pytest.raises(CorruptFileError) as info:
        verify_bsds500_tree(data_dir, manifest=fake_archive.manifest)
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "missing: images/val/2001.jpg" in message
    assert "altered (sha256 differs): groundTruth/test/3002.mat" in message
    assert "unexpected file: images/test/9999.jpg" in message
    assert "dataset.bsds500.archive" in message


def test_verify_against_shipped_list_fails_on_fake(fake_archive, tmp_path):
    data_dir = _extract(fake_archive, tmp_path)
    with pytest.raises(CorruptFileError, match=r"and \d+ more"):
        verify_bsds500_tree(data_dir)


# ------------------------------------------------------------------------------------- preparation


def _prepare(fake, out, **kwargs):
    return prepare_bsds500(
        fake.path, out, manifest=fake.manifest, expected_pairs=fake.pairs, **kwargs
    )


@pytest.mark.parametrize(
    ("prefix", "fmt"), [("BSR/", "tgz"), ("", "tgz"), ("BSDS500-master/", "zip")]
)
def test_prepare_fake_archive(make_fake_archive, fake_tools, tmp_path, prefix, fmt):
    fake = make_fake_archive(f"a.{fmt}", prefix=prefix, fmt=fmt)
    out = tmp_path / "prepared"
    manifest_path = _prepare(fake, out)
    assert manifest_path == out / "dataset.json"
    manifest = prepared.read_manifest(out)
    assert manifest["name"] == "bsds500"
    assert manifest["source"]["archive"] == fake.path.name
    assert manifest["source"]["sha256"] == _sha(fake.path.read_bytes())
    assert manifest["protocol"]["label_cap"] == 50
    assert not list(tmp_path.glob(".bsds500-extract-*"))  # temp folder removed
    for split, images in fake_tools.layout.items():
        data = prepared.load_split(out, split, with_raw=True)
        assert data.n_pairs == fake.pairs[split] == manifest["counts"][split]["pairs"]
        for sample, (image_id, h, w, labels) in zip(data.samples, images, strict=True):
            assert sample.image_id == image_id
            crop = 1 if split in ("train", "val") else 0
            assert sample.annotations.shape == (len(labels), h - crop, w - crop)
            assert sample.image.shape == (h - crop, w - crop, 3)
            assert sample.annotations.dtype == np.uint8 and sample.annotations.max() < 50
            raw = sample.raw_annotations
            # capped = raw - 1 below the cap, 0 for raw ids >= 51 (contiguous ids 1..K)
            expected = np.where(raw <= 50, raw.astype(int) - 1, 0)
            np.testing.assert_array_equal(sample.annotations, expected)
        # the stored image is the original JPEG, byte for byte
        with np.load(out / f"{split}.npz") as npz:
            key = f"BSDS500/data/images/{split}/{images[0][0]}.jpg"
            assert npz[f"image/{images[0][0]}"].tobytes() == fake.files[key]
    assert manifest["counts"]["train"]["annotations_over_cap_full_resolution"] == 1


def test_prepare_with_workers(fake_archive, tmp_path, monkeypatch):
    start_methods = []

    class RecordingPool(bsds500.ProcessPoolExecutor):
        def __init__(self, *args, mp_context=None, **kwargs):
            start_methods.append(mp_context.get_start_method() if mp_context else None)
            super().__init__(*args, mp_context=mp_context, **kwargs)

    monkeypatch.setattr(bsds500, "ProcessPoolExecutor", RecordingPool)
    _prepare(fake_archive, tmp_path / "p1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # Python >= 3.12 on fork with threads
        _prepare(fake_archive, tmp_path / "p2", workers=2)
    # Forking this (threaded) process could deadlock a reader; spawned readers cannot inherit locks.
    assert start_methods == ["spawn"]
    for split in prepared.SPLITS:
        a = prepared.load_split(tmp_path / "p1", split)
        b = prepared.load_split(tmp_path / "p2", split)
        for x, y in zip(a.samples, b.samples, strict=True):
            np.testing.assert_array_equal(x.annotations, y.annotations)


def test_prepare_truncated_archive(fake_archive, tmp_path):
    """A truncated archive is refused naming it, and an earlier prepared folder in the same
    place keeps its dataset.json (it was once removed before the archive was read)."""
    out = tmp_path / "prepared"
    _prepare(fake_archive, out)
    data = fake_archive.path.read_bytes()
    archive = tmp_path / "t.tgz"
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError) as info:
        _prepare(
            fake_archive.__class__(archive, fake_archive.manifest, fake_archive.pairs, {}), out
        )
    assert "t.tgz" in str(info.value) and "truncated" in str(info.value)
    assert prepared.load_split(out, "test").samples  # the earlier folder is still whole
    assert not list(tmp_path.glob(".bsds500-extract-*"))


def test_prepare_altered_file(make_fake_archive, fake_tools, tmp_path):
    key = "BSDS500/data/groundTruth/val/2002.mat"
    fake = make_fake_archive(replace={key: fake_tools.mat_bytes([np.ones((13, 9), np.uint16)])})
    out = tmp_path / "prepared"
    with pytest.raises(CorruptFileError, match=r"altered .*groundTruth/val/2002\.mat"):
        _prepare(fake, out)
    assert not (out / "dataset.json").exists()


def test_prepare_over_an_earlier_folder(make_fake_archive, fake_archive, tmp_path):
    """An archive that fails verification leaves an earlier prepared folder whole; a failure
    once the splits are being rewritten leaves no dataset.json claiming they are complete."""
    out = tmp_path / "prepared"
    _prepare(fake_archive, out)
    bad = make_fake_archive("bad.tgz", drop=("BSDS500/data/images/test/3001.jpg",))
    with pytest.raises(CorruptFileError, match=r"missing: images/test/3001\.jpg"):
        _prepare(bad, out)
    assert prepared.load_split(out, "test").samples
    with pytest.raises(CorruptFileError, match=r"'train' has 5 .*expects 1087"):
        prepare_bsds500(fake_archive.path, out, manifest=fake_archive.manifest)
    assert not (out / "dataset.json").exists()


def test_prepare_pair_count_check(fake_archive, tmp_path):
    with pytest.raises(CorruptFileError, match=r"'train' has 5 .*expects 1087"):
        prepare_bsds500(fake_archive.path, tmp_path / "p", manifest=fake_archive.manifest)
    assert not (tmp_path / "p" / "dataset.json").exists()


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("bad_jpeg", r"images/train/1001.jpg: not a decodable JPEG"),
        ("no_gt", r"groundTruth/train/1001.mat: no variable `groundTruth` \(found \['gt'\]\)"),
        ("size", r"groundTruth/train/1001.mat: annotation 0 is 8×13 .* is 9×13"),
        ("negative", r"groundTruth/train/1001.mat: annotation 1 has negative labels"),
    ],
)
def test_prepare_bad_content_names_the_file(make_fake_archive, fake_tools, tmp_path, case, match):
    jpg, mat = "BSDS500/data/images/train/1001.jpg", "BSDS500/data/groundTruth/train/1001.mat"
    seg = np.ones((9, 13), np.uint16)
    replace = {
        "bad_jpeg": {jpg: b"\xff\xd8 this is not a JPEG"},
        "no_gt": {mat: fake_tools.mat_bytes([seg], variable="gt")},
        "size": {mat: fake_tools.mat_bytes([seg[:8]])},
        "negative": {mat: fake_tools.mat_bytes([seg, -np.ones((9, 13), np.int16)])},
    }[case]
    fake = make_fake_archive(replace=replace, rehash=True)
    out = tmp_path / "prepared"
    with pytest.raises(CorruptFileError, match=match):
        prepare_bsds500(fake.path, out, manifest=fake.manifest, expected_pairs=None)
    assert not (out / "dataset.json").exists()


def test_extraction_is_safe(fake_tools, tmp_path):
    files = fake_tools.build_fake_files()
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo("BSR/" + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name in (
            "../evil.jpg",
            "/tmp/evil.jpg",
            "BSR/BSDS500/data/images/train/../../../../../evil.jpg",
        ):
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("BSR/BSDS500/data/images/train/link.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    into = tmp_path / "a" / "b"
    data_dir = bsds500.extract_data_tree(archive, into)
    written = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert written == sorted(files)
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "a" / "evil.jpg").exists()
    assert not (data_dir / "images" / "train" / "link.jpg").exists()


def test_a_decompression_bomb_stops_at_the_size_cap(fake_tools, tmp_path, monkeypatch):
    """One member declaring more than any BSDS500 file (or members summing to more than the
    whole tree) stops extraction before writing it, naming the archive and the member."""
    monkeypatch.setattr(bsds500, "MAX_MEMBER_BYTES", 1 << 16)
    bomb = fake_tools.pack(
        tmp_path / "bomb.tgz", {"BSDS500/data/images/train/100075.jpg": bytes(1 << 20)}
    )
    with pytest.raises(CorruptFileError, match=r"bomb\.tgz: .*100075\.jpg declares 1048576 bytes"):
        prepare_bsds500(bomb, tmp_path / "p")
    assert not list(tmp_path.glob(".bsds500-extract-*"))
    monkeypatch.setattr(bsds500, "MAX_TREE_BYTES", 100)
    files = fake_tools.build_fake_files()
    with pytest.raises(CorruptFileError, match=r"in all\)"):
        bsds500.extract_data_tree(fake_tools.pack(tmp_path / "many.tgz", files), tmp_path / "x")


def test_a_failed_check_names_the_archive(make_fake_archive, fake_tools, tmp_path):
    """The message names the archive, not the temporary folder it was extracted to (deleted by
    the time the user reads it)."""
    key = "BSDS500/data/groundTruth/val/2002.mat"
    fake = make_fake_archive(replace={key: fake_tools.mat_bytes([np.ones((13, 9), np.uint16)])})
    with pytest.raises(CorruptFileError) as info:
        _prepare(fake, tmp_path / "prepared")
    assert str(info.value).startswith(f"{fake.path} does not match the BSDS500 file list")
    assert ".bsds500-extract-" not in str(info.value)


def test_an_encrypted_zip_names_the_file(fake_tools, tmp_path):
    """An encrypted zip member (RuntimeError in zipfile) gets the archive error, naming the
    file and what to do, not a bare exception."""
    archive = fake_tools.pack(tmp_path / "locked.zip", fake_tools.build_fake_files(), fmt="zip")
    raw = bytearray(archive.read_bytes())
    for offset in range(len(raw) - 8):  # set the "encrypted" flag of every member header
        if raw[offset : offset + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
            raw[offset + (6 if raw[offset + 2] == 3 else 8)] |= 1
    archive.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"locked\.zip is truncated or not a valid"):
        bsds500.extract_data_tree(archive, tmp_path / "x")


def test_archive_without_data_tree(tmp_path, fake_tools):
    archive = fake_tools.pack(tmp_path / "other.tgz", {"README": b"x"}, prefix="")
    with pytest.raises(CorruptFileError, match="holds no BSDS500/data"):
        prepare_bsds500(archive, tmp_path / "p")


def test_missing_archive_names_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset\.bsds500\.archive"):
        prepare_bsds500(tmp_path / "absent.tgz", tmp_path / "p")


# ------------------------------------------------------------------------------------------ summary


def test_summarize_fake(fake_archive, tmp_path):
    out = tmp_path / "prepared"
    _prepare(fake_archive, out)
    frame = summarize_dataset(out, tmp_path / "s" / "summary.parquet", tmp_path / "s" / "fig.png")
    assert len(frame) == sum(fake_archive.pairs.values())
    assert list(frame.columns) == [
        "split",
        "image_id",
        "annotation",
        "height",
        "width",
        "n_labels",
        "n_labels_raw",
        "over_cap",
    ]
    first = frame.iloc[0]
    assert (first.split, first.image_id, first.annotation) == ("train", "1001", 0)
    assert (first.height, first.width) == (8, 12)
    assert first.n_labels <= 50 and bool(first.over_cap) == (first.n_labels_raw > 50)
    back = pd.read_parquet(tmp_path / "s" / "summary.parquet")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert (tmp_path / "s" / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".")]


def test_summarize_without_raw_labels(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    gt = rng.integers(0, 4, (2, 6, 7), dtype=np.uint8)
    splits = {
        s: prepared.write_split(tmp_path, s, [("a", prepared.encode_png(image), gt, None)])
        for s in ("train", "test")
    }
    prepared.write_manifest(tmp_path, "synthetic", splits)
    frame = summarize_dataset(tmp_path, tmp_path / "s.parquet")
    assert len(frame) == 4
    assert frame["n_labels_raw"].isna().all() and frame["over_cap"].isna().all()
    assert frame["n_labels"].tolist() == [len(np.unique(g)) for g in gt] * 2


# ------------------------------------------------------------------------------------- real archive


@pytest.fixture(scope="module")
def annotation_counts(bsds500_archive) -> dict[str, dict]:
    """Per split, counted straight from the archive with ``scipy.io`` (not spbench's reader):
    annotations, annotations with more than 50 segments, and images per number of annotators."""
    from scipy.io import loadmat

    counts = {s: {"pairs": 0, "over_cap": 0, "annotators": Counter()} for s in EXPECTED_PAIRS}
    with tarfile.open(bsds500_archive) as tf:
        for member in tf:
            parts = member.name.split("/")
            if "groundTruth" not in parts or not member.name.endswith(".mat"):
                continue
            split = parts[parts.index("groundTruth") + 1]
            cells = loadmat(io.BytesIO(tf.extractfile(member).read()), simplify_cells=True)
            annotations = [c["Segmentation"] for c in cells["groundTruth"]]
            counts[split]["pairs"] += len(annotations)
            counts[split]["over_cap"] += sum(np.unique(a).size > 50 for a in annotations)
            counts[split]["annotators"][len(annotations)] += 1
    return counts


@pytest.mark.slow
def test_annotation_counts_match_the_archive(annotation_counts):
    """The expected counts equal what scipy reads, and the protocol's annotator histogram
    (3 images with 4 annotators, 345 with 5, 114 with 6, 30 with 7, 7 with 8, 1 with 9)."""
    assert EXPECTED_PAIRS == {s: c["pairs"] for s, c in annotation_counts.items()}
    total = sum((c["annotators"] for c in annotation_counts.values()), start=Counter())
    assert dict(total) == {4: 3, 5: 345, 6: 114, 7: 30, 8: 7, 9: 1}
    assert sum(n * k for k, n in total.items()) == 2696


@pytest.mark.slow
def test_prepare_real_archive(prepared_bsds500, annotation_counts):
    out = prepared_bsds500
    prep_s = prepared.read_manifest(out)["preparation_seconds"]
    size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    manifest = prepared.read_manifest(out)
    over = {split: c["over_cap"] for split, c in annotation_counts.items()}
    assert over == {"train": 74, "val": 25, "test": 85}  # docs/protocol.md §1.4
    for split, pairs in EXPECTED_PAIRS.items():
        assert manifest["splits"][split]["pairs"] == pairs
        assert manifest["counts"][split]["annotations_over_cap_full_resolution"] == over[split]
    assert manifest["splits"]["train"]["images"] == 200
    assert manifest["splits"]["val"]["images"] == 100
    assert manifest["splits"]["test"]["images"] == 200
    shapes = {
        "train": {(320, 480), (480, 320)},
        "val": {(320, 480), (480, 320)},
        "test": {(321, 481), (481, 321)},
    }
    with np.load(out / "train.npz") as npz:
        gt = npz[f"gt/{npz['ids'][0]}"]
        raw = npz[f"gt_raw/{npz['ids'][0]}"]
        assert gt.dtype == np.uint8 and raw.dtype == np.uint16 and raw.min() >= 1
    for split in ("train", "val"):
        data = prepared.load_split(out, split)
        assert {s.annotations.shape[1:] for s in data.samples} == shapes[split]
        assert all(s.image.shape[:2] == s.annotations.shape[1:] for s in data.samples)
        assert max(int(s.annotations.max()) for s in data.samples) == 49
        assert min(int(s.annotations.min()) for s in data.samples) == 0
    start = time.perf_counter()
    test = prepared.load_split(out, "test", with_raw=True)
    load_s = time.perf_counter() - start
    assert test.n_pairs == 1063 and len(test) == 200
    assert {s.image.shape[:2] for s in test.samples} == shapes["test"]
    n_annotators = [s.n_annotations for s in test.samples]
    assert min(n_annotators) >= 4 and max(n_annotators) <= 9
    print(f"\nprepare: {prep_s:.1f} s, {size_mb:.1f} MB; load_split(test): {load_s:.2f} s")


# ------------------------------------------------------------------------------ command line


def _cli(argv: list[str]) -> int:
    from spbench.cli import main

    return main(["data", *map(str, argv)])


def test_cli_download_fetches_the_given_url(http_server, fake_archive, tmp_path, capsys):
    data = fake_archive.path.read_bytes()
    url = http_server.serve("/BSR_bsds500.tgz", data)
    dest = tmp_path / "dl/BSR_bsds500.tgz"
    dest.parent.mkdir()
    argv = ["download-bsds500", "--url", url, "--out", dest, "--retries", "0", "--timeout", "5"]
    assert _cli(argv) == 0
    assert dest.read_bytes() == data
    assert str(dest) in capsys.readouterr().out
    assert [r.status for r in http_server.requests_for("/BSR_bsds500.tgz")] == [200]


def test_cli_download_into_a_new_folder_given_with_a_slash(fake_archive, tmp_path):
    """`--out new/` once wrote the archive as a file named `new`."""
    assert (
        _cli(["download-bsds500", "--archive", fake_archive.path, "--out", f"{tmp_path}/new/"]) == 0
    )
    assert (tmp_path / "new/BSR_bsds500.tgz").read_bytes() == fake_archive.path.read_bytes()


def test_cli_download_copies_a_local_archive_without_network(fake_archive, closed_port, tmp_path):
    dest = tmp_path / "copy.tgz"
    url = f"http://127.0.0.1:{closed_port}/never.tgz"
    assert (
        _cli(["download-bsds500", "--archive", fake_archive.path, "--url", url, "--out", dest]) == 0
    )
    assert dest.read_bytes() == fake_archive.path.read_bytes()


def test_cli_download_names_every_source_when_all_fail(closed_port, tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port}/gone.tgz"
    argv = ["download-bsds500", "--url", url, "--out", tmp_path / "a.tgz", "--retries", "0"]
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("spbench data: error: could not obtain the BSDS500 archive")
    assert url in err and "Traceback" not in err
    assert not (tmp_path / "a.tgz").exists()


def test_cli_prepare_needs_an_archive(tmp_path, capsys):
    assert _cli(["prepare-bsds500", "--out", tmp_path / "prepared"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spbench data: error: --archive is required") and "Traceback" not in err


def test_cli_prepare_refuses_an_archive_that_fails_verification(fake_archive, tmp_path, capsys):
    """The fake tree is not the real one: its files are not in the shipped sha256 list."""
    assert _cli(["prepare-bsds500", "--archive", fake_archive.path, "--out", tmp_path / "p"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spbench data: error:") and "Traceback" not in err
    assert "missing: groundTruth/test/" in err and "--archive" in err
    assert not (tmp_path / "p" / "dataset.json").exists()
