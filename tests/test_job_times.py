"""``benchmarks/job_times.py``: a run's Snakemake benchmark files gathered per job and stage."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("job_times", ROOT / "benchmarks/job_times.py")
job_times = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job_times)


@pytest.mark.slow
def test_every_job_of_the_ci_run_has_a_row(ci_run, tmp_path):
    out = tmp_path / "times.csv"
    table = job_times.main([str(ci_run.folder / "benchmarks/test"), "--out", str(out)])
    assert out.is_file()
    per_group = table.groupby("group").size()
    assert per_group["predict"] == per_group["score"] == 25  # one per run (tests/test_workflow.py)
    assert "scn/lap/seed0/main" in set(table.loc[table["group"] == "train", "job"])
    assert {"data", "report"} <= set(per_group.index)
    assert (table["wall_s"] > 0).all() and (table["max_rss_mb"] > 0).all()


def test_a_file_that_is_not_a_benchmark_is_named(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train/job.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match=r"job\.tsv is not a Snakemake benchmark"):
        job_times.job_times(tmp_path)
    with pytest.raises(FileNotFoundError, match="no benchmark"):
        job_times.job_times(tmp_path / "train/empty")
