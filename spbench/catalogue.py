"""The method catalogue: names, training stages and recipes, without torch.

Building the workflow's job graph needs to know, for every method, its stages and its recipe
(batch size, learning rate, ...), but not its network. Those facts live here, in a module that
imports neither torch nor the networks, so that ``snakemake -n`` stays fast; the networks
register themselves in :mod:`spbench.models.registry`, which imports torch and is used only by
the jobs that run them.

Every built-in method has a :class:`MethodCard` in :data:`BUILTIN`; a method registered with
:func:`spbench.models.register_method` from a user's module (``config.method_modules``) adds
its card, naming that module, when the module is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spbench.constants import CELL_SIZE
from spbench.errors import UserError

__all__ = [
    "BUILTIN",
    "PUBLISHED_PREFIX",
    "MethodCard",
    "Recipe",
    "Stage",
    "UnknownMethodError",
    "add_card",
    "get_card",
    "get_stage",
    "list_methods",
    "model_label",
]


@dataclass(frozen=True)
class Recipe:
    """A method's default training recipe (DLM's retraining, ``docs/baselines.md`` §6.1).

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
    schedule : str
        ``"constant"``, or ``"poly"``: lr·max(0, 1 − step/schedule_steps)^schedule_power on
        every group, stepped per optimiser step (CDS in DLM, docs/baselines.md §6.1).
    schedule_steps : int
        Length of the poly schedule in steps.
    schedule_power : float
        Exponent of the poly schedule.
    aux_lr : float or None
        Learning rate of the auxiliary optimiser (CDS's CLUB), if the method has one.
    """

    lr: float
    weight_decay: float
    batch_size: int
    crop: int
    val_crop: int
    n_classes: int = 50
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 42
    schedule: str = "constant"
    schedule_steps: int = 0
    schedule_power: float = 0.9
    aux_lr: float | None = None


@dataclass(frozen=True)
class Stage:
    """One training stage of a multi-stage recipe (AINet and SSM train twice,
    docs/baselines.md §6.1).

    Attributes
    ----------
    name : str
        File-name-safe stage name (``"main"``, ``"stage1"``, ``"stage2"``).
    uses_variant : bool
        Whether the variant's losses (LAP, MSD, WR) apply in this stage. A stage without them
        (AINet's and SSM's first stage) is the same for every variant, so the workflow trains it
        once and shares its checkpoint.
    splits : tuple of str
        Default training splits (DLM's t_sep_v: train; tv: train and val); ``train.train_splits``
        in the config overrides the last stage's.
    overrides : mapping
        Recipe fields that differ in this stage (e.g. ``{"lr": 8e-5, "weight_decay": 0.0}``).
    revision : int
        Raised when a change of the stage's training code changes the weights it trains: it
        is part of the training job's params (when not 0), so the workflow retrains this stage
        and what follows, and no other method.
    """

    name: str = "main"
    uses_variant: bool = True
    splits: tuple[str, ...] = ("train", "val")
    overrides: Mapping[str, Any] = field(default_factory=dict)
    revision: int = 0


@dataclass(frozen=True)
class MethodCard:
    """What the workflow knows of a method without building it.

    Attributes
    ----------
    name : str
        Registry key.
    recipe : Recipe
        Default training recipe.
    stages : tuple of Stage
        Training stages in order.
    trained : bool
        False for classical references (SLIC, the plain grid): nothing is fitted, and their
        rows say so instead of "trained here".
    description : str
        One line for listings.
    module : str or None
        The module whose import registers the method (the user's module, e.g. the
        ``config.method_modules`` entry ``mymethods.mynet``); None for a built-in. A training
        job imports it, and its params name it instead of every module the config lists.
    augment : str
        The training crops' augmentation (``spbench.models.registry.AUGMENTATIONS``).
    needs_edges : bool
        Whether training batches carry edge targets.
    """

    name: str
    recipe: Recipe
    stages: tuple[Stage, ...] = (Stage(),)
    trained: bool = True
    description: str = ""
    module: str | None = None
    augment: str = "scn"
    needs_edges: bool = False


class UnknownMethodError(UserError, KeyError):
    """A method or stage name that is not registered; the message lists the registered ones."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


#: DLM's SCN retraining recipe (``docs/baselines.md`` §6.1; weight decay of the tv stage, t_sep_v
#: uses 0 and the config overrides it).
SCN_RECIPE = Recipe(lr=5e-5, weight_decay=4e-4, batch_size=8, crop=208, val_crop=320, seed=42)

#: DLM's AINet retraining recipe (``docs/baselines.md`` §6.1; tv stage values, stage 1 overrides).
AINET_RECIPE = Recipe(
    lr=4e-5, weight_decay=4e-4, batch_size=16, crop=208, val_crop=208, n_classes=51, seed=2020
)
#: DLM's two AINet stages: t_sep_v (plain AINet, lr 8e-5, no weight decay) then tv (+ variant).
AINET_STAGES = (
    Stage(
        "stage1", uses_variant=False, splits=("train",), overrides={"lr": 8e-5, "weight_decay": 0.0}
    ),
    Stage("stage2", uses_variant=True, splits=("train", "val")),
)

#: CDS's poly schedule length in optimiser steps (upstream's last milestone 50k + 100k).
CDS_POLY_STEPS = 150_000
#: CDS's poly schedule power.
CDS_POLY_POWER = 0.9
#: Learning rate of CDS's CLUB estimator (its own Adam, no schedule).
CLUB_LR = 5e-4
#: DLM's CDS retraining recipe (``docs/baselines.md`` §6.1; the weight decay of the tv stage,
#: t_sep_v uses 0 and the config overrides it).
CDS_RECIPE = Recipe(
    lr=5e-4,
    weight_decay=4e-4,
    batch_size=8,
    crop=208,
    val_crop=320,
    seed=42,
    schedule="poly",
    schedule_steps=CDS_POLY_STEPS,
    schedule_power=CDS_POLY_POWER,
    aux_lr=CLUB_LR,
)

#: DLM's SSM recipe (``docs/baselines.md`` §6.1: tv only, batch 16 as asserted).
SSM_RECIPE = Recipe(lr=5e-4, weight_decay=4e-4, batch_size=16, crop=208, val_crop=320, seed=42)
#: SSMamba stage 1 (GEncoder, no DLM losses) then stage 2 (LEncoder, the variant's losses).
SSM_STAGES = (
    Stage("stage1", uses_variant=False, splits=("train", "val")),
    # revision 1: the frozen global encoder trains in train mode from the first step (it was
    # in eval mode until the first validation, and again after each resume).
    Stage("stage2", uses_variant=True, splits=("train", "val"), revision=1),
)

#: Variant prefix of a run of published weights (``pub_lap``: the authors' LAP checkpoint).
PUBLISHED_PREFIX = "pub_"

#: The recipe of a method with nothing to fit (its values are never used).
NO_TRAINING = Recipe(lr=0.0, weight_decay=0.0, batch_size=1, crop=CELL_SIZE, val_crop=CELL_SIZE)

#: The methods that ship with spbench (their networks are in :mod:`spbench.models`).
BUILTIN: dict[str, MethodCard] = {
    card.name: card
    for card in (
        MethodCard("scn", SCN_RECIPE),
        MethodCard("ainet", AINET_RECIPE, AINET_STAGES),
        MethodCard("cds", CDS_RECIPE),
        MethodCard("ssm", SSM_RECIPE, SSM_STAGES),
        MethodCard("slic", NO_TRAINING, trained=False),
        MethodCard("grid", NO_TRAINING, trained=False),
    )
}

_EXTRA: dict[str, MethodCard] = {}


def add_card(card: MethodCard) -> None:
    """Record the card of a method registered outside spbench (called by ``register_method``).

    A built-in method's registration must agree with its card here: the recipe and stages have
    one home, and a disagreement is a programming error.

    Raises
    ------
    ValueError
        If the name is taken by another card, or a built-in registers other stages or recipe.
    """
    known = BUILTIN.get(card.name) or _EXTRA.get(card.name)
    if card.name in BUILTIN:
        if (known.recipe, known.stages) != (card.recipe, card.stages):
            raise ValueError(
                f"method {card.name!r}: registered recipe or stages differ from spbench.catalogue"
            )
        return
    if known is not None:
        raise ValueError(f"method {card.name!r} is already registered")
    _EXTRA[card.name] = card


def remove_card(name: str) -> None:
    """Forget a non-built-in card (a registration that failed its checks)."""
    _EXTRA.pop(name, None)


#: Table spelling of the paper's baselines; other methods are upper-cased.
_DISPLAY_NAMES = {"scn": "SCN", "ainet": "AINet", "cds": "CDS", "ssm": "SSM"}


def model_label(method: str, variant: str) -> str:
    """Return the table label of a run, e.g. ``("scn", "lap") -> "SCN-LAP"``.

    Parameters
    ----------
    method
        Method name as registered (``"scn"``, ``"ainet"``...). The four paper baselines keep the
        paper's spelling (``AINet``); any other method is upper-cased.
    variant
        ``"base"`` gives no suffix; any other variant is appended upper-cased after ``-``; a
        published-weights variant ``pub_<v>`` is labelled as ``<v>`` with " (published)".

    Returns
    -------
    str
        The model label (``"CDS-LAP (published)"`` for ``("cds", "pub_lap")``).
    """
    if variant.startswith(PUBLISHED_PREFIX):
        return f"{model_label(method, variant.removeprefix(PUBLISHED_PREFIX))} (published)"
    name = _DISPLAY_NAMES.get(method.lower(), method.upper())
    return name if variant == "base" else f"{name}-{variant.upper()}"


def list_methods() -> list[str]:
    """Return every known method name (built-in and imported extras), sorted."""
    return sorted({*BUILTIN, *_EXTRA})


def get_card(name: str) -> MethodCard:
    """Return the :class:`MethodCard` of ``name``.

    Raises
    ------
    UnknownMethodError
        Naming the registered methods.
    """
    card = BUILTIN.get(name) or _EXTRA.get(name)
    if card is None:
        raise UnknownMethodError(
            f"unknown method {name!r}; registered methods: {', '.join(list_methods())}"
        )
    return card


def get_stage(name: str, stage: str | None = None) -> Stage:
    """Return a method's :class:`Stage` by name (default: its last stage).

    Raises
    ------
    UnknownMethodError
        If the method or the stage is unknown; the message lists the method's stages.
    """
    stages = get_card(name).stages
    if stage is None:
        return stages[-1]
    for candidate in stages:
        if candidate.name == stage:
            return candidate
    raise UnknownMethodError(
        f"method {name!r} has no stage {stage!r}; its stages are {[s.name for s in stages]}"
    )
