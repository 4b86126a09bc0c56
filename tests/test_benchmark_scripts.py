"""The benchmark scripts run and say what they should: ``job_times.py`` (a run's Snakemake
benchmark files per job and stage), ``bench_predict.py`` (prediction's steps), not timed, and
``compare_budgets.py`` (two runs of one profile at two training budgets)."""

import importlib.util
from pathlib import Path

import cv2
import pandas as pd
import pytest
import torch

from spbench.data.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


job_times = _script("job_times")
bench_predict = _script("bench_predict")
compare_budgets = _script("compare_budgets")


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


def test_bench_predict_times_every_step_on_small_images(tmp_path, capsys):
    generate_synthetic(tmp_path, seed=3, n_train=1, n_val=1, n_test=2, height=64, width=96)
    args = [str(tmp_path), "--max-images", "2", "--scales", "0.1", "0.2", "--batch", "2"]
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        table = bench_predict.main([*args, "--threads", "1"])
    finally:  # the script sets the process's threads; later tests get theirs back
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    assert list(table.index) == [0.1, 0.2]
    steps = ["resize", "forward", "hard_labels", "gather (old)", "upsample", "ec"]
    assert (table[[*steps, "forward/image at batch 2"]] > 0).all().all()
    assert (table["total"] > table["forward"]).all()
    assert "median ms per image over 2 images, 1 threads" in capsys.readouterr().out


@pytest.mark.slow
def test_compare_budgets_finds_a_known_change(ci_run, tmp_path):
    """A copy of the CI run "trained 4x longer" whose LAP runs gain exactly 0.01 ASA."""
    short = ci_run.folder / "results/test"
    long = tmp_path / "long"
    for path in compare_budgets.score_files(short, "scn"):
        frame = pd.read_parquet(path)
        frame["train_steps"] *= 4
        if path.parent.name == "lap":
            frame["asa"] += 0.01
        (long / path.relative_to(short)).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(long / path.relative_to(short))
    short_scores, long_scores = (compare_budgets.load_run(run, "scn") for run in (short, long))
    scores, low, high = compare_budgets.combine(short_scores, long_scores)
    assert int(high) == 4 * int(low)
    changes = compare_budgets.budget_changes(scores, low, high, auc_range=(50, 150))
    asa = changes[changes["metric"] == "asa"].set_index(["base_model", "ec"])["mean_delta"]
    assert asa.loc["SCN-LAP@" + low].tolist() == pytest.approx([0.01, 0.01])
    assert asa.loc["SCN-BASE@" + low].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    effect = compare_budgets.effect_change(scores, low, high, auc_range=(50, 150), n_boot=200)
    effect = effect.set_index(["ec", "metric"])
    assert effect.loc[(False, "asa"), ["mean", "low", "high"]].tolist() == pytest.approx([0.01] * 3)
    assert list(effect.loc[(True, "asa"), "per_seed"].values()) == pytest.approx([0.01, 0.01])
    assert effect.loc[(False, "xc"), "mean"] == pytest.approx(0.0, abs=1e-12)
    assert (True, "xc") not in effect.index  # 0 with EC by construction
    with pytest.raises(SystemExit, match="differ in lambda_lap"):
        compare_budgets.combine(short_scores, long_scores.assign(lambda_lap=1.0))
    fewer_scales = long_scores[long_scores["scale"] != long_scores["scale"].max()]
    with pytest.raises(SystemExit, match="different samples"):
        compare_budgets.combine(short_scores, fewer_scales)
    with pytest.raises(SystemExit, match="nothing to compare"):
        compare_budgets.combine(short_scores, short_scores)
    out = tmp_path / "budget.md"
    compare_budgets.main([str(short), str(long), "--auc-range", "50", "150", "--out", str(out)])
    assert f"From {low} to {high} training steps" in out.read_text()
