"""The compute plan of a profile: every job's work and estimated time, and the totals.

``spbench plan --config PROFILE [--gpus N]`` (and the start of a workflow run) lists the jobs of
the profile's DAG — training stages, weight imports, predictions, scoring — with their work
(steps × batch, images × scales, pair-scores) and an estimate from the step-time table
(:mod:`spbench.steptimes`). A job whose figure is not in the table is *unknown*, never guessed;
the totals then count only what is known and say how many jobs are missing.

The wall time on N GPUs comes from :func:`list_schedule`: jobs that hold a ``gpu`` resource
(training and prediction) run at most N at a time, CPU jobs (scoring) whenever their inputs
exist, and a stage waits for the one before it (AINet's and SSM's two stages are a chain).

Nothing here imports torch: the plan runs where only the workflow's dependencies are installed.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from spbench.catalogue import BUILTIN, PUBLISHED_PREFIX, get_card
from spbench.config import budget_label, experiment_runs, training_budget
from spbench.errors import UserError
from spbench.jobs import stage_runs, stage_variant, train_job, trained_elsewhere
from spbench.steptimes import Figure, bench_variant, fast_label, lookup

__all__ = [
    "PlanJob",
    "Task",
    "choose_device",
    "format_plan",
    "list_schedule",
    "plan_jobs",
    "plan_text",
    "scoring_device",
    "split_size",
    "wall_time",
]


@dataclasses.dataclass(frozen=True)
class Task:
    """A job for :func:`list_schedule`: its name, duration in seconds, whether it holds a GPU,
    and the names of the jobs it waits for."""

    name: str
    seconds: float
    gpu: bool
    after: tuple[str, ...] = ()


def list_schedule(tasks: Sequence[Task], n_gpus: int) -> dict[str, tuple[float, float]]:
    """Schedule ``tasks`` on ``n_gpus`` GPUs and unlimited CPU cores; return their (start, end).

    Greedy list scheduling: whenever a GPU is free, the ready GPU job with the longest chain of
    work after it (itself included) starts first, which keeps a long stage chain from being
    left for last; CPU jobs start as soon as their inputs exist. The makespan is
    ``max(end)``, in the units of ``Task.seconds``.

    Raises
    ------
    ValueError
        If ``n_gpus`` < 1, a task waits for an unknown name, or the dependencies form a cycle.
    """
    if n_gpus < 1:
        raise ValueError(f"the wall time needs at least one GPU, got {n_gpus}")
    by_name = {t.name: t for t in tasks}
    children: dict[str, list[str]] = defaultdict(list)
    for task in tasks:
        for name in task.after:
            if name not in by_name:
                raise ValueError(f"{task.name} waits for unknown job {name!r}")
            children[name].append(task.name)

    @cache
    def chain(name: str) -> float:
        return by_name[name].seconds + max(map(chain, children[name]), default=0.0)

    waiting = {t.name: set(t.after) for t in tasks}
    ready = [t.name for t in tasks if not t.after]
    running: list[tuple[float, str]] = []
    times: dict[str, tuple[float, float]] = {}
    now, free = 0.0, n_gpus
    while ready or running:
        ready.sort(key=chain, reverse=True)
        for name in list(ready):
            task = by_name[name]
            if task.gpu and not free:
                continue
            free -= task.gpu
            ready.remove(name)
            times[name] = (now, now + task.seconds)
            heapq.heappush(running, (now + task.seconds, name))
        now, name = heapq.heappop(running)
        free += by_name[name].gpu
        for child in children[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                ready.append(child)
    if len(times) != len(by_name):
        raise ValueError("the jobs' dependencies form a cycle")
    return times


@dataclasses.dataclass(frozen=True)
class PlanJob:
    """One job of the plan.

    Attributes
    ----------
    name : str
        ``<rule> <method>/<variant>/seed<seed>[/<stage>]``.
    work : str
        What it does, in units the step-time table prices (steps × batch, images × scales, ...).
    gpu : bool
        Whether it holds a ``gpu`` resource (runs on ``train.device`` / ``predict.device``).
    seconds : float or None
        Estimated duration; None when the table has no figure for it.
    note : str
        How the estimate was made, or what to measure when it is unknown.
    after : tuple of str
        Names of the jobs it waits for.
    """

    name: str
    work: str
    gpu: bool
    seconds: float | None
    note: str = ""
    after: tuple[str, ...] = ()


def split_size(config: dict) -> tuple[int, int | None]:
    """Return the (images, annotation pairs) that prediction and scoring work on.

    From the prepared dataset's manifest when it exists, else the BSDS500 protocol's counts or
    the synthetic profile's image count (its pairs are drawn at generation: None); then capped
    by ``predict.max_images`` (pairs in proportion) and ``score.max_annotations`` (an upper
    bound: at most that many pairs per image).
    """
    from spbench.data import bsds500, prepared

    dataset, split = config["dataset"], config["predict"]["split"]
    manifest = Path(dataset["root"]) / prepared.MANIFEST
    if manifest.is_file():
        entry = prepared.read_manifest(dataset["root"])["splits"][split]
        images, pairs = int(entry["images"]), int(entry["pairs"])
    elif dataset["name"] == "bsds500":
        images, pairs = bsds500.EXPECTED_IMAGES[split], bsds500.EXPECTED_PAIRS[split]
    else:
        images, pairs = int(dataset[dataset["name"]][f"n_{split}"]), None
    kept = min(images, config["predict"]["max_images"] or images)
    if pairs is not None:
        pairs = round(pairs * kept / images)
        if config["score"]["max_annotations"]:
            pairs = min(pairs, kept * config["score"]["max_annotations"])
    return kept, pairs


def choose_device(
    figures: Iterable[Figure], train_device: str, wanted: str | None = None
) -> str | None:
    """Return the device name whose figures price the GPU jobs.

    ``wanted`` picks the device whose name contains it (case-insensitive); otherwise the device
    of the newest training figure of the type ``train.device`` asks for (``auto``: CUDA if the
    table has any, else the CPU). None when the table has no training figure of that type.

    Raises
    ------
    UserError
        If ``wanted`` matches no device of the table; the message lists them.
    """
    trained = [f for f in figures if f.kind == "train"]
    if wanted:
        names = sorted({f.device_name for f in trained})
        matches = [n for n in names if wanted.lower() in n.lower()]
        if not matches:
            raise UserError(f"--device {wanted!r}: no figures for it; the table has {names}")
        return matches[0]
    types = {"cpu": ["cpu"], "cuda": ["cuda"], "auto": ["cuda", "cpu"]}[train_device]
    for kind in types:
        newest = max((f for f in trained if f.device == kind), key=lambda f: f.date, default=None)
        if newest is not None:
            return newest.device_name
    return None


def _run_name(method: str, variant: str, seed: int) -> str:
    return f"{method}/{variant}/seed{seed}"


def _checkpoint_job(config: dict, method: str, variant: str, seed: int, stage: str) -> str:
    """The name of the job that makes a stage's checkpoint (a shared stage's is the same for
    every variant; a published run's is the import of its weights, an adopted one's its
    adoption)."""
    rule = "train"
    if trained_elsewhere(config, method, variant):
        rule = "import" if variant.startswith(PUBLISHED_PREFIX) else "adopt"
    variant = stage_variant(method, variant, stage)
    return f"{rule} {_run_name(method, variant, seed)}/{stage}"


def _method_modules(config: dict, method: str) -> list[str]:
    """Return the modules ``spbench bench train --module`` must import to know ``method``:
    none for a built-in, else the module that registered it (the profile's
    ``method_modules`` when that is not known)."""
    if method in BUILTIN:
        return []
    module = get_card(method).module
    return [module] if module else list(config["method_modules"])


def _train_estimate(
    config: dict, figures: list[Figure], device: str | None, run: tuple[str, str, str]
) -> tuple[str, float | None, str]:
    """Return (work, seconds or None, note) of one training stage ``(method, variant, stage)``."""
    method, variant, stage = run
    job = train_job(config, method, variant, stage)
    batch, crop = job["recipe"]["batch_size"], job["recipe"]["crop"]
    loss, mode = bench_variant(job["losses"]), fast_label(config["train"]["fast"])
    work = f"{job['steps']:,} steps × batch {batch} × {crop}²"
    found = lookup(
        figures,
        kind="train",
        device_name=device or "",
        method=method,
        stage=stage,
        variant=loss,
        mode=mode,
        batch_size=batch,
        size=str(crop),
    )
    if found is None:
        measure = (
            "spbench bench train"
            + "".join(f" --module {m}" for m in _method_modules(config, method))
            + f" --methods {method} --stage {stage} --variants {loss} "
            f"--batch-size {batch} --crop {crop}"
            + (f" --modes {mode}" if mode != "fp32" else "")
            + " --record"
        )
        return work, None, f"unknown ({mode}): {measure}"
    ms, note = found
    return work, job["steps"] * ms / 1000, note


def _train_jobs(config: dict, figures: list[Figure], device: str | None) -> list[PlanJob]:
    """One job per stage checkpoint: a training stage, the import of published weights, or the
    adoption of a checkpoint trained elsewhere."""
    jobs = []
    for method, variant, seed, stage in stage_runs(config):
        card = get_card(method)
        name = _checkpoint_job(config, method, variant, seed, stage)
        if variant.startswith(PUBLISHED_PREFIX):
            jobs.append(PlanJob(name, "published weights", False, None, "not estimated"))
            continue
        if trained_elsewhere(config, method, variant):  # a copy of a config.trained_elsewhere file
            jobs.append(PlanJob(name, "adopted, trained elsewhere", False, 0.0, ""))
            continue
        names = [s.name for s in card.stages]
        index = names.index(stage)
        after = (_checkpoint_job(config, method, variant, seed, names[index - 1]),) if index else ()
        if card.trained:
            work, seconds, note = _train_estimate(config, figures, device, (method, variant, stage))
        else:
            work, seconds, note = "nothing to fit", 0.0, ""
        jobs.append(PlanJob(name, work, True, seconds, note, after))
    return jobs


def _evaluation_jobs(
    config: dict, figures: list[Figure], device: str | None, scorer: str | None
) -> list[PlanJob]:
    """A prediction and a scoring job per run of every experiment."""
    images, pairs = split_size(config)
    scales = len(config["predict"]["scales"])
    height, width = config["predict"]["base_size"]
    runs = sorted({run for runs in experiment_runs(config).values() for run in runs})
    pair_scores = None if pairs is None else pairs * scales * 2  # EC on and off
    found = lookup(figures, kind="score", device_name=scorer or "")
    scored = None if found is None or pair_scores is None else pair_scores * found[0] / 1000
    if pair_scores is None:
        score_work = f"{images} images × {scales} scales × 2 (EC)"
        score_note = "unknown: the pairs are counted when the dataset is prepared"
    else:
        score_work = f"{pair_scores:,} pair-scores"
        score_note = "" if scored is not None else "unknown: no scoring figure"
    jobs = []
    for method, variant, seed in runs:
        run = _run_name(method, variant, seed)
        last = _checkpoint_job(config, method, variant, seed, get_card(method).stages[-1].name)
        predicted = lookup(
            figures,
            kind="predict",
            device_name=device or "",
            method=method,
            size=f"{height}x{width}",
        )
        seconds = None if predicted is None else predicted[0] * images * scales / 1000
        note = "" if predicted else f"unknown: no {method} prediction figure at {height}x{width}"
        work = f"{images} images × {scales} scales"
        jobs.append(PlanJob(f"predict {run}", work, True, seconds, note, (last,)))
        jobs.append(
            PlanJob(f"score {run}", score_work, False, scored, score_note, (f"predict {run}",))
        )
    return jobs


def plan_jobs(config: dict, figures: Sequence[Figure], device: str | None) -> list[PlanJob]:
    """Return every job of a validated profile's DAG with its work and estimate.

    Parameters
    ----------
    config
        A validated profile.
    figures
        The step-time table (:func:`spbench.steptimes.read_table`).
    device
        The device name that prices training and prediction (:func:`choose_device`); scoring
        is priced on :func:`scoring_device`.

    Returns
    -------
    list of PlanJob
        Training stages (and weight imports), then predictions and scores.
    """
    figures = list(figures)
    scorer = scoring_device(figures)
    return _train_jobs(config, figures, device) + _evaluation_jobs(config, figures, device, scorer)


def scoring_device(figures: Iterable[Figure]) -> str | None:
    """Return the device of the newest scoring figure (scoring runs on one CPU core), if any."""
    newest = max((f for f in figures if f.kind == "score"), key=lambda f: f.date, default=None)
    return None if newest is None else newest.device_name


def wall_time(jobs: Sequence[PlanJob], n_gpus: int) -> float:
    """Return the seconds from the first job's start to the last one's end on ``n_gpus`` GPUs
    (:func:`list_schedule`); an unknown job counts as 0, so the result is then a lower bound."""
    tasks = [Task(j.name, j.seconds or 0.0, j.gpu, j.after) for j in jobs]
    return max((end for _, end in list_schedule(tasks, n_gpus).values()), default=0.0)


def _hours(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 3600:,.2f}"


def format_plan(
    config: dict,
    jobs: Sequence[PlanJob],
    n_gpus: int,
    device: str | None,
    scorer: str | None = None,
) -> str:
    """Return the plan as text: a table of the jobs, then GPU-hours, CPU-hours and the wall time
    on ``n_gpus`` GPUs (a lower bound, marked ``≥``, when some jobs are unknown); ``device`` and
    ``scorer`` are named in the header."""
    rows = [("job", "work", "on", "hours", "note")]
    rows += [(j.name, j.work, "gpu" if j.gpu else "cpu", _hours(j.seconds), j.note) for j in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    missing = f"no {config['train']['device']} device in the step-time table"
    lines = [
        f"compute plan of profile {config['run_name']!r}, "
        f"{budget_label(training_budget(config['train']))}",
        f"GPU jobs priced on: {device or missing} "
        f"(fast mode {fast_label(config['train']['fast'])}); "
        f"scoring on: {scorer or 'no device with figures'}",
        "",
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + f"  {row[4]}"
        for row in rows
    ]
    unknown = [j for j in jobs if j.seconds is None]
    wall = wall_time(jobs, n_gpus)
    bound = "≥ " if unknown else ""
    gpu = sum(j.seconds or 0.0 for j in jobs if j.gpu)
    cpu = sum(j.seconds or 0.0 for j in jobs if not j.gpu)
    lines += [
        "",
        f"jobs: {len(jobs)} ({len(unknown)} unknown, counted as 0 below)",
        f"GPU-hours: {bound}{gpu / 3600:,.1f}   CPU-hours: {bound}{cpu / 3600:,.1f}",
        f"wall time on {n_gpus} GPU{'s' if n_gpus > 1 else ''}: {bound}{wall / 3600:,.1f} h "
        f"({wall / 86400:,.1f} days)",
    ]
    return "\n".join(line.rstrip() for line in lines)


def plan_text(
    config: dict,
    n_gpus: int = 1,
    *,
    device: str | None = None,
    tables: Sequence[str | Path] | None = None,
) -> str:
    """Return :func:`format_plan` of a validated profile, priced by the step-time tables
    (default: the user's, then spbench's) on ``device`` (default: :func:`choose_device`)."""
    from spbench.steptimes import read_table

    figures = read_table(tables)
    chosen = choose_device(figures, config["train"]["device"], device)
    jobs = plan_jobs(config, figures, chosen)
    return format_plan(config, jobs, n_gpus, chosen, scoring_device(figures))
