"""Session fixtures shared by several test modules: one finished run of the CI profile, and
small synthetic datasets.

A full Snakemake run of ``.test/config`` is the slowest thing the suite does, so it runs once per
session and every test that only needs its outputs reads the same folder; a test that changes the
folder (deletes an output, re-runs) works on a copy (:meth:`FinishedRun.copy`), which Snakemake
sees as up to date because the copy keeps the files' times and its ``.snakemake`` metadata.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


@dataclass(frozen=True)
class FinishedRun:
    """A folder holding a finished workflow run, and how it was run."""

    folder: Path
    output: str  # stdout and stderr of the run

    def command(self, folder: Path | None = None) -> list[str]:
        """The Snakemake command line of the run (in ``folder``, default the run's own)."""
        where = str(folder or self.folder)
        return [*SNAKEMAKE, "--directory", where, "--cores", "2", "--resources", "gpu=1"]

    def copy(self, dest: Path) -> FinishedRun:
        """Copy the run (outputs, times and Snakemake metadata) to ``dest`` and return it."""
        shutil.copytree(self.folder, dest, symlinks=True)
        return FinishedRun(dest, self.output)


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> FinishedRun:
    """The ``.test`` CI profile run to the end once per session (read it, or copy it first)."""
    folder = tmp_path_factory.mktemp("ci_run")
    shutil.copytree(ROOT / ".test/config", folder / "config")
    run = FinishedRun(folder, "")
    result = subprocess.run(run.command(), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (
        f"the CI profile failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return FinishedRun(folder, result.stdout + result.stderr)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """Return ``make(n_train, n_val, n_test, height, width)``, the folder of a prepared synthetic
    dataset of that size (seed 0), made once per session and size: read it, do not change it."""
    from spbench.data.synthetic import generate_synthetic

    made: dict[tuple[int, ...], Path] = {}

    def make(n_train: int = 1, n_val: int = 1, n_test: int = 2, height: int = 32, width: int = 48):
        key = (n_train, n_val, n_test, height, width)
        if key not in made:
            made[key] = tmp_path_factory.mktemp("synthetic") / "data"
            sizes = dict(zip(("n_train", "n_val", "n_test", "height", "width"), key, strict=True))
            generate_synthetic(made[key], seed=0, **sizes)
        return made[key]

    return make
