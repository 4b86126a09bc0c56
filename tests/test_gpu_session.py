"""The one-command GPU session (``benchmarks/gpu_session.sh``) run end to end on the CPU.

The same script as on the GPU machine, on the synthetic dataset at toy sizes with every stage on
the CPU (the GPU tests skip, the CUDA-graph benchmark fails as it must there), so that a broken
script is found before device time is spent on it. It must return every file the real run
returns (:func:`spbench.session.returned_files` of ``config/gpu-short.yaml``), well-formed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from spbench import session as session_module
from spbench.config import load_config
from spbench.data.synthetic import generate_synthetic
from spbench.io import partial_path
from spbench.jobs import canonical_json, train_job, train_runtime
from spbench.session import (
    ARCHIVE,
    SUMMARY,
    JobResult,
    SessionError,
    _job_command,
    _ms_per_step,
    _wait_or_stop,
    calibrate,
    choose_fast_mode,
    returned_files,
    run_file,
    session_runs,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"
PROFILE = ROOT / "config" / "gpu-short.yaml"
STEPS = 3
COMMIT = "0123abc"

#: The end-to-end tests run the whole script (minutes on two cores); the helpers' are quick.
slow = pytest.mark.slow


def _toy_profile(tmp: Path, data: Path) -> Path:
    """config/gpu-short.yaml (its methods, variants and seeds) on toy synthetic data."""
    config = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))
    config["dataset"] = {"name": "synthetic", "root": str(data)}
    config["train"].update(
        steps=STEPS,
        batch_size=1,
        crop=32,
        val_crop=32,
        val_every=STEPS,
        val_batches=1,
        log_every=1,
        checkpoint_every=2,
        device="cpu",
        threads=1,
    )
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _run(tmp: Path, data: Path, **env: str) -> subprocess.CompletedProcess:
    variables = {
        **os.environ,
        "OUT": str(tmp / "out"),
        "WORK": str(tmp / "work"),
        "PROFILE": str(_toy_profile(tmp, data)),
        "DATA": str(data),
        "DEVICE": "cpu",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
        "SITE": str(tmp / "site"),
        "WHEELS": "",  # the checkout's .whl/ is for the device's Python
        "SPBENCH_GIT_COMMIT": COMMIT,
        "BUDGET_S": "500",
        "PACK_S": "60",
        "BENCH_STEPS": "1",
        "BENCH_WARMUP": "0",
        "BENCH_CROP": "32",
        "BENCH_BATCH": "1",
        "BENCH_PROFILE_STEPS": "1",
        "BENCH_MODES": "fp32 bf16",
        "PROFILE_MODES": "bf16",
        "TRAIN_S": "150",
        "OTHERS": "cds",
        "OTHERS_BATCH": "1",
        "OTHERS_STEPS": "1",
        "CALIB_STEPS": "3",
        "MAX_STEPS": str(STEPS),
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=variables, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("gpu_session")
    data = tmp / "data"
    generate_synthetic(data, seed=0, n_train=3, n_val=2, n_test=1, height=48, width=64)
    return tmp, _run(tmp, data)


@pytest.fixture(scope="module")
def archive(session) -> dict[str, bytes]:
    tmp, _ = session
    with tarfile.open(tmp / "out" / ARCHIVE) as tar:
        return {
            Path(m.name).relative_to(Path(m.name).parts[0]).as_posix(): tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }


@slow
def test_returns_exactly_the_files_of_the_real_run(session) -> None:
    tmp, proc = session
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = returned_files(load_config(PROFILE, check_methods=False))
    assert sorted(os.listdir(tmp / "out")) == sorted(expected)
    assert len(expected) <= 8
    for name in expected:
        assert (tmp / "out" / name).stat().st_size < 16 * 2**20, name


@slow
def test_checkpoints_are_the_runs_the_workflow_would_train(session, archive) -> None:
    """Each returned checkpoint is its run's, with the job and runtime settings the workflow
    passes, the same steps for every run, and no optimiser state."""
    from spbench.checkpoint import load_checkpoint

    tmp, _ = session
    (tmp / "trained.yaml").write_bytes(archive["profile.yaml"])
    trained = load_config(tmp / "trained.yaml", check_methods=False)
    config = load_config(PROFILE, check_methods=False)
    assert trained["train"]["steps"] == STEPS
    assert (trained["methods"], trained["variants"], trained["seeds"]) == (
        config["methods"],
        config["variants"],
        config["seeds"],
    )
    runs = session_runs(config)
    assert len(runs) >= 4
    for method, variant, seed in runs:
        ckpt = load_checkpoint(tmp / "out" / run_file(method, variant, seed))
        assert (ckpt["method"], ckpt["variant"], ckpt["seed"]) == (method, variant, seed)
        assert ckpt["step"] == STEPS
        assert ckpt["settings"] == train_job(trained, method, variant)
        assert ckpt["runtime"] == train_runtime(trained, method)
        assert "optimizer" not in ckpt


@slow
def test_archive_holds_every_record(archive) -> None:
    names = set(archive)
    expected = {
        "session.log",
        "stages.tsv",
        "setup.txt",
        "tests.txt",
        "bench_scn_eager.txt",
        "bench/scn_eager.csv",
        "bench/cds.csv",
        "bench/profile.csv",
        "bench_profile.txt",
        "plan.txt",
        "calibrate.txt",
        "train.txt",
        "profile.yaml",
        "provenance.md",
        "provenance.csv",
        "session.json",
    }
    assert expected <= names, expected - names
    assert len([n for n in names if n.startswith("train/") and n.endswith("_log.jsonl")]) == 4
    assert not [n for n in names if n.endswith(".pt")]


@slow
def test_stages_ran_and_a_failing_one_did_not_stop_the_rest(archive) -> None:
    stages = dict(line.split("\t")[:2] for line in archive["stages.tsv"].decode().splitlines())
    ran = ("setup", "tests", "bench_scn_eager", "bench_profile", "bench_cds", "plan", "calibrate")
    for name in (*ran, "train"):
        assert stages[name] == "0", (name, stages)
    assert stages["bench_scn_graph"] != "0"  # CUDA graphs need a CUDA device
    assert "7 skipped" in archive["tests.txt"].decode()  # the GPU tests, torch.compile left out


@slow
def test_session_json_records_the_run(archive) -> None:
    record = json.loads(archive["session.json"])
    assert record["commit"] == COMMIT
    assert record["trained"]["steps"] == STEPS and record["trained"]["seeds"] == [0, 1]
    assert len(record["runs"]) == 4
    assert all(r["steps"] == STEPS and r["ms_per_step"] > 0 for r in record["runs"])
    assert any(line.startswith("chosen: ") for line in record["plan"])


@slow
def test_plan_follows_the_benchmark(archive, tmp_path: Path) -> None:
    """The profile trains in the mode choose_fast_mode picks from the benchmark's rows."""
    (tmp_path / "eager.csv").write_bytes(archive["bench/scn_eager.csv"])
    frame = pd.read_csv(tmp_path / "eager.csv")
    assert set(frame["mode"]) == {"fp32", "bf16"} and "term_ok" in frame
    mode, _ = choose_fast_mode(frame)
    fast = yaml.safe_load(archive["profile.yaml"])["train"]["fast"]
    assert (fast["amp"] == "bf16") == (mode == "bf16")


@slow
def test_summary_says_what_happened(session) -> None:
    tmp, proc = session
    text = (tmp / "out" / SUMMARY).read_text(encoding="utf-8")
    assert f"commit {COMMIT}" in text
    for part in (
        "kernel check on cpu: conv2d forward and backward ok",
        "== plan",
        "chosen: ",
        f"train.steps = {STEPS}",
        "# Provenance",
        "tests: ",
    ):
        assert part in text, part
    assert "where the time goes, scn/lap" in text
    assert "missing" not in text.splitlines()[-1]
    assert text.splitlines()[-1] in proc.stdout


@slow
def test_workflow_adopts_the_returned_checkpoints(session, archive) -> None:
    """The returned profile + trained_elsewhere: the workflow takes the four checkpoints as they
    are (labels and provenance of the session) and trains only the reference."""
    tmp, _ = session
    config = yaml.safe_load(archive["profile.yaml"])
    config["trained_elsewhere"] = str(tmp / "out")
    profile = tmp / "score.yaml"
    profile.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    report = "results/gpu-short/report/provenance"
    command = [
        *(
            sys.executable,
            "-m",
            "snakemake",
            f"{report}.md",
            "--snakefile",
            str(ROOT / "Snakefile"),
        ),
        *("--directory", str(tmp), "--configfile", str(profile), "--cores", "2"),
        *("--resources", "gpu=0"),
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = (proc.stdout + proc.stderr).splitlines()
    stats = output[output.index("Job stats:") :]
    jobs = {p[0]: int(p[1]) for p in map(str.split, stats) if len(p) == 2 and p[1].isdigit()}
    assert jobs["adopt_checkpoint"] == 4 and jobs["train_stage"] == 1  # SLIC alone
    rows = pd.read_csv(tmp / f"{report}.csv")
    scn = rows[rows["method"] == "scn"]
    assert len(scn) == 4 and (scn["steps"] == STEPS).all()
    for method, variant, seed in session_runs(load_config(PROFILE, check_methods=False)):
        adopted = tmp / f"results/gpu-short/models/{method}/{variant}/seed{seed}/main.pt"
        assert adopted.read_bytes() == (tmp / "out" / run_file(method, variant, seed)).read_bytes()
    # Later, the same profile without trained_elsewhere would train over them: refused.
    config.pop("trained_elsewhere")
    profile.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    proc = subprocess.run([*command, "-n"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "train_stage" not in proc.stdout
    assert "4 checkpoints under results/gpu-short/models" in proc.stdout + proc.stderr


def test_setup_failure_stops_at_once_and_still_packs(tmp_path: Path) -> None:
    proc = _run(tmp_path, tmp_path / "no-data")
    assert proc.returncode == 1
    assert sorted(os.listdir(tmp_path / "out")) == [ARCHIVE, SUMMARY]
    log = (tmp_path / "work" / "session.log").read_text(encoding="utf-8")
    assert "no prepared dataset" in log and "tests (" not in log


# --------------------------------------------------------------------------- the helpers


def _row(mode: str, variant: str, ms: float, ok: bool = True, error: str = "") -> dict:
    return {
        "method": "scn",
        "variant": variant,
        "mode": mode,
        "median_ms": ms,
        "term_ok": ok,
        "reldiff_max": 0.0 if ok else 0.5,
        "tolerance": 1e-4,
        "error": error,
    }


def test_choose_fast_mode_takes_the_fastest_that_matches_fp32() -> None:
    frame = pd.DataFrame(
        [
            _row("fp32", "base", 10),
            _row("fp32", "lap", 12),
            _row("tf32", "base", 6),
            _row("tf32", "lap", 8),
            _row("cuda_graph", "base", 2, ok=False),  # terms differ: never chosen
            _row("cuda_graph", "lap", 3),
            _row("tf32+cuda_graph", "base", 1, ok=False, error="RuntimeError: capture"),
            _row("tf32+cuda_graph", "lap", 1, ok=False, error="RuntimeError: capture"),
        ]
    )
    mode, lines = choose_fast_mode(frame)
    assert mode == "tf32"
    assert "terms differ" in lines[2] and "failed: RuntimeError" in lines[3]
    assert choose_fast_mode(frame.iloc[4:])[0] == "fp32"  # nothing passed: eager
    assert choose_fast_mode(pd.DataFrame())[0] == "fp32"  # no benchmark ran


def test_a_mode_slower_than_fp32_or_without_its_lap_row_is_not_chosen() -> None:
    """A benchmark cut off by its time limit can leave a mode with its base row alone: its
    LAP terms were never checked, so it cannot train the LAP runs. A mode that passed but is
    slower than fp32 eager is no gain."""
    frame = pd.DataFrame(
        [
            _row("fp32", "base", 10),
            _row("fp32", "lap", 14),
            _row("bf16", "base", 12),
            _row("bf16", "lap", 16),
            _row("bf16+channels_last", "base", 6),  # its lap row never written
        ]
    )
    mode, lines = choose_fast_mode(frame)
    assert mode == "fp32" and lines[-1] == "chosen: fp32 (no faster mode passed)"
    assert "bf16+channels_last: base 6.00 ms; incomplete: no lap row" in lines


def test_returned_files_fit_the_device() -> None:
    config = load_config(PROFILE, check_methods=False)
    assert returned_files(config)[:2] == [SUMMARY, ARCHIVE]
    with pytest.raises(SessionError, match="exceed the 8 files"):
        returned_files({**config, "seeds": [0, 1, 2, 3]})


def test_job_command_is_the_workflows_train_command(tmp_path: Path) -> None:
    """The session's `spbench train` gets what rule train_stage passes: the run's job and
    runtime settings as canonical JSON, its method, variant, seed and last stage."""
    config = load_config(PROFILE, check_methods=False)
    command = _job_command(config, ("scn", "lap", 1), tmp_path, tmp_path / "c.pt", tmp_path / "l")
    options = dict(zip(command[4::2], command[5::2], strict=False))
    assert command[3] == "train" and command[-1] == "--no-progress"
    assert options["--settings"] == canonical_json(train_job(config, "scn", "lap", "main"))
    assert options["--runtime"] == canonical_json(train_runtime(config, "scn", "main"))
    assert (options["--method"], options["--variant"], options["--seed"]) == ("scn", "lap", "1")
    assert options["--stage"] == "main" and options["--data"] == str(tmp_path)


def test_multi_stage_methods_are_refused() -> None:
    config = load_config(PROFILE, check_methods=False)
    with pytest.raises(SessionError, match=r"methods \['ainet'\] train in several stages"):
        session_runs({**config, "methods": ["scn", "ainet"]})


def test_step_time_from_the_loss_log(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    records = [
        {"kind": "train", "step": 10, "time_s": 5.0},
        {"kind": "val", "step": 10},
        {"kind": "train", "step": 30, "time_s": 5.5},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert _ms_per_step(log) == pytest.approx(25.0)


def _fake_calibration(tmp: Path, logged: dict[int, list[tuple[int, float]]], wall_s: float):
    """A stand-in for run_jobs: job k logs ``logged[k]`` (step, time_s) and was stopped at the
    limit (its log left partial) where its list has no final step; the others finished."""

    def run_jobs(config, data, out_dir, log_dir, *, until):
        results = []
        for k, run in enumerate(session_runs(config)):
            steps = config["train"]["steps"]
            records = [{"kind": "train", "step": s, "time_s": t} for s, t in logged[k]]
            finished = bool(records) and records[-1]["step"] == steps
            loss_log = Path(log_dir) / f"{k}_log.jsonl"
            loss_log.parent.mkdir(parents=True, exist_ok=True)
            (loss_log if finished else partial_path(loss_log)).write_text(
                "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
            )
            code = 0 if finished else None
            results.append(JobResult(run, code, wall_s, tmp / f"{k}.pt", loss_log, tmp / "log"))
        return results

    return run_jobs


def test_calibration_stopped_at_its_limit_times_the_steps_logged(tmp_path, monkeypatch) -> None:
    """A calibration that outlived its limit stopped the session's training altogether,
    though every job had logged enough steps to time."""
    profile = _toy_profile(tmp_path, tmp_path / "data")
    n_jobs = len(session_runs(load_config(profile, check_methods=False)))
    # 10 steps, logged every 2: jobs 1.. were stopped after step 6; 10 ms per step.
    done = [(2, 0.5), (4, 0.52), (6, 0.54), (8, 0.56), (10, 0.58)]
    logged = {0: done, **{k: done[:3] for k in range(1, n_jobs)}}
    monkeypatch.setattr(session_module, "run_jobs", _fake_calibration(tmp_path, logged, 1.0))
    until = time.time() + 100.0
    lines = calibrate(profile, tmp_path / "data", tmp_path / "work", until=until, steps=10)
    assert f"stopped at its limit with {n_jobs - 1} of {n_jobs} jobs" in lines[0]
    # Start-up: 1 s of wall time counted as 6 - val_batches steps at 10 ms each.
    val_batches = load_config(profile, check_methods=False)["train"]["val_batches"]
    startup = 1.0 - 0.010 * (6 - val_batches - 1)
    assert f"start-up and final validation {startup:.1f} s" in lines[1]
    steps = yaml.safe_load(profile.read_text(encoding="utf-8"))["train"]["steps"]
    assert steps == pytest.approx(0.9 * (100.0 - startup) / 0.010, rel=0.01)


def test_calibration_stopped_before_two_logged_steps_is_an_error(tmp_path, monkeypatch) -> None:
    profile = _toy_profile(tmp_path, tmp_path / "data")
    n_jobs = len(session_runs(load_config(profile, check_methods=False)))
    logged = {k: [(2, 0.5)] for k in range(n_jobs)}
    monkeypatch.setattr(session_module, "run_jobs", _fake_calibration(tmp_path, logged, 1.0))
    with pytest.raises(SessionError, match="ran out of time before two logged steps"):
        calibrate(profile, tmp_path / "data", tmp_path / "work", until=time.time() + 100, steps=10)


def test_fp32_written_as_amp_off_is_not_a_fast_mode() -> None:
    """`plan` writes fp32 as {amp: "off", ...}: a calibration crash there must not be retried
    as a "fallback" to fp32 (the string "off" is truthy)."""
    from spbench.session import _fast

    assert not _fast({"amp": "off", "tf32": False, "channels_last": False, "cuda_graph": False})
    assert not _fast({})
    assert _fast({"amp": "bf16"}) and _fast({"tf32": True})


def test_jobs_past_the_deadline_are_stopped_together() -> None:
    """Jobs past the deadline were stopped one after another, each given 10 s: with jobs that
    save a resume point on SIGTERM the session overran its deadline by a save per job."""
    # Each job takes 1 s to stop on SIGTERM (as a training step plus a save may).
    slow_stop = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(143)))\n"
        "time.sleep(60)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", slow_stop]) for _ in range(4)]
    procs.append(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]))
    start = time.time()
    ended = _wait_or_stop(procs, until=start + 2.0, grace=10.0)
    assert time.time() - start < 4.5  # one shared second of stopping, not four
    assert [code for code, _ in ended] == [None, None, None, None, 3]
    assert ended[4][1] - start < 1.5  # the quick job's end is seen when it happens


def test_a_run_stopped_at_the_deadline_keeps_its_weights(tmp_path: Path) -> None:
    """A job stopped at the deadline left only its resume file (optimisers and random states:
    over the 16 MiB a device returns per file for SCN), and the session returned nothing of
    it. Its weights and metadata become <run>.partial.pt, named by how far it got."""
    import torch

    from spbench.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint

    net = torch.nn.Conv2d(3, 9, 1)
    meta = CheckpointMeta("scn", "lap", "main", ["main"], 0, "trained here", {"steps": 4000})
    checkpoint = tmp_path / run_file("scn", "lap", 0)
    resume = checkpoint.with_name(checkpoint.stem + ".resume.pt")
    extra = {"optimizer": {"state": {}}, "rng": {"torch": torch.get_rng_state()}}
    save_checkpoint(resume, meta.payload(net, 3800, 290.0, **extra, resume_inputs={}))
    path, reached, planned = session_module.keep_partial(checkpoint)
    assert (path.name, reached, planned) == ("scn_lap_seed0.partial.pt", 3800, 4000)
    kept = load_checkpoint(path)
    assert kept["partial"] == {"steps": 3800, "of": 4000} and kept["step"] == 3800
    assert not {"optimizer", "rng", "resume_inputs"} & set(kept)
    assert kept["method"] == "scn" and kept["settings"] == {"steps": 4000}
    assert torch.equal(kept["model"]["weight"], net.weight)
    save_checkpoint(checkpoint, kept)  # a finished run: nothing to keep
    assert session_module.keep_partial(checkpoint) is None
