"""Checkpoints: real published layouts load safely, spbench's own files round-trip, and
nothing in spbench loads a pickle any other way (malicious files: tests/test_bad_input.py)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import random
import re
import sys
import types
from pathlib import Path

import pytest
import torch

from spbench.checkpoint import (
    CheckpointMeta,
    TrainingState,
    input_identity,
    load_checkpoint,
    read_checkpoint,
    require_safe_loader,
    state_dict_of,
)
from spbench.errors import UserError
from spbench.models import create_model, get_method
from spbench.step import TrainStep

ROOT = Path(__file__).resolve().parents[1]


def _foreign_class(monkeypatch, qualified: str, base: type = dict) -> type:
    """A class pickled under ``qualified`` (e.g. Lightning's AttributeDict) without its package."""
    module_name, name = qualified.rsplit(".", 1)
    parts = module_name.split(".")
    for i in range(1, len(parts) + 1):
        monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    cls = type(name, (base,), {"__module__": module_name, "__qualname__": name})
    setattr(sys.modules[module_name], name, cls)
    return cls


def _cfg_node(cls: type, items: dict):
    """A yacs-style node: a dict subclass with attributes in ``__dict__`` (pickled by BUILD)."""
    node = cls(items)
    node.__dict__.update({"__immutable__": True, "__deprecated_keys__": set()})
    return node


@pytest.fixture
def lightning_ckpt(tmp_path, monkeypatch) -> tuple[Path, dict]:
    """A Lightning-style ``.ckpt`` of SCN with hyper-parameters of every allowed kind."""
    attribute_dict = _foreign_class(monkeypatch, "lightning.fabric.utilities.data.AttributeDict")
    cfg_node = _foreign_class(monkeypatch, "yacs.config.CfgNode")
    torch.manual_seed(0)
    model = create_model("scn")
    reference = model.state_dict()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model(torch.rand(1, 3, 32, 32))[0].sum().backward()
    optimizer.step()
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": torch.torch_version.TorchVersion("2.4.0"),
        "state_dict": {f"model.{k}": v for k, v in reference.items()},
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val'}": {"best_model_score": torch.tensor(0.5)}},
        "optimizer_states": [optimizer.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": attribute_dict(
            lr=1e-4,
            args=argparse.Namespace(batch_size=8, milestones=[200000]),
            config=_cfg_node(cfg_node, {"MODEL": _cfg_node(cfg_node, {"NAME": "scn"})}),
        ),
    }
    path = tmp_path / "scn_lap.ckpt"
    torch.save(ckpt, path)
    return path, reference


def test_lightning_checkpoint_with_hyper_parameters_loads(lightning_ckpt):
    """Namespace, AttributeDict, CfgNode and TorchVersion load as inert data; the weights are
    the state dict without the leading ``model.``."""
    path, reference = lightning_ckpt
    ckpt = read_checkpoint(path)
    hyper = ckpt["hyper_parameters"]
    assert type(hyper).__module__ == "collections" and hyper["lr"] == 1e-4  # a plain mapping
    assert hyper["args"] == argparse.Namespace(batch_size=8, milestones=[200000])
    assert hyper["config"]["MODEL"]["NAME"] == "scn"
    assert ckpt["pytorch-lightning_version"] == "2.4.0"
    state = state_dict_of(path)
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], v) for k, v in reference.items())


def test_lightning_checkpoint_with_hyper_parameters_imports(lightning_ckpt, tmp_path):
    from spbench.weights import import_weights

    path, reference = lightning_ckpt
    out = import_weights(
        str(path), tmp_path / "main.pt", method="scn", variant="pub_lap", loss_config={}
    )
    ckpt = load_checkpoint(out)
    assert all(torch.equal(ckpt["model"][k], v) for k, v in reference.items())


def test_upstream_tar_loads(tmp_path):
    """An upstream ``.tar`` (SCN's layout: epoch, arch, DataParallel state_dict, best_EPE,
    optimizer, dataset) in both the zip and the pre-1.6 format."""
    model = create_model("scn")
    upstream = {
        "epoch": 30,
        "arch": "SpixelNet1l_bn",
        "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
        "best_EPE": 0.71,
        "optimizer": torch.optim.Adam(model.parameters()).state_dict(),
        "dataset": "BSD500",
    }
    for zipped in (True, False):
        path = tmp_path / f"zip{zipped}.tar"
        torch.save(upstream, path, _use_new_zipfile_serialization=zipped)
        assert state_dict_of(path).keys() == model.state_dict().keys()


def _step(seed: int) -> tuple[TrainStep, torch.Generator]:
    torch.manual_seed(seed)
    model = create_model("scn")
    recipe = get_method("scn").recipe

    def loss(net, batch, generator):
        return {"total": net(batch.images)[0].square().mean()}

    step = TrainStep.create(model, loss, recipe, device=torch.device("cpu"), seed=seed)
    return step, torch.Generator().manual_seed(seed)


def test_resume_file_round_trips(tmp_path):
    """spbench's resume file loads safely and restores weights, optimiser and every generator."""
    from spbench.data.loader import Batch

    step, generator = _step(0)
    images = torch.rand(2, 3, 32, 32)
    step(Batch(images, torch.zeros(2, 32, 32, dtype=torch.long), None))
    random.seed(5)
    meta = CheckpointMeta(
        "scn", "base", "main", ["main"], seed=0, weights="trained here", settings={"lr": 1e-4}
    )
    state = TrainingState(tmp_path / "main.resume.pt", meta, step, generator)
    state.save(step=1, wall_time_s=2.5)
    expected = (random.random(), float(torch.rand((), generator=generator)))

    fresh, fresh_generator = _step(1)
    restored = TrainingState(state.path, meta, fresh, fresh_generator).restore()
    assert restored == (1, 2.5)
    for key, value in step.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], value), key
    saved, loaded = step.optimizer.state_dict(), fresh.optimizer.state_dict()
    assert loaded["param_groups"] == saved["param_groups"] and saved["state"]
    for index, moments in saved["state"].items():
        assert all(torch.equal(loaded["state"][index][k], v) for k, v in moments.items())
    assert (random.random(), float(torch.rand((), generator=fresh_generator))) == expected
    other_seed = dataclasses.replace(meta, seed=1)
    other = TrainingState(state.path, other_seed, fresh, fresh_generator)
    assert other.restore() == (0, 0.0)  # another run's file is not used
    # A GPU run's file, its generators' states CUDA's, is not used by the job re-run on the
    # CPU (it once failed there with a generator-size error naming no file); another GPU is.
    on_gpu = dataclasses.replace(meta, device="cuda:1")
    TrainingState(state.path, on_gpu, step, generator).save(step=1, wall_time_s=2.5)
    assert TrainingState(state.path, meta, fresh, fresh_generator).restore() == (0, 0.0)
    elsewhere = dataclasses.replace(meta, device="cuda:0")
    assert TrainingState(state.path, elsewhere, fresh, fresh_generator).restore() == (1, 2.5)


def test_loss_log_survives_a_cut_last_line_and_names_a_damaged_one(tmp_path, caplog):
    from spbench.io import CorruptFileError
    from spbench.train import LossLog

    loss_log = LossLog(tmp_path / "train_log.jsonl")
    for step in (2, 4, 6):
        loss_log.write({"kind": "train", "step": step, "total": 1.0})
    with open(loss_log.partial, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "train", "st')  # a crash mid-write
    loss_log.keep_until(4)
    steps = [json.loads(x)["step"] for x in loss_log.partial.read_text().splitlines()]
    assert steps == [2, 4] and "dropped its last line" in caplog.text
    loss_log.partial.write_text('{"step": 2}\nnot json\n{"step": 4}\n', encoding="utf-8")
    with pytest.raises(CorruptFileError, match=r"train_log\.jsonl\.partial:2: not a loss-log"):
        loss_log.keep_until(4)
    loss_log.partial.unlink()
    loss_log.keep_until(4)  # lost since the resume point: restarts, and says so
    assert loss_log.partial.read_text() == "" and "the log restarts at step 4" in caplog.text


def test_resume_file_of_an_older_previous_stage_is_not_used(tmp_path):
    """A stage-2 resume file written before stage 1 was retrained holds weights descended from
    the old stage 1; its settings are the same, so only the inputs' sha256 can tell."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/dataset.json").write_text("{}")
    init = tmp_path / "stage1.pt"
    init.write_bytes(b"old stage 1")
    step, generator = _step(0)
    meta = CheckpointMeta("ainet", "lap", "stage2", ["stage1", "stage2"], seed=0, weights="x")
    inputs = input_identity(tmp_path / "data", init)
    TrainingState(tmp_path / "stage2.resume.pt", meta, step, generator, inputs).save(3, 1.0)
    assert (
        TrainingState(tmp_path / "stage2.resume.pt", meta, step, generator, inputs).restore()[0]
        == 3
    )
    init.write_bytes(b"new stage 1")
    newer = input_identity(tmp_path / "data", init)
    assert newer["init"] != inputs["init"] and newer["dataset"] == inputs["dataset"]
    assert TrainingState(tmp_path / "stage2.resume.pt", meta, step, generator, newer).restore() == (
        0,
        0.0,
    )


def test_spbench_checkpoint_holds_plain_types_only(tmp_path):
    """A checkpoint of :class:`CheckpointMeta` loads with ``weights_only=True`` and nothing
    allow-listed (no TorchVersion, no dataclass)."""
    meta = CheckpointMeta(
        "scn",
        "lap",
        "main",
        ["main"],
        seed=0,
        weights="trained here",
        recipe={"betas": (0.9, 0.999)},
    )
    path = tmp_path / "main.pt"
    torch.save(meta.payload(create_model("scn"), step=6, wall_time_s=1.0), path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 6 and type(ckpt["torch_version"]) is str


def _unpickling_calls(tree: ast.AST) -> list[str]:
    """Names of the calls in ``tree`` that unpickle: ``torch.load``, ``pickle.load(s)`` and
    ``numpy.load(..., allow_pickle=True)``, under any import alias."""
    unsafe = {"torch.load", "pickle.load", "pickle.loads", "numpy.load"}
    names: dict[str, str] = {}  # local name -> dotted origin
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            origin = f"{names.get(func.value.id, func.value.id)}.{func.attr}"
        elif isinstance(func, ast.Name):
            origin = names.get(func.id, func.id)
        else:
            continue
        if origin == "numpy.load":
            pickled = any(
                k.arg == "allow_pickle"
                and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in node.keywords
            )
            if not pickled:
                continue
        if origin in unsafe:
            found.append(origin)
    return found


def test_every_checkpoint_load_goes_through_the_safe_reader():
    """Unpickling (``torch.load``, ``pickle``, ``numpy.load`` with pickles), under any import
    alias, appears only in spbench/checkpoint.py, and never with weights_only=False."""
    loaders = set()
    for path in (ROOT / "spbench").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"weights_only\s*=\s*False", text), path
        if _unpickling_calls(ast.parse(text)):
            loaders.add(path.relative_to(ROOT).as_posix())
    assert loaders == {"spbench/checkpoint.py"}
    aliased = "from torch import load as fetch\nimport numpy as xp\nfetch('a')\n"
    aliased += "xp.load('b', allow_pickle=True)\nxp.load('c')\n"
    assert _unpickling_calls(ast.parse(aliased)) == ["torch.load", "numpy.load"]


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("2.4.1+cu121", False),
        ("2.5.1", False),
        ("2.6.0+cu124", True),
        ("2.6.0a0+ecf3bae", True),
        ("2.13.0+cpu", True),
        ("10.0", True),
    ],
)
def test_torch_without_the_safe_loader_is_named_not_blamed_on_the_file(version, ok):
    """torch 2.4 and 2.5 failed every read as "not a readable checkpoint ... delete it"."""
    if ok:
        require_safe_loader(version)
    else:
        with pytest.raises(UserError, match=rf"torch {re.escape(version)} .* torch >= 2\.6"):
            require_safe_loader(version)


def test_reading_under_an_old_torch_names_torch(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(1)}, path)
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.raises(UserError, match=r"torch 2\.5\.1"):
        read_checkpoint(path)
    assert path.exists()


def test_training_under_an_old_torch_stops_before_it_starts(tmp_path, monkeypatch):
    from spbench.train import train

    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.raises(UserError, match=r"torch 2\.5\.1"):
        train(tmp_path / "data", tmp_path / "ckpt.pt", method="scn", variant="base", seed=0, job={})
    assert not list(tmp_path.iterdir())
