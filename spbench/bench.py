"""Training-step benchmark: time full steps of each (method, variant) and check fast modes.

One *step* is what :func:`spbench.train.train` does per iteration: forward, the method's loss
(``get_method(name).loss``), backward, the optimiser step(s) (``build_optimizers``). Inputs are
seeded synthetic batches (random pixels, a few Voronoi label regions) already on the device, so
the data pipeline is not timed.

Steps run through :class:`spbench.step.TrainStep`, the object training uses, in the fast modes
of :class:`spbench.step.FastModes`, each off by default: ``tf32``, ``amp="bf16"`` (autocast),
``channels_last``, ``compile`` (``torch.compile`` of forward + loss) and ``cuda_graph`` (capture
of the whole step, CUDA only).
For every row the loss terms of one fixed batch are computed twice from the same weights and the
same sampling seed, in fp32 eager and in the row's mode, and the relative difference of each
term is reported (``reldiff_<term>``): a fast mode that changes what is optimised (torch.compile
once computed MSD wrongly on CUDA) shows up there rather than in a slower-to-notice metric. With
no fast mode the two computations are identical and every difference is 0. ``term_ok`` says
whether the largest difference is within the mode's tolerance (:func:`term_tolerance`).

With ``profile_steps`` a few more steps run under ``torch.profiler``: ``gpu_busy_ms`` is the
kernels' time per step, so ``median_ms`` far above it means the step waits on the host (kernel
launches), and the table of the costliest operations says where the time goes.

Example::

    from spbench.bench import bench_train, format_table
    frame = bench_train(["scn"], steps=20, crop=64, batch_size=2, device="cpu")
    print(format_table(frame))
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import gc
import itertools
import math
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from spbench import __version__
from spbench.config import add_method_module_option, import_method_modules, section_defaults
from spbench.data.loader import Batch, normalize
from spbench.errors import UserError
from spbench.io import atomic_path
from spbench.jobs import effective_recipe
from spbench.losses import LossConfig
from spbench.models import Recipe, Stage, create_model, get_method, get_stage
from spbench.step import FastModes, TrainStep
from spbench.steptimes import VARIANTS, Figure, record, user_table
from spbench.train import device_name, loss_config, resolve_device

__all__ = [
    "VARIANTS",
    "FastModes",
    "add_train_arguments",
    "bench_train",
    "device_name",
    "format_table",
    "record_rows",
    "run_train",
    "synthetic_batch",
    "term_check",
    "term_tolerance",
]


TIME_COLUMNS = (
    "median_ms",
    "p10_ms",
    "p90_ms",
    "mean_ms",
    "images_per_s",
    "peak_mem_mb",
    "gpu_busy_ms",
)

#: Largest relative difference of a loss term to fp32 eager that each fast mode may cause (the
#: loosest of the modes combined); 1e-4 otherwise (reordered sums in channels-last kernels and
#: graph replays).
TERM_TOLERANCES = {"bf16": 5e-2, "tf32": 1e-2, "compile": 1e-3}


def term_tolerance(modes: FastModes) -> float:
    """Return the largest relative term difference to fp32 eager that ``modes`` may cause."""
    parts = modes.label.split("+")
    return max([1e-4, *(TERM_TOLERANCES[p] for p in parts if p in TERM_TOLERANCES)])


def synthetic_batch(
    batch_size: int,
    crop: int,
    *,
    n_classes: int,
    device: torch.device | str,
    generator: torch.Generator,
    regions: tuple[int, int] = (3, 8),
    with_edges: bool = False,
) -> Batch:
    """Return a random training batch: noise images and Voronoi labels with a few regions.

    Parameters
    ----------
    batch_size, crop : int
        Batch shape ``[batch_size, 3, crop, crop]``.
    n_classes : int
        Labels are drawn from ``0..n_classes-1`` (distinct per region when possible).
    device : torch.device or str
        Where the tensors are put.
    generator : torch.Generator
        CPU generator; the batch depends only on its state.
    regions : (int, int)
        Inclusive range of the number of label regions per image.
    with_edges : bool
        Also return edge targets (1 on label boundaries, 0 elsewhere).

    Returns
    -------
    Batch
    """
    pixels = torch.randint(0, 256, (batch_size, 3, crop, crop), generator=generator)
    ys, xs = torch.meshgrid(torch.arange(crop), torch.arange(crop), indexing="ij")
    grid = torch.stack([ys, xs], dim=-1).float().reshape(1, 1, -1, 2)
    labels = []
    for _ in range(batch_size):
        k = int(torch.randint(regions[0], regions[1] + 1, (1,), generator=generator))
        seeds = torch.rand(1, k, 1, 2, generator=generator) * crop
        nearest = ((grid - seeds) ** 2).sum(-1).argmin(dim=1).reshape(crop, crop)
        classes = torch.randperm(n_classes, generator=generator)[:k]
        if k > n_classes:
            classes = torch.randint(0, n_classes, (k,), generator=generator)
        labels.append(classes[nearest])
    label_map = torch.stack(labels).long()
    edges = None
    if with_edges:
        boundary = torch.zeros_like(label_map, dtype=torch.bool)
        boundary[:, :-1] |= label_map[:, :-1] != label_map[:, 1:]
        boundary[:, :, :-1] |= label_map[:, :, :-1] != label_map[:, :, 1:]
        edges = boundary.to(torch.uint8).to(device)
    return Batch(normalize(pixels.to(torch.uint8)).to(device), label_map.to(device), edges)


def _losses(variant: str, losses: dict[str, Any] | None) -> dict[str, Any]:
    """The loss settings of a benchmark variant: its switches over the schema's coefficients."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
    lap, msd, wr = VARIANTS[variant]
    return {
        **section_defaults("losses"),
        **(losses or {}),
        "use_lap": lap,
        "use_msd": msd,
        "use_wr": wr,
    }


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What every step of one benchmark row is built from: the same weights each time."""

    method: str
    stage: str
    config: LossConfig
    recipe: Recipe
    state: dict[str, torch.Tensor]
    device: torch.device

    @classmethod
    def create(
        cls,
        method: str,
        stage: Stage,
        variant: str,
        recipe: Recipe,
        device: torch.device,
        seed: int,
        losses: dict[str, Any] | None,
    ) -> _Setup:
        """Seeded initial weights of ``method`` and the loss config of ``variant``."""
        config = loss_config(
            _losses(variant, losses), recipe.n_classes, uses_variant=stage.uses_variant
        )
        torch.manual_seed(seed)
        state = copy.deepcopy(create_model(method, stage=stage.name).to(device).state_dict())
        return cls(method, stage.name, config, recipe, state, device)

    def step(self, modes: FastModes, seed: int | None) -> TrainStep:
        """A :class:`TrainStep` at the initial weights; its sampling generator is seeded with
        ``seed``, or is the default device generator when ``seed`` is None (forced by
        ``cuda_graph``)."""
        spec = get_method(self.method)
        model = create_model(self.method, stage=self.stage).to(self.device)
        model.load_state_dict(self.state)
        model.train()
        config, stage = self.config, self.stage
        return TrainStep.create(
            model,
            lambda net, batch, gen: spec.loss(net, batch, config, generator=gen, stage=stage),
            self.recipe,
            device=self.device,
            modes=modes,
            seed=seed,
        )


def _rel_diffs(
    reference: dict[str, torch.Tensor], fast: dict[str, torch.Tensor]
) -> dict[str, float]:
    out = {}
    for key, ref in reference.items():
        a = float(ref.detach().float())
        b = float(fast[key].detach().float()) if key in fast else math.nan
        if a == b:
            out[key] = 0.0
        else:
            out[key] = abs(a - b) / max(abs(a), abs(b), 1e-30)
    return out


def term_check(
    method: str,
    variant: str = "lap",
    *,
    modes: FastModes | None = None,
    batch_size: int = 2,
    crop: int = 64,
    device: str = "auto",
    seed: int = 0,
    losses: dict[str, Any] | None = None,
    stage: str | None = None,
) -> dict[str, float]:
    """Return the relative difference of each loss term, fp32 eager vs ``modes``, on one batch.

    Both computations start from the same weights and the same sampling seed; with
    ``modes=FastModes()`` (fp32 eager) every difference is 0.

    Returns
    -------
    dict of str to float
        ``|eager − fast| / max(|eager|, |fast|)`` per term (0 when equal).
    """
    modes = modes or FastModes()
    dev = resolve_device(device)
    stage_spec = get_stage(method, stage)
    recipe = dataclasses.replace(effective_recipe(method, {}, stage_spec), batch_size=batch_size)
    setup = _Setup.create(method, stage_spec, variant, recipe, dev, seed, losses)
    batch = synthetic_batch(
        batch_size,
        crop,
        n_classes=recipe.n_classes,
        device=dev,
        generator=torch.Generator().manual_seed(seed + 1),
        with_edges=get_method(method).needs_edges,
    )
    return _check(setup.step(modes, seed), setup, batch, seed)


def _seed_all(seed: int, generator: torch.Generator) -> None:
    """Seed the loss's generator and the global ones (SSM draws drop-path masks from torch's
    and its stage-2 quadrant from Python's)."""
    torch.manual_seed(seed)
    random.seed(seed)
    generator.manual_seed(seed)


def _check(runner: TrainStep, setup: _Setup, batch: Batch, seed: int) -> dict[str, float]:
    """Fast-mode terms on ``batch`` vs fp32 eager; leaves ``runner`` at the initial weights."""
    graphed = runner.modes.cuda_graph
    # A graph replay samples from the default CUDA generator, so the reference does too.
    reference_step = setup.step(FastModes(), None if graphed else seed)
    if graphed:
        runner.capture(batch)
        rng = torch.cuda.get_rng_state(setup.device)
        fast = {k: v.detach().clone() for k, v in runner(batch).items()}
        torch.cuda.set_rng_state(rng, setup.device)
    else:
        _seed_all(seed, runner.generator)
        fast = {k: v.detach() for k, v in runner.terms(batch).items()}
        _seed_all(seed, runner.generator)
    reference = {k: v.detach() for k, v in reference_step.terms(batch).items()}
    runner.load_weights(setup.state)
    return _rel_diffs(reference, fast)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(runner: TrainStep, batches: Sequence[Batch], steps: int, warmup: int) -> np.ndarray:
    """Run ``warmup`` then ``steps`` steps; return the per-step times in milliseconds."""
    device = runner.device

    def cycle() -> Iterator[Batch]:
        while True:
            yield from batches

    feed = cycle()
    for _ in range(warmup):
        runner(next(feed))
    _sync(device)
    times = []
    if device.type == "cuda":
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(steps)
        ]
        for start, end in events:
            batch = next(feed)
            start.record()
            runner(batch)
            end.record()
        torch.cuda.synchronize(device)
        times = [start.elapsed_time(end) for start, end in events]
    else:
        for _ in range(steps):
            batch = next(feed)
            t0 = time.perf_counter()
            runner(batch)
            times.append((time.perf_counter() - t0) * 1000.0)
    return np.asarray(times, dtype=float)


def bench_train(
    methods: Sequence[str],
    variants: Sequence[str] = ("base", "lap"),
    *,
    batch_size: int | None = None,
    crop: int = 208,
    steps: int = 50,
    warmup: int = 10,
    device: str = "auto",
    modes: Sequence[FastModes] = (FastModes(),),
    seed: int = 0,
    losses: dict[str, Any] | None = None,
    stage: str | None = None,
    n_batches: int = 4,
    profile_steps: int = 0,
    on_row: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Time full training steps of every (method, variant) and check the fast mode's terms.

    Parameters
    ----------
    methods : sequence of str
        Registered method names (``"grid"`` and ``"slic"`` have nothing to train: their rows
        carry an error note).
    variants : sequence of str
        Names from :data:`VARIANTS`; ``"base"`` and ``"lap"`` give the ``overhead_pct`` column.
    batch_size : int, optional
        Images per step (default: the method's recipe).
    crop : int
        Square crop side in pixels.
    steps, warmup : int
        Timed steps after ``warmup`` untimed ones (compilation and capture happen before both).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    modes : sequence of FastModes
        The fast modes to time, each a set of rows (``FastModes.from_label("tf32+cuda_graph")``
        builds one). With ``cuda_graph`` (CUDA only) the whole step is captured and replayed;
        a method whose step cannot be captured (:attr:`spbench.models.Method.graph_capturable`,
        or a capture that fails) gets an ``error`` note instead of times.
    seed : int
        Seed of the weights, the batches and the loss's sampling.
    losses : dict, optional
        Overrides of the schema's ``losses`` defaults.
    stage : str, optional
        Stage of multi-stage methods (default: each method's last stage).
    n_batches : int
        Distinct synthetic batches cycled through.
    profile_steps : int
        Steps run under ``torch.profiler`` after the timed ones (0: none); they give
        ``gpu_busy_ms`` and, in ``frame.attrs["profiles"]``, a table of the costliest operations
        per row.
    on_row : callable, optional
        Called with the rows so far (checked, as returned) after each row, so that a caller can
        keep them if a time limit stops the benchmark.

    Returns
    -------
    pandas.DataFrame
        One row per (mode, method, variant): ``method, variant, stage, mode, device,
        device_name, torch, batch_size, crop, steps, warmup``, the times ``median_ms, p10_ms,
        p90_ms, mean_ms`` (per step), ``images_per_s`` (from the median), ``peak_mem_mb`` (NaN
        on the CPU), ``gpu_busy_ms`` (kernel time per step, milliseconds; NaN unless profiled
        on CUDA), ``overhead_pct`` (lap vs base median, on the lap row), ``reldiff_<term>`` per
        loss term, ``reldiff_max``, ``tolerance`` and ``term_ok`` (``reldiff_max`` within the
        mode's :func:`term_tolerance`), and ``error`` (empty when the row ran).

    Raises
    ------
    ValueError
        Unknown variant, or ``cuda_graph`` on a device that is not CUDA.
    """
    dev = _check_request(variants, losses, modes, device, steps, warmup)
    rows, profiles = [], {}
    for method in methods:
        stage_spec = get_stage(method, stage)
        recipe = effective_recipe(method, {}, stage_spec)
        if batch_size is not None:
            recipe = dataclasses.replace(recipe, batch_size=batch_size)
        batches = _synthetic_batches(method, recipe, crop, n_batches, dev, seed)
        # A stage the variant does not apply to (AINet's, SSM's stage 1) trains the same for
        # every variant: one row, labelled base as `spbench plan` looks it up.
        stage_variants = variants if stage_spec.uses_variant else ["base"]
        for mode, variant in itertools.product(modes, stage_variants):
            row = _row_header(method, variant, stage_spec, mode, dev, recipe, crop, steps, warmup)
            try:
                _check_supported(method, mode)
                row.update(
                    _bench_one(
                        method,
                        stage_spec,
                        variant,
                        recipe,
                        dev,
                        mode,
                        batches,
                        steps,
                        warmup,
                        seed,
                        losses,
                        profile_steps,
                    )
                )
            except Exception as err:  # report per row; one failing mode must not hide the rest
                row["error"] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            table = row.pop("profile", None)
            if table:
                profiles[f"{method}/{variant} {mode.label}"] = table
            rows.append(row)
            if on_row is not None:
                on_row(_with_checks(pd.DataFrame(rows)))
    frame = _with_checks(pd.DataFrame(rows))
    frame.attrs["profiles"] = profiles
    return frame


def _check_request(
    variants: Sequence[str],
    losses: dict[str, Any] | None,
    modes: Sequence[FastModes],
    device: str,
    steps: int,
    warmup: int,
) -> torch.device:
    """Return the device to run on; raise ValueError for an unknown variant, a CUDA graph off
    CUDA, or bad step counts."""
    for variant in variants:
        _losses(variant, losses)
    dev = resolve_device(device)
    if any(m.cuda_graph for m in modes) and dev.type != "cuda":
        raise ValueError(f"cuda_graph needs a CUDA device; the benchmark runs on {dev}")
    if steps <= 0 or warmup < 0:
        raise ValueError("steps must be positive and warmup non-negative")
    return dev


def _row_header(
    method: str,
    variant: str,
    stage: Stage,
    mode: FastModes,
    device: torch.device,
    recipe: Recipe,
    crop: int,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    """Return a benchmark row's description, its times NaN and no error yet."""
    return {
        "method": method,
        "variant": variant,
        "stage": stage.name,
        "mode": mode.label,
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "batch_size": recipe.batch_size,
        "crop": crop,
        "steps": steps,
        "warmup": warmup,
        **dict.fromkeys(TIME_COLUMNS, math.nan),
        "error": "",
    }


def _check_supported(method: str, modes: FastModes) -> None:
    """Raise ValueError if ``method`` cannot train in ``modes`` (its row then says why)."""
    if modes.cuda_graph and not get_method(method).graph_capturable:
        raise ValueError(f"{method}'s training step cannot be captured as a CUDA graph")


def _synthetic_batches(
    method: str, recipe: Recipe, crop: int, n: int, device: torch.device, seed: int
) -> list[Batch]:
    """Return ``max(1, n)`` synthetic batches at ``method``'s recipe size, drawn from seed + 1."""
    generator = torch.Generator().manual_seed(seed + 1)
    return [
        synthetic_batch(
            recipe.batch_size,
            crop,
            n_classes=recipe.n_classes,
            device=device,
            generator=generator,
            with_edges=get_method(method).needs_edges,
        )
        for _ in range(max(1, n))
    ]


def _with_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``overhead_pct`` (per method and mode, against ``base``) and the term checks.

    Returns the frame with the identity and time columns first, then ``reldiff_<term>``, then
    ``reldiff_max, tolerance, term_ok, error``.
    """
    frame["overhead_pct"] = math.nan
    for _, group in frame.groupby(["method", "mode"], sort=False):
        base = group.loc[group["variant"] == "base", "median_ms"]
        if base.empty or not np.isfinite(base.iloc[0]):
            continue
        for index in group.index[group["variant"] != "base"]:
            frame.loc[index, "overhead_pct"] = (
                frame.loc[index, "median_ms"] / base.iloc[0] - 1.0
            ) * 100.0
    diffs = [c for c in frame.columns if c.startswith("reldiff_")]
    frame["reldiff_max"] = frame[diffs].max(axis=1, skipna=True) if diffs else math.nan
    frame["tolerance"] = [term_tolerance(FastModes.from_label(m)) for m in frame["mode"]]
    frame["term_ok"] = (frame["error"] == "") & (frame["reldiff_max"] <= frame["tolerance"])
    checks = ["reldiff_max", "tolerance", "term_ok", "error"]
    front = [c for c in frame.columns if not c.startswith("reldiff_") and c not in checks]
    return frame[[*front, *diffs, *checks]]


def _bench_one(
    method: str,
    stage_spec: Stage,
    variant: str,
    recipe: Recipe,
    device: torch.device,
    modes: FastModes,
    batches: Sequence[Batch],
    steps: int,
    warmup: int,
    seed: int,
    losses: dict[str, Any] | None,
    profile_steps: int,
) -> dict[str, Any]:
    setup = _Setup.create(method, stage_spec, variant, recipe, device, seed, losses)
    runner = setup.step(modes, seed)
    if runner.optimizer is None:
        raise ValueError(f"{method} has no trainable parameters: nothing to time")
    diffs = _check(runner, setup, batches[0], seed)
    if device.type == "cuda":
        # Earlier rows' steps (models, Adam state, graph pools) sit in reference cycles until
        # collected: free them so that this row's peak is its own.
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = _time_steps(runner, batches, steps, warmup)
    median = float(np.median(times))
    out = {
        "median_ms": median,
        "p10_ms": float(np.percentile(times, 10)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(times.mean()),
        "images_per_s": recipe.batch_size / (median / 1000.0),
        "peak_mem_mb": (
            torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else math.nan
        ),
    }
    if profile_steps > 0:
        try:
            out["gpu_busy_ms"], out["profile"] = _profile(runner, batches, profile_steps)
        except Exception as err:  # the profiler needs CUPTI; keep the row's times without it
            out["profile"] = f"profiler failed: {type(err).__name__}: {err}"
    out.update({f"reldiff_{k}": v for k, v in diffs.items()})
    return out


def _profile(runner: TrainStep, batches: Sequence[Batch], steps: int) -> tuple[float, str]:
    """Run ``steps`` steps under ``torch.profiler``; return the kernels' milliseconds per step
    (NaN on the CPU) and a table of the 15 costliest operations (device time on CUDA)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = runner.device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with warnings.catch_warnings():
        # torch 2.11 warns that a second profiling cycle would drop this one's events; there
        # is one cycle here, so nothing is dropped.
        warnings.filterwarnings("ignore", message="Warning: Profiler clears events")
        with profile(activities=activities) as prof:
            for index in range(steps):
                runner(batches[index % len(batches)])
            _sync(runner.device)
    kernels_us = sum(
        e.self_device_time_total
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA
    )
    # No kernel events (CUDA without a working CUPTI) is no measurement, not an idle GPU.
    busy = kernels_us / 1000.0 / steps if cuda and kernels_us > 0 else math.nan
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    return busy, prof.key_averages().table(sort_by=key, row_limit=15)


def format_table(frame: pd.DataFrame) -> str:
    """Return a readable text table of :func:`bench_train`'s result."""
    columns = [
        "method",
        "variant",
        "mode",
        "batch_size",
        "crop",
        "median_ms",
        "p10_ms",
        "p90_ms",
        "images_per_s",
        "peak_mem_mb",
        "gpu_busy_ms",
        "overhead_pct",
        "reldiff_max",
        "term_ok",
    ]
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
    diffs = [c for c in frame.columns if c.startswith("reldiff_") and c != "reldiff_max"]
    if diffs:
        per_term = frame[["method", "variant", "mode", *diffs]].rename(
            columns={c: c.removeprefix("reldiff_") for c in diffs}
        )
        text += "\n\nfast mode vs fp32 eager, relative difference of each loss term:\n"
        text += per_term.to_string(index=False, float_format=lambda v: f"{v:.2e}", na_rep="-")
    errors = frame.loc[frame["error"] != "", ["method", "variant", "error"]]
    for _, err in errors.iterrows():
        text += f"\nerror {err['method']}/{err['variant']}: {err['error']}"
    for row, table in frame.attrs.get("profiles", {}).items():
        text += f"\n\nwhere the time goes, {row} (profiled steps):\n{table}"
    return text


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of the training-step benchmark to ``parser`` (script and CLI share them)."""
    parser.add_argument("--methods", nargs="+", default=["scn"], help="registered method names")
    add_method_module_option(parser)
    parser.add_argument("--variants", nargs="+", default=["base", "lap"], choices=sorted(VARIANTS))
    parser.add_argument("--batch-size", type=int, help="images per step (default: the recipe's)")
    parser.add_argument("--crop", type=int, default=208, help="square crop side in pixels")
    parser.add_argument("--steps", type=int, default=50, help="timed steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before timing")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--modes",
        nargs="+",
        type=_mode,
        default=[FastModes()],
        help="fast modes to time, each fp32 or parts joined by '+': tf32, bf16, channels_last, "
        "compile, cuda_graph (e.g. fp32 tf32+cuda_graph)",
    )
    parser.add_argument(
        "--profile-steps", type=int, default=0, help="steps profiled per row (where time goes)"
    )
    parser.add_argument("--stage", help="stage of multi-stage methods (default: the last)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="CSV file to write the rows to")
    parser.add_argument(
        "--record",
        type=Path,
        nargs="?",
        const=user_table(),
        help="add the step times to the step-time table that `spbench plan` reads (default "
        f"path: {user_table()}, or $SPBENCH_STEP_TIMES)",
    )


def record_rows(frame: pd.DataFrame, path: str | Path) -> Path:
    """Add the rows of :func:`bench_train` that ran (with a ``date`` column) to the step-time
    table at ``path`` (:mod:`spbench.steptimes`) and return its path."""
    figures = [
        Figure(
            kind="train",
            method=row["method"],
            stage=row["stage"],
            variant=row["variant"],
            mode=row["mode"],
            device=torch.device(row["device"]).type,
            device_name=row["device_name"],
            batch_size=int(row["batch_size"]),
            size=str(row["crop"]),
            ms=float(row["median_ms"]),
            date=row["date"],
            source=f"spbench {__version__} bench train, {row['steps']} steps",
        )
        for row in frame.to_dict("records")
        if not row["error"]
    ]
    return record(figures, path)


def _write_rows(frame: pd.DataFrame, path: Path) -> None:
    """Write benchmark rows to ``path`` as CSV atomically, ``date`` first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["date", *(c for c in frame.columns if c != "date")]
    with atomic_path(path) as tmp:
        frame[columns].to_csv(tmp, index=False)


def _mode(label: str) -> FastModes:
    try:
        return FastModes.from_label(label)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_train(args: argparse.Namespace) -> pd.DataFrame:
    """Run :func:`bench_train` from parsed arguments, print the table and write ``--out``."""
    import_method_modules(args.module, option="--module")
    device = resolve_device(args.device)
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"device: {device} ({device_name(device)})")
    print(f"torch {torch.__version__}, spbench {__version__}, {when}")

    def keep(rows: pd.DataFrame) -> None:
        if args.out is not None:  # every finished row on disk, in case a time limit stops us
            _write_rows(rows.assign(date=when), args.out)

    frame = bench_train(
        args.methods,
        args.variants,
        batch_size=args.batch_size,
        crop=args.crop,
        steps=args.steps,
        warmup=args.warmup,
        device=args.device,
        modes=args.modes,
        seed=args.seed,
        stage=args.stage,
        profile_steps=args.profile_steps,
        on_row=keep,
    )
    frame.insert(0, "date", when)
    print(format_table(frame))
    if args.out is not None:
        _write_rows(frame, args.out)
        print(f"wrote {args.out}")
    if frame["error"].astype(bool).all():
        first = frame.iloc[0]
        raise UserError(
            f"no row ran; {first['method']}/{first['variant']} {first['mode']}: {first['error']}"
        )
    if args.record is not None:
        print(f"recorded in {record_rows(frame, args.record)}")
    return frame
