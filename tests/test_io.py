"""Atomic outputs: a failed writer never leaves a file under the final name."""

import hashlib
import json
import os

import pytest

from spbench.io import CorruptFileError, atomic_path, read_json, sha256_file, write_json


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert os.stat(target).st_mode & 0o044  # readable by others, not mkstemp's 0600
    assert list(target.parent.iterdir()) == [target]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_read_json_names_a_corrupt_file(tmp_path):
    write_json(tmp_path / "ok.json", {"a": 1})
    assert read_json(tmp_path / "ok.json") == {"a": 1}
    (tmp_path / "bad.json").write_text(json.dumps({"a": 1})[:-2])
    with pytest.raises(CorruptFileError, match=r"bad\.json"):
        read_json(tmp_path / "bad.json")


def test_sha256_file_reads_in_blocks(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 700_000)  # 2.1 MB: three 1 MiB blocks
    assert sha256_file(path) == hashlib.sha256(b"abc" * 700_000).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
