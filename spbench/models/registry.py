"""Registry of superpixel methods: constructor, default training recipe and loss (timm-style).

A method is registered by decorating its builder::

    @register_method("scn", recipe=Recipe(lr=5e-5, ...))
    def scn(**kwargs) -> nn.Module: ...

and looked up by name with :func:`get_method` / :func:`create_model`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from torch import Tensor, nn

from spbench.catalogue import (
    MethodCard,
    Recipe,
    Stage,
    UnknownMethodError,
    add_card,
    get_stage,
    remove_card,
)
from spbench.losses.recipe import superpixel_loss

__all__ = [
    "Method",
    "Recipe",
    "Stage",
    "SuperpixelOutput",
    "TrainingBatch",
    "create_model",
    "default_training_loss",
    "get_method",
    "get_stage",
    "list_methods",
    "parameter_groups",
    "register_method",
    "unregister_method",
]


class SuperpixelOutput(NamedTuple):
    """What every model's ``forward`` returns.

    Attributes
    ----------
    assignment : Tensor
        ``Q``, ``[B, 9, H, W]``, a softmax over dim 1 (channel ``k`` → cell offset
        ``(k // 3 − 1, k % 3 − 1)``).
    embedding : Tensor
        ``z``, ``[B, D, H, W]``, the MSD embedding (SCN: ``out_conv0_1``, 16 channels).
    """

    assignment: Tensor
    embedding: Tensor
    extras: Mapping[str, Tensor] | None = None
    """Method-specific training outputs (CDS's auxiliary branch, SSM's edge logits, ...)."""


class TrainingBatch(Protocol):
    """What a method's training loss receives (``spbench.data.loader.Batch`` provides it).

    Attributes
    ----------
    images : Tensor
        ``[B, 3, H, W]`` normalised RGB (``x/255 − mean``).
    labels : Tensor
        ``[B, H, W]`` int64 ground-truth labels 0..49 (after crop, flips, rescale).
    edges : Tensor or None
        ``[B, H, W]`` uint8 edge targets (0 background, 1 edge, 2 ignore) for methods with
        ``needs_edges``; ``None`` otherwise.
    """

    images: Tensor
    labels: Tensor
    edges: Tensor | None


def default_training_loss(
    model: nn.Module, batch: TrainingBatch, config: Any, *, generator: Any = None, **_: Any
) -> dict[str, Tensor]:
    """SCN's training loss for any model returning :class:`SuperpixelOutput` (docs/method.md §7).

    Runs the model on ``batch.images`` and returns
    :func:`spbench.losses.superpixel_loss` of its output against ``batch.labels``: the weighted
    terms ``recon, pos, lap, msd`` and their ``total`` (unitless loss values).
    """
    return superpixel_loss(model(batch.images), batch.labels, config, generator=generator)


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes
    ----------
    name : str
        Registry key.
    build : callable
        ``build(*, stage=None, **kwargs) -> nn.Module``; the module's forward returns
        :class:`SuperpixelOutput`. ``stage`` is a :class:`Stage` name for multi-stage methods
        (the inference model is ``build(stage=stages[-1].name)``).
    recipe : Recipe
        Default training recipe.
    loss : callable
        ``loss(model, batch, config, *, generator=None, stage="main") -> dict[str, Tensor]``:
        runs the model on a :class:`TrainingBatch` and returns the weighted loss terms with their
        sum under ``"total"``. A term ``"aux_total"`` is minimised by a second optimiser over
        ``model.auxiliary_parameters()`` after the main step (CDS's CLUB estimator).
    description : str
        One line for listings. A parameter-free method's checkpoints carry it as the
        provenance of their (absent) weights, so it says what the method is and its parameters.
    stages : tuple of Stage
        Training stages in order; every stage but the first starts from the previous one's
        checkpoint (``model.init_from_previous(state_dict)`` if the model has it, else
        ``load_state_dict``).
    augment : str
        Training augmentation of the recipe: ``"scn"`` (crop, flips), ``"rescale_bicubic"``
        (CDS: random rescale first), ``"ssm"`` (rescale bilinear, then photometric distortion).
    needs_edges : bool
        Whether training batches carry consensus edge targets (SSM).
    segment : callable or None
        For classical methods with no network (SLIC): ``segment(image, n_segments)`` maps an
        ``[H, W, 3]`` ``uint8`` image to an ``[H, W]`` map of non-negative integer labels
        (any ids, at most 65,536 distinct) with about ``n_segments`` superpixels; prediction
        calls it instead of the network.
    graph_capturable : bool
        Whether a training step can be captured as a CUDA graph (``train.fast.cuda_graph``).
        False when the forward pass or the loss makes a host-side random choice, which a graph
        would freeze at capture (SSM's quadrant), or has data-dependent shapes, which cannot be
        captured (AINet's boundary patches); such a method trains without the graph.
    """

    name: str
    build: Callable[..., nn.Module]
    recipe: Recipe
    loss: Callable[..., dict[str, Tensor]] = default_training_loss
    description: str = ""
    stages: tuple[Stage, ...] = (Stage(),)
    augment: str = "scn"
    needs_edges: bool = False
    segment: Callable[..., Any] | None = None
    graph_capturable: bool = True


_REGISTRY: dict[str, Method] = {}


#: Training augmentations a method may ask for (implemented in ``spbench.data.loader``).
AUGMENTATIONS = ("scn", "rescale_bicubic", "ssm")


def register_method(
    name: str,
    *,
    recipe: Recipe,
    loss: Callable[..., dict[str, Tensor]] | None = None,
    description: str = "",
    stages: tuple[Stage, ...] = (Stage(),),
    augment: str = "scn",
    needs_edges: bool = False,
    segment: Callable[..., Any] | None = None,
    graph_capturable: bool = True,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model builder under ``name``.

    Parameters
    ----------
    name : str
        Registry key; must be unused and match ``^[a-z0-9_]+$`` (as ``config.methods``).
    recipe : Recipe
        The method's default training recipe.
    loss : callable, optional
        The method's training loss (see :class:`Method`); default
        :func:`default_training_loss` (SCN's recipe on the model's output).
    description : str
        One line for listings (default: the builder's docstring's first line).
    stages, augment, needs_edges, segment, graph_capturable
        See :class:`Method`.

    Returns
    -------
    callable
        A decorator that registers the builder and returns it unchanged.

    Raises
    ------
    ValueError
        If ``name`` is already registered; :class:`spbench.config.ConfigError` (a ValueError)
        if it is not a name ``config.methods`` accepts (lower-case letters, digits and _).
    """
    from spbench.config import check_method_name

    check_method_name(name)

    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        if augment not in AUGMENTATIONS:
            raise ValueError(f"method {name!r}: augment must be one of {AUGMENTATIONS}")
        doc = (build.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Method(
            name=name,
            build=build,
            recipe=recipe,
            loss=loss if loss is not None else default_training_loss,
            description=description or (doc[0] if doc else ""),
            stages=tuple(stages),
            augment=augment,
            needs_edges=needs_edges,
            segment=segment,
            graph_capturable=graph_capturable,
        )
        if not method_stages_valid(_REGISTRY[name]):
            del _REGISTRY[name]
            raise ValueError(f"method {name!r}: stage names must be unique and non-empty")
        try:  # the torch-free catalogue the workflow reads (spbench.catalogue)
            card = MethodCard(
                name,
                recipe,
                tuple(stages),
                segment is None,
                description,
                _registering_module(),
                augment=augment,
                needs_edges=needs_edges,
            )
            add_card(card)
        except ValueError:
            del _REGISTRY[name]
            raise
        return build

    return decorator


def _registering_module() -> str | None:
    """Return the module whose import is running this registration: the innermost module body
    on the call stack (``mymethods.mynet`` for a decorator at its top level; ``mymethods`` for a
    package whose ``__init__`` calls a helper that registers). Importing it registers the method
    again in a new process, whatever other modules the config lists or in which order; None
    outside any module body."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            return frame.f_globals.get("__name__")
        frame = frame.f_back
    return None


def method_stages_valid(method: Method) -> bool:
    """Return whether a method's stages are non-empty with unique names."""
    names = [stage.name for stage in method.stages]
    return bool(names) and len(set(names)) == len(names) and all(names)


def get_method(name: str) -> Method:
    """Look up a registered method.

    Returns
    -------
    Method

    Raises
    ------
    KeyError
        If ``name`` is unknown; the message lists the registered names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; registered methods: {', '.join(list_methods()) or 'none'}"
        ) from None


def unregister_method(name: str) -> None:
    """Remove a method registered outside spbench (tests and interactive sessions)."""
    _REGISTRY.pop(name, None)
    remove_card(name)


def list_methods() -> list[str]:
    """Return the registered method names (networks imported), sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, *, stage: str | None = None, **kwargs: object) -> nn.Module:
    """Build the model of a registered method, for one of its training stages.

    Parameters
    ----------
    name : str
        Registered method name.
    stage : str, optional
        Stage name; default the last stage, which is also the inference model. Single-stage
        methods' builders are called without it.
    **kwargs
        Passed to the builder.

    Returns
    -------
    nn.Module
        The network.
    """
    method = get_method(name)
    names = [s.name for s in method.stages]
    if stage is not None and stage not in names:
        raise UnknownMethodError(f"method {name!r} has no stage {stage!r}; its stages are {names}")
    if len(names) > 1:
        kwargs["stage"] = stage or names[-1]
    return method.build(**kwargs)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Adam parameter groups built by the upstream *name filter* (``docs/baselines.md`` §1).

    Parameters whose name contains ``"weight"`` (conv/linear weights, BN γ) get ``weight_decay``;
    those whose name contains ``"bias"`` get 0; parameters matching neither are in no group and
    are therefore **never optimised**, as upstream and DLM do (SSM's ``A_logs``, ``Ds``, ...).

    Parameters
    ----------
    model : nn.Module
    weight_decay : float
        Coupled L2 coefficient of the weight group.

    Returns
    -------
    list of dict
        ``[{"params": weights, "weight_decay": weight_decay, "name": "weight"},
        {"params": biases, "weight_decay": 0.0, "name": "bias"}]``.
    """
    weights, biases = [], []
    for name, param in model.named_parameters():
        # "weight" is tested first so that a name containing both lands in one group only.
        if "weight" in name:
            weights.append(param)
        elif "bias" in name:
            biases.append(param)
    return [
        {"params": weights, "weight_decay": weight_decay, "name": "weight"},
        {"params": biases, "weight_decay": 0.0, "name": "bias"},
    ]
