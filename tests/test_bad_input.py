"""Bad input → the exact message the user sees; the table is mirrored in docs/bad-input.md.

Every case gives spbench one broken input (a config, a dataset archive, a damaged file) and
checks that the error the user reads names the offending key or file and says what is wrong.
Nothing is skipped silently: each case must raise. ``test_every_case_is_documented`` keeps
``docs/bad-input.md`` in step with the table below.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs/bad-input.md"
BASE_CONFIG = ROOT / ".test/config/config.yaml"


def _fake_archive_helpers():
    """tests/data/conftest.py's fake-archive builders (a conftest cannot be imported by name)."""
    spec = importlib.util.spec_from_file_location(
        "spbench_fake_archives", ROOT / "tests/data/conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


FAKE = _fake_archive_helpers()


@dataclass(frozen=True)
class Case:
    """One row of the table: ``make(tmp_path)`` returns the text the user sees."""

    id: str
    given: str
    shows: tuple[str, ...]  # fragments that must all appear in the message
    make: Callable[[Path], str]
    bug: str = ""  # a known spbench bug: the case is a strict xfail until it is fixed


# ------------------------------------------------------------------------------------- config


def check_config(tmp_path: Path, text: str) -> str:
    """Run ``spbench check-config`` on ``text`` in-process; assert exit 2 and one line."""
    from spbench.cli import main

    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return cli_error(main, ["check-config", str(path)])


def cli_error(main, argv: list[str]) -> str:
    """Run ``main(argv)``; assert it returns 2 with a one-line ``spbench ...: error:`` message."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    text = err.getvalue()
    assert status == 2, f"exit status {status}, stderr:\n{text}"
    assert "Traceback" not in text
    assert text.startswith(f"spbench {argv[0]}: error: "), text
    return text


def with_config(replace: str = "", by: str = "", append: str = "") -> Callable[[Path], str]:
    """The CI profile with one edit, checked by ``spbench check-config``."""

    def make(tmp_path: Path) -> str:
        text = BASE_CONFIG.read_text()
        if replace:
            assert replace in text, replace
            text = text.replace(replace, by)
        return check_config(tmp_path, text + append)

    return make


def binary_config(tmp_path: Path) -> str:
    """``spbench check-config`` on a file that is not text."""
    from spbench.cli import main

    path = tmp_path / "profile.yaml"
    path.write_bytes(bytes(range(128, 256)) * 4)
    return cli_error(main, ["check-config", str(path)])


# --------------------------------------------------------------------------------------- data


def prepare_with(edit: Callable[[dict[str, bytes]], None]) -> Callable[[Path], str]:
    """Prepare a fake BSDS500 archive after ``edit`` changed its files; return the error."""

    def make(tmp_path: Path) -> str:
        import hashlib

        from spbench.data.bsds500 import prepare_bsds500
        from spbench.io import CorruptFileError

        files = FAKE.build_fake_files()
        edit(files)
        manifest = {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
        archive = FAKE.pack(tmp_path / "fake.tgz", files)
        with pytest.raises(CorruptFileError) as info:
            prepare_bsds500(archive, tmp_path / "prepared", manifest=manifest, expected_pairs=None)
        assert not (tmp_path / "prepared/dataset.json").exists()
        return str(info.value)

    return make


GT = "BSDS500/data/groundTruth/train/1001.mat"
JPG = "BSDS500/data/images/train/1001.jpg"  # 9×13 in the fake layout


def mat_without_ground_truth(files: dict[str, bytes]) -> None:
    files[GT] = FAKE.mat_bytes([np.ones((9, 13), np.uint16)], variable="labels")


def undecodable_image(files: dict[str, bytes]) -> None:
    files[JPG] = files[JPG][:40]  # a JPEG header and nothing else


def size_mismatch(files: dict[str, bytes]) -> None:
    files[GT] = FAKE.mat_bytes([np.ones((13, 9), np.uint16)])


def negative_labels(files: dict[str, bytes]) -> None:
    seg = np.ones((9, 13), np.int16)
    seg[0, 0] = -1
    files[GT] = FAKE.mat_bytes([seg])


# ---------------------------------------------------------------------------------- corrupt files


def _synthetic(tmp_path: Path) -> Path:
    from spbench.data.synthetic import generate_synthetic

    root = tmp_path / "data"
    generate_synthetic(root, seed=0, n_train=1, n_val=1, n_test=1, height=32, width=48)
    return root


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def truncated_split(tmp_path: Path) -> str:
    from spbench.data.prepared import load_split
    from spbench.io import CorruptFileError

    root = _synthetic(tmp_path)
    _truncate(root / "train.npz")
    with pytest.raises(CorruptFileError) as info:
        load_split(root, "train")
    return str(info.value)


def truncated_split_unverified(tmp_path: Path) -> str:
    from spbench.data.prepared import load_split
    from spbench.io import CorruptFileError

    root = _synthetic(tmp_path)
    _truncate(root / "train.npz")
    with pytest.raises(CorruptFileError) as info:
        load_split(root, "train", verify=False)
    return str(info.value)


def truncated_checkpoint(tmp_path: Path) -> str:
    import torch

    from spbench.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
    from spbench.io import CorruptFileError

    path = tmp_path / "checkpoint.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": {"w": torch.zeros(1000)}}, path)
    _truncate(path)
    with pytest.raises(CorruptFileError) as info:
        load_checkpoint(path)
    return str(info.value)


def foreign_checkpoint(tmp_path: Path) -> str:
    import torch

    from spbench.checkpoint import load_checkpoint
    from spbench.io import CorruptFileError

    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {}}, path)  # e.g. an upstream SCN checkpoint
    with pytest.raises(CorruptFileError) as info:
        load_checkpoint(path)
    return str(info.value)


def truncated_prediction(tmp_path: Path) -> str:
    from spbench.io import CorruptFileError
    from spbench.predictions import load_predictions

    path = tmp_path / "scale1.npz"
    meta = json.dumps({"image_ids": ["a"]})
    labels = np.arange(64 * 96, dtype=np.int32).reshape(64, 96)
    np.savez_compressed(path, meta=np.array(meta), **{"noec/a": labels, "ec/a": labels})
    _truncate(path)
    with pytest.raises(CorruptFileError) as info:
        load_predictions(path)
    return str(info.value)


def corrupt_manifest(tmp_path: Path) -> str:
    from spbench.data.prepared import load_split
    from spbench.io import CorruptFileError

    root = _synthetic(tmp_path)
    _truncate(root / "dataset.json")
    with pytest.raises(CorruptFileError) as info:
        load_split(root, "train")
    return str(info.value)


def corrupt_scores(tmp_path: Path) -> str:
    """``spbench report table2`` on a score file cut short."""
    import pandas as pd

    from spbench.cli import main

    path = tmp_path / "scores.parquet"
    pd.DataFrame({"method": ["scn"] * 100, "asa": np.linspace(0, 1, 100)}).to_parquet(path)
    _truncate(path)
    argv = ["report", "table2", "--config", str(BASE_CONFIG), "--scores", str(path)]
    return cli_error(main, [*argv, "--out-dir", str(tmp_path / "report")])


# ----------------------------------------------------------------------------- untrusted pickles


class RunsCode:
    """Unpickling this runs ``touch <marker>``: what a malicious checkpoint can do on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        import shlex

        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def malicious_checkpoint(path: Path, payload: dict, *, legacy: bool = False) -> Path:
    """Write ``payload`` plus code to run on load (its marker: ``<path>.ran``) to ``path``.

    The code hides in the hyper-parameters, as in a Lightning ``.ckpt``; ``legacy`` writes the
    pre-zip format of old upstream ``.tar`` files.
    """
    import torch

    hyper = {"lr": 1e-4, "args": RunsCode(path.with_name(path.name + ".ran"))}
    torch.save(
        {**payload, "hyper_parameters": hyper}, path, _use_new_zipfile_serialization=not legacy
    )
    return path


def refused(run: Callable[[Path], list[str]], bad: Callable[[Path], Path]) -> Callable[[Path], str]:
    """Give ``bad(tmp_path)`` to the command ``run(tmp_path)``: it must stop with exit 2 and one
    line, its code must not have run, and the command must have written nothing."""

    def make(tmp_path: Path) -> str:
        from spbench.cli import main

        path = bad(tmp_path)
        before = set(tmp_path.rglob("*"))
        message = cli_error(main, run(tmp_path))
        assert not path.with_name(path.name + ".ran").exists(), "the pickle's code ran"
        assert set(tmp_path.rglob("*")) == before, "the command wrote files"
        return message

    return make


def _scn_state_dict() -> dict:
    from spbench.models import create_model

    return create_model("scn").state_dict()


def _lightning_ckpt(tmp_path: Path) -> Path:
    weights = {f"model.{k}": v for k, v in _scn_state_dict().items()}
    return malicious_checkpoint(tmp_path / "scn.ckpt", {"epoch": 3, "state_dict": weights})


def _legacy_tar(tmp_path: Path) -> Path:
    weights = {"epoch": 3, "state_dict": _scn_state_dict()}
    return malicious_checkpoint(tmp_path / "model_best.tar", weights, legacy=True)


def _import_weights(source: str) -> Callable[[Path], list[str]]:
    def argv(tmp_path: Path) -> list[str]:
        return [
            "import-weights",
            "--config",
            str(BASE_CONFIG),
            "--method",
            "scn",
            "--variant",
            "pub_base",
            "--trained-as",
            "base",
            "--source",
            str(tmp_path / source),
            "--out",
            str(tmp_path / "models/main.pt"),
        ]

    return argv


def _spbench_file(tmp_path: Path, name: str, step: int = 0) -> Path:
    """``models/<name>`` in spbench's checkpoint layout (SCN), with code in it."""
    from spbench.checkpoint import CheckpointMeta
    from spbench.models import create_model

    meta = CheckpointMeta("scn", "base", "main", ["main"], seed=0, weights="trained here")
    path = tmp_path / "models" / name
    path.parent.mkdir()
    return malicious_checkpoint(path, meta.payload(create_model("scn"), step))


def _spbench_checkpoint(tmp_path: Path) -> Path:
    """A main.pt in the results folder."""
    return _spbench_file(tmp_path, "main.pt")


def _predict_argv(tmp_path: Path) -> list[str]:
    return [
        "predict",
        "--config",
        str(BASE_CONFIG),
        "--checkpoint",
        str(tmp_path / "models/main.pt"),
        "--data",
        str(tmp_path / "data"),
        "--out-dir",
        str(tmp_path / "predictions"),
    ]


def _predict_under_old_torch(tmp_path: Path) -> str:
    """``spbench predict`` with ``torch.__version__`` reading 2.5.1, on a plain checkpoint."""
    import torch

    from spbench.cli import main

    (tmp_path / "models").mkdir()
    torch.save({"model": {}}, tmp_path / "models/main.pt")
    real, torch.__version__ = torch.__version__, "2.5.1"
    try:
        return cli_error(main, _predict_argv(tmp_path))
    finally:
        torch.__version__ = real


def _resume_file(tmp_path: Path) -> Path:
    """A resume file beside the checkpoint a training job is about to write."""
    _synthetic(tmp_path)
    return _spbench_file(tmp_path, "main.resume.pt", step=3)


def _train_argv(data: Path, out: Path, method: str = "scn") -> list[str]:
    """``spbench train`` of the CI profile's base variant on ``data``, writing ``out``."""
    return [
        "train",
        "--config",
        str(BASE_CONFIG),
        "--data",
        str(data),
        "--method",
        method,
        "--variant",
        "base",
        "--seed",
        "0",
        "--out",
        str(out),
    ]


# ------------------------------------------------------------------------------------ command line


def cli(argv_of: Callable[[Path], list[str]]) -> Callable[[Path], str]:
    def make(tmp_path: Path) -> str:
        from spbench.cli import main

        return cli_error(main, argv_of(tmp_path))

    return make


def _plan_with_other_csv(tmp_path: Path) -> list[str]:
    times = tmp_path / "times.csv"
    times.write_text("method,ms\nscn,1\n")
    return ["plan", "--config", str(BASE_CONFIG), "--times", str(times)]


def _adopt_other_steps(tmp_path: Path) -> list[str]:
    """``spbench adopt-checkpoint`` of a checkpoint trained for 10 more steps than the profile."""
    from spbench.checkpoint import CheckpointMeta, save_checkpoint
    from spbench.config import load_config
    from spbench.jobs import train_job
    from spbench.models import create_model

    job = train_job(load_config(BASE_CONFIG), "scn", "lap")
    job["steps"] += 10
    meta = CheckpointMeta("scn", "lap", "main", ["main"], seed=0, weights="trained", settings=job)
    source = tmp_path / "scn_lap_seed0.pt"
    save_checkpoint(source, meta.payload(create_model("scn"), job["steps"]))
    run = ["--method", "scn", "--variant", "lap", "--seed", "0", "--stage", "main"]
    out = ["--out", str(tmp_path / "main.pt")]
    return ["adopt-checkpoint", "--config", str(BASE_CONFIG), "--source", str(source), *run, *out]


def _score_truncated_prediction(tmp_path: Path) -> list[str]:
    root = _synthetic(tmp_path)
    bad = tmp_path / "scale1.npz"
    bad.write_bytes(b"PK\x03\x04 not a whole zip")
    return [
        "score",
        "--settings",
        "{}",
        "--data",
        str(root),
        "--predictions",
        str(bad),
        "--out",
        str(tmp_path / "s.parquet"),
    ]


CASES = [
    Case(
        "config-unknown-key",
        "a misspelt top-level key (`trian:`)",
        ("profile.yaml", "invalid configuration", "'trian' was unexpected"),
        with_config(append="trian: {steps: 3}\n"),
    ),
    Case(
        "config-unknown-nested-key",
        "a misspelt key inside a section (`train.step`)",
        ("config.train", "'step' was unexpected"),
        with_config("  steps: 6", "  step: 6"),
    ),
    Case(
        "config-wrong-type",
        "a value of the wrong type (`train.steps: many`)",
        ("config.train.steps", "'many' is not of type 'integer'"),
        with_config("steps: 6", "steps: many"),
    ),
    Case(
        "config-fast-mode",
        "an autocast dtype spbench does not offer (`train.fast.amp: fp16`)",
        ("config.train.fast.amp", "'fp16' is not one of ['off', False, 'bf16']"),
        with_config("steps: 6", "steps: 6\n  fast: {amp: fp16}"),
    ),
    Case(
        "config-budget-zero",
        "a training budget of 0 (`train.budget: 0`)",
        ("config.train.budget", "0 is less than or equal to the minimum of 0"),
        with_config("steps: 6", "steps: 6\n  budget: 0"),
    ),
    Case(
        "config-empty-methods",
        "an empty method list (`methods: []`)",
        # jsonschema's wording: "[] should be non-empty" (4.21+), "[] is too short" (older).
        ("config.methods: []",),
        with_config("methods: [scn]", "methods: []"),
    ),
    Case(
        "config-scale-zero",
        "a prediction scale of 0",
        ("config.predict.scales[0]", "0 is less than or equal to the minimum of 0"),
        with_config("scales: [0.4,", "scales: [0,"),
    ),
    Case(
        "config-scale-too-large",
        "a prediction scale of 5",
        ("config.predict.scales[0]", "5 is greater than the maximum of 4"),
        with_config("scales: [0.4,", "scales: [5,"),
    ),
    Case(
        "config-quoted-number",
        "a number inside a mapping given with `snakemake --config`, which arrives as a string "
        "(`--config 'predict={scales: [0.4]}'`)",
        ("config.predict.scales[0]", "'0.4' is not of type 'number'", "arrives as a string"),
        with_config("scales: [0.4,", "scales: ['0.4',"),
    ),
    Case(
        "config-unknown-method",
        "a method that is not registered (`methods: [snc]`)",
        ("config.methods", "unknown method(s) ['snc']", "registered methods are", "'scn'"),
        with_config("methods: [scn]", "methods: [snc]"),
    ),
    Case(
        "config-float-integer",
        "a whole number written as a float where a count is expected (`n_train: 4.0`)",
        ("config.dataset.synthetic.n_train", "4.0 is not of type 'integer'"),
        with_config("n_train: 4,", "n_train: 4.0,"),
    ),
    Case(
        "config-negative-seed",
        "a negative dataset seed (`dataset.synthetic.seed: -3`)",
        ("config.dataset.synthetic.seed", "-3 is less than the minimum of 0"),
        with_config("{seed: 1,", "{seed: -3,"),
    ),
    Case(
        "config-run-name-dots",
        "a run name made of dots only (`run_name: ..`)",
        ("config.run_name", "'..' does not match"),
        with_config("run_name: test", 'run_name: ".."'),
    ),
    Case(
        "config-colliding-scales",
        "two prediction scales equal to 4 decimals (`scales: [0.4, 0.40001, ...]`)",
        ("config.predict.scales[1]", "0.40001 and 0.4 are the same scale", "scale0.4.npz"),
        with_config("scales: [0.4,", "scales: [0.4, 0.40001,"),
    ),
    Case(
        "config-off-grid-scale",
        "a prediction scale whose network input is off the 16-px grid (`scales: [0.35, ...]`)",
        ("config.predict.scales[0]: scale 0.35 gives a", "not a multiple of 16 px"),
        with_config("scales: [0.4,", "scales: [0.35, 0.4,"),
    ),
    Case(
        "config-bad-yaml",
        "a file that is not YAML (a tab-indented or unclosed mapping)",
        ("profile.yaml is not valid YAML",),
        with_config(append="train: {steps: 3\n"),
    ),
    Case(
        "config-not-a-mapping",
        "a YAML file that holds a list, not keys",
        ("must hold a mapping of configuration keys",),
        lambda tmp_path: check_config(tmp_path, "- scn\n- lap\n"),
    ),
    Case(
        "config-duplicate-key",
        "a key given twice in one mapping (two `train:` sections)",
        ("profile.yaml: key 'train' is given twice in one mapping (lines ", "merge the two"),
        with_config(append="train: {steps: 3}\n"),
    ),
    Case(
        "config-binary-file",
        "a file that is not text",
        ("profile.yaml is not a text (UTF-8) file",),
        binary_config,
    ),
    Case(
        "config-missing-file",
        "a config path that does not exist",
        ("configuration file", "nope.yaml not found"),
        cli(lambda tmp_path: ["check-config", str(tmp_path / "nope.yaml")]),
    ),
    Case(
        "data-mat-without-groundtruth",
        "an annotation `.mat` without a `groundTruth` variable",
        ("groundTruth/train/1001.mat", "no variable `groundTruth`", "['labels']"),
        prepare_with(mat_without_ground_truth),
    ),
    Case(
        "data-undecodable-image",
        "an image that does not decode (a truncated JPEG)",
        ("images/train/1001.jpg", "not a decodable JPEG image"),
        prepare_with(undecodable_image),
    ),
    Case(
        "data-size-mismatch",
        "an annotation whose size differs from its image's",
        ("groundTruth/train/1001.mat", "annotation 0 is 13×9 (H×W)", "1001.jpg is 9×13"),
        prepare_with(size_mismatch),
    ),
    Case(
        "data-negative-labels",
        "a label map with negative labels",
        ("groundTruth/train/1001.mat", "annotation 0 has negative labels (min -1)"),
        prepare_with(negative_labels),
    ),
    Case(
        "file-truncated-split",
        "a truncated prepared split (`train.npz`)",
        ("train.npz does not match the sha256 recorded in", "delete the folder and prepare"),
        truncated_split,
    ),
    Case(
        "file-truncated-split-unverified",
        "a truncated prepared split read with `verify=False`",
        ("train.npz cannot be read", "re-prepare the dataset"),
        truncated_split_unverified,
    ),
    Case(
        "file-truncated-checkpoint",
        "a truncated checkpoint (`load_checkpoint`)",
        ("checkpoint.pt is not a readable checkpoint", "re-run its training job"),
        truncated_checkpoint,
    ),
    Case(
        "file-foreign-checkpoint",
        "a `.pt` file that is not a spbench checkpoint",
        ("checkpoint.pt is not a spbench-checkpoint file",),
        foreign_checkpoint,
    ),
    Case(
        "file-truncated-prediction",
        "a truncated prediction file (`spbench.predictions.load_predictions`)",
        ("scale1.npz cannot be read", "re-run its prediction job"),
        truncated_prediction,
    ),
    Case(
        "file-corrupt-scores",
        "a damaged score file given to `spbench report table2 --scores`",
        (
            "spbench report: error:",
            "scores.parquet is not a readable score file",
            "delete it and re-run its scoring job",
        ),
        corrupt_scores,
    ),
    Case(
        "file-corrupt-manifest",
        "a corrupt JSON manifest (`dataset.json` cut in half)",
        ("dataset.json is not valid JSON", "re-run the step that makes it"),
        corrupt_manifest,
    ),
    Case(
        "unsafe-published-weights",
        "`spbench import-weights` on a Lightning `.ckpt` whose hyper-parameters run code on load",
        (
            "spbench import-weights: error:",
            "scn.ckpt was not loaded",
            "(posix.system)",
            "ran none of it",
            "re-save its state dict alone",
        ),
        refused(_import_weights("scn.ckpt"), _lightning_ckpt),
    ),
    Case(
        "unsafe-published-weights-legacy",
        "the same in an upstream `.tar` of the pre-zip format (PyTorch < 1.6)",
        ("spbench import-weights: error:", "model_best.tar was not loaded", "(posix.system)"),
        refused(_import_weights("model_best.tar"), _legacy_tar),
    ),
    Case(
        "unsafe-checkpoint",
        "`spbench predict` on a `main.pt` that runs code on load",
        ("spbench predict: error:", "main.pt was not loaded", "(posix.system)"),
        refused(_predict_argv, _spbench_checkpoint),
    ),
    Case(
        "old-torch",
        "`spbench predict` (or `train`) under torch 2.5, too old for spbench's safe loader",
        ("spbench predict: error:", "torch 2.5.1 cannot load checkpoints", "torch >= 2.6"),
        _predict_under_old_torch,
    ),
    Case(
        "unsafe-resume-file",
        "`spbench train` beside a `main.resume.pt` that runs code on load",
        ("spbench train: error:", "main.resume.pt was not loaded", "(posix.system)"),
        refused(
            lambda tmp_path: _train_argv(tmp_path / "data", tmp_path / "models/main.pt"),
            _resume_file,
        ),
    ),
    Case(
        "cli-no-dataset",
        "`spbench train --data` on a folder that was never prepared",
        ("spbench train: error:", "dataset.json not found", "Prepare it first"),
        cli(lambda tmp_path: _train_argv(tmp_path, tmp_path / "c.pt")),
    ),
    Case(
        "cli-unknown-method",
        "`spbench train --method` with an unregistered name",
        ("spbench train: error:", "unknown method 'snc'", "registered methods:"),
        cli(lambda tmp_path: _train_argv(_synthetic(tmp_path), tmp_path / "c.pt", "snc")),
    ),
    Case(
        "cli-bad-step-times",
        "`spbench plan --times` on a CSV that is not a step-time table",
        ("spbench plan: error:", "times.csv: not a step-time table (columns kind, method"),
        cli(_plan_with_other_csv),
    ),
    Case(
        "cli-missing-step-times",
        "`spbench plan --times` on a path that does not exist",
        ("spbench plan: error:", "step-time table", "typo.csv not found"),
        cli(lambda tmp_path: ["plan", "--config", str(BASE_CONFIG), "--times", "typo.csv"]),
    ),
    Case(
        "cli-bad-scale",
        "`spbench predict --scales` outside (0, 4]",
        ("spbench predict: error:", "--scales[0]: 0.0 is less than or equal to the minimum of 0"),
        cli(lambda tmp_path: [*_predict_argv(tmp_path), "--scales", "0", "1"]),
    ),
    Case(
        "cli-adopt-mismatch",
        "`spbench adopt-checkpoint` on a checkpoint trained with other job settings than the run's",
        (
            "spbench adopt-checkpoint: error:",
            "scn_lap_seed0.pt: trained with settings.steps = ",
            "the profile says",
            "profile.yaml of its GPU session",
        ),
        cli(_adopt_other_steps),
    ),
    Case(
        "cli-corrupt-prediction",
        "`spbench score` on a damaged prediction file",
        ("spbench score: error:", "scale1.npz cannot be read", "re-run its prediction job"),
        cli(_score_truncated_prediction),
    ),
]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else []
        )
        for c in CASES
    ],
)
def test_bad_input_gives_a_clear_message(case: Case, tmp_path: Path):
    """The input of ``case`` fails with a message holding every expected fragment."""
    message = case.make(tmp_path)
    missing = [fragment for fragment in case.shows if fragment not in message]
    assert not missing, f"{case.id}: {missing} not in the message:\n{message}"


def test_case_ids_are_unique():
    """Each row of the table has its own id (the doc refers to rows by id)."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


def test_every_case_is_documented():
    """docs/bad-input.md has one table row per case id, and no row for a case that is gone."""
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.MULTILINE))
    ids = {c.id for c in CASES}
    assert not ids - documented, f"cases missing from {DOC.name}: {sorted(ids - documented)}"
    assert not documented - ids, f"rows in {DOC.name} without a test: {sorted(documented - ids)}"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check-config", "{missing}"], "not found"),
        (["methods", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["check-config", "{folder}"], "Is a directory"),
        (
            ["data", "synthetic", "--settings", "{{bad", "--out", "{folder}/d"],
            "--settings is not valid JSON",
        ),
    ],
    ids=["missing-config", "unknown-flag", "folder-for-config", "bad-settings-json"],
)
def test_cli_user_errors_exit_2_with_one_line(argv, fragment, tmp_path):
    """Run as a real process, a user error exits with status 2 and prints no traceback."""
    argv = [a.format(missing=tmp_path / "nope.yaml", folder=tmp_path) for a in argv]
    result = subprocess.run(
        [sys.executable, "-m", "spbench.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr
