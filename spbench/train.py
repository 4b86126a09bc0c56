"""Training: one stage of a (method, variant, seed) run, from a prepared dataset to a checkpoint.

A stage's weights are fully described by its job settings (:func:`spbench.jobs.train_job`): the
method's recipe (``docs/baselines.md`` §6.1) with the config's overrides, the step count, and the
variant's loss switches (``docs/method.md`` §7), never an edit of the code. Its runtime settings
(:func:`spbench.jobs.train_runtime`: cadences, device, fast modes) change how it runs, not what it
learns.

Multi-stage methods (AINet, SSM) train one stage per call, each starting from the previous
stage's checkpoint (``init``); the workflow names the files ``<stage>.pt``.

Outputs
-------
the checkpoint (``out``)
    Model weights plus what produced them: method, variant, stage, seed, effective recipe, loss
    config, settings, spbench version, device, weights provenance, steps and wall time
    (:class:`spbench.checkpoint.CheckpointMeta`).
the loss log (default ``train_log.jsonl`` beside it)
    One JSON object per logged step (``"kind": "train"``) or validation (``"kind": "val"``) with
    every weighted loss term.

While it runs, a resume checkpoint (``<checkpoint stem>.resume.pt``: model, optimisers, step,
RNG states; :class:`spbench.checkpoint.TrainingState`) is written every ``train.checkpoint_every``
steps, so a killed job re-run by Snakemake continues from there instead of starting again; it is
deleted once the final checkpoint exists. A job asked to stop (SIGTERM: a scheduler's time limit
or preemption, Snakemake cancelling; SIGINT: Ctrl-C) finishes its current step, writes a resume
checkpoint there and exits with ``128 + signal``; the same signal again stops it at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from spbench.catalogue import BUILTIN
from spbench.checkpoint import (
    CheckpointMeta,
    TrainingState,
    input_identity,
    load_checkpoint,
    require_safe_loader,
    resume_path,
    save_checkpoint,
)
from spbench.config import import_method_modules
from spbench.constants import CELL_SIZE
from spbench.data.loader import PairBank
from spbench.data.prepared import load_split
from spbench.errors import UserError
from spbench.io import CorruptFileError, atomic_path, partial_path
from spbench.jobs import default_train_runtime
from spbench.losses import LossConfig
from spbench.models import Method, Recipe, Stage, create_model, get_method, get_stage
from spbench.step import FastModes, TrainStep

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError, RuntimeError):
    """Training produced a NaN or infinite loss; the message names the step and the terms."""


def resolve_device(requested: str = "auto") -> torch.device:
    """Return the torch device for ``requested`` (``auto``, ``cpu`` or ``cuda``).

    ``auto`` picks CUDA when a device is visible and otherwise falls back to the CPU with a log
    line; ``cuda`` without a visible device raises.
    """
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise UserError(
            "train.device is 'cuda' but no CUDA device is visible (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r}; with --resources gpu=0 GPU "
            "jobs run on the CPU): set train.device to auto or cpu, or give the job a GPU"
        )
    log.warning("no CUDA device visible: running on the CPU")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """Return a readable name of ``device`` (the GPU model, or the CPU's and its threads)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return platform.processor() or platform.machine() or "cpu"


def loss_config(losses: dict[str, Any], n_classes: int, *, uses_variant: bool = True) -> LossConfig:
    """Build the :class:`~spbench.losses.LossConfig` of a job's ``losses`` settings.

    ``losses`` holds the switches and the coefficients of the losses that are on
    (:func:`spbench.jobs.job_losses`); the others keep :class:`LossConfig`'s defaults, which
    nothing reads. A stage that does not use the variant (``uses_variant=False``) gets the base
    loss: LAP, MSD and WR off, whatever ``losses`` says.
    """
    fields = {f.name for f in dataclasses.fields(LossConfig)}
    values = {key: value for key, value in losses.items() if key in fields}
    for switch in ("use_lap", "use_msd", "use_wr"):
        values[switch] = bool(values.get(switch)) and uses_variant
    return LossConfig(**values, n_classes=n_classes)


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    bank: PairBank,
    method: Method,
    config: LossConfig,
    recipe: Recipe,
    max_batches: int,
    generator: torch.Generator | None,
    stage: str,
) -> dict[str, float]:
    """Return the mean of every loss term over the validation centre crops (model in eval mode)."""
    model.eval()
    totals: dict[str, float] = {}
    n = 0
    for batch in bank.center_batches(recipe.batch_size, recipe.val_crop, max_batches):
        terms = method.loss(model, batch, config, generator=generator, stage=stage)
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + float(value) * len(batch.images)
        n += len(batch.images)
    model.train()
    return {key: value / max(n, 1) for key, value in totals.items()}


def lr_factor(recipe: Recipe, step: int, halve_at: int | None = None) -> float:
    """Return the learning-rate multiplier for optimiser step ``step`` (0-based).

    ``"poly"``: max(0, 1 − step/schedule_steps)^power (CDS, clamped at 0 as in DLM);
    ``"constant"``: 1. Either is halved from ``halve_at`` on (SCN's StepLR), when given.
    """
    factor = 1.0
    if recipe.schedule == "poly":
        factor = max(0.0, 1.0 - step / recipe.schedule_steps) ** recipe.schedule_power
    if halve_at and step >= halve_at:
        factor *= 0.5
    return factor


def train(
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str,
    variant: str,
    seed: int,
    job: dict[str, Any],
    runtime: dict[str, Any] | None = None,
    stage: str | None = None,
    init: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Path:
    """Train one stage of a (method, variant, seed) run and write its checkpoint.

    Parameters
    ----------
    data_root
        Prepared dataset folder.
    out
        Final checkpoint path (written atomically at the end).
    method
        Registered method name.
    variant
        Variant name, recorded in the checkpoint (its losses are in ``job``).
    seed
        Seed of the weights' initialisation, the crops and flips, and MSD's sampling.
    job
        What determines the weights, resolved for this stage (:func:`spbench.jobs.train_job`):
        ``recipe``, ``steps``, ``lr_halve_at``, ``splits``, ``deterministic``, ``losses``.
    runtime
        What cannot change them (:func:`spbench.jobs.train_runtime`): cadences, device,
        threads, fast modes, ``val_crop``; default: the schema's defaults.
    stage
        Stage name of a multi-stage method (default: its last stage).
    init
        Checkpoint of the previous stage to start from (required by every stage but the
        first).
    log_path
        JSON-lines loss log (default: ``train_log.jsonl`` beside ``out``).
    progress
        Show a progress bar on standard error.

    Returns
    -------
    pathlib.Path
        The checkpoint path.
    """
    require_safe_loader()  # before hours of training whose checkpoint could not be read back
    out = Path(out)
    runtime = {**default_train_runtime(), **(runtime or {})}
    device = _prepare_process(job, runtime)
    spec, stage_spec = get_method(method), get_stage(method, stage)
    recipe = _job_recipe(job, runtime, spec)
    config = loss_config(job["losses"], recipe.n_classes, uses_variant=stage_spec.uses_variant)
    torch.manual_seed(seed)
    random.seed(seed)  # SSM's stage-2 quadrant draw uses Python's generator, as upstream
    generator = torch.Generator().manual_seed(seed)  # crops and flips, drawn on the host
    model, weights = _initial_model(spec, stage_spec, init, device)
    if spec.name not in BUILTIN and spec.segment is None:
        check_output_contract(model, spec.name, device)  # a plug-in's, before hours of NaN
    # Train mode from the first step, resumed or not: a stage that starts from a previous one
    # may have set parts to eval (SSM's frozen global encoder), and validation switches back.
    model.train()
    step_fn = _step_function(model, spec, stage_spec, config, recipe, runtime, device, seed)
    steps = job["steps"]
    if step_fn.optimizer is None:
        # A parameter-free method (the plain grid, SLIC) has nothing to fit: its provenance
        # says what it is rather than "trained here".
        steps, weights = 0, spec.description
    meta = CheckpointMeta(
        method=method,
        variant=variant,
        stage=stage_spec.name,
        stages=[s.name for s in spec.stages],
        seed=seed,
        weights=weights,
        settings=job,
        runtime=runtime,
        recipe=dataclasses.asdict(recipe),
        loss_config=dataclasses.asdict(config),
        device=str(device),
        device_name=device_name(device),
        fast_modes=step_fn.modes.label,
        init=str(init) if init else None,
    )
    resume = TrainingState(
        resume_path(out),
        meta,
        step_fn,
        generator,
        inputs=input_identity(data_root, init),
    )
    start_step, wall_before = resume.restore()
    loss_log = LossLog(Path(log_path) if log_path else out.with_name("train_log.jsonl"))
    loss_log.keep_until(start_step)

    bank, val_bank = _pair_banks(data_root, job["splits"], recipe, spec, device)
    _log_start(meta, pairs=len(bank), val_pairs=len(val_bank), steps=steps)
    loop = _Loop(
        step_fn=step_fn,
        batches=bank.random_batches(recipe.batch_size, recipe.crop, generator, spec.augment),
        validate=_validation(model, val_bank, spec, stage_spec, config, recipe, runtime, seed),
        lr=lambda step: recipe.lr * lr_factor(recipe, step, job["lr_halve_at"]),
        runtime=runtime,
        resume=resume,
        loss_log=loss_log,
        name=f"{method}/{variant}/{stage_spec.name}/seed{seed}",
    )
    with stop_requests() as loop.stop_requested:
        wall = loop.run(start_step, steps, wall_before, progress=progress)
    save_checkpoint(out, meta.payload(model, steps, wall))
    # The resume file goes before the log is published: stopped in between, the job re-runs
    # from the start rather than resume with its log's partial file already gone.
    resume.remove()
    loss_log.publish()
    log.info("wrote %s (%d steps, %.1f s)", out, steps, wall)
    return out


def _step_function(
    model: torch.nn.Module,
    spec: Method,
    stage: Stage,
    config: LossConfig,
    recipe: Recipe,
    runtime: dict[str, Any],
    device: torch.device,
    seed: int,
) -> TrainStep:
    """Return the training step of ``model`` on ``spec``'s loss, on ``device``, in the
    runtime's fast modes (those the method supports)."""
    # The loss's sampling (MSD, BPL) draws on the device from the step's generator, or from
    # the default CUDA generator (seeded by train) when the step is a CUDA graph.
    return TrainStep.create(
        model,
        lambda net, batch, gen: spec.loss(net, batch, config, generator=gen, stage=stage.name),
        recipe,
        device=device,
        modes=FastModes.from_config(runtime["fast"]).for_method(
            spec.name, capturable=spec.graph_capturable
        ),
        seed=seed,
    )


def _validation(
    model: torch.nn.Module,
    val_bank: PairBank,
    spec: Method,
    stage: Stage,
    config: LossConfig,
    recipe: Recipe,
    runtime: dict[str, Any],
    seed: int,
) -> Callable[[], dict[str, float]]:
    """Return a function giving the mean validation loss terms of ``model`` on ``val_bank``."""
    # Validation draws its own samples (MSD, BPL) from a generator re-seeded at every
    # validation, so that neither the training stream nor the weights depend on val_every.
    generator = torch.Generator(val_bank.device)
    return lambda: validate(
        model,
        val_bank,
        spec,
        config,
        recipe,
        runtime["val_batches"],
        generator.manual_seed(seed),
        stage.name,
    )


def _job_recipe(job: dict[str, Any], runtime: dict[str, Any], spec: Method) -> Recipe:
    """Return the stage's recipe: the job's (which sets the weights), the runtime's val_crop."""
    return Recipe(
        **{
            **job["recipe"],
            "betas": tuple(job["recipe"]["betas"]),
            "val_crop": runtime["val_crop"] or spec.recipe.val_crop,
        }
    )


def _pair_banks(
    data_root: str | os.PathLike[str],
    splits: list[str],
    recipe: Recipe,
    spec: Method,
    device: torch.device,
) -> tuple[PairBank, PairBank]:
    """Return the training pairs of ``splits`` (crops of ``recipe.crop``) and the val pairs."""
    train_bank = PairBank(
        [load_split(data_root, s) for s in splits],
        device,
        min_size=recipe.crop,
        with_edges=spec.needs_edges,
    )
    val_bank = PairBank(
        [load_split(data_root, "val")],
        device,
        min_size=recipe.val_crop,
        with_edges=spec.needs_edges,
    )
    return train_bank, val_bank


def _log_start(meta: CheckpointMeta, **counts: int) -> None:
    """Log what is trained, on what and how, as one JSON line (the job log's first record)."""
    keys = ("method", "variant", "stage", "seed", "device", "fast_modes", "recipe")
    keys += ("loss_config", "init")
    log.info("training %s", json.dumps({**{k: getattr(meta, k) for k in keys}, **counts}))


def _prepare_process(job: dict[str, Any], runtime: dict[str, Any]) -> torch.device:
    """Import the method's modules, set threads and determinism; return the training device."""
    import_method_modules([*job.get("method_modules", []), *runtime["method_modules"]])
    if runtime["threads"]:
        torch.set_num_threads(runtime["threads"])
    if job["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return resolve_device(runtime["device"])


def _initial_model(
    spec: Method, stage: Stage, init: str | os.PathLike[str] | None, device: torch.device
) -> tuple[torch.nn.Module, str]:
    """Return a stage's network, started from the previous stage's checkpoint where the recipe
    says so, and the provenance of its starting weights.

    Raises
    ------
    ValueError
        If a stage that continues a previous one is given no ``init`` checkpoint.
    UserError
        If the network has no ``init_from_previous`` and the previous stage's weights do not
        fit it.
    """
    names = [s.name for s in spec.stages]
    index = names.index(stage.name)
    if index > 0 and init is None:
        raise ValueError(
            f"{spec.name}: stage {stage.name!r} starts from stage {names[index - 1]!r}; "
            "pass its checkpoint (--init)"
        )
    model = create_model(spec.name, stage=stage.name).to(device)
    if init is None:
        return model, "trained here, random init"
    previous = load_checkpoint(init, map_location=device)
    if hasattr(model, "init_from_previous"):
        model.init_from_previous(previous["model"])
    else:
        _load_whole(model, previous["model"], f"{spec.name}: stage {stage.name!r}", init)
    return model, f"trained here, {stage.name} from {previous.get('stage', 'main')}"


def check_output_contract(model: torch.nn.Module, method: str, device: torch.device) -> None:
    """Refuse a network whose output breaks the interface every loss and prediction rely on.

    One forward of a black 64×64 image (4×4 grid cells) in eval mode, without gradients (no
    batch-norm statistic moves): the output must be a :class:`~spbench.models.SuperpixelOutput`
    whose ``assignment`` is ``[1, 9, 64, 64]``, finite, non-negative and summing to 1 over its
    nine channels at every pixel (a softmax, not logits: those train to NaN at step 1).

    Raises
    ------
    UserError
        Naming the method, what is wrong and where the interface is described.
    """
    size = 4 * CELL_SIZE
    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(torch.zeros(1, 3, size, size, device=device))
    model.train(was_training)
    q = getattr(output, "assignment", None)
    if not isinstance(q, torch.Tensor):
        problem = f"forward returned {type(output).__name__}, not a SuperpixelOutput"
    elif tuple(q.shape) != (1, 9, size, size):
        shape = f"(1, 9, {size}, {size})"
        problem = f"the assignment of a {size}×{size} image is {tuple(q.shape)}, not {shape}"
    elif not (torch.isfinite(q).all() and (q >= 0).all() and (q.sum(1) - 1).abs().max() < 1e-3):
        problem = "the assignment is not a softmax over its 9 channels (≥ 0, summing to 1)"
    else:
        return
    raise UserError(
        f"method {method!r}: {problem}; see README.md, 'Adding a base method' (the network's "
        "input and output)"
    )


def _load_whole(model: torch.nn.Module, state: dict, who: str, init: object) -> None:
    """Load the previous stage's ``state`` into ``model`` strictly; a mismatch is a
    :class:`UserError` naming the keys and the ``init_from_previous`` hook."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        lines = [line.strip()[:160] for line in str(err).splitlines()[1:3] if line.strip()]
        raise UserError(
            f"{who} cannot start from {init} as a whole ({'; '.join(lines) or err}). Give "
            "the network an init_from_previous(state_dict) method that takes what it needs "
            "of the previous stage's weights (README: Adding a base method)"
        ) from err


class LossLog:
    """The JSON-lines loss log of a training job.

    Records are appended to ``<path>.partial`` as training goes (so a killed job keeps them),
    and :meth:`publish` renames it to ``path`` atomically once the checkpoint is written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = partial_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

    def keep_until(self, step: int) -> None:
        """Drop what a killed job logged after ``step`` (its last checkpoint): those steps
        run again. Step 0 starts an empty log.

        A last line cut short (a crash mid-write) is dropped; a log lost since the resume
        point is started anew, with a warning that it holds no record before ``step``.

        Raises
        ------
        CorruptFileError
            If a line before the last does not parse.
        """
        if step == 0 or not self.partial.is_file():
            if step:
                log.warning("%s is gone: the log restarts at step %d", self.partial, step)
            self.partial.write_text("", encoding="utf-8")
            return
        lines = [line for line in self.partial.read_text(encoding="utf-8").splitlines() if line]
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append((json.loads(line)["step"], line))
            except (ValueError, KeyError, TypeError) as err:
                if number < len(lines):
                    raise CorruptFileError(
                        f"{self.partial}:{number}: not a loss-log record ({err}); delete it "
                        "to resume without the records so far"
                    ) from err
                log.warning("%s: dropped its last line, cut short", self.partial)
        kept = [line for logged, line in records if logged <= step]
        self.partial.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def sync(self) -> None:
        """Force the records so far onto the disk, so that a resume file never gets ahead of
        them (called before each one is written)."""
        if self.partial.is_file():
            with open(self.partial, "rb") as handle:
                os.fsync(handle.fileno())

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (``kind``, ``step`` and the loss terms) and flush it to disk."""
        with open(self.partial, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def publish(self) -> None:
        """Move the finished log to its final name (atomically)."""
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(self.partial.read_bytes())
        self.partial.unlink(missing_ok=True)


@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], int | None]]:
    """Catch SIGTERM and SIGINT during training as a request to stop after the current step.

    Yields a function returning the number of the first signal received, or None. The same
    signal again stops at once (``KeyboardInterrupt`` for SIGINT, else
    ``SystemExit(128 + signal)``); the other one is taken as the same request, since Snakemake
    follows a terminal's Ctrl-C to its jobs with a SIGTERM of its own. Outside the main thread,
    where Python cannot set handlers, nothing is caught.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    pending: list[int] = []

    def request(signum: int, _frame: Any) -> None:
        if pending and signum == pending[0]:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        if not pending:  # the loop logs it: logging here could re-enter a stream write
            pending.append(signum)

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: pending[0] if pending else None
    finally:
        for sig, handler in previous.items():
            # None: a handler set outside Python, which signal.signal cannot reinstall
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


@dataclasses.dataclass
class _Loop:
    """The optimiser steps of one training job, with its log, validation and resume points.

    Between those points the loop reads nothing back from the device, so the host runs ahead
    of it (unless a loss does: AINet's boundary-perceiving loss sizes its patch batch from the
    labels, and MSD's ``original`` mode indexes by class counts); non-finite losses recorded
    on the device are checked at each of them.
    """

    step_fn: TrainStep
    batches: Iterator[Any]
    validate: Callable[[], dict[str, float]]
    lr: Callable[[int], float]
    runtime: dict[str, Any]
    resume: TrainingState
    loss_log: LossLog
    name: str
    stop_requested: Callable[[], int | None] = lambda: None

    def run(self, start: int, steps: int, wall_before: float, *, progress: bool) -> float:
        """Run steps ``start`` to ``steps``; return the training wall time in seconds."""
        t0, last_good = time.perf_counter(), "none (no checkpoint yet)"
        if start:
            last_good = str(self.resume.path)
        bar = tqdm(
            range(start, steps),
            initial=start,
            total=steps,
            desc=self.name,
            disable=not progress,
            file=sys.stderr,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        every = self.runtime
        for step in bar:
            self.step_fn.set_lr(self.lr(step))
            terms = self.step_fn(next(self.batches))
            done, wall = step + 1, wall_before + time.perf_counter() - t0
            log_now = done % every["log_every"] == 0 or done == steps
            val_now = done % every["val_every"] == 0 or done == steps
            save_now = done % every["checkpoint_every"] == 0 and done < steps
            stop = self.stop_requested() if done < steps else None
            if not (log_now or val_now or save_now or stop):
                continue
            self._stop_if_nonfinite(start, last_good)
            if log_now:
                losses = {k: float(v.detach()) for k, v in terms.items()}
                record = {"kind": "train", "step": done, "lr": self.step_fn.lr, "time_s": wall}
                self.loss_log.write({**record, **losses})
                bar.set_postfix(loss=f"{losses['total']:.4g}")
            if val_now:
                self.loss_log.write({"kind": "val", "step": done, **self.validate()})
            if save_now or stop:
                self.loss_log.sync()
                self.resume.save(done, wall)
                last_good = f"{self.resume.path} (step {done})"
            if stop:
                bar.close()
                log.warning(
                    "%s: stopped by %s at step %d of %d; run the same command to resume from %s",
                    self.name,
                    signal.Signals(stop).name,
                    done,
                    steps,
                    self.resume.path,
                )
                raise SystemExit(128 + stop)
        bar.close()
        return wall_before + time.perf_counter() - t0

    def _stop_if_nonfinite(self, start: int, last_good: str) -> None:
        bad = self.step_fn.first_nonfinite()
        if bad is not None:
            raise NonFiniteLossError(
                f"{self.name}: non-finite loss at step {start + bad[0]}: {bad[1]}; "
                f"last good checkpoint: {last_good}"
            )
