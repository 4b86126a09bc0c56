"""One training step (forward, the method's loss, backward, optimiser steps) in a chosen fast mode.

Training (:func:`spbench.train.train`) and the step benchmark (:mod:`spbench.bench`) both run
their steps through :class:`TrainStep`, so the benchmark times exactly what training does.

Fast modes (config ``train.fast``; all off by default, which is strict fp32 eager):

``tf32``
    TF32 tensor-core matmuls and convolutions (fp32 range, 10-bit mantissa products). Off means
    off for cuDNN convolutions too, whose PyTorch default is on.
``amp = "bf16"``
    bf16 autocast around forward and loss; the MSD distances stay in fp32.
``channels_last``
    Model weights and input images in channels-last memory format.
``compile``
    ``torch.compile`` of forward + loss.
``cuda_graph``
    The whole step captured once in a CUDA graph and replayed (CUDA only). The step must have
    static shapes and no host reads: SCN's DLM loss qualifies (``"per_image"`` MSD samples with
    static shapes); its sampling then draws from the default CUDA generator, seeded by the
    run's seed and saved in resume checkpoints. The optimisers are built ``capturable`` with a
    tensor learning rate, so the schedule still applies.

Non-finite losses are tracked on the device (the first bad step and its terms), so a step does
not wait for the GPU; :meth:`TrainStep.first_nonfinite` reads the record when the caller is about
to log, validate or checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch

from spbench.data.loader import Batch
from spbench.models import Recipe, parameter_groups
from spbench.steptimes import fast_label

__all__ = ["AMP_DTYPES", "FastModes", "TrainStep", "build_optimizers"]

log = logging.getLogger(__name__)

#: Accepted values of ``FastModes.amp``.
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class FastModes:
    """Which fast modes a training step uses (all off: strict fp32 eager).

    Attributes
    ----------
    amp : {"off", "bf16"}
        Autocast dtype of forward and loss.
    channels_last : bool
        Channels-last memory format for weights and images.
    compile : bool
        ``torch.compile`` forward + loss.
    cuda_graph : bool
        Capture the whole step in a CUDA graph (CUDA only).
    tf32 : bool
        TF32 matmuls and cuDNN convolutions.
    """

    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {sorted(AMP_DTYPES)}, got {self.amp!r}")

    @classmethod
    def from_config(cls, fast: dict[str, Any] | None) -> FastModes:
        """Build from the config's ``train.fast`` mapping (missing keys are off)."""
        fast = dict(fast or {})
        if fast.get("amp") is False:  # YAML 1.1 reads a bare `off` as false
            fast["amp"] = "off"
        unknown = set(fast) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown train.fast keys {sorted(unknown)}")
        return cls(**fast)

    @classmethod
    def from_label(cls, label: str) -> FastModes:
        """Parse a :attr:`label` back (``"fp32"``, ``"tf32+bf16+cuda_graph"``, ...).

        Raises
        ------
        ValueError
            Naming an unknown part and the known ones.
        """
        flags = {"tf32", "channels_last", "compile", "cuda_graph"}
        parts = [] if label == "fp32" else label.split("+")
        unknown = [p for p in parts if p not in flags | {"bf16"}]
        if unknown:
            raise ValueError(
                f"unknown fast mode {label!r}: join fp32 or any of "
                f"{sorted(flags | {'bf16'})} with '+'"
            )
        return cls(amp="bf16" if "bf16" in parts else "off", **{f: f in parts for f in flags})

    @property
    def label(self) -> str:
        """Short name, e.g. ``"bf16+cuda_graph"`` or ``"fp32"``; the step-time table is keyed
        by it (:func:`spbench.steptimes.fast_label`, which needs no torch)."""
        return fast_label(dataclasses.asdict(self))

    def for_method(self, method: str, *, capturable: bool) -> FastModes:
        """Return these modes without ``cuda_graph`` (and a log line) for a method whose
        training step cannot be captured (:attr:`spbench.models.Method.graph_capturable`)."""
        if capturable or not self.cuda_graph:
            return self
        log.warning("train.fast.cuda_graph: %s's training step cannot be captured; eager", method)
        return dataclasses.replace(self, cuda_graph=False)

    def for_device(self, device: torch.device) -> FastModes:
        """Return these modes with the CUDA-only ones off (and a log line) on other devices."""
        if device.type == "cuda" or not (self.cuda_graph or self.tf32):
            return self
        log.warning("train.fast: cuda_graph and tf32 need a CUDA device; %s runs without", device)
        return dataclasses.replace(self, cuda_graph=False, tf32=False)


def build_optimizers(
    model: torch.nn.Module, recipe: Recipe, *, capturable_on: torch.device | None = None
) -> tuple[torch.optim.Optimizer | None, torch.optim.Optimizer | None]:
    """Return the main Adam optimiser and, for methods with one, the auxiliary optimiser.

    The main optimiser takes upstream's name-filtered groups minus the auxiliary parameters
    (``model.auxiliary_parameters()``, CDS's CLUB estimator), which get their own Adam at
    ``recipe.aux_lr``. Either is ``None`` when it has nothing to train (the parameter-free grid).

    Parameters
    ----------
    model : torch.nn.Module
    recipe : Recipe
        Learning rates and betas.
    capturable_on : torch.device, optional
        Build CUDA-graph-capturable optimisers whose learning rates are tensors on this device.

    Returns
    -------
    (torch.optim.Optimizer or None, torch.optim.Optimizer or None)
    """
    aux_params = (
        list(model.auxiliary_parameters()) if hasattr(model, "auxiliary_parameters") else []
    )
    aux_ids = {id(p) for p in aux_params}
    groups = []
    for group in parameter_groups(model, recipe.weight_decay):
        params = [p for p in group["params"] if id(p) not in aux_ids and p.requires_grad]
        if params:
            groups.append({**group, "params": params})

    def adam(params: list, lr: float) -> torch.optim.Optimizer:
        if capturable_on is None:
            return torch.optim.Adam(params, lr=lr, betas=recipe.betas)
        rate = torch.tensor(lr, dtype=torch.float32, device=capturable_on)
        return torch.optim.Adam(params, lr=rate, betas=recipe.betas, capturable=True)

    main = adam(groups, recipe.lr) if groups else None
    aux = adam(aux_params, recipe.aux_lr or recipe.lr) if aux_params else None
    return main, aux


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """Set TF32 for matmuls and cuDNN convolutions, restoring the previous flags after."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


class TrainStep:
    """A model, its optimisers and the training step, in one fast mode.

    Parameters
    ----------
    model : torch.nn.Module
        The network, already on ``device`` (converted to channels-last here if asked).
    loss : callable
        ``loss(model, batch, generator) -> dict`` of scalar terms with ``"total"`` (and
        ``"aux_total"`` for a method with an auxiliary optimiser).
    optimizer, aux_optimizer : torch.optim.Optimizer or None
        From :func:`build_optimizers` (``capturable_on=device`` for ``cuda_graph``).
    device : torch.device
    modes : FastModes
    generator : torch.Generator, optional
        Generator of the loss's sampling; must be ``None`` (the default CUDA generator) with
        ``cuda_graph``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[..., dict[str, torch.Tensor]],
        optimizer: torch.optim.Optimizer | None,
        aux_optimizer: torch.optim.Optimizer | None = None,
        *,
        device: torch.device,
        modes: FastModes | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.modes = (modes or FastModes()).for_device(device)
        if self.modes.cuda_graph and generator is not None:
            raise ValueError("cuda_graph samples from the default CUDA generator: pass None")
        self.device = device
        self.model = (
            model.to(memory_format=torch.channels_last) if self.modes.channels_last else model
        )
        self.optimizer, self.aux_optimizer = optimizer, aux_optimizer
        self.generator = generator

        def forward_loss(batch: Batch) -> dict[str, torch.Tensor]:
            return loss(self.model, batch, self.generator)

        self._loss = torch.compile(forward_loss) if self.modes.compile else forward_loss
        self.graph: torch.cuda.CUDAGraph | None = None
        self._static_batch: Batch | None = None
        self._static_terms: dict[str, torch.Tensor] | None = None
        self._count = torch.zeros((), dtype=torch.long, device=device)
        self._first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self._bad_terms: torch.Tensor | None = None
        self._term_names: list[str] = []
        if self.modes.cuda_graph:
            self._rates_on_device()

    @classmethod
    def create(
        cls,
        model: torch.nn.Module,
        loss: Callable[..., dict[str, torch.Tensor]],
        recipe: Recipe,
        *,
        device: torch.device,
        modes: FastModes | None = None,
        seed: int | None = None,
    ) -> TrainStep:
        """Build the optimisers (:func:`build_optimizers`, capturable for ``cuda_graph``) and
        the loss's sampling generator, and return the step.

        The generator is a device generator seeded with ``seed``; with ``cuda_graph`` (which
        can only replay draws from the default CUDA generator) or ``seed=None`` there is none
        and the loss draws from torch's global generator on the device.
        """
        modes = (modes or FastModes()).for_device(device)
        optimizer, aux_optimizer = build_optimizers(
            model, recipe, capturable_on=device if modes.cuda_graph else None
        )
        generator = None
        if seed is not None and not modes.cuda_graph:
            generator = torch.Generator(device).manual_seed(seed)
        return cls(
            model,
            loss,
            optimizer,
            aux_optimizer,
            device=device,
            modes=modes,
            generator=generator,
        )

    def optimizer_state(self) -> dict[str, Any]:
        """The optimisers' state dicts (``"optimizer"`` and, if any, ``"aux_optimizer"``)."""
        state = {"optimizer": self.optimizer.state_dict()}
        if self.aux_optimizer is not None:
            state["aux_optimizer"] = self.aux_optimizer.state_dict()
        return state

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Load what :meth:`optimizer_state` returned (a resume checkpoint)."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.aux_optimizer is not None:
            self.aux_optimizer.load_state_dict(state["aux_optimizer"])
        if self.modes.cuda_graph:
            self._rates_on_device()

    def _rates_on_device(self) -> None:
        """Make every learning rate a tensor on the device (a resumed state loads them on the
        CPU); a captured optimiser step reads it there, so the schedule applies to replays."""
        for opt in (self.optimizer, self.aux_optimizer):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32).to(self.device)

    # ------------------------------------------------------------------ the step
    def _autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for forward and loss (backward follows the forward's dtypes)."""
        dtype = AMP_DTYPES[self.modes.amp]
        if dtype is None:
            return contextlib.nullcontext()
        # A captured graph must not keep autocast's cast-weight cache (PyTorch's rule).
        cache = not self.modes.cuda_graph
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=cache)

    def _prepare(self, batch: Batch) -> Batch:
        if self.modes.channels_last:
            return batch._replace(images=batch.images.contiguous(memory_format=torch.channels_last))
        return batch

    def terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Forward and loss of ``batch`` with gradients enabled, without backward or step."""
        with _tf32(self.modes.tf32), self._autocast():
            return self._loss(self._prepare(batch))

    def _body(self, batch: Batch, zero_grad: bool) -> dict[str, torch.Tensor]:
        with _tf32(self.modes.tf32):  # the backward's convolutions and matmuls too
            return self._body_steps(batch, zero_grad)

    def _body_steps(self, batch: Batch, zero_grad: bool) -> dict[str, torch.Tensor]:
        with self._autocast():
            terms = self._loss(batch)
        self._track(terms)
        if self.optimizer is None:
            return terms
        if zero_grad:
            self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        if self.aux_optimizer is not None and "aux_total" in terms:
            # CDS: the CLUB estimator learns after the model step, on detached features.
            if zero_grad:
                self.aux_optimizer.zero_grad(set_to_none=True)
            terms["aux_total"].backward()
            self.aux_optimizer.step()
        return terms

    def _track(self, terms: dict[str, torch.Tensor]) -> None:
        """Record, on the device, the first step whose total is not finite and its terms."""
        names = sorted(terms)
        values = torch.stack([terms[k].detach().float() for k in names])
        if self._bad_terms is None:
            self._term_names = names
            self._bad_terms = torch.zeros_like(values)
        self._count += 1
        newly_bad = (self._first_bad < 0) & ~torch.isfinite(terms["total"].detach())
        self._first_bad.copy_(torch.where(newly_bad, self._count, self._first_bad))
        self._bad_terms.copy_(torch.where(newly_bad, values, self._bad_terms))

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Run one full step on ``batch`` and return its loss terms (graph outputs: read or
        clone them before the next call). With ``cuda_graph`` the first call captures."""
        if self.modes.cuda_graph and self.graph is None:
            self.capture(batch)
        if self.graph is None:
            return self._body(self._prepare(batch), zero_grad=True)
        for static, new in zip(self._static_batch, self._prepare(batch), strict=True):
            if static is not None:
                static.copy_(new)
        self.graph.replay()
        return self._static_terms

    def capture(self, batch: Batch, warmup: int = 3) -> None:
        """Capture one whole step into a CUDA graph; the state is as before afterwards.

        Warm-up steps on a side stream (which initialise the optimiser state, and compile) run
        on ``batch``; the weights, optimiser state, step counters and the CUDA RNG state are
        then restored, so capture does not change what is trained.
        """
        self._static_batch = Batch(
            *(t.clone() if t is not None else None for t in self._prepare(batch))
        )
        saved = self._snapshot()
        rng = torch.cuda.get_rng_state(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._body(self._static_batch, zero_grad=True)
        torch.cuda.current_stream(self.device).wait_stream(side)
        for opt in (self.optimizer, self.aux_optimizer):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._static_terms = self._body(self._static_batch, zero_grad=False)
        self._restore(saved)
        torch.cuda.set_rng_state(rng, self.device)
        self.graph = graph

    def _tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor a step mutates: weights, buffers, optimiser state, counters."""
        out = {f"model.{k}": v for k, v in self.model.state_dict(keep_vars=True).items()}
        for tag, opt in (("opt", self.optimizer), ("aux", self.aux_optimizer)):
            if opt is None:
                continue
            for index, param in enumerate(p for g in opt.param_groups for p in g["params"]):
                for key, value in opt.state.get(param, {}).items():
                    if torch.is_tensor(value):
                        out[f"{tag}.{index}.{key}"] = value
        out["count"], out["first_bad"] = self._count, self._first_bad
        return out

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self._tensors().items()}

    @torch.no_grad()
    def _restore(self, saved: dict[str, torch.Tensor]) -> None:
        """Copy ``saved`` back in place; state created since (fresh Adam moments) is zeroed."""
        for key, tensor in self._tensors().items():
            if key in saved:
                tensor.copy_(saved[key])
            else:
                tensor.zero_()

    # ------------------------------------------------------------------ bookkeeping
    def set_lr(self, lr: float) -> None:
        """Set the main optimiser's learning rate (in place for capturable tensor rates)."""
        for group in self.optimizer.param_groups if self.optimizer is not None else ():
            if torch.is_tensor(group["lr"]):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    @property
    def lr(self) -> float:
        """The main optimiser's current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def first_nonfinite(self) -> tuple[int, dict[str, float]] | None:
        """Return ``(step, terms)`` of the first step (1-based, counted since this object was
        made) whose total loss was not finite, or ``None``; this waits for the device."""
        step = int(self._first_bad)
        if step < 0:
            return None
        values = self._bad_terms.tolist()
        return step, dict(zip(self._term_names, values, strict=True))

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Copy ``state`` into the parameters and buffers in place (graph addresses kept)."""
        with torch.no_grad():
            for name, tensor in self.model.state_dict().items():
                tensor.copy_(state[name])
