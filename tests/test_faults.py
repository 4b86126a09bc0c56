"""Faults a long run meets: a killed training job, a stale resume file, a NaN loss, lost outputs.

The training tests run SCN for a few steps on a tiny synthetic dataset on the CPU with
``train.deterministic`` and one thread, so two runs of the same settings give bitwise-equal
weights; everything else follows from that.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
SPBENCH = [sys.executable, "-m", "spbench.cli"]
STEPS = 16
CHECKPOINT_EVERY = 4


def train_settings_for(variant: str = "lap", **train_overrides) -> dict:
    """The ``.test`` profile's settings of an SCN training job (``{"variant", "job",
    "runtime"}``), made tiny and deterministic."""
    from spbench.config import load_config
    from spbench.jobs import train_settings

    config = load_config(ROOT / ".test/config/config.yaml")
    config["train"].update(
        steps=STEPS,
        batch_size=2,
        crop=32,
        val_crop=32,
        val_every=6,
        val_batches=1,
        log_every=1,
        checkpoint_every=CHECKPOINT_EVERY,
        device="cpu",
        threads=1,
        deterministic=True,
        train_splits=["train"],
    )
    config["train"].update(train_overrides)
    return {"variant": variant, **train_settings(config, "scn", variant)}


def train_command(data: Path, out_dir: Path, settings: dict) -> list[str]:
    return [
        *SPBENCH,
        "train",
        "--settings",
        json.dumps(settings["job"]),
        "--runtime",
        json.dumps(settings["runtime"]),
        "--data",
        str(data),
        "--method",
        "scn",
        "--variant",
        settings["variant"],
        "--seed",
        "0",
        "--out",
        str(out_dir / "checkpoint.pt"),
        "--log",
        str(out_dir / "train_log.jsonl"),
        "--no-progress",
    ]


def run_training(data: Path, out_dir: Path, settings: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(
        train_command(data, out_dir, settings), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def logged_train_steps(out_dir: Path) -> list[int]:
    """Steps in the loss log of a run in progress (its ``.partial`` file) or finished."""
    for name in ("train_log.jsonl.partial", "train_log.jsonl"):
        try:
            lines = (out_dir / name).read_text().splitlines()
        except FileNotFoundError:
            continue
        records = [json.loads(line) for line in lines if line.endswith("}")]
        return [r["step"] for r in records if r["kind"] == "train"]
    return []


def start_training_until(
    data: Path, out_dir: Path, settings: dict, ready: Callable[[], bool], what: str
) -> subprocess.Popen:
    """Start training in a process and return it once ``ready()`` holds (polled every 2 ms);
    fail naming ``what`` if training ends first or 240 s pass."""
    proc = subprocess.Popen(
        train_command(data, out_dir, settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"training ended before {what} (rc={proc.returncode}):\n"
                f"{proc.stderr.read()[-3000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"not {what} within 240 s")
        time.sleep(0.002)
    return proc


def kill_between_checkpoints(data: Path, out_dir: Path, settings: dict) -> None:
    """Start training; SIGKILL it once the first resume checkpoint exists *and* the loss log has
    gone past it (step ``CHECKPOINT_EVERY + 1``), i.e. mid-way between two checkpoints."""
    resume = out_dir / "checkpoint.resume.pt"
    proc = start_training_until(
        data,
        out_dir,
        settings,
        lambda: resume.exists() and CHECKPOINT_EVERY + 1 in logged_train_steps(out_dir),
        "it was between checkpoints",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert resume.exists() and not (out_dir / "checkpoint.pt").exists()
    assert max(logged_train_steps(out_dir)) < STEPS


def weights(path: Path) -> dict[str, torch.Tensor]:
    from spbench.checkpoint import load_checkpoint

    return load_checkpoint(path)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), f"{name} differs between {a} and {b}"


def log_records(path: Path) -> list[dict]:
    """The loss log without its wall-clock field."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("time_s", None)
    return records


@pytest.fixture(scope="module")
def dataset(synthetic_dataset) -> Path:
    return synthetic_dataset(n_train=2, n_val=1, n_test=1, height=64, width=96)


@pytest.fixture(scope="module")
def reference_run(dataset, tmp_path_factory) -> Path:
    """An uninterrupted run of :func:`train_settings_for` (in-process, to save a start-up)."""
    from spbench.train import train

    out = tmp_path_factory.mktemp("reference")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        train(
            dataset,
            out / "checkpoint.pt",
            method="scn",
            seed=0,
            **train_settings_for(),
            log_path=out / "train_log.jsonl",
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert not (out / "checkpoint.resume.pt").exists()
    assert logged_train_steps(out) == list(range(1, STEPS + 1))
    return out


@pytest.fixture(scope="module")
def resumed_run(dataset, tmp_path_factory) -> tuple[Path, str]:
    """A run SIGKILLed between its first two checkpoints, then re-run: (folder, re-run stderr)."""
    out = tmp_path_factory.mktemp("resumed")
    settings = train_settings_for()
    kill_between_checkpoints(dataset, out, settings)
    return out, run_training(dataset, out, settings).stderr


def test_killed_run_resumes_to_bitwise_equal_weights(reference_run, resumed_run):
    """SIGKILL after the first resume checkpoint, then re-run: it resumes (not restarts), ends
    with the same weights as the uninterrupted run, bit for bit, and removes the resume file."""
    out, stderr = resumed_run
    assert f"from step {CHECKPOINT_EVERY}" in stderr and "resuming" in stderr
    assert_same_weights(reference_run / "checkpoint.pt", out / "checkpoint.pt")
    assert not (out / "checkpoint.resume.pt").exists()


def test_killed_run_resumes_with_a_continuous_loss_log(reference_run, resumed_run):
    """The resumed run's loss log reads as one run: every step once, in order, with the same
    loss values as the uninterrupted run (the killed job had logged past its checkpoint)."""
    out, _ = resumed_run
    got = log_records(out / "train_log.jsonl")
    keys = [(r["kind"], r["step"]) for r in got]
    assert len(keys) == len(set(keys)), f"duplicated log entries: {keys}"
    assert got == log_records(reference_run / "train_log.jsonl")


def test_resume_file_from_other_settings_is_ignored(dataset, reference_run, tmp_path):
    """A resume file written with other settings (lr) is not used: a fresh start, with a warning.

    The run then ends bitwise equal to the uninterrupted run of the new settings.
    """
    kill_between_checkpoints(dataset, tmp_path, train_settings_for(lr=0.01))
    result = run_training(dataset, tmp_path, train_settings_for())
    assert "other settings" in result.stderr and "starting afresh" in result.stderr
    assert "resuming" not in result.stderr
    assert_same_weights(reference_run / "checkpoint.pt", tmp_path / "checkpoint.pt")
    steps = [r["step"] for r in log_records(tmp_path / "train_log.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, STEPS + 1))


def test_sigterm_saves_a_resume_point_and_the_rerun_ends_bitwise_equal(
    dataset, reference_run, tmp_path
):
    """SIGTERM (a scheduler's time limit, Snakemake cancelling) between resume checkpoints lost
    every step since the last one; now the job finishes its step, saves a resume point there
    and exits with 143, and the re-run continues from that step to the same weights."""
    settings = train_settings_for(checkpoint_every=1000)  # no periodic resume point
    proc = start_training_until(
        dataset, tmp_path, settings, lambda: 3 in logged_train_steps(tmp_path), "step 3"
    )
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    stopped = int(stderr.split("stopped by SIGTERM at step ")[1].split()[0])
    assert 3 <= stopped < STEPS
    assert (tmp_path / "checkpoint.resume.pt").exists()
    assert not (tmp_path / "checkpoint.pt").exists()
    again = run_training(dataset, tmp_path, settings)
    assert f"resuming from step {stopped}" in again.stderr
    assert_same_weights(reference_run / "checkpoint.pt", tmp_path / "checkpoint.pt")
    assert log_records(tmp_path / "train_log.jsonl") == log_records(
        reference_run / "train_log.jsonl"
    )


def test_stop_requests_catch_one_signal_and_stop_at_the_second():
    """The first SIGTERM or SIGINT is a request; the same signal again stops at once (the other
    one does not); the previous handlers come back afterwards."""
    import os

    from spbench.train import stop_requests

    before = signal.getsignal(signal.SIGTERM)
    with stop_requests() as requested:
        assert requested() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert requested() == signal.SIGTERM
        with pytest.raises(SystemExit) as stop:
            os.kill(os.getpid(), signal.SIGTERM)
        assert stop.value.code == 128 + signal.SIGTERM
    with stop_requests() as requested:
        os.kill(os.getpid(), signal.SIGINT)
        assert requested() == signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)  # Snakemake's SIGTERM after a terminal's Ctrl-C
        assert requested() == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_leaves_no_temporary_file_beside_an_output(tmp_path):
    """A command stopped by SIGTERM while writing left ``.<name>.<random>`` beside its output:
    the CLI turns SIGTERM into SystemExit, so the atomic write removes it."""
    script = (
        "import sys, time\n"
        "from spbench.cli import _sigterm_exits\n"
        "from spbench.io import atomic_path\n"
        "with _sigterm_exits(), atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('partial')\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n"
    )
    out = tmp_path / "table.csv"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True
    )
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert not tmp.exists() and not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def nan_method():
    """Register ``nan_at_step3``: SCN whose loss turns NaN on its third call; removed after."""
    from spbench.losses import superpixel_loss
    from spbench.models import get_method, register_method, registry

    scn = get_method("scn")
    calls = {"n": 0}

    def loss(first, second, config, *, generator=None, **_):
        # Works with both loss signatures: (output, labels, ...) and (model, batch, ...).
        if isinstance(first, torch.nn.Module):
            output, labels = first(second.images), second.labels
        else:
            output, labels = first, second
        terms = superpixel_loss(output, labels, config, generator=generator)
        if torch.is_grad_enabled():  # count training steps, not validation batches
            calls["n"] += 1
            if calls["n"] == 3:
                terms["total"] = terms["total"] * float("nan")
        return terms

    register_method("nan_at_step3", recipe=scn.recipe, loss=loss)(scn.build)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        yield "nan_at_step3"
    finally:
        registry.unregister_method("nan_at_step3")
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def test_nan_loss_stops_with_the_step_and_last_good_checkpoint(dataset, tmp_path, nan_method):
    """A NaN loss raises NonFiniteLossError naming step 3 and the last resume checkpoint.

    With ``checkpoint_every: 2`` the step-2 resume file is the last good state; no final
    checkpoint is written.
    """
    from spbench.models import list_methods
    from spbench.train import NonFiniteLossError, train

    out = tmp_path / "checkpoint.pt"
    settings = train_settings_for(checkpoint_every=2)
    with pytest.raises(NonFiniteLossError) as info:
        train(dataset, out, method=nan_method, seed=0, **settings, progress=False)
    message = str(info.value)
    assert "step 3" in message
    assert str(tmp_path / "checkpoint.resume.pt") in message and "step 2" in message
    assert not out.exists()
    assert (tmp_path / "checkpoint.resume.pt").exists()  # kept: the last good state
    assert nan_method in list_methods()  # the fixture removes it afterwards


def test_nan_method_fixture_cleans_the_registry():
    """The throwaway method of the NaN test does not leak into other tests."""
    from spbench.models import list_methods

    assert "nan_at_step3" not in list_methods()


def _jobs_in_dry_run(output: str) -> dict[str, int]:
    """The ``Job stats`` table of a dry run as {rule: count}."""
    counts, in_table = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


LOST_SCORE = "results/test/scores/scn/lap/seed0.parquet"


@pytest.fixture(scope="module")
def finished_ci_run(ci_run, tmp_path_factory) -> tuple[list[str], Path]:
    """A copy of the session's finished CI-profile run with one score file moved away (kept to
    compare the re-run with): (snakemake command, folder)."""
    folder = ci_run.copy(tmp_path_factory.mktemp("faults_ci") / "run").folder
    (folder / LOST_SCORE).rename(folder / "lost_score.parquet")
    return ci_run.command(folder), folder


def dry_run_jobs(command: list[str], targets: tuple[str, ...] = ()) -> dict[str, int]:
    """The jobs a dry run of ``command`` (for ``targets``, else the default one) plans."""
    command = [*command[: len(SNAKEMAKE)], *targets, *command[len(SNAKEMAKE) :], "-n"]
    dry = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-4000:]
    jobs = _jobs_in_dry_run(dry.stdout + dry.stderr)
    jobs.pop("all", None)  # the target pseudo-rule, no work
    return jobs


@pytest.mark.slow
def test_rerun_for_a_lost_score_file_redoes_only_that_score_and_the_report(finished_ci_run):
    """Asking for a lost score file (with the default target) plans that one score job and the
    report jobs downstream of it, nothing upstream: no data, no training, no prediction."""
    command, _ = finished_ci_run
    jobs = dry_run_jobs(command, ("all", LOST_SCORE))
    assert sum(n for rule, n in jobs.items() if rule.startswith("score")) == 1, jobs
    assert not {"make_synthetic", "train_stage", "predict_scales"} & set(jobs)
    # Only the tables built from that run's scores are redone (SCN-LAP is in Table 2, in the
    # sweep as lambda 360, and in no ablation of CDS).
    assert {rule for rule in jobs if not rule.startswith("score")} == {"table2", "sweep"}, jobs


@pytest.mark.slow
def test_plain_rerun_regenerates_a_lost_score_file(finished_ci_run):
    """A plain ``snakemake`` re-run after losing one score file plans that one score job, runs
    it, and writes the same rows as the first run."""
    import pandas as pd

    command, folder = finished_ci_run
    jobs = dry_run_jobs(command)
    assert sum(n for rule, n in jobs.items() if rule.startswith("score")) == 1, jobs
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / LOST_SCORE), pd.read_parquet(folder / "lost_score.parquet")
    )
    assert dry_run_jobs(command) == {}  # nothing left to do


def test_resume_state_restores_every_generator():
    """Crops (host generator), the loss's sampling generator, torch's and Python's global ones
    (SSM's drop-path and quadrant draws) all continue where the checkpoint left them."""
    import random

    from spbench.checkpoint import rng_state, set_rng_state

    data, loss = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    state = rng_state(data, loss)

    def draws() -> list[float]:
        return [
            random.random(),
            float(torch.rand(())),
            float(torch.rand((), generator=data)),
            float(torch.rand((), generator=loss)),
        ]

    first = draws()
    set_rng_state(state, data, loss)
    assert draws() == first
