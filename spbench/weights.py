"""Published weights: turn an upstream or DLM checkpoint into a spbench checkpoint, untrained.

So that a user can check our evaluation against the authors' own models, ``spbench
import-weights`` reads a checkpoint given by path or URL and writes the same checkpoint format
as training does, with the provenance "published weights <file>"; prediction, scoring and the
report then treat it like any trained run (``docs/baselines.md`` §7).

Loading rules (``docs/baselines.md`` §7, item 2):

- the weights are the file's ``state_dict`` (Lightning and upstream ``.tar`` files) or the file
  itself when it is a plain state dict;
- DLM's Lightning checkpoints prefix every key with ``model.`` and DataParallel ones with
  ``module.``: only that *leading* prefix is stripped;
- every key the model expects must be present, except the prefixes a model declares optional
  for inference (``training_only_prefixes``, e.g. CDS's auxiliary encoder and CLUB);
- keys the model does not have are logged, never silently loaded.

The file is untrusted input: it is read with :func:`spbench.checkpoint.read_checkpoint`, which
builds tensors, plain containers and hyper-parameters only, so nothing in it runs. Its sha256 is
recorded in the checkpoint (``weights_sha256``, shown by ``spbench report provenance``); a URL
given without ``sha256`` gets a warning with the value to pin.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import torch

from spbench.checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    state_dict_of,
)
from spbench.errors import UserError
from spbench.io import CorruptFileError, atomic_path, sha256_file, write_json
from spbench.jobs import canonical
from spbench.models import create_model, get_method
from spbench.session import adoption_record

log = logging.getLogger(__name__)


class WeightsMismatchError(UserError, ValueError):
    """A checkpoint does not fit the method's network; the message lists the keys."""


def fetch_weights(source: str, cache_dir: str | os.PathLike[str]) -> Path:
    """Return a local path for ``source``: the path itself, or an HTTP(S) URL downloaded once.

    Downloads go to ``cache_dir/<file name>`` with resume and retries
    (:func:`spbench.data.download.fetch`).
    """
    if urlparse(source).scheme in ("http", "https"):
        from spbench.data.download import fetch

        name = Path(urlparse(source).path).name or "weights.ckpt"
        return fetch(
            Path(cache_dir) / name,
            [source],
            hint="set the weights' `source` in config.published to a local copy",
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"published weights {path} not found (config.published source)")
    return path


def load_published(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load ``state`` into ``model`` under the loading rules; return the unexpected keys.

    Raises
    ------
    WeightsMismatchError
        If a required key is missing or a shape differs (the first few are named).
    """
    optional = tuple(getattr(model, "training_only_prefixes", ()))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(optional)]
    if missing:
        raise WeightsMismatchError(
            f"{len(missing)} weights missing from the checkpoint, e.g. {missing[:5]}; is it a "
            "checkpoint of this method?"
        )
    shapes = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if shapes:
        k = shapes[0]
        raise WeightsMismatchError(
            f"{len(shapes)} weights differ in shape, e.g. {k}: checkpoint "
            f"{tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        )
    unexpected = [k for k in state if k not in expected]
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    if unexpected:
        log.warning(
            "ignored %d checkpoint keys the model lacks, e.g. %s", len(unexpected), unexpected[:5]
        )
    return unexpected


def adopt_checkpoint(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str,
    variant: str,
    seed: int,
    stage: str,
    job: dict,
) -> Path:
    """Copy a spbench checkpoint trained elsewhere into a run, after checking it is that run's.

    Its method, variant, seed, stage and job settings (its ``settings``: what determines the
    weights, :func:`spbench.jobs.train_job`) must be the run's, so that the run's labels and
    the report's provenance (device, steps, wall time, fast modes, all kept from the
    checkpoint) are true. Its runtime settings (device, fast modes, cadences) are not compared:
    they legitimately differ where it was trained, and the checkpoint records them.

    Parameters
    ----------
    source
        The checkpoint trained elsewhere.
    out
        Where the run's checkpoint goes (a copy of ``source``); beside it,
        :func:`spbench.session.adoption_record` names ``source``.
    method, variant, seed, stage
        The run and stage it must be.
    job
        The run's job settings (the ``--settings`` of its ``spbench train`` in the workflow).

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    WeightsMismatchError
        Naming the first field or settings key that differs and both values.
    """
    ckpt = load_checkpoint(source)
    wanted = {"method": method, "variant": variant, "seed": seed, "stage": stage}
    for key, value in wanted.items():
        if ckpt.get(key) != value:
            raise WeightsMismatchError(
                f"{source}: trained as {key} {ckpt.get(key)!r}, the run needs {value!r}"
            )
    diff = _first_difference(canonical(ckpt.get("settings")), canonical(job))
    if diff is not None:
        key, theirs, ours = diff
        raise WeightsMismatchError(
            f"{source}: trained with {key} = {theirs!r}, the profile says {ours!r}; score it "
            "with the profile it was trained with (profile.yaml of its GPU session)"
        )
    with atomic_path(Path(out)) as tmp:
        shutil.copyfile(source, tmp)
    # The mark that keeps a later run without trained_elsewhere from training over it.
    write_json(adoption_record(out), {"source": str(Path(source).resolve())})
    return Path(out)


def _first_difference(a: object, b: object, key: str = "settings") -> tuple | None:
    """Return ``(key path, a's value, b's value)`` of the first difference, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(name), b.get(name), f"{key}.{name}")
            if diff is not None:
                return diff
        return None
    return None if a == b else (key, a, b)


def import_weights(
    source: str,
    out: str | os.PathLike[str],
    *,
    method: str,
    variant: str,
    loss_config: dict,
    sha256: str | None = None,
) -> Path:
    """Convert published weights into a spbench checkpoint that predict can use.

    Parameters
    ----------
    source
        Local path or HTTP(S) URL of the checkpoint.
    out
        spbench checkpoint to write (atomically).
    method
        Registered method the weights belong to.
    variant
        Run variant name recorded in the checkpoint (e.g. ``pub_lap``).
    loss_config
        The loss switches the weights were trained with (recorded in every result row).
    sha256
        Expected sha256 of the file; checked when given.

    Returns
    -------
    pathlib.Path
        The written checkpoint.
    """
    out = Path(out)
    path = fetch_weights(source, out.parent / "download")
    digest = checked_sha256(path, source, sha256)
    model = create_model(method)
    unexpected = load_published(model, state_dict_of(read_checkpoint(path)))
    stages = [s.name for s in get_method(method).stages]
    meta = CheckpointMeta(
        method=method,
        variant=variant,
        stage=stages[-1],
        stages=stages,
        seed=0,
        weights=f"published weights {path.name}",
        loss_config=loss_config,
        init=str(source),
    )
    save_checkpoint(out, meta.payload(model, unexpected_keys=unexpected, weights_sha256=digest))
    return out


def checked_sha256(path: Path, source: str, expected: str | None) -> str:
    """Return the sha256 of ``path`` (hex), checked against ``expected`` when given.

    A file downloaded from a URL without ``expected`` gets a warning with the value to pin: the
    next download may differ.

    Raises
    ------
    CorruptFileError
        If the digest differs from ``expected``.
    """
    digest = sha256_file(path)
    if expected and digest != expected.lower():
        raise CorruptFileError(f"{path}: sha256 differs from config.published ({expected})")
    if not expected and urlparse(source).scheme in ("http", "https"):
        log.warning(
            "%s has no sha256 in config.published; the file downloaded has sha256 %s: add "
            "`sha256: %s` to its entry to pin it (recorded in the run's provenance)",
            source,
            digest,
            digest,
        )
    return digest
