"""What each workflow job receives: its settings, resolved for that job alone, in canonical form.

A Snakemake job re-runs when its ``params`` change, and a paper-scale training job is days of
GPU time, so every job's params hold exactly what can change its output, nothing more:

- the *job* settings (:func:`train_job`, :func:`predict_job`, :func:`score_job`): resolved for
  one (method, variant, stage) — the method's recipe with the config's overrides applied, the
  stage's step count and schedule points scaled by ``train.budget``, and only the loss
  coefficients whose switch is on — and written by
  :func:`canonical_json` (sorted keys, ``360.0`` written as ``360``), so that a profile saved with
  its keys in another order, or another method's step count, re-runs nothing;
- the *runtime* settings (:func:`train_runtime`, :func:`predict_runtime`): log, validation and
  checkpoint cadence, threads, the device, the fast modes. They cannot change what is trained
  (the data stream, the losses, the schedule; validation draws from its own generator). The
  device and the fast modes (TF32, bf16, compile) do change the floating-point rounding of the
  weights, as another GPU model would, and that is by design no reason to retrain days of GPU
  time. So the rules pass them through a params function that Snakemake does not compare (one
  that takes ``resources``, see ``workflow/rules/common.smk``); checkpoints record them
  (``device``, ``fast_modes``) for provenance, and ``--forcerun`` retrains under new ones.

The same functions serve the rules and ``spbench train --config``; nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from spbench.catalogue import BUILTIN, PUBLISHED_PREFIX, Recipe, Stage, get_card, get_stage
from spbench.config import (
    SHARED_VARIANT,
    experiment_runs,
    section_defaults,
    training_budget,
    variant_switches,
)

__all__ = [
    "RECIPE_KEYS",
    "STAGE_VERSIONS",
    "budget_steps",
    "canonical",
    "canonical_json",
    "default_train_runtime",
    "effective_recipe",
    "job_losses",
    "lr_halve_at",
    "predict_job",
    "predict_runtime",
    "score_job",
    "stage_runs",
    "stage_splits",
    "stage_steps",
    "stage_variant",
    "train_job",
    "train_runtime",
    "train_settings",
    "trained_elsewhere",
    "untrained_job",
]

#: Version of what each stage's jobs write, given to every rule of the stage as its ``impl``
#: param: Snakemake re-runs a job when a param changes, never when the package code it calls
#: does. Bump one stage's version in the change that alters what its existing outputs would
#: be; that stage and everything after it re-run, nothing before (a training re-run costs days
#: of GPU time). All started at spbench's version, 0.1.0, when one version served every stage.
STAGE_VERSIONS: dict[str, str] = {
    "data": "0.1.0",
    "train": "0.1.0",
    "predict": "0.1.0",
    "score": "0.1.0",
    # 0.2.0: the sweep's zero-XC share over the same scales for every run; an AUC with a
    # missing scale is NaN, not bridged.
    "report": "0.2.0",
}

#: Recipe fields the config may override (``train.<key>`` or ``train.per_method``).
RECIPE_KEYS = ("lr", "weight_decay", "batch_size", "crop", "val_crop")

#: Loss coefficients that matter only when their switch is on.
_COEFFICIENTS = {
    "use_lap": ("lambda_lap", "lap_normaliser"),
    "use_msd": ("lambda_msd", "msd_margin", "msd_samples", "msd_mode"),
    "use_wr": ("lambda_wr",),
}

#: ``train`` keys that cannot change what is trained, only how (see the module docstring).
_TRAIN_RUNTIME_KEYS = (
    "val_every",
    "val_batches",
    "log_every",
    "checkpoint_every",
    "device",
    "threads",
    "fast",
)


def canonical(value: Any) -> Any:
    """Return ``value`` with tuples as lists and integral floats as ints (``360.0`` → ``360``).

    YAML reads ``360`` and ``360.0`` as different types; both mean the same setting.
    """
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (sorted keys, no spaces, :func:`canonical`)."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))


def stage_settings(train: dict, method: str, stage: Stage) -> dict:
    """Return ``train.per_method[method][stage]`` (empty when the config sets none)."""
    return dict((train.get("per_method") or {}).get(method, {}).get(stage.name, {}))


def effective_recipe(method: str, train: dict, stage: Stage | None = None) -> Recipe:
    """Return the recipe one stage trains with.

    Precedence, lowest first: the method's recipe, the stage's own overrides (e.g. AINet's
    stage-1 learning rate), the config's ``train`` keys that are not null, and the config's
    ``train.per_method[<method>][<stage>]``. A poly schedule's length (CDS) is scaled by
    ``train.budget``, like the step counts.
    """
    stage = stage or get_stage(method)
    overrides = dict(stage.overrides)
    overrides.update({k: train[k] for k in RECIPE_KEYS if train.get(k) is not None})
    per_stage = stage_settings(train, method, stage)
    overrides.update({k: v for k, v in per_stage.items() if k in RECIPE_KEYS})
    recipe = dataclasses.replace(get_card(method).recipe, **overrides)
    if recipe.schedule_steps:
        steps = budget_steps(recipe.schedule_steps, training_budget(train))
        recipe = dataclasses.replace(recipe, schedule_steps=steps)
    return recipe


def budget_steps(steps: int, budget: float) -> int:
    """Return ``steps`` scaled by ``budget``, rounded to the nearest step and at least 1."""
    return max(1, round(steps * budget))


def stage_steps(train: dict, method: str, stage: Stage) -> int:
    """Return the optimiser steps of a stage: ``per_method`` if set, else ``train.steps``,
    scaled by ``train.budget``."""
    steps = int(stage_settings(train, method, stage).get("steps") or train["steps"])
    return budget_steps(steps, training_budget(train))


def lr_halve_at(train: dict, method: str, stage: Stage) -> int | None:
    """Return the step from which the learning rate is halved (SCN's StepLR), or None; scaled by
    ``train.budget`` with the step counts, so that it falls at the same fraction of training."""
    step = stage_settings(train, method, stage).get("lr_halve_at", train.get("lr_halve_at"))
    return None if step is None else budget_steps(int(step), training_budget(train))


def stage_splits(train: dict, method: str, stage: Stage) -> list[str]:
    """Return the splits a stage trains on (``train.train_splits`` overrides the last stage's)."""
    last = get_card(method).stages[-1].name == stage.name
    if last and train.get("train_splits"):
        return list(train["train_splits"])
    return list(stage.splits)


def job_losses(config: dict, variant: str, *, uses_variant: bool = True) -> dict[str, Any]:
    """Return a variant's loss switches and the coefficients of the losses that are on.

    A stage that does not use the variant (``uses_variant=False``) gets the base loss. A
    coefficient of a loss that is off (``lambda_lap`` without LAP) is left out: it cannot change
    the result, so it must not re-run the job.
    """
    switches = variant_switches(config, variant)
    values = {**config["losses"], "lambda_lap": switches["lambda_lap"]}
    losses: dict[str, Any] = {}
    for switch, keys in _COEFFICIENTS.items():
        losses[switch] = bool(switches[switch] and uses_variant)
        if losses[switch]:
            losses.update({key: values[key] for key in keys})
    return losses


def train_job(config: dict, method: str, variant: str, stage: str | None = None) -> dict:
    """Return what determines one training stage's weights (the train rule's params).

    Parameters
    ----------
    config
        A validated profile (:func:`spbench.config.validate_config`).
    method, variant
        The run.
    stage
        Stage name (default: the method's last).

    Returns
    -------
    dict
        ``recipe`` (every field but ``val_crop``), ``steps``, ``lr_halve_at``, ``splits``,
        ``deterministic``, ``losses`` (:func:`job_losses`), ``budget`` when ``train.budget`` is
        not 1 (the steps and schedule points are already scaled; it is kept for provenance),
        ``revision`` when the stage's is not 0 (:class:`~spbench.catalogue.Stage`), and, for a
        method that is not built in, ``method_modules``: the one module that
        registers it (:attr:`~spbench.catalogue.MethodCard.module`), so that another module
        added to ``config.method_modules``, or the list reordered, re-runs nothing, and its
        decorator's ``augment`` and ``needs_edges`` where they are not the defaults.

        A method with nothing to fit (``MethodCard.trained`` False: SLIC, the plain grid) gets
        the same keys with values that no setting changes (:func:`untrained_job`): its labels
        cannot depend on ``config.train`` or the losses, so neither may its params.
    """
    card = get_card(method)
    spec = get_stage(method, stage)
    if not card.trained:
        job = untrained_job(method, spec.name)
    else:
        train = config["train"]
        recipe = dataclasses.asdict(effective_recipe(method, train, spec))
        del recipe["val_crop"]  # validation only
        job = {
            "recipe": recipe,
            "steps": stage_steps(train, method, spec),
            "lr_halve_at": lr_halve_at(train, method, spec),
            "splits": stage_splits(train, method, spec),
            "deterministic": bool(train["deterministic"]),
            "losses": job_losses(config, variant, uses_variant=spec.uses_variant),
        }
        if training_budget(train) != 1:
            # Only when set: a profile without a budget keeps the params of earlier runs.
            job["budget"] = training_budget(train)
        if spec.revision:  # likewise: revision 0 keeps every earlier run's params
            job["revision"] = spec.revision
    if method not in BUILTIN:
        if card.module:
            job["method_modules"] = [card.module]
        # What its decorator says of the training data, where not the default (so that a
        # plug-in's earlier runs keep their params): another augmentation retrains it.
        if card.trained and card.augment != "scn":
            job["augment"] = card.augment
        if card.trained and card.needs_edges:
            job["needs_edges"] = True
    return canonical(job)


def untrained_job(method: str, stage: str | None = None) -> dict:
    """Return the job settings of a stage of a method with nothing to fit (SLIC, the grid).

    The keys :func:`train_job` gives, with values no setting changes: the method's own recipe
    (:data:`spbench.catalogue.NO_TRAINING` for the built-ins; without ``val_crop``), 0 steps,
    no learning-rate halving, the stage's own splits, no deterministic mode and the base loss.
    :func:`spbench.train.train` runs it as any job, and fits nothing.
    """
    spec = get_stage(method, stage)
    recipe = dataclasses.asdict(get_card(method).recipe)
    del recipe["val_crop"]
    return canonical(
        {
            "recipe": recipe,
            "steps": 0,
            "lr_halve_at": None,
            "splits": list(spec.splits),
            "deterministic": False,
            "losses": {switch: False for switch in _COEFFICIENTS},
        }
    )


def stage_variant(method: str, variant: str, stage: str) -> str:
    """Return the variant a stage's checkpoint belongs to: :data:`SHARED_VARIANT` for a stage
    that does not use the variant's losses (trained once for every variant), else ``variant``."""
    return variant if get_stage(method, stage).uses_variant else SHARED_VARIANT


def trained_elsewhere(config: dict, method: str, variant: str) -> bool:
    """Return whether a run's last stage comes from outside instead of training: published
    weights (variant ``pub_<v>``) or a checkpoint in ``config.trained_elsewhere`` (every
    profile method with something to fit × configured variant, as the workflow's
    ``adopt_checkpoint`` rule takes)."""
    if variant.startswith(PUBLISHED_PREFIX):
        return True
    adopted = (
        config.get("trained_elsewhere") and method in config["methods"] and get_card(method).trained
    )
    return bool(adopted and variant in config["variants"])


def stage_runs(config: dict) -> list[tuple[str, str, int, str]]:
    """Return every stage checkpoint the workflow makes, as sorted ``(method, variant, seed,
    stage)``: each stage of every run of every experiment, a shared stage once; of a run
    :func:`trained_elsewhere`, the last stage only (nothing is trained on its way)."""
    return sorted(
        {
            (method, stage_variant(method, variant, stage.name), seed, stage.name)
            for runs in experiment_runs(config).values()
            for method, variant, seed in runs
            for stage in _stages_made(config, method, variant)
        }
    )


def _stages_made(config: dict, method: str, variant: str) -> tuple[Stage, ...]:
    stages = get_card(method).stages
    return stages[-1:] if trained_elsewhere(config, method, variant) else stages


def train_runtime(config: dict, method: str, stage: str | None = None) -> dict:
    """Return a training job's settings that cannot change its weights.

    Returns
    -------
    dict
        ``val_every``, ``val_batches``, ``val_crop`` (resolved for the stage), ``log_every``,
        ``checkpoint_every`` (steps), ``device``, ``threads``, ``fast`` (the fast modes) and
        ``method_modules``.
    """
    train = config["train"]
    runtime = {key: train[key] for key in _TRAIN_RUNTIME_KEYS}
    runtime["val_crop"] = effective_recipe(method, train, get_stage(method, stage)).val_crop
    runtime["method_modules"] = list(config["method_modules"])
    return canonical(runtime)


def train_settings(
    config: dict, method: str, variant: str, stage: str | None = None
) -> dict[str, dict]:
    """Return ``{"job": ..., "runtime": ...}`` of one training stage: the keyword arguments
    :func:`spbench.train.train` takes (:func:`train_job`, :func:`train_runtime`)."""
    return {
        "job": train_job(config, method, variant, stage),
        "runtime": train_runtime(config, method, stage),
    }


def default_train_runtime() -> dict:
    """Return the runtime settings of a training job run without a profile (schema defaults)."""
    train = section_defaults("train")
    runtime = {key: train[key] for key in _TRAIN_RUNTIME_KEYS}
    return canonical({**runtime, "val_crop": None, "method_modules": []})


def predict_job(config: dict) -> dict:
    """Return what determines a run's predictions: the split, the scales, the network input
    size at scale 1 (pixels) and the number of images."""
    predict = config["predict"]
    keys = ("split", "scales", "base_size", "max_images")
    return canonical({key: predict[key] for key in keys})


def predict_runtime(config: dict, threads: int | None = None) -> dict:
    """Return a prediction job's settings that cannot change its labels.

    ``device``, ``method_modules`` and ``threads``: the CPU threads torch and OpenCV may use
    (the job's Snakemake ``threads``; ``None``: their defaults, one per core).
    """
    return {
        "device": config["predict"]["device"],
        "method_modules": config["method_modules"],
        "threads": threads,
    }


def score_job(config: dict) -> dict:
    """Return the scoring options (``gt_cap50``, ``max_annotations``)."""
    return canonical(dict(config["score"]))
