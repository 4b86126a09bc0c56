"""The compute plan (``spbench plan``), the step-time table and ``train.budget``."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spbench.config import load_config, report_settings, validate_config
from spbench.errors import UserError
from spbench.jobs import train_job
from spbench.plan import Task, choose_device, list_schedule, plan_jobs, plan_text, wall_time
from spbench.steptimes import Figure, lookup, read_table, record, shipped_table

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "config.yaml"
SMOKE = ROOT / "config" / "smoke.yaml"
EPYC = "AMD EPYC (2 threads)"


def with_budget(path: Path, budget: float) -> dict:
    """The profile at ``path`` with ``train.budget`` set, validated."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["train"]["budget"] = budget
    return validate_config(raw)


def figure(kind: str, method: str = "*", stage: str = "*", variant: str = "*", **fields) -> Figure:
    """A step-time row on a made-up GPU (fp32, batch 1, size ``*`` unless given)."""
    values = {
        "mode": "fp32" if kind == "train" else "*",
        "device": "cuda",
        "device_name": "Test GPU",
        "batch_size": 1,
        "size": "*",
        "ms": 1.0,
        "date": "2026-12-01",
        "source": "test",
        **fields,
    }
    return Figure(kind, method, stage, variant, **values)


def test_list_schedule_on_a_hand_worked_dag():
    # A(3) -> B(2) -> E(1, CPU) is a stage chain; C(4) and D(1) are independent GPU jobs.
    # 1 GPU: A 0-3, then the longest remaining chain first: C 3-7, B 7-9, D 9-10, E 9-10.
    # 2 GPUs: A 0-3 and C 0-4, B 3-5, D 4-5, E 5-6: the chain A-B-E (6) is the bound.
    tasks = [
        Task("A", 3, True),
        Task("B", 2, True, ("A",)),
        Task("C", 4, True),
        Task("D", 1, True),
        Task("E", 1, False, ("B",)),
    ]
    one = list_schedule(tasks, 1)
    assert one == {"A": (0, 3), "C": (3, 7), "B": (7, 9), "D": (9, 10), "E": (9, 10)}
    two = list_schedule(tasks, 2)
    assert two == {"A": (0, 3), "C": (0, 4), "B": (3, 5), "D": (4, 5), "E": (5, 6)}


def test_list_schedule_rejects_what_cannot_run():
    with pytest.raises(ValueError, match="unknown job 'X'"):
        list_schedule([Task("A", 1, True, ("X",))], 1)
    with pytest.raises(ValueError, match="cycle"):
        list_schedule([Task("A", 1, True, ("B",)), Task("B", 1, True, ("A",))], 1)
    with pytest.raises(ValueError, match="at least one GPU"):
        list_schedule([Task("A", 1, True)], 0)


def test_paper_plan_has_every_job_of_the_dag():
    config = load_config(PAPER)
    jobs = {j.name: j for j in plan_jobs(config, read_table([shipped_table()]), EPYC)}
    train = [n for n in jobs if n.startswith("train ")]
    assert len(train) == 21  # 4 learned methods' stages over Table 2, 3 and the sweep, + SLIC
    assert sum(n.startswith("predict ") for n in jobs) == 19
    assert sum(n.startswith("score ") for n in jobs) == 19
    # AINet's and SSM's second stages wait for the shared first stage.
    assert jobs["train ainet/lap/seed0/stage2"].after == ("train ainet/_shared/seed0/stage1",)
    assert jobs["predict ssm/lap/seed0"].after == ("train ssm/lap/seed0/stage2",)
    # SCN base at 306k steps × 6,972 ms (the shipped CPU figure); SCN-LAP was never measured.
    assert jobs["train scn/base/seed0/main"].seconds == pytest.approx(306_000 * 6.972)
    assert jobs["train scn/lap/seed0/main"].seconds is None
    assert "spbench bench train --methods scn --stage main --variants lap" in (
        jobs["train scn/lap/seed0/main"].note
    )
    # SSM was measured at batch 1: per image, and said so.
    assert jobs["train ssm/base/seed0/stage2"].note == "per image from batch 1"
    # 200 test images × 13 scales; 1063 pairs × 13 scales × EC on and off, on one core.
    assert jobs["predict scn/base/seed0"].seconds == pytest.approx(1.247 * 200 * 13)
    assert jobs["predict cds/base/seed0"].seconds is None
    assert jobs["score cds/lap/seed0"].work == "27,638 pair-scores"
    assert jobs["score cds/lap/seed0"].seconds == pytest.approx(27_638 * 2.663e-3)


def test_runs_trained_elsewhere_train_no_earlier_stage():
    """Adopted (config.trained_elsewhere) and published AINet runs take their last stage from
    outside: an adopted run trains no first stage on its way, and adopting costs nothing."""
    raw = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    raw.update(methods=["ainet"], references=[], trained_elsewhere="/elsewhere")
    raw["ablation"]["enabled"] = raw["sweep"]["enabled"] = False
    jobs = {j.name: j for j in plan_jobs(validate_config(raw), [], EPYC)}
    assert not any(n.startswith("train ") for n in jobs)
    adopt = sorted(n for n in jobs if n.startswith("adopt "))
    assert adopt == ["adopt ainet/base/seed0/stage2", "adopt ainet/lap/seed0/stage2"]
    assert jobs["adopt ainet/lap/seed0/stage2"].seconds == 0.0
    assert jobs["predict ainet/lap/seed0"].after == ("adopt ainet/lap/seed0/stage2",)
    raw.update(
        trained_elsewhere="", published=[{"method": "ainet", "variant": "lap", "source": "x.pt"}]
    )
    jobs = {j.name: j for j in plan_jobs(validate_config(raw), [], EPYC)}
    assert "import ainet/pub_lap/seed0/stage2" in jobs
    assert jobs["predict ainet/pub_lap/seed0"].after == ("import ainet/pub_lap/seed0/stage2",)


def test_smoke_plan_counts_and_unknown_figures():
    config = load_config(SMOKE)
    jobs = plan_jobs(config, read_table([shipped_table()]), EPYC)
    names = [j.name for j in jobs]
    # SCN base and LAP, Table 3's factorial on CDS (8), the sweep's extra λ (0, 5760), SLIC.
    assert sum(n.startswith("train ") for n in names) == 13
    assert sum(n.startswith("predict ") for n in names) == 13
    # The smoke run trains at 64² crops: no shipped figure prices it (208² only).
    assert all(j.seconds is None for j in jobs if j.name.startswith("train scn"))
    text = plan_text(config, 1, tables=[shipped_table()])
    assert "GPU-hours: ≥" in text and f"priced on: {EPYC}" in text


def test_budget_scales_steps_and_schedule_points():
    full, tenth = load_config(PAPER), with_budget(PAPER, 0.1)
    scn, cds = train_job(tenth, "scn", "lap"), train_job(tenth, "cds", "lap")
    assert (scn["steps"], scn["lr_halve_at"]) == (30_600, 20_400)
    assert (cds["steps"], cds["recipe"]["schedule_steps"]) == (15_000, 15_000)
    assert train_job(tenth, "ainet", "base", "stage1")["steps"] == 20_100  # per_method too
    assert scn["budget"] == 0.1 and "budget" not in train_job(full, "scn", "lap")
    # A tiny budget still trains one step.
    assert train_job(with_budget(SMOKE, 0.001), "scn", "base")["steps"] == 1
    # The plan prices the scaled steps, and the report title states the budget.
    table = read_table([shipped_table()])
    before = {j.name: j.seconds for j in plan_jobs(full, table, EPYC)}
    after = {j.name: j.seconds for j in plan_jobs(tenth, table, EPYC)}
    assert after["train scn/base/seed0/main"] == pytest.approx(
        before["train scn/base/seed0/main"] / 10
    )
    assert after["score scn/base/seed0"] == before["score scn/base/seed0"]
    for artefact in ("table2", "table3", "sweep", "published", "figures"):
        assert report_settings(tenth, artefact)["title"].endswith("(training budget 10 %)")
        assert report_settings(full, artefact)["title"] == full["report"]["title"]


def test_wall_time_of_a_two_stage_method_on_one_and_two_gpus(tmp_path):
    # AINet base and LAP: stage 1 (shared) 1000 × 100 ms = 100 s, stage 2 500 steps × 100 ms
    # (base) = 50 s and × 200 ms (LAP) = 100 s, prediction 200 images × 1 s = 200 s each,
    # scoring 1063 pairs × 2 (EC) × 1 ms = 2.126 s on a core.
    # 1 GPU: 100 + 50 + 100 + 200 + 200 of GPU work in a row, then the last score: 652.126 s.
    # 2 GPUs: stage 1, LAP's stage 2, its prediction, its score in a chain: 402.126 s.
    config = validate_config(
        {
            "run_name": "wall",
            "dataset": {"name": "bsds500", "root": str(tmp_path / "not-prepared")},
            "methods": ["ainet"],
            "references": [],
            "train": {
                "per_method": {"ainet": {"stage1": {"steps": 1000}, "stage2": {"steps": 500}}}
            },
            "predict": {"scales": [1.0]},
        }
    )
    table = [
        figure("train", "ainet", "stage1", "base", batch_size=16, size="208", ms=100),
        figure("train", "ainet", "stage2", "base", batch_size=16, size="208", ms=100),
        figure("train", "ainet", "stage2", "lap", batch_size=16, size="208", ms=200),
        figure("predict", "ainet", size="320x480", ms=1000),
        figure("score", device="cpu", device_name="Test CPU", ms=1),
    ]
    jobs = plan_jobs(config, table, "Test GPU")
    assert all(j.seconds is not None for j in jobs)
    assert wall_time(jobs, 1) == pytest.approx(652.126)
    assert wall_time(jobs, 2) == pytest.approx(402.126)


def test_lookup_scales_per_image_and_never_guesses_across_devices():
    table = [
        figure("train", "scn", "main", "base", batch_size=1, size="208", ms=100),
        figure("train", "scn", "main", "base", batch_size=4, size="208", ms=200),
        figure("train", "scn", "main", "base", batch_size=4, size="208", ms=300, date="2026-12-02"),
    ]
    key = {"kind": "train", "method": "scn", "stage": "main", "variant": "base", "mode": "fp32"}
    assert lookup(table, device_name="Test GPU", batch_size=4, size="208", **key) == (300, "")
    assert lookup(table, device_name="Test GPU", batch_size=8, size="208", **key) == (
        600,
        "per image from batch 4",
    )
    assert lookup(table, device_name="Other GPU", batch_size=4, size="208", **key) is None
    assert lookup(table, device_name="Test GPU", batch_size=4, size="64", **key) is None


def test_recorded_rows_replace_older_ones_and_win_over_shipped(tmp_path):
    path = tmp_path / "times.csv"
    old = figure(
        "train", "scn", "main", "base", device_name=EPYC, device="cpu", size="208", batch_size=8
    )
    record([old], path)
    record([dataclasses.replace(old, ms=4000.0, date="2026-12-03")], path)
    assert [f.ms for f in read_table([path])] == [4000.0]
    merged = read_table([path, shipped_table()])
    scn = [f for f in merged if (f.kind, f.method, f.device_name) == ("train", "scn", EPYC)]
    assert [f.ms for f in scn] == [4000.0]
    assert choose_device(merged, "cpu") == EPYC
    assert choose_device(merged, "auto", "epyc") == EPYC
    with pytest.raises(UserError, match="no figures for it"):
        choose_device(merged, "auto", "H100")


def test_a_broken_table_names_the_file(tmp_path):
    bad = tmp_path / "times.csv"
    bad.write_text("method,ms\nscn,1\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"{bad}: not a step-time table"):
        read_table([bad])


def test_plan_command_runs_without_torch(tmp_path):
    """`spbench plan` must work where only the workflow's dependencies are installed."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from spbench.cli import main\n"
        f"sys.exit(main(['plan', '--config', {str(PAPER)!r}, '--gpus', '2', "
        f"'--times', {str(shipped_table())!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "wall time on 2 GPUs: ≥" in result.stdout
    assert "train ainet/_shared/seed0/stage1" in result.stdout
