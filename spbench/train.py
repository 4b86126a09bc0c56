"""Training: one stage of a (method, variant, seed) run, from a prepared dataset to a checkpoint.

A stage's weights are fully described by its job settings (:func:`spbench.jobs.train_job`): the
method's recipe (``baselines.md`` §6.1) with the config's overrides, the step count, and the
variant's loss switches (``method.md`` §7), never an edit of the code. Its runtime settings
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
deleted once the final checkpoint exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from spbench.checkpoint import CheckpointMeta, TrainingState, load_checkpoint, save_checkpoint
from spbench.config import import_method_modules
from spbench.data.loader import PairBank
from spbench.data.prepared import load_split
from spbench.errors import UserError
from spbench.io import atomic_path
from spbench.jobs import default_train_runtime
from spbench.losses import LossConfig
from spbench.models import Method, Recipe, create_model, get_method, get_stage
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
        raise RuntimeError("train.device is 'cuda' but no CUDA device is visible")
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
    out = Path(out)
    log_path = Path(log_path) if log_path else out.with_name("train_log.jsonl")
    partial_log = log_path.with_name(log_path.name + ".partial")
    for folder in {out.parent, log_path.parent}:
        folder.mkdir(parents=True, exist_ok=True)
    runtime = {**default_train_runtime(), **(runtime or {})}
    import_method_modules([*job.get("method_modules", []), *runtime["method_modules"]])
    if runtime["threads"]:
        torch.set_num_threads(runtime["threads"])
    if job["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(runtime["device"])
    spec = get_method(method)
    stage_spec = get_stage(method, stage)
    stages = [s.name for s in spec.stages]
    if stages.index(stage_spec.name) > 0 and init is None:
        raise ValueError(
            f"{method}: stage {stage_spec.name!r} starts from stage "
            f"{stages[stages.index(stage_spec.name) - 1]!r}; pass its checkpoint (--init)"
        )
    val_crop = runtime["val_crop"] or spec.recipe.val_crop
    recipe = Recipe(
        **{**job["recipe"], "betas": tuple(job["recipe"]["betas"]), "val_crop": val_crop}
    )
    config = loss_config(job["losses"], recipe.n_classes, uses_variant=stage_spec.uses_variant)
    steps = job["steps"]

    torch.manual_seed(seed)
    random.seed(seed)  # SSM's stage-2 quadrant draw uses Python's generator, as upstream
    generator = torch.Generator().manual_seed(seed)  # crops and flips, drawn on the host
    model = create_model(method, stage=stage_spec.name).to(device)
    weights = "trained here, random init"
    if init is not None:
        previous = load_checkpoint(init, map_location=device)
        if hasattr(model, "init_from_previous"):
            model.init_from_previous(previous["model"])
        else:
            model.load_state_dict(previous["model"])
        weights = f"trained here, {stage_spec.name} from {previous.get('stage', 'main')}"
    # The loss's sampling (MSD, BPL) draws on the device from the step's generator, or from
    # the default CUDA generator (seeded above) when the step is a CUDA graph.
    step_fn = TrainStep.create(
        model,
        lambda net, batch, gen: spec.loss(net, batch, config, generator=gen, stage=stage_spec.name),
        recipe,
        device=device,
        modes=FastModes.from_config(runtime["fast"]),
        seed=seed,
    )
    modes = step_fn.modes
    if step_fn.optimizer is None:
        # A parameter-free method (the plain grid, SLIC) has nothing to fit: its provenance
        # says what it is rather than "trained here".
        steps, weights = 0, spec.description
    meta = CheckpointMeta(
        method=method,
        variant=variant,
        stage=stage_spec.name,
        stages=stages,
        seed=seed,
        weights=weights,
        settings=job,
        runtime=runtime,
        recipe=dataclasses.asdict(recipe),
        loss_config=dataclasses.asdict(config),
        device=str(device),
        device_name=device_name(device),
        fast_modes=modes.label,
        init=str(init) if init else None,
    )
    resume = TrainingState(out.with_name(out.stem + ".resume.pt"), meta, step_fn, generator)
    start_step, wall_before = resume.restore()
    if start_step == 0:
        partial_log.unlink(missing_ok=True)
    elif partial_log.is_file():
        # Drop what the killed job logged after its last checkpoint: those steps run again.
        kept = [
            line
            for line in partial_log.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= start_step
        ]
        partial_log.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    splits = [load_split(data_root, s) for s in job["splits"]]
    bank = PairBank(splits, device, min_size=recipe.crop, with_edges=spec.needs_edges)
    val_bank = PairBank(
        [load_split(data_root, "val")],
        device,
        min_size=recipe.val_crop,
        with_edges=spec.needs_edges,
    )
    header = {
        "method": method,
        "variant": variant,
        "stage": stage_spec.name,
        "seed": seed,
        "device": str(device),
        "fast_modes": modes.label,
        "pairs": len(bank),
        "val_pairs": len(val_bank),
        "steps": steps,
        "recipe": meta.recipe,
        "loss_config": meta.loss_config,
        "init": meta.init,
    }
    log.info("training %s", json.dumps(header))

    batches = bank.random_batches(recipe.batch_size, recipe.crop, generator, spec.augment)
    model.train()
    t0 = time.perf_counter()
    last_good = str(resume.path) if start_step else "none (no checkpoint yet)"

    def stop_if_nonfinite() -> None:
        bad = step_fn.first_nonfinite()
        if bad is not None:
            raise NonFiniteLossError(
                f"{method}/{variant}/{stage_spec.name}/seed{seed}: non-finite loss at step "
                f"{start_step + bad[0]}: {bad[1]}; last good checkpoint: {last_good}"
            )

    bar = tqdm(
        range(start_step, steps),
        initial=start_step,
        total=steps,
        desc=f"{method}/{variant}/{stage_spec.name}",
        disable=not progress,
        file=sys.stderr,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    # Validation draws its own samples (MSD, BPL) from a generator re-seeded at every
    # validation, so that neither the training stream nor the weights depend on val_every.
    val_generator = torch.Generator(device)
    with open(partial_log, "a", encoding="utf-8") as log_file:
        for step in bar:
            step_fn.set_lr(recipe.lr * lr_factor(recipe, step, job["lr_halve_at"]))
            terms = step_fn(next(batches))
            done = step + 1
            log_now = done % runtime["log_every"] == 0 or done == steps
            val_now = done % runtime["val_every"] == 0 or done == steps
            save_now = done % runtime["checkpoint_every"] == 0 and done < steps
            if not (log_now or val_now or save_now):
                continue  # nothing read back: the host runs ahead of the device
            stop_if_nonfinite()
            if log_now:
                record = {
                    "kind": "train",
                    "step": done,
                    "lr": step_fn.lr,
                    "time_s": wall_before + time.perf_counter() - t0,
                    **{k: float(v.detach()) for k, v in terms.items()},
                }
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                bar.set_postfix(loss=f"{record['total']:.4g}")
            if val_now:
                val = validate(
                    model,
                    val_bank,
                    spec,
                    config,
                    recipe,
                    runtime["val_batches"],
                    val_generator.manual_seed(seed),
                    stage_spec.name,
                )
                log_file.write(json.dumps({"kind": "val", "step": done, **val}) + "\n")
                log_file.flush()
            if save_now:
                resume.save(done, wall_before + time.perf_counter() - t0)
                last_good = f"{resume.path} (step {done})"
    bar.close()
    wall = wall_before + time.perf_counter() - t0
    save_checkpoint(out, meta.payload(model, steps, wall))
    with atomic_path(log_path) as tmp:
        tmp.write_bytes(partial_log.read_bytes())
    partial_log.unlink(missing_ok=True)
    resume.remove()
    log.info("wrote %s (%d steps, %.1f s)", out, steps, wall)
    return out
