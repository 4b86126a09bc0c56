"""User errors reached from the command line: one clear line, exit status 2, no traceback.

Complements ``tests/test_bad_input.py`` (whose cases are documented in docs/bad-input.md) with
the checks behind them: options the schema bounds, repeated inputs, overlays for ``spbench
plan``, the plug-in hints, and the help text.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from spbench.config import (
    ConfigError,
    check_yaml_files,
    import_method_modules,
    load_config,
    read_yaml,
    validate_config,
)
from spbench.errors import UserError
from spbench.steptimes import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / ".test/config/config.yaml"
MINIMAL = {"run_name": "t", "dataset": {"name": "synthetic"}, "methods": ["scn"]}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``spbench argv`` in-process; return (status, stdout, stderr)."""
    from spbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's own errors and --help
            status = exit_.code if isinstance(exit_.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def user_error(argv: list[str]) -> str:
    """Assert ``spbench argv`` fails as a user error (exit 2, ``spbench <cmd>: error:``)."""
    status, _, err = run_cli(argv)
    assert status == 2, f"exit status {status}, stderr:\n{err}"
    assert "Traceback" not in err
    assert err.startswith(f"spbench {argv[0]}: error: "), err
    return err


# ------------------------------------------------------------------------------ the schema


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seeds": [0.0]}, "config.seeds[0]: 0.0 is not of type 'integer'"),
        ({"train": {"steps": 6.0}}, "config.train.steps: 6.0 is not of type 'integer'"),
        ({"seeds": [True]}, "config.seeds[0]: True is not of type 'integer'"),
        ({"run_name": "."}, "config.run_name: '.' does not match"),
        ({"run_name": "..."}, "config.run_name: '...' does not match"),
        ({"dataset": {"name": "synthetic", "synthetic": {"seed": -1}}}, "minimum of 0"),
        ({"predict": {"scales": [1, 1.00004]}}, "config.predict.scales[1]: 1.00004 and 1"),
    ],
)
def test_schema_refuses_what_the_workflow_cannot_use(change, message):
    with pytest.raises(ConfigError) as info:
        validate_config({**MINIMAL, **change})
    assert message in str(info.value)


@pytest.mark.parametrize("name", ["a.b", "run-1", "..x", "v1.0", "_"])
def test_run_names_with_dots_and_more_are_fine(name):
    assert validate_config({**MINIMAL, "run_name": name})["run_name"] == name


def test_distinct_scales_and_whole_numbers_still_validate():
    config = validate_config({**MINIMAL, "seeds": [0, 3], "predict": {"scales": [0.5, 0.6]}})
    assert config["seeds"] == [0, 3]


def test_data_synthetic_refuses_a_negative_seed_and_float_counts(tmp_path):
    assert "config.dataset.synthetic.seed: -1 is less than the minimum of 0" in user_error(
        ["data", "synthetic", "--seed", "-1", "--out", str(tmp_path / "d")]
    )
    settings = json.dumps({"n_train": 4.0})
    message = user_error(["data", "synthetic", "--settings", settings, "--out", str(tmp_path)])
    assert "config.dataset.synthetic.n_train: 4.0 is not of type 'integer'" in message
    assert not (tmp_path / "dataset.json").exists()


@pytest.mark.parametrize(
    "scales, message",
    [
        (["-1"], "--scales[0]: -1.0 is less than or equal to the minimum of 0"),
        (["100"], "--scales[0]: 100.0 is greater than the maximum of 4"),
        (["1", "1"], "--scales: [1.0, 1.0] has non-unique elements"),
        (["0.5", "0.50001"], "--scales[1]: 0.50001 and 0.5 are the same scale"),
    ],
)
def test_predict_scales_are_checked_against_the_schema(tmp_path, scales, message):
    argv = ["predict", "--settings", "{}", "--checkpoint", str(tmp_path / "c.pt")]
    argv += ["--data", str(tmp_path), "--out-dir", str(tmp_path / "p"), "--scales", *scales]
    assert message in user_error(argv)


# ------------------------------------------------------------------------- the YAML reader


def test_duplicate_keys_are_refused_at_any_depth(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("run_name: t\ntrain:\n  steps: 3\n  lr: 0.1\n  steps: 4\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: key 'steps' is given twice .*lines 3 and 5"):
        read_yaml(path)
    with pytest.raises(ConfigError, match="given twice"):
        check_yaml_files([PROFILE, path])
    check_yaml_files([PROFILE])  # a clean file passes


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("base: &b {use_lap: false}\nlap:\n  <<: *b\n  use_lap: true\n")
    assert read_yaml(path)["lap"] == {"use_lap": True}


def test_binary_profile_names_the_file(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(ConfigError, match=r"bin\.yaml is not a text \(UTF-8\) file"):
        load_config(path)


# ----------------------------------------------------------------------- command-line errors


def test_settings_or_config_is_required():
    message = user_error(["score", "--data", "d", "--predictions", "p.npz", "--out", "s.pq"])
    assert "give --config FILE" in message


def test_prepare_bsds500_needs_an_archive(tmp_path):
    message = user_error(["data", "prepare-bsds500", "--out", str(tmp_path / "p")])
    assert "--archive is required" in message


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prediction", "no-equals-sign"], "--prediction expects LABEL=PATH"),
        (["--prediction", "A=a.npz", "--n-images", "0"], "--n-images must be at least 1"),
    ],
)
def test_figures_options_are_checked(tmp_path, extra, message):
    argv = ["report", "figures", "--data", str(tmp_path), "--out-dir", str(tmp_path), *extra]
    assert message in user_error(argv)


def test_plan_needs_a_gpu():
    assert "--gpus must be at least 1" in user_error(
        ["plan", "--config", str(PROFILE), "--gpus", "0"]
    )


def test_runtime_is_refused_with_config(tmp_path):
    argv = ["predict", "--config", str(PROFILE), "--runtime", "{}", "--checkpoint", "c.pt"]
    message = user_error([*argv, "--data", str(tmp_path), "--out-dir", str(tmp_path)])
    assert "--runtime goes with --settings only" in message


def test_session_plan_refuses_a_missing_benchmark_file(tmp_path):
    argv = ["session", "plan", "--profile", str(PROFILE), "--bench", str(tmp_path / "nope.csv")]
    message = user_error([*argv, "--out", str(tmp_path / "p.yaml")])
    assert "--bench: no such file" in message and "nope.csv" in message
    assert not (tmp_path / "p.yaml").exists()


def test_help_is_plain_text_and_examples_give_data():
    from spbench import cli

    status, out, _ = run_cli(["--help"])
    assert status == 0 and "``" not in out and "The spbench command line" in out
    for command in ("train", "predict", "score"):
        example = cli.__doc__.split(f"spbench {command} ")[1].split("\n    spbench")[0]
        assert "--data" in example, example
    _, plan_help, _ = run_cli(["plan", "--help"])
    assert "replace the default" in " ".join(plan_help.split())


# -------------------------------------------------------------------------------- plug-ins


def test_a_missing_dependency_of_a_module_is_named(tmp_path, monkeypatch):
    (tmp_path / "mymods").mkdir()
    (tmp_path / "mymods/__init__.py").write_text("")
    (tmp_path / "mymods/broken.py").write_text("import nonexistent_pkg_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as info:
        import_method_modules(["mymods.broken"])
    message = str(info.value)
    assert "the module imports 'nonexistent_pkg_xyz', which is not installed" in message
    assert "PYTHONPATH" not in message
    with pytest.raises(ConfigError, match="put its folder on PYTHONPATH"):
        import_method_modules(["mymods.absent"])
    for name in [m for m in sys.modules if m.startswith("mymods")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("name", ["MyNet", "my-net", "my.net", ""])
def test_register_method_refuses_names_a_profile_cannot_list(name):
    from spbench.models import Recipe, list_methods, register_method

    with pytest.raises(ConfigError, match=r"cannot be listed in config\.methods"):
        register_method(
            name, recipe=Recipe(lr=1e-3, weight_decay=0.0, batch_size=2, crop=32, val_crop=32)
        )
    assert name not in list_methods()


TINY = '''
from torch import nn

from spbench.models import Recipe, register_method


@register_method(
    "tinyplan",
    recipe=Recipe(lr=1e-3, weight_decay=0.0, batch_size=2, crop=64, val_crop=64),
)
def tinyplan(**kwargs):
    """A one-layer net."""
    return nn.Conv2d(3, 9, 1)
'''


def test_plan_takes_overlays_and_bench_suggestions_import_plugins(tmp_path, monkeypatch):
    (tmp_path / "tinyplan_mod.py").write_text(textwrap.dedent(TINY))
    monkeypatch.syspath_prepend(str(tmp_path))
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("method_modules: [tinyplan_mod]\nmethods: [tinyplan]\n")
    empty = tmp_path / "times.csv"
    empty.write_text(",".join(COLUMNS) + "\n")  # no figures: every train job is unknown
    try:
        status, out, err = run_cli(
            ["plan", "--config", str(PROFILE), str(overlay), "--times", str(empty)]
        )
    finally:
        from spbench.models.registry import unregister_method

        unregister_method("tinyplan")
        monkeypatch.delitem(sys.modules, "tinyplan_mod", raising=False)
    assert status == 0, err
    assert "spbench bench train --module tinyplan_mod --methods tinyplan" in out
    assert "--module tinyplan_mod --methods cds" not in out  # built-ins need no module


# ------------------------------------------------------------------- repeated or bad inputs


def _predictions(path: Path, root: Path) -> Path:
    """A prediction file of every test image of ``root`` at scale 1 (a grid)."""
    from spbench.data.prepared import load_split

    split = load_split(root, "test")
    meta = {
        "method": "grid",
        "variant": "base",
        "seed": 0,
        "loss_config": {
            "use_lap": False,
            "use_msd": False,
            "use_wr": False,
            "lambda_lap": 0.0,
            "msd_mode": "per_image",
        },
        "weights": "none",
        "train_steps": 0,
        "dataset": "synthetic",
        "split": "test",
        "scale": 1.0,
        "n_nominal": 24,
        "image_ids": [s.image_id for s in split.samples],
    }
    arrays = {}
    for s in split.samples:
        h, w = s.image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        labels = ((yy // 8) * 100 + xx // 8).astype(np.int32)
        arrays[f"noec/{s.image_id}"] = arrays[f"ec/{s.image_id}"] = labels
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


@pytest.fixture(scope="module")
def synthetic(synthetic_dataset) -> Path:
    return synthetic_dataset(n_train=1, n_val=1, n_test=2, height=32, width=48)


def test_score_refuses_the_same_predictions_twice(tmp_path, synthetic):
    from spbench.score import score_predictions

    path = _predictions(tmp_path / "scale1.npz", synthetic)
    settings = {"gt_cap50": True, "max_annotations": None}
    frame = score_predictions([path], synthetic, tmp_path / "s.parquet", settings=settings)
    assert not frame.duplicated(["scale", "image_id", "annotation", "ec"]).any()
    copy = tmp_path / "copy.npz"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(UserError, match=r"copy\.npz: image .* of grid/base/0 at scale 1 is also"):
        score_predictions([path, copy], synthetic, tmp_path / "t.parquet", settings=settings)
    assert not (tmp_path / "t.parquet").exists()
    argv = ["score", "--settings", json.dumps(settings), "--data", str(synthetic)]
    message = user_error([*argv, "--predictions", str(path), str(path), "--out", str(tmp_path)])
    assert "give each prediction file once" in message


def test_a_manifest_holding_a_list_is_a_corrupt_file(tmp_path):
    from spbench.data.prepared import read_manifest
    from spbench.io import CorruptFileError

    (tmp_path / "dataset.json").write_text("[1, 2]")
    with pytest.raises(CorruptFileError, match=r"dataset\.json holds a JSON list"):
        read_manifest(tmp_path)


def test_crop_larger_than_the_images_is_a_user_error(synthetic):
    from spbench.data.loader import PairBank
    from spbench.data.prepared import load_split

    with pytest.raises(UserError, match=r"train\.crop / train\.val_crop"):
        PairBank([load_split(synthetic, "train")], "cpu", min_size=1000)


def test_duplicate_score_rows_are_a_user_error(tmp_path):
    import pandas as pd

    from spbench.report.aggregate import REQUIRED_COLUMNS, load_scores

    row = {c: 0 for c in REQUIRED_COLUMNS} | {"method": "scn", "variant": "base", "ec": True}
    path = tmp_path / "s.parquet"
    pd.DataFrame([row]).to_parquet(path)
    with pytest.raises(UserError, match="passed twice"):
        load_scores([path, path])


def test_unknown_image_id_in_figures_is_a_user_error(tmp_path, synthetic):
    path = _predictions(tmp_path / "scale1.npz", synthetic)
    argv = ["report", "figures", "--prediction", f"A={path}", "--data", str(synthetic)]
    message = user_error([*argv, "--out-dir", str(tmp_path), "--images", "nope"])
    assert "image id(s) ['nope'] are not in every prediction file" in message


def test_config_error_lists_yaml_key_paths_for_overlays(tmp_path):
    """An overlay with a repeated key is named, not silently half-read."""
    overlay = tmp_path / "mine.yaml"
    overlay.write_text(yaml.safe_dump({"seeds": [0]}) + "seeds: [1]\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: key 'seeds' is given twice"):
        load_config(PROFILE, overlay)


def test_a_scale_off_the_grid_is_refused_before_training(tmp_path):
    """predict.scales: [0.35] validated and stopped the prediction job, after the training; the
    profile check names it now, as --scales does."""
    overlay = tmp_path / "scales.yaml"
    overlay.write_text("predict:\n  scales: [1.0, 0.35]\n", encoding="utf-8")
    message = user_error(["check-config", "config/smoke.yaml", str(overlay)])
    assert "config.predict.scales[1]: scale 0.35 gives a 56×84 network input" in message


def test_an_overlay_given_alone_gets_a_hint():
    """config/full-protocol.yaml alone said only "'run_name' is a required property"."""
    message = user_error(["check-config", "config/full-protocol.yaml"])
    assert "an overlay such as config/full-protocol.yaml goes after a profile" in message
    assert "overlay" not in user_error(["check-config", "config/smoke.yaml", "/nope.yaml"])
