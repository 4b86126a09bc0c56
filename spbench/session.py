"""The training stage of the one-command GPU session (``benchmarks/gpu_session.sh``).

The device that session runs on has no Snakemake, so this module does what the workflow's
``train_stage`` rule would, for every (method, variant, seed) of a profile's Table 2 runs: the
same ``spbench train --settings JOB --runtime RUNTIME`` command (:func:`spbench.jobs.train_job`,
:func:`spbench.jobs.train_runtime`, as canonical JSON), all jobs at once on the one GPU. Around
it:

:func:`plan_profile`
    The profile the session trains with: the fastest fast mode whose loss terms matched fp32
    eager in the step benchmark (``term_ok``; fp32 eager when none did) and the device.
:func:`calibrate`
    A short run of the same concurrent jobs; their loss logs give the step time with every job
    sharing the GPU, hence the number of steps that fits before the deadline (the profile's
    ``train.steps`` is the floor).
:func:`run_jobs`
    The jobs themselves, killed at the deadline; each writes ``<method>_<variant>_seed<k>.pt``.
:func:`keep_partial`
    A job stopped at the deadline leaves its resume file (optimisers included, too large to
    return); its weights at the step it reached become ``<name>.partial.pt``.
:func:`returned_files`
    What the session hands back: the summary, one archive and one checkpoint per run.

Only the jobs import torch; this module does not, nor pandas until a function reads a table
(the workflow imports :func:`run_file` while it builds the DAG; :func:`plan_profile` parses mode
labels with :class:`spbench.step.FastModes`, imported when called).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from spbench.catalogue import get_card
from spbench.config import load_config
from spbench.errors import UserError
from spbench.io import atomic_path, partial_path, read_json
from spbench.jobs import canonical_json, train_job, train_runtime, trained_elsewhere

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ARCHIVE",
    "SUMMARY",
    "JobResult",
    "adoption_record",
    "calibrate",
    "choose_fast_mode",
    "keep_partial",
    "plan_profile",
    "refuse_dropped_adoption",
    "refuse_missing_adoptions",
    "returned_files",
    "run_jobs",
    "session_record",
    "session_runs",
]

#: Files the device hands back at most (``/work/.library/device/README.md``).
MAX_RETURNED = 8
#: The short human-readable summary and the archive of everything else.
SUMMARY, ARCHIVE = "summary.txt", "session.tar.gz"
#: Suffix of the file beside an adopted checkpoint (:func:`adoption_record`).
_ADOPTED = ".adopted.json"


class SessionError(UserError, RuntimeError):
    """The session cannot go on (no training job finished, a profile that does not fit)."""


def session_runs(config: dict) -> list[tuple[str, str, int]]:
    """Return the (method, variant, seed) runs the session trains: every learned method of the
    profile × every configured variant × every seed (Table 2 without the references).

    Raises
    ------
    SessionError
        If a method trains in several stages (the session trains each run's one stage).
    """
    staged = [m for m in config["methods"] if len(get_card(m).stages) > 1]
    if staged:
        raise SessionError(
            f"methods {staged} train in several stages; the GPU session trains single-stage "
            "methods only: list those in the profile's methods"
        )
    return [
        (m, v, s) for m in config["methods"] for v in config["variants"] for s in config["seeds"]
    ]


def run_file(method: str, variant: str, seed: int) -> str:
    """Return the returned checkpoint's name of one run, e.g. ``scn_lap_seed0.pt``."""
    return f"{method}_{variant}_seed{seed}.pt"


def adoption_record(checkpoint: str | os.PathLike[str]) -> Path:
    """Return the file that marks ``checkpoint`` as adopted (``main.pt`` -> ``main.adopted.json``;
    :func:`spbench.weights.adopt_checkpoint` writes it, with the source's path)."""
    return Path(checkpoint).with_suffix(_ADOPTED)


def refuse_dropped_adoption(results: str | os.PathLike[str], trained_elsewhere: str) -> None:
    """Stop a run that would train over checkpoints it adopted, before anything runs.

    Without ``trained_elsewhere`` the workflow has no rule that adopts, so a checkpoint adopted
    by an earlier invocation (a GPU session's, hours of training) would be trained again here
    and overwritten.

    Raises
    ------
    UserError
        Naming the adopted checkpoints, their source folder, and the two ways on.
    """
    if trained_elsewhere:
        return
    records = Path(results, "models").glob(f"*/*/seed*/*{_ADOPTED}")
    adopted = {r: r.with_name(r.name.removesuffix(_ADOPTED) + ".pt") for r in sorted(records)}
    adopted = {r: ckpt for r, ckpt in adopted.items() if ckpt.is_file()}
    if not adopted:
        return
    folders = sorted({str(Path(read_json(r)["source"]).parent) for r in adopted})
    raise UserError(
        f"{len(adopted)} checkpoints under {Path(results, 'models')} (e.g. "
        f"{next(iter(adopted.values()))}) were trained elsewhere and adopted from "
        f"{', '.join(folders)}; without --config trained_elsewhere=FOLDER this run would train "
        "them here and overwrite them. Pass that option again, or delete those checkpoints "
        f"and their *{_ADOPTED} files to train them here."
    )


def refuse_missing_adoptions(config: dict) -> None:
    """Stop a run whose ``trained_elsewhere`` folder lacks a checkpoint it is to adopt.

    Snakemake's rule order prefers adopting only where the checkpoint exists: a mistyped folder
    or a missing file would quietly train that run here instead (the whole GPU session's
    profile, on the CPU).

    Raises
    ------
    UserError
        ``config.trained_elsewhere`` is set but not a folder, or lacks a run's
        :func:`run_file`; the message names the folder and the missing files.
    """
    folder = config.get("trained_elsewhere")
    if not folder:
        return
    if not Path(folder).is_dir():
        raise UserError(
            f"config.trained_elsewhere: {folder!r} is not a folder; give the folder of the "
            "returned checkpoints (<method>_<variant>_seed<k>.pt), or leave the option out "
            "to train here"
        )
    runs = [
        (m, v, s)
        for m in config["methods"]
        for v in config["variants"]
        if trained_elsewhere(config, m, v)  # the one rule of what is adopted
        for s in config["seeds"]
    ]
    missing = [run_file(*run) for run in runs if not Path(folder, run_file(*run)).is_file()]
    if missing:
        raise UserError(
            f"config.trained_elsewhere: {folder} lacks {len(missing)} of the {len(runs)} "
            f"checkpoints the profile adopts: {', '.join(missing)}; copy them there, or take "
            "those methods, variants or seeds out of the profile"
        )


def returned_files(config: dict) -> list[str]:
    """Return the names of every file the session hands back, the summary first.

    Raises
    ------
    SessionError
        If the profile's runs need more files than the device returns.
    """
    files = [SUMMARY, ARCHIVE, *(run_file(*run) for run in session_runs(config))]
    if len(files) > MAX_RETURNED:
        raise SessionError(
            f"{len(files) - 2} checkpoints and 2 more files exceed the {MAX_RETURNED} files a "
            "device call returns: fewer seeds or variants in the profile"
        )
    return files


def choose_fast_mode(frame: pd.DataFrame, method: str = "scn") -> tuple[str, list[str]]:
    """Return the fastest mode of ``method`` whose every row ran with ``term_ok``, and why.

    A mode is ranked by its slowest variant's median step (the LAP row) and qualifies only
    with a row for every variant fp32 eager has (a benchmark cut off by its time limit can
    leave a mode with its base row alone); ``fp32`` (eager) is chosen when no other mode is
    faster than it.

    Returns
    -------
    (str, list of str)
        The mode's label and one line per benchmarked mode (median ms per variant, verdict).
    """
    if frame.empty:
        return "fp32", ["no benchmark rows", "chosen: fp32 (no faster mode passed)"]
    rows = frame[frame["method"] == method]
    rows = rows.assign(error=rows["error"].astype(object).fillna(""))  # blank in a CSV: NaN
    reference = rows[rows["mode"] == "fp32"]
    variants = set(reference["variant"]) or set(rows["variant"])
    lines, times = [], {"fp32": float("inf")}
    for mode, group in rows.groupby("mode", sort=False):
        verdict, time_ms = _mode_verdict(group, variants)
        if time_ms is not None:
            times[mode] = time_ms
        pairs = zip(group["variant"], group["median_ms"], strict=True)
        medians = ", ".join(f"{v} {t:.2f} ms" for v, t in pairs)
        lines.append(f"{mode}: {medians or '-'}; {verdict}")
    best = min(times, key=times.get)
    lines.append(f"chosen: {best}" + (" (no faster mode passed)" if best == "fp32" else ""))
    return best, lines


def _mode_verdict(group: pd.DataFrame, variants: set[str]) -> tuple[str, float | None]:
    """One mode's verdict and its slowest variant's median in ms (None: it does not qualify)."""
    if not (group["error"] == "").all():
        return "failed: " + "; ".join(e for e in group["error"] if e), None
    missing = sorted(variants - set(group["variant"]))
    if missing:
        return f"incomplete: no {', '.join(missing)} row", None
    if not group["term_ok"].astype(bool).all():
        worst = group["reldiff_max"].max()
        return f"terms differ from fp32 eager ({worst:.2e} > {group['tolerance'].iloc[0]:g})", None
    return "terms match fp32 eager", float(group["median_ms"].max())


def _read_yaml(path: str | os.PathLike[str]) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _write_yaml(config: dict, path: str | os.PathLike[str]) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def plan_profile(
    profile: str | os.PathLike[str],
    bench_csvs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
) -> list[str]:
    """Write the profile the session trains with: ``profile`` with ``train.fast`` set to the
    mode :func:`choose_fast_mode` picks from the benchmark CSVs.

    The profile is validated before and after. Missing or empty CSVs (a benchmark stage that
    crashed or ran out of time) count as no rows.

    Returns
    -------
    list of str
        The lines explaining the choice (also printed by ``spbench session plan``).
    """
    import pandas as pd

    from spbench.step import FastModes

    load_config(profile, check_methods=False)
    frames = [pd.read_csv(p) for p in bench_csvs if Path(p).is_file() and Path(p).stat().st_size]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    config = _read_yaml(profile)
    mode, lines = choose_fast_mode(frame, config["methods"][0])
    fast = dataclasses.asdict(FastModes.from_label(mode))
    config["train"] = {**config.get("train", {}), "fast": fast}
    _write_yaml(config, out)
    load_config(out, check_methods=False)
    return lines


@dataclasses.dataclass(frozen=True)
class JobResult:
    """How one training job ended: its run, exit status (None: killed at the deadline), wall
    seconds, and the checkpoint and logs it wrote."""

    run: tuple[str, str, int]
    returncode: int | None
    wall_s: float
    checkpoint: Path
    loss_log: Path
    log: Path


def _job_command(
    config: dict, run: tuple[str, str, int], data: Path, checkpoint: Path, loss_log: Path
) -> list[str]:
    """The command the workflow's ``train_stage`` runs for ``run``'s last stage, without the
    device lease."""
    method, variant, seed = run
    stage = get_card(method).stages[-1].name
    return [
        sys.executable,
        "-m",
        "spbench.cli",
        "train",
        "--settings",
        canonical_json(train_job(config, method, variant, stage)),
        "--runtime",
        canonical_json(train_runtime(config, method, stage)),
        "--data",
        str(data),
        "--method",
        method,
        "--variant",
        variant,
        "--seed",
        str(seed),
        "--stage",
        stage,
        "--out",
        str(checkpoint),
        "--log",
        str(loss_log),
        "--no-progress",
    ]


def run_jobs(
    config: dict,
    data: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    log_dir: str | os.PathLike[str],
    *,
    until: float,
) -> list[JobResult]:
    """Train every run of :func:`session_runs` at once; kill what is still running at ``until``.

    Parameters
    ----------
    config
        A validated profile (:func:`spbench.config.load_config`).
    data
        Prepared dataset folder.
    out_dir
        Where the checkpoints go (``<method>_<variant>_seed<k>.pt``).
    log_dir
        Where each job's loss log (``<name>_log.jsonl``) and output (``<name>.log``) go.
    until
        Deadline, seconds since the epoch (:func:`time.time`).

    Returns
    -------
    list of JobResult
        One per run, in :func:`session_runs` order.
    """
    out_dir, log_dir, data = Path(out_dir), Path(log_dir), Path(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for run in session_runs(config):
        name = run_file(*run).removesuffix(".pt")
        checkpoint, loss_log, log = (
            out_dir / f"{name}.pt",
            log_dir / f"{name}_log.jsonl",
            log_dir / f"{name}.log",
        )
        with open(log, "w", encoding="utf-8") as stream:
            command = _job_command(config, run, data, checkpoint, loss_log)
            proc = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT)
        jobs.append((run, proc, time.time(), checkpoint, loss_log, log))
    ended = _wait_or_stop([proc for _, proc, *_ in jobs], until)
    return [
        JobResult(run, code, end - started, checkpoint, loss_log, log)
        for (run, _, started, checkpoint, loss_log, log), (code, end) in zip(
            jobs, ended, strict=True
        )
    ]


#: Suffix of the weights a run stopped at the deadline reached (:func:`keep_partial`).
PARTIAL_SUFFIX = ".partial.pt"


def keep_partial(checkpoint: str | os.PathLike[str]) -> tuple[Path, int, int] | None:
    """Keep the weights of a run stopped before its end, from the resume file it left.

    A training job asked to stop writes ``<stem>.resume.pt`` at the step it reached: model,
    optimisers and random states, three times the weights (SCN: 26 MiB, over what the GPU
    session can return per file). This writes ``<stem>.partial.pt`` beside it: an spbench
    checkpoint of the weights and their metadata alone, with ``partial`` =
    ``{"steps": reached, "of": planned}``; its ``step`` is the step reached. It is not named
    as the run's checkpoint, so nothing adopts it unless a person renames it.

    Returns
    -------
    (pathlib.Path, int, int) or None
        The partial checkpoint, the steps reached and the steps planned; None when the run
        finished (``checkpoint`` exists) or left no resume file.
    """
    import dataclasses

    from spbench.checkpoint import (
        CheckpointMeta,
        checkpoint_header,
        load_checkpoint,
        resume_path,
        save_checkpoint,
    )

    checkpoint = Path(checkpoint)
    resume = resume_path(checkpoint)
    if checkpoint.is_file() or not resume.is_file():
        return None
    state = load_checkpoint(resume)
    keys = {*checkpoint_header(), *(f.name for f in dataclasses.fields(CheckpointMeta))}
    kept = {key: state[key] for key in (*keys, "step", "wall_time_s", "model") if key in state}
    reached, planned = int(state["step"]), int(state["settings"]["steps"])
    kept["partial"] = {"steps": reached, "of": planned}
    out = checkpoint.with_name(checkpoint.stem + PARTIAL_SUFFIX)
    save_checkpoint(out, kept)
    return out, reached, planned


def _wait_or_stop(
    procs: list[subprocess.Popen], until: float, grace: float = 10.0
) -> list[tuple[int | None, float]]:
    """Wait for every process until ``until``; then stop the ones still running all at once
    (SIGTERM, ``grace`` seconds between them all, then SIGKILL).

    Returns, per process, its exit status (None: stopped at the deadline) and when it ended
    (:func:`time.time`, seen within 50 ms).
    """
    ended: dict[int, tuple[int | None, float]] = {}
    while len(ended) < len(procs) and time.time() < until:
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = (proc.returncode, time.time())
        time.sleep(0.05)
    late = [i for i in range(len(procs)) if i not in ended and procs[i].poll() is None]
    for i in late:
        procs[i].terminate()  # a training job ends its step and saves a resume point
    stop = time.time() + grace
    for i in late:
        try:
            procs[i].wait(timeout=max(0.0, stop - time.time()))
        except subprocess.TimeoutExpired:
            procs[i].kill()
            procs[i].wait()
        ended[i] = (None, time.time())
    for i, proc in enumerate(procs):  # ended between the last poll and the deadline
        ended.setdefault(i, (proc.wait(), time.time()))
    return [ended[i] for i in range(len(procs))]


def _train_records(loss_log: Path) -> list[dict]:
    """The ``train`` records of a loss log (none if it does not exist)."""
    if not loss_log.is_file():
        return []
    records = [json.loads(line) for line in loss_log.read_text(encoding="utf-8").splitlines()]
    return [r for r in records if r.get("kind") == "train"]


def _ms_per_step(loss_log: Path) -> float:
    """Milliseconds per step between the first and the last ``train`` record of a loss log
    (the start-up, first steps and final validation excluded)."""
    train = _train_records(loss_log)
    if len(train) < 2:
        raise SessionError(f"{loss_log}: fewer than two logged steps to time")
    first, last = train[0], train[-1]
    return 1000.0 * (last["time_s"] - first["time_s"]) / (last["step"] - first["step"])


def _job_timing(result: JobResult, steps: int, tail_steps: int) -> tuple[float, float]:
    """Return a calibration job's milliseconds per step and the steps its wall time covers.

    A job stopped at the calibration's limit is timed from its partial loss log. Its wall time
    then counts as if the job had stopped at its last logged step (it ran a little further:
    its start-up is over-estimated), less ``tail_steps`` steps for the final validation that
    it did not reach.
    """
    if result.returncode is not None:
        return _ms_per_step(result.loss_log), float(steps)
    partial = partial_path(result.loss_log)
    return _ms_per_step(partial), float(_train_records(partial)[-1]["step"] - tail_steps)


def _with_train(config: dict, **train: object) -> dict:
    out = copy.deepcopy(config)
    out["train"].update(train)
    return out


def calibrate(
    profile: str | os.PathLike[str],
    data: str | os.PathLike[str],
    work: str | os.PathLike[str],
    *,
    until: float,
    steps: int = 300,
    margin: float = 0.9,
    max_steps: int | None = None,
    limit_s: float = 120.0,
) -> list[str]:
    """Time the session's jobs sharing the device and set the profile's ``train.steps``.

    Every job of :func:`run_jobs` trains ``steps`` steps under ``work``. From the slowest job's
    step time and the longest start-up (process start to first step, plus final validation and
    saving) the steps that fit before ``until`` are ``margin`` × (time left − start-up) /
    step time, and are written into ``profile`` as ``train.steps``. Fewer than the profile's
    own ``train.steps`` (the floor) come with a line saying that the floor does not fit: the
    jobs then train what fits, equally for every run, rather than overrun the deadline and
    return nothing; ``max_steps`` caps them. The short jobs are stopped after ``limit_s``
    seconds (or at ``until``), so that a slow one cannot eat the training's time; a job
    stopped there is timed from the steps it logged, with ``train.val_batches`` steps allowed
    for the final validation it did not reach. If a job crashes in a fast mode, the profile
    falls back to fp32 eager (``train.fast: {}``) and is timed again.

    Returns
    -------
    list of str
        What was measured and decided.

    Raises
    ------
    SessionError
        If a job crashed in fp32 eager or was stopped before logging two steps, or no step
        fits.
    """
    raw = _read_yaml(profile)
    config = load_config(profile, check_methods=False)
    floor = int(config["train"]["steps"])
    short = _with_train(
        config,
        steps=steps,
        log_every=max(1, steps // 5),
        val_every=steps,
        checkpoint_every=steps,
    )
    lines = []
    # A validation batch (larger crop, no backward) costs about a training step.
    tail_steps = int(config["train"]["val_batches"])
    stop = min(until, time.time() + limit_s)
    results = run_jobs(short, data, Path(work) / "models", Path(work) / "logs", until=stop)
    killed = [r for r in results if r.returncode is None]
    untimed = [r for r in killed if len(_train_records(partial_path(r.loss_log))) < 2]
    if untimed:
        raise SessionError(
            f"calibration ran out of time before two logged steps: see {untimed[0].log}"
        )
    if killed:
        # Stopped mid-way, the jobs still timed their steps: training goes on from those.
        lines.append(
            f"calibration stopped at its limit with {len(killed)} of {len(results)} jobs "
            f"running: timed from their logged steps, allowing {tail_steps} steps for the "
            "final validation they did not reach"
        )
    failed = [r for r in results if r.returncode not in (0, None)]
    if failed and _fast(config["train"]["fast"]):
        lines.append(
            f"calibration failed in fast mode {config['train']['fast']} "
            f"({failed[0].log}): falling back to fp32 eager"
        )
        raw["train"]["fast"] = {}
        _write_yaml(raw, profile)
        return lines + calibrate(
            profile,
            data,
            work,
            until=until,
            steps=steps,
            margin=margin,
            max_steps=max_steps,
            limit_s=limit_s,
        )
    if failed:
        raise SessionError(f"calibration job failed even in fp32 eager: see {failed[0].log}")
    fits = _steps_that_fit(results, steps, tail_steps, until, margin, max_steps, floor, lines)
    raw["train"]["steps"] = fits
    _write_yaml(raw, profile)
    lines.append(f"train.steps = {fits}")
    return lines


def _steps_that_fit(
    results: list[JobResult],
    steps: int,
    tail_steps: int,
    until: float,
    margin: float,
    max_steps: int | None,
    floor: int,
    lines: list[str],
) -> int:
    """Return the training steps that fit before ``until`` after calibration jobs of ``steps``
    steps (see :func:`calibrate`), appending what was measured and decided to ``lines``."""
    timings = [_job_timing(r, steps, tail_steps) for r in results]
    ms = max(job_ms for job_ms, _ in timings)
    startup = max(
        r.wall_s - ms * (n - 1) / 1000.0 for r, (_, n) in zip(results, timings, strict=True)
    )
    left = until - time.time()
    fits = int(margin * (left - startup) * 1000.0 / ms)
    lines.append(
        f"{len(results)} concurrent jobs: {ms:.2f} ms/step (slowest job), start-up and final "
        f"validation {startup:.1f} s, {left:.0f} s left: {fits} steps fit"
    )
    if max_steps and fits > max_steps:
        fits = max_steps
        lines.append(f"capped at {max_steps} steps")
    if fits < 1:
        raise SessionError("no training step fits before the deadline")
    if fits < floor:
        lines.append(
            f"DOES NOT FIT: the floor of {floor} steps needs about "
            f"{startup + floor * ms / 1000.0 / margin:.0f} s; every run trains {fits} steps instead"
        )
    return fits


def _fast(fast: dict) -> bool:
    """Whether ``train.fast`` turns any fast mode on (``amp: "off"`` is not one)."""
    from spbench.step import FastModes

    return FastModes.from_config(fast) != FastModes()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def session_record(work: str | os.PathLike[str]) -> dict:
    """Return the machine-readable record of a session from its work folder.

    Returns
    -------
    dict
        ``commit`` (``SPBENCH_GIT_COMMIT`` or git), ``written`` (ISO 8601), ``setup`` (versions
        and device lines), ``stages`` (name, exit status, seconds), ``plan`` and ``calibration``
        (their lines), ``trained`` (steps, seeds, methods, variants and fast modes of the
        profile trained, if any) and ``runs`` (one provenance row per returned checkpoint:
        steps, wall time, ms/step, device name, fast modes, finish time).
    """
    import datetime

    import pandas as pd

    from spbench.io import git_commit

    work = Path(work)
    stages = work / "stages.tsv"
    profile, runs = work / "profile.yaml", work / "provenance.csv"
    trained = None
    if profile.is_file():
        config = _read_yaml(profile)
        trained = {
            "steps": config["train"]["steps"],
            "fast": config["train"].get("fast", {}),
            "seeds": config["seeds"],
            "methods": config["methods"],
            "variants": list(config.get("variants") or {"base": None, "lap": None}),
        }
    return {
        "commit": git_commit(),
        "written": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "setup": _lines(work / "setup.txt"),
        "stages": pd.read_csv(stages, sep="\t").to_dict("records") if stages.is_file() else [],
        "plan": _lines(work / "plan.txt"),
        "calibration": _lines(work / "calibrate.txt"),
        "trained": trained,
        "runs": pd.read_csv(runs).to_dict("records") if runs.is_file() else [],
    }
