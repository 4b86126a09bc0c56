"""Checkpoints: the spbench format, one safe reader for every checkpoint file, and resuming.

Reading
-------
A checkpoint is a pickle, and unpickling can run any code the file names. Every checkpoint
spbench reads (its own, the resume files, published weights, VMamba and SSMamba weights) goes
through :func:`read_checkpoint`, which loads with ``torch.load(..., weights_only=True)``:
tensors and plain containers (dict, list, tuple, set, str, numbers, ``OrderedDict``) only,
plus the few hyper-parameter classes published checkpoints hold (:data:`SAFE_GLOBALS`). A file
that names anything else stops with :class:`UnsafeCheckpointError`, naming the file and the
Python objects it asked for, before any of them is built. spbench's own checkpoints hold
nothing else: settings and provenance are plain types, RNG states are tensors.

Writing
-------
:class:`CheckpointMeta` is the one layout of a spbench checkpoint (trained or imported): the
header (format, versions, finish time), what produced the weights, and the weights
(``"model"``). :class:`TrainingState` adds what a killed training job resumes from: the
optimisers' states and every random generator the run draws from.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import logging
import os
import pickle
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from spbench import __version__
from spbench.errors import UserError
from spbench.io import CorruptFileError, atomic_path, git_commit, sha256_file

if TYPE_CHECKING:  # spbench.step imports the models, which read weights through this module
    from spbench.step import TrainStep

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "LEADING_PREFIXES",
    "SAFE_GLOBALS",
    "CheckpointMeta",
    "TrainingState",
    "UnsafeCheckpointError",
    "checkpoint_header",
    "input_identity",
    "load_checkpoint",
    "read_checkpoint",
    "resume_path",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "state_dict_of",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "spbench-checkpoint"
#: 2: the resume file's Python RNG state is a tensor (1 held Python's own tuple).
CHECKPOINT_VERSION = 2

#: Leading key prefixes of published state dicts: DLM's Lightning module (``model.``) and
#: DataParallel (``module.``). Only one, only at the start of a key
#: (``docs/baselines.md`` §7 item 2).
LEADING_PREFIXES = ("model.", "module.")


class UnsafeCheckpointError(CorruptFileError):
    """A checkpoint names Python objects that only a full unpickle (which can run code) builds."""


class _PlainMapping:
    """Stand-in for a hyper-parameter mapping class of another package.

    Unpickling "creates" it, and gets an empty ``OrderedDict`` that the file's items then
    fill (and whose ``__dict__`` takes the class's attributes, such as yacs's ``__immutable__``
    flag). Nothing of the original class is imported or run.
    """

    def __new__(cls, *args: object, **kwargs: object) -> collections.OrderedDict:  # type: ignore[misc]
        return collections.OrderedDict()


#: Classes a checkpoint may hold beyond tensors and plain containers. ``argparse.Namespace``
#: (hyper-parameters of argparse scripts) is built by ``object.__new__`` and a ``__dict__``
#: update, and ``TorchVersion`` (the torch version as older spbench checkpoints and others
#: store it) by ``str.__new__``: neither runs code. The mapping classes of Lightning
#: (``hyper_parameters``) and yacs (VMamba's training config) load as plain ``OrderedDict``s
#: (:class:`_PlainMapping`).
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    torch.torch_version.TorchVersion,
    *(
        (_PlainMapping, name)
        for name in (
            "lightning.fabric.utilities.data.AttributeDict",
            "lightning_fabric.utilities.data.AttributeDict",
            "pytorch_lightning.utilities.parsing.AttributeDict",
            "yacs.config.CfgNode",
        )
    ),
]


#: The oldest torch whose safe loader takes the ``(class, "module.Name")`` entries of
#: :data:`SAFE_GLOBALS` (2.4 has no ``safe_globals``; 2.5 takes classes only).
MIN_TORCH = (2, 6)


def require_safe_loader(version: str | None = None) -> None:
    """Raise :class:`~spbench.errors.UserError` unless torch (``version``: its
    ``__version__``, by default the one imported) has the safe loader spbench reads every
    checkpoint with (an older one would fail every read as if the file were corrupt)."""
    version = torch.__version__ if version is None else version
    release = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if release < MIN_TORCH:
        need = ".".join(map(str, MIN_TORCH))
        raise UserError(
            f"torch {version} cannot load checkpoints safely the way spbench does (it needs "
            f"torch >= {need}: torch.serialization.safe_globals with named entries); no file "
            f"was read. Install a newer torch (pip install 'torch>={need}'; README: Two "
            "commands)"
        )


def read_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *, remedy: str = ""
) -> Any:
    """Load any checkpoint file without running code from it (``weights_only=True``).

    Parameters
    ----------
    path
        The file (``torch.save`` zip or legacy format).
    map_location
        Where tensors go.
    remedy
        What to do about an unreadable file, appended to the error message.

    Returns
    -------
    object
        The checkpoint: tensors in plain containers.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsafeCheckpointError
        If the file names Python objects beyond :data:`SAFE_GLOBALS` (none of them is built).
    CorruptFileError
        If the file is not a readable checkpoint (truncated, or not a PyTorch file).
    UserError
        If torch is older than :data:`MIN_TORCH` (:func:`require_safe_loader`).
    """
    path = Path(path)
    require_safe_loader()
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:
        unsafe = _unsafe_globals(path, err)
        if unsafe:
            raise UnsafeCheckpointError(
                f"{path} was not loaded: it asks for Python objects ({', '.join(unsafe)}) that "
                "unpickling would build by running code; spbench loads tensors, plain containers "
                "and hyper-parameters only, and ran none of it. If you trust the file, re-save "
                "its state dict alone (torch.save(ckpt['state_dict'], 'w.pt')) and give that file"
            ) from None
        reason = str(err).strip().splitlines()[-1]
        raise CorruptFileError(_unreadable(path, reason, remedy)) from err
    except Exception as err:  # torch raises several types for truncated zips and foreign files
        raise CorruptFileError(_unreadable(path, str(err).strip(), remedy)) from err


def _unreadable(path: Path, reason: str, remedy: str) -> str:
    return f"{path} is not a readable checkpoint ({reason})" + (f"; {remedy}" if remedy else "")


def _unsafe_globals(path: Path, err: Exception) -> list[str]:
    """Return the globals of ``path`` that :func:`read_checkpoint` refuses (sorted, unique)."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (pre-zip) or damaged file: the refused name is in the error
        names = re.findall(r"GLOBAL ([\w.]+)", str(err))
    return sorted(set(names))


def state_dict_of(checkpoint: Any, prefixes: tuple[str, ...] = LEADING_PREFIXES) -> dict[str, Any]:
    """Return the weights of a checkpoint, each key's leading prefix stripped.

    Parameters
    ----------
    checkpoint
        A loaded checkpoint or a path to one (read by :func:`read_checkpoint`): its
        ``"state_dict"`` (Lightning, upstream ``.tar``), its ``"model"`` (spbench, VMamba) or
        the mapping itself (a plain state dict).
    prefixes
        Leading prefixes to strip: the first one a key starts with, once.

    Returns
    -------
    dict
        Parameter and buffer tensors keyed by the module names of the network.
    """
    source = checkpoint
    if isinstance(checkpoint, str | os.PathLike):
        checkpoint = read_checkpoint(checkpoint)
    state = checkpoint
    if isinstance(checkpoint, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), Mapping):
                state = checkpoint[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        where = f"{source} " if isinstance(source, str | os.PathLike) else "the checkpoint "
        raise CorruptFileError(f"{where}holds no state dict")
    out = {}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), "")
        out[key[len(prefix) :]] = value
    return out


def checkpoint_header() -> dict[str, str | int]:
    """Return the fields every spbench checkpoint starts with: format and version, the spbench
    and torch versions, the code's ``git_commit`` and ``finished`` (now, ISO 8601 with the UTC
    offset)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "spbench_version": __version__,
        "torch_version": str(torch.__version__),  # a plain str, not torch's TorchVersion
        "git_commit": git_commit(),
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Load a spbench checkpoint (safely), raising :class:`CorruptFileError` naming a bad file."""
    ckpt = read_checkpoint(path, map_location, remedy="delete it and re-run its training job")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CorruptFileError(f"{path} is not a {CHECKPOINT_FORMAT} file")
    return ckpt


def save_checkpoint(path: str | os.PathLike[str], payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically (``torch.save``)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """What produced a checkpoint's weights; every field is stored in the file as a plain type.

    Attributes
    ----------
    method, variant, stage : str
        The run and the stage these weights end.
    stages : list of str
        All stages of the method, in order.
    seed : int
    weights : str
        Provenance of the weights: ``"trained here, random init"``, ``"trained here, <stage>
        from <stage>"``, ``"published weights <file>"``, or a parameter-free method's
        description.
    settings, recipe, loss_config : dict
        The stage's job settings (:func:`spbench.jobs.train_job`: what determines the
        weights), effective recipe and loss switches.
    runtime : dict
        The settings that cannot change the weights (:func:`spbench.jobs.train_runtime`:
        cadences, device, threads, fast modes), for provenance; not compared on resume.
    device, device_name, fast_modes : str
        Where and how the weights were trained.
    init : str or None
        The checkpoint or source the weights started from.
    """

    method: str
    variant: str
    stage: str
    stages: list[str]
    seed: int
    weights: str
    settings: dict = dataclasses.field(default_factory=dict)
    runtime: dict = dataclasses.field(default_factory=dict)
    recipe: dict = dataclasses.field(default_factory=dict)
    loss_config: dict = dataclasses.field(default_factory=dict)
    device: str = "cpu"
    device_name: str = ""
    fast_modes: str = ""
    init: str | None = None

    def payload(
        self, model: torch.nn.Module, step: int = 0, wall_time_s: float = 0.0, **extra: Any
    ) -> dict[str, Any]:
        """Return the checkpoint of ``model`` after ``step`` optimiser steps and ``wall_time_s``
        seconds of training: header, these fields, ``extra`` and the state dict (``"model"``)."""
        return {
            **checkpoint_header(),
            **dataclasses.asdict(self),
            "step": step,
            "wall_time_s": wall_time_s,
            **extra,
            "model": model.state_dict(),
        }


def rng_state(generator: torch.Generator, loss_generator: torch.Generator | None) -> dict:
    """Return every random state a training run draws from, as tensors and plain numbers.

    ``"torch"`` (CPU default), ``"python"`` (``random``: SSM's quadrant draw), ``"data"`` (the
    host generator of crops and flips), ``"loss"`` (the loss's sampling generator, if any) and
    ``"cuda"`` (every visible device's default generator, when CUDA is available).
    """
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "data": generator.get_state(),
    }
    if loss_generator is not None:
        state["loss"] = loss_generator.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(
    state: dict, generator: torch.Generator, loss_generator: torch.Generator | None
) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    generator.set_state(state["data"])
    if loss_generator is not None and "loss" in state:
        loss_generator.set_state(state["loss"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _device_type(device: object) -> str:
    """``"cuda"`` for ``"cuda:1"``, ``"cpu"`` for ``"cpu"`` (and for a file without one)."""
    return str(device or "cpu").split(":")[0]


def input_identity(
    data_root: str | os.PathLike[str], init: str | os.PathLike[str] | None
) -> dict[str, str | None]:
    """Return the sha256 of the dataset's ``dataset.json`` and of the ``init`` checkpoint.

    Either is ``None`` when absent (``init`` for a first stage; a missing dataset is reported
    when it is loaded). Hashing a checkpoint of a few hundred MB takes about a second, once per
    training job.
    """
    manifest = Path(data_root) / "dataset.json"
    return {
        "dataset": sha256_file(manifest) if manifest.is_file() else None,
        "init": sha256_file(init) if init else None,
    }


def resume_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Return the resume file of a training job writing ``checkpoint``:
    ``<checkpoint stem>.resume.pt`` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".resume.pt")


@dataclasses.dataclass
class TrainingState:
    """The resume file of one training stage: the checkpoint so far, the optimisers' states and
    every random generator, so that a killed job continues where it left off.

    Attributes
    ----------
    path : pathlib.Path
        The resume file (``<checkpoint stem>.resume.pt``).
    meta : CheckpointMeta
        The run's checkpoint fields; a resume file whose :attr:`RUN_FIELDS` differ is another
        run's and is not used.
    step_fn : TrainStep
        The model, its optimisers and the loss's sampling generator.
    generator : torch.Generator
        The host generator of crops and flips.
    inputs : dict
        What the run starts from that its settings do not name, as :func:`input_identity`
        returns it (the dataset's and the previous stage's sha256): a resume file written
        before one of them changed is not used, since its weights descend from the old one.
    """

    #: The fields that identify a run.
    RUN_FIELDS: ClassVar[tuple[str, ...]] = ("settings", "method", "seed", "stage")

    path: Path
    meta: CheckpointMeta
    step_fn: TrainStep
    generator: torch.Generator
    inputs: dict[str, str | None] = dataclasses.field(default_factory=dict)

    def save(self, step: int, wall_time_s: float) -> None:
        """Write the checkpoint after ``step`` steps and ``wall_time_s`` seconds, with the
        optimiser and RNG states, to :attr:`path` (atomically)."""
        extra = {
            **self.step_fn.optimizer_state(),
            "rng": rng_state(self.generator, self.step_fn.generator),
            "resume_inputs": self.inputs,
        }
        save_checkpoint(
            self.path, self.meta.payload(self.step_fn.model, step, wall_time_s, **extra)
        )

    def restore(self) -> tuple[int, float]:
        """Load the resume file into the model, optimisers and generators if it is this run's.

        Returns
        -------
        (int, float)
            The step to continue from and the training seconds already spent; ``(0, 0.0)``
            when there is no resume file, or it belongs to another run or format version.
        """
        if not self.path.is_file():
            return 0, 0.0
        state = load_checkpoint(self.path)
        ours = (
            state.get("format_version") == CHECKPOINT_VERSION
            and all(state.get(key) == getattr(self.meta, key) for key in self.RUN_FIELDS)
            and state.get("resume_inputs", {}) == self.inputs
            # A generator's state is the device type's own (a CUDA run's cannot go on, on the
            # CPU): a job re-run with gpu=0, or where no GPU is left, starts afresh.
            and _device_type(state.get("device")) == _device_type(self.meta.device)
        )
        if not ours:
            log.warning(
                "%s was written with other settings, data, previous stage, device type or "
                "checkpoint version: starting afresh",
                self.path,
            )
            return 0, 0.0
        self.step_fn.model.load_state_dict(state["model"])
        self.step_fn.load_optimizer_state(state)
        set_rng_state(state["rng"], self.generator, self.step_fn.generator)
        log.warning("resuming from step %d (%s)", state["step"], self.path)
        return state["step"], state["wall_time_s"]

    def remove(self) -> None:
        """Delete the resume file (the final checkpoint exists)."""
        self.path.unlink(missing_ok=True)
