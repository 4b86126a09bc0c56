"""The configuration schema: defaults, and bad configs rejected with the key path named."""

import os
import sys
from pathlib import Path

import pytest
import yaml

from spbench.config import (
    ConfigError,
    experiment_runs,
    experiment_variants,
    load_config,
    merge_overlay,
    validate_config,
    variant_switches,
)

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"run_name": "t", "dataset": {"name": "synthetic"}, "methods": ["scn"]}


@pytest.mark.parametrize(
    "profile",
    [
        "config/config.yaml",
        "config/smoke.yaml",
        "config/gpu-short.yaml",
        "config/cpu-short.yaml",
        ".test/config/config.yaml",
    ],
)
def test_shipped_profiles_are_valid(profile):
    config = load_config(ROOT / profile)
    assert config["methods"]
    assert set(config["variants"]) >= {"base", "lap"}


def test_defaults_are_filled_without_sharing_objects():
    a = validate_config(MINIMAL)
    b = validate_config(MINIMAL)
    assert a["predict"]["scales"] == [
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        1.0,
        1.1,
        1.2,
        1.3,
        1.4,
        1.5,
    ]
    assert a["losses"]["lambda_lap"] == 360.0
    assert a["dataset"]["root"] == "data/synthetic/prepared"
    a["predict"]["scales"].append(2.0)
    assert 2.0 not in b["predict"]["scales"]
    assert 2.0 not in validate_config(MINIMAL)["predict"]["scales"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"methods": []}, "config.methods"),
        ({"trian": {}}, "'trian' was unexpected"),
        ({"train": {"steps": "10"}}, "config.train.steps"),
        ({"train": {"stpes": 10}}, "config.train"),
        ({"train": {"budget": 0}}, "config.train.budget"),
        ({"predict": {"scales": [0.5, 5]}}, "config.predict.scales[1]"),
        ({"predict": {"scales": [0]}}, "config.predict.scales[0]"),
        ({"seeds": [-1]}, "config.seeds[0]"),
        ({"dataset": {"name": "imagenet"}}, "config.dataset.name"),
        ({"losses": {"msd_mode": "all_pairs"}}, "config.losses.msd_mode"),
        ({"variants": {"lap": {"use_lap": "yes"}}}, "config.variants.lap.use_lap"),
        ({"methods": ["nosuchnet"]}, "registered methods are"),
        # Keys that contradict others (the schema cannot see them).
        ({"variants": {"abl_lap": {"use_lap": True}}}, "config.variants.abl_lap: names starting"),
        ({"variants": {"lap_l1": {"use_lap": True}}}, "config.variants.lap_l1: names starting"),
        ({"report": {"auc_range": [1200, 384]}}, "config.report.auc_range: [1200, 384]"),
        ({"train": {"per_method": {"scnn": {"main": {"steps": 5}}}}}, "per_method.scnn: unknown"),
        (
            {"train": {"per_method": {"scn": {"stage1": {"steps": 5}}}}},
            "config.train.per_method.scn.stage1: scn has no stage 'stage1'; its stages are",
        ),
    ],
)
def test_bad_config_is_rejected_with_its_key_path(change, message):
    with pytest.raises(ConfigError) as err:
        validate_config({**MINIMAL, **change})
    assert message in str(err.value)


def test_bad_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("run_name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_config(path)


def test_overlays_merge_as_snakemake_configfiles_do(tmp_path):
    """check-config took one file, so a profile and the overlay given after it to Snakemake
    (README: Adding a base method) could not be checked together."""
    from snakemake.utils import update_config

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("seeds: [3]\ntrain: {steps: 7}\npredict: {scales: [1.0]}\n")
    base = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    expected = dict(base)
    update_config(expected, yaml.safe_load(overlay.read_text()))
    assert merge_overlay(base, yaml.safe_load(overlay.read_text())) == expected
    for edge in ({"a": {}}, {"a": {"b": 1}}, {"c": {}}):
        expected = {"a": [1]}
        update_config(expected, edge)
        assert merge_overlay({"a": [1]}, edge) == expected, edge
    merged = load_config(ROOT / ".test/config/config.yaml", overlay)
    assert merged["seeds"] == [3] and merged["train"]["steps"] == 7
    assert merged["train"]["lr"] == load_config(ROOT / ".test/config/config.yaml")["train"]["lr"]
    overlay.write_text("train: {steps: -1}\n")
    with pytest.raises(ConfigError, match=r"(?s)config\.yaml \+ .*overlay\.yaml: .*train\.steps"):
        load_config(ROOT / ".test/config/config.yaml", overlay)


def test_variant_lambda_overrides_global():
    config = validate_config({**MINIMAL, "variants": {"l90": {"use_lap": True, "lambda_lap": 90}}})
    assert variant_switches(config, "l90")["lambda_lap"] == 90
    with pytest.raises(ConfigError, match="no variant"):
        variant_switches(config, "lap")


def test_experiments_share_runs_and_derive_variants():
    config = validate_config(
        {
            **MINIMAL,
            "seeds": [0, 1],
            "ablation": {"enabled": True, "method": "scn"},
            "sweep": {"enabled": True, "method": "scn", "lambdas": [0, 90, 360]},
        }
    )
    names = experiment_variants(config)
    assert names["table2"] == ["base", "lap"]
    # The factorial reuses "base" (all off) and "lap" (all on at the default λ).
    assert len(names["table3"]) == 8 == len(set(names["table3"]))
    assert names["table3"][0] == "base" and names["table3"][-1] == "lap"
    assert "abl_lap" in names["table3"] and "abl_msd_wr" in names["table3"]
    # λ = 0 turns LAP off: the factorial's MSD + WR row, not a second run of it.
    assert names["sweep"] == ["abl_msd_wr", "lap_l90", "lap"]
    runs = experiment_runs(config)
    assert ("slic", "base", 0) in runs["table2"] and ("slic", "base", 1) not in runs["table2"]
    assert len(runs["table3"]) == 16 + 1 and len(runs["sweep"]) == 6 + 1  # + the SLIC row
    unique = {r for rs in runs.values() for r in rs}
    assert len(unique) == 2 * (2 + 6 + 1) + 1  # shared runs are trained once
    assert variant_switches(config, "abl_lap")["use_msd"] is False


def test_sweep_lambda_zero_without_ablation_is_lap_off():
    config = validate_config(
        {**MINIMAL, "sweep": {"enabled": True, "method": "scn", "lambdas": [0, 90]}}
    )
    assert experiment_variants(config)["sweep"] == ["abl_msd_wr", "lap_l90"]
    off = variant_switches(config, "abl_msd_wr")
    assert (off["use_lap"], off["use_msd"], off["use_wr"]) == (False, True, True)


def test_run_names_do_not_depend_on_which_experiments_are_on():
    """Enabling Table 3 beside the sweep (or the sweep beside it) renames no run: a renamed run
    would be trained again."""
    sweep = {"enabled": True, "method": "scn", "lambdas": [0, 90, 360, 1440]}
    ablation = {"enabled": True, "method": "scn"}
    alone = experiment_variants(validate_config({**MINIMAL, "sweep": sweep}))
    both = experiment_variants(validate_config({**MINIMAL, "sweep": sweep, "ablation": ablation}))
    table3 = experiment_variants(validate_config({**MINIMAL, "ablation": ablation}))
    assert alone["sweep"] == both["sweep"] == ["abl_msd_wr", "lap_l90", "lap", "lap_l1440"]
    assert table3["table3"] == both["table3"]


@pytest.mark.parametrize(
    ("lam", "name"),
    [(0.5, "lap_l0p5"), (1e6, "lap_l1000000"), (2.5e-5, "lap_l0p000025"), (5760.0, "lap_l5760")],
)
def test_sweep_run_names_never_use_an_exponent(lam, name):
    """``{lam:g}`` once named λ = 1e6 ``lap_l1e+06``, which no variant wildcard matches."""
    config = validate_config(
        {**MINIMAL, "sweep": {"enabled": True, "method": "scn", "lambdas": [0, lam]}}
    )
    assert experiment_variants(config)["sweep"][1] == name


def test_a_reference_also_in_methods_is_one_run():
    """``methods: [scn, slic]`` with the default ``references: [slic]`` once listed SLIC's score
    file twice, which the report refused only after every job had run."""
    config = validate_config({**MINIMAL, "methods": ["scn", "slic"]})
    runs = experiment_runs(config)["table2"]
    assert runs.count(("slic", "base", 0)) == 1 and len(runs) == len(set(runs))


def test_unknown_ablation_method_is_named():
    with pytest.raises(ConfigError, match=r"config\.ablation\.method"):
        validate_config({**MINIMAL, "ablation": {"enabled": True, "method": "nosuch"}})


def test_section_defaults_are_the_schema_defaults():
    import yaml

    from spbench.config import section_defaults, validate_config

    losses = section_defaults("losses")
    assert losses["lambda_lap"] == 360.0 and losses["msd_mode"] == "per_image"
    profile = yaml.safe_load((ROOT / "config/smoke.yaml").read_text())
    profile.pop("losses", None)
    assert losses == validate_config(profile)["losses"]
    losses["lambda_lap"] = 0.0  # a fresh dict: the next call is unaffected
    assert section_defaults("losses")["lambda_lap"] == 360.0


def test_strings_from_nested_command_line_values_get_a_hint():
    """`--config 'predict={scales: [0.3]}'` gives strings: the error says why and what to do."""
    config = {**MINIMAL, "predict": {"scales": ["0.3"], "max_images": "null"}}
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    text = str(error.value)
    assert "config.predict.max_images: 'null' is not of type" in text
    assert "config.predict.scales[0]: '0.3' is not of type 'number'" in text
    assert "--configfile PROFILE.yaml OVERRIDES.yaml" in text


@pytest.mark.parametrize(
    "section", [{"predict": {"scales": [5]}}, {"train": {"steps": "many"}}], ids=["range", "word"]
)
def test_no_string_hint_for_other_errors(section):
    """A value out of range, or a word where a number belongs (a typo in a file), gets no hint."""
    with pytest.raises(ConfigError) as error:
        validate_config({**MINIMAL, **section})
    assert "config." in str(error.value) and "verbatim" not in str(error.value)


def test_module_roots_are_the_folders_modules_were_imported_from(tmp_path, monkeypatch):
    """The workflow puts these on its jobs' PYTHONPATH, so that a method module found by the
    DAG's process (which has the workflow folder on its path) is found by the jobs too."""
    from spbench.config import import_method_modules, module_roots

    (tmp_path / "mymethods").mkdir()
    (tmp_path / "mymethods/__init__.py").write_text("")
    (tmp_path / "mymethods/deep.py").write_text("X = 1\n")
    (tmp_path / "flat.py").write_text("Y = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("mymethods", "mymethods.deep", "flat"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import_method_modules(["mymethods.deep", "flat", "mymethods"])
    assert module_roots(["mymethods.deep", "flat", "mymethods"]) == [str(tmp_path.resolve())]
    assert module_roots(["not.imported"]) == []
    from spbench.config import export_module_roots

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert export_module_roots(["flat"]) == [str(tmp_path.resolve())]
    assert os.environ["PYTHONPATH"] == os.pathsep.join([str(tmp_path.resolve()), "/elsewhere"])
