"""Provenance of a run's checkpoints (``spbench report provenance``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from spbench.checkpoint import CHECKPOINT_FORMAT
from spbench.report.provenance import checkpoint_provenance, git_commit, write_provenance


def _checkpoint(path: Path, **fields) -> Path:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "method": "scn",
        "variant": "lap",
        "seed": 1,
        "stage": "main",
        "weights": "trained here, random init",
        "step": 2000,
        "wall_time_s": 9.0,
        "device": "cuda",
        "device_name": "NVIDIA H100 80GB HBM3",
        "fast_modes": "bf16+cuda_graph",
        "finished": "2026-11-25T03:00:00+00:00",
        "spbench_version": "0.1.0",
        "torch_version": "2.11.0",
        "model": {},
        **fields,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def test_rows_and_step_time(tmp_path: Path) -> None:
    a = _checkpoint(tmp_path / "a.pt")
    b = _checkpoint(tmp_path / "b.pt", variant="base", step=0, wall_time_s=0.0)
    frame = checkpoint_provenance([a, b])
    assert frame["variant"].tolist() == ["lap", "base"]
    assert frame["ms_per_step"].iloc[0] == pytest.approx(4.5)  # 9 s / 2000 steps
    assert pd.isna(frame["ms_per_step"].iloc[1])  # nothing trained (a parameter-free method)
    assert frame["device_name"].iloc[0] == "NVIDIA H100 80GB HBM3"


def test_rows_state_the_training_budget(tmp_path: Path) -> None:
    full = _checkpoint(tmp_path / "full.pt", settings={"steps": 2000})
    tenth = _checkpoint(tmp_path / "tenth.pt", settings={"steps": 200, "budget": 0.1})
    assert checkpoint_provenance([full, tenth])["budget"].tolist() == [1, 0.1]


def test_markdown_names_commit_device_and_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SPBENCH_GIT_COMMIT", "abc1234")
    ckpt = _checkpoint(tmp_path / "models" / "main.pt")
    md, csv = write_provenance([ckpt], tmp_path / "report" / "provenance.md")
    text = md.read_text(encoding="utf-8")
    assert "git commit `abc1234`" in text
    assert "| scn | lap | 1 | main | 2000 | 1 | 9.0 | 4.5 | cuda | NVIDIA H100 80GB HBM3 |" in text
    assert "total training wall time 0.1 min" in text
    assert pd.read_csv(csv)["steps"].tolist() == [2000]


def test_each_row_names_the_commit_that_trained_it(tmp_path: Path, monkeypatch) -> None:
    """Checkpoints trained at different commits keep theirs; the header's commit is only
    when the table was written (it once stood for every checkpoint)."""
    from spbench.checkpoint import checkpoint_header

    monkeypatch.setenv("SPBENCH_GIT_COMMIT", "1111111")
    old = _checkpoint(tmp_path / "old.pt", git_commit=checkpoint_header()["git_commit"])
    monkeypatch.setenv("SPBENCH_GIT_COMMIT", "2222222")
    new = _checkpoint(tmp_path / "new.pt", git_commit=checkpoint_header()["git_commit"])
    md, csv = write_provenance([old, new], tmp_path / "provenance.md")
    assert pd.read_csv(csv)["commit"].tolist() == [1111111, 2222222]
    text = md.read_text(encoding="utf-8")
    assert "| 1111111 |" in text and "| 2222222 |" in text
    assert "`2222222` when this table was written" in text


def test_git_commit_marks_a_dirty_tree(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SPBENCH_GIT_COMMIT", raising=False)
    assert git_commit(tmp_path) == "unknown"  # not a repository

    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    run("init", "-q")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    (tmp_path / "f").write_text("1")
    run("add", "f")
    assert git_commit(tmp_path).endswith("+dirty")


def test_cli_rejects_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = subprocess.run(
        [sys.executable, "-m", "spbench.cli", "report", "provenance", "--checkpoints", str(bad),
         "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert str(bad) in result.stderr


@pytest.mark.parametrize("method", ["slic", "grid"])
def test_a_parameter_free_method_says_what_it_is(method: str, tmp_path: Path) -> None:
    """SLIC's and the grid's provenance is their description (no training, their parameters),
    never "trained here, random init"."""
    from spbench.config import validate_config
    from spbench.data.synthetic import generate_synthetic
    from spbench.jobs import train_settings
    from spbench.models import get_method
    from spbench.train import train

    data = tmp_path / "data"
    generate_synthetic(data, seed=0, n_train=1, n_val=1, n_test=1, height=32, width=48)
    config = validate_config(
        {
            "run_name": "t",
            "dataset": {"name": "synthetic"},
            "methods": [method],
            "train": {"steps": 5, "device": "cpu", "threads": 1},
        }
    )
    out = train(
        data,
        tmp_path / "main.pt",
        method=method,
        variant="base",
        seed=0,
        **train_settings(config, method, "base"),
        progress=False,
    )
    row = checkpoint_provenance([out]).iloc[0]
    assert row["weights"] == get_method(method).description
    assert "no training" in row["weights"] and "trained here" not in row["weights"]
    assert row["steps"] == 0
