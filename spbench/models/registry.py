"""Registry of superpixel methods: constructor, default training recipe and loss (timm-style).

A method is registered by decorating its builder::

    @register_method("scn", recipe=Recipe(lr=5e-5, ...))
    def scn(**kwargs) -> nn.Module: ...

and looked up by name with :func:`get_method` / :func:`create_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor, nn

from spbench.losses.recipe import superpixel_loss

__all__ = [
    "Method",
    "Recipe",
    "SuperpixelOutput",
    "create_model",
    "get_method",
    "list_methods",
    "parameter_groups",
    "register_method",
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


@dataclass(frozen=True)
class Recipe:
    """A method's default training recipe (DLM's retraining, ``baselines.md`` §6.1).

    Attributes
    ----------
    lr : float
        Adam learning rate.
    weight_decay : float
        Coupled L2 on the "weight" parameter group (biases get 0).
    batch_size : int
        Training batch size.
    crop, val_crop : int
        Training and validation crop sizes in pixels.
    n_classes : int
        One-hot channels of the ground truth.
    betas : tuple of float
        Adam betas.
    seed : int
        ``seed_everything`` value.
    """

    lr: float
    weight_decay: float
    batch_size: int
    crop: int
    val_crop: int
    n_classes: int = 50
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 42


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes
    ----------
    name : str
        Registry key.
    build : callable
        ``build(**kwargs) -> nn.Module``; the module's forward returns :class:`SuperpixelOutput`.
    recipe : Recipe
        Default training recipe.
    loss : callable
        ``loss(output, labels, config, *, generator=None) -> dict[str, Tensor]``.
    description : str
        One line for listings.
    """

    name: str
    build: Callable[..., nn.Module]
    recipe: Recipe
    loss: Callable[..., dict[str, Tensor]] = superpixel_loss
    description: str = ""


_REGISTRY: dict[str, Method] = {}


def register_method(
    name: str,
    *,
    recipe: Recipe,
    loss: Callable[..., dict[str, Tensor]] | None = None,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model builder under ``name``.

    Parameters
    ----------
    name : str
        Registry key; must be unused.
    recipe : Recipe
        The method's default training recipe.
    loss : callable, optional
        The method's loss; default :func:`spbench.losses.superpixel_loss`.
    description : str
        One line for listings (default: the builder's docstring's first line).

    Returns
    -------
    callable
        A decorator that registers the builder and returns it unchanged.

    Raises
    ------
    ValueError
        If ``name`` is already registered.
    """

    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        doc = (build.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Method(
            name=name,
            build=build,
            recipe=recipe,
            loss=loss if loss is not None else superpixel_loss,
            description=description or (doc[0] if doc else ""),
        )
        return build

    return decorator


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
        raise KeyError(
            f"unknown method {name!r}; registered methods: {', '.join(list_methods()) or 'none'}"
        ) from None


def list_methods() -> list[str]:
    """Return the registered method names, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model of a registered method.

    Returns
    -------
    nn.Module
        ``get_method(name).build(**kwargs)``.
    """
    return get_method(name).build(**kwargs)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Adam parameter groups built by the upstream *name filter* (``baselines.md`` §1).

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
