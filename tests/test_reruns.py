"""Re-runs do only what changed: per-job params, runtime settings, and the training stream.

After one real run of a tiny profile (SCN and CDS, base and LAP, one seed), each config edit is
followed by ``snakemake -n`` and the jobs it would run are compared with what the edit can
change. On the paper profile a needless training re-run costs days of GPU time.
"""

import copy
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from spbench.config import validate_config
from spbench.jobs import canonical_json, train_job, train_runtime, train_settings

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

PROFILE = {
    "run_name": "reruns",
    "dataset": {
        "name": "synthetic",
        "synthetic": {"seed": 3, "n_train": 4, "n_val": 2, "n_test": 2, "height": 64, "width": 96},
    },
    "methods": ["scn", "cds"],
    "references": [],
    "seeds": [0],
    "train": {
        "steps": 2,
        "batch_size": 2,
        "crop": 32,
        "val_crop": 32,
        "val_every": 2,
        "val_batches": 1,
        "log_every": 1,
        "checkpoint_every": 2,
        "device": "cpu",
        "threads": 1,
    },
    "predict": {"device": "cpu", "scales": [1.0, 2.0], "base_size": [32, 48]},
    "report": {"auc_range": [6, 24], "title": "re-run test"},
}


def jobs_to_run(folder: Path, profile: dict, *targets: str) -> dict[str, int]:
    """Write ``profile`` as the run's config and return ``snakemake -n``'s jobs per rule."""
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(profile, sort_keys=False))
    options = ["-n", "--directory", str(folder), "--configfile", str(config), "--cores", "1"]
    result = subprocess.run(
        [*SNAKEMAKE, *options, *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if "Job stats:" not in result.stdout:
        return {}
    counts = {}
    for line in result.stdout.split("Job stats:")[1].splitlines()[3:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    counts.pop("all", None)
    counts.pop("total", None)
    return counts


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A folder holding the tiny profile's finished run."""
    folder = tmp_path_factory.mktemp("reruns")
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(PROFILE, sort_keys=False))
    subprocess.run(
        [*SNAKEMAKE, "--directory", str(folder), "--configfile", str(config), "--cores", "2"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    assert jobs_to_run(folder, PROFILE) == {}
    return folder


def edited(**edits) -> dict:
    """The tiny profile with ``section__key=value`` edits (``train__log_every=5``)."""
    profile = copy.deepcopy(PROFILE)
    for path, value in edits.items():
        *parents, key = path.split("__")
        node = profile
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    return profile


def reordered(value):
    """``value`` with every mapping's keys in reverse order (what another YAML tool may write)."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    return value


RUNTIME_EDITS = {
    "log_every": edited(train__log_every=2),
    "val_every": edited(train__val_every=1, train__val_batches=2),
    "checkpoint_every": edited(train__checkpoint_every=1),
    "threads": edited(train__threads=2),
    "device": edited(train__device="auto", predict__device="auto"),
    "fast modes": edited(train__fast={"channels_last": True}),
    "reordered keys": reordered(PROFILE),
    "360 as 360.0": edited(losses__lambda_lap=360),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNTIME_EDITS)
def test_settings_that_cannot_change_a_result_rerun_nothing(finished_run, name):
    assert jobs_to_run(finished_run, RUNTIME_EDITS[name]) == {}


@pytest.mark.slow
def test_one_methods_steps_retrain_that_method_only(finished_run):
    jobs = jobs_to_run(finished_run, edited(train__per_method={"cds": {"main": {"steps": 3}}}))
    assert jobs["train_stage"] == 2  # CDS base and LAP, not SCN
    assert jobs["predict_scales"] == 2 and jobs["score_run"] == 2
    assert "figures" not in jobs  # the qualitative figure shows SCN


@pytest.mark.slow
def test_a_budget_retrains_every_run_and_what_follows_only(finished_run):
    jobs = jobs_to_run(finished_run, edited(train__budget=0.5))
    assert jobs["train_stage"] == 4  # SCN and CDS, base and LAP: 1 step instead of 2
    assert jobs["predict_scales"] == 4 and jobs["score_run"] == 4
    report = {"table2", "table3", "sweep", "published", "figures", "provenance", "report"}
    rest = set(jobs) - {"train_stage", "predict_scales", "score_run", "total"}
    assert rest <= report  # no data job


@pytest.mark.slow
def test_lambda_lap_retrains_the_lap_runs_only(finished_run):
    jobs = jobs_to_run(finished_run, edited(losses__lambda_lap=90.0))
    assert jobs["train_stage"] == 2  # SCN-LAP and CDS-LAP; base runs have LAP off
    assert jobs["predict_scales"] == 2


@pytest.mark.slow
def test_one_variants_switches_retrain_that_variant_only(finished_run):
    variants = {
        "base": {"use_lap": False, "use_msd": False, "use_wr": False},
        "lap": {"use_lap": True, "use_msd": True, "use_wr": False},
    }
    jobs = jobs_to_run(finished_run, edited(variants=variants))
    assert jobs["train_stage"] == 2 and jobs["score_run"] == 2


@pytest.mark.slow
def test_new_scales_repredict_without_training(finished_run):
    jobs = jobs_to_run(finished_run, edited(predict__scales=[1.0, 2.0, 3.0]))
    assert "train_stage" not in jobs
    assert jobs["predict_scales"] == 4 and jobs["score_run"] == 4


@pytest.mark.slow
def test_report_settings_rerun_the_report_only(finished_run):
    for profile in (edited(report__auc_range=[8, 20]), edited(report__title="another title")):
        jobs = jobs_to_run(finished_run, profile)
        assert jobs and not {"train_stage", "predict_scales", "score_run"} & set(jobs)


def test_job_params_hold_only_what_changes_the_result():
    """Unit level: the resolved train params of one job, and what leaves them unchanged."""
    config = validate_config(PROFILE)
    base = canonical_json(train_job(config, "scn", "base"))
    for profile in RUNTIME_EDITS.values():
        assert canonical_json(train_job(validate_config(profile), "scn", "base")) == base
    # LAP's coefficients exist only where LAP is on; λ 90 retrains LAP, not base.
    lam = validate_config(edited(losses__lambda_lap=90))
    assert canonical_json(train_job(lam, "scn", "base")) == base
    assert train_job(lam, "scn", "lap")["losses"]["lambda_lap"] == 90
    assert "lambda_lap" not in train_job(config, "scn", "base")["losses"]
    # Another method's steps leave SCN alone; the recipe resolves per method.
    cds_steps = validate_config(edited(train__per_method={"cds": {"main": {"steps": 9}}}))
    assert canonical_json(train_job(cds_steps, "scn", "lap")) == canonical_json(
        train_job(config, "scn", "lap")
    )
    assert train_job(cds_steps, "cds", "lap")["steps"] == 9
    assert train_job(config, "cds", "base")["recipe"]["schedule"] == "poly"
    assert train_runtime(config, "scn")["val_crop"] == 32


def test_a_shared_stage_ignores_the_variant():
    """AINet's first stage trains without the variant's losses, so its params are the same for
    every variant (the workflow trains it once)."""
    config = validate_config({**PROFILE, "methods": ["ainet"]})
    assert train_job(config, "ainet", "lap", "stage1") == train_job(
        config, "ainet", "base", "stage1"
    )
    assert train_job(config, "ainet", "lap", "stage2")["losses"]["use_lap"] is True
    assert train_job(config, "ainet", "base", "stage1")["recipe"]["lr"] == 8e-5  # stage override


@pytest.fixture
def plugin_modules(tmp_path, monkeypatch):
    """Two plug-in modules on the path, as the README's 'Adding a base method' writes them:
    ``tinynet`` (tests/test_new_method.py's) and ``othernet``, the same network registered as
    ``othernet``. Their methods and modules are forgotten afterwards."""
    source = Path(__file__).with_name("test_new_method.py")
    spec = importlib.util.spec_from_file_location("_spbench_test_new_method", source)
    new_method = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(new_method)
    tinynet = textwrap.dedent(new_method.TINYNET)
    (tmp_path / "tinynet.py").write_text(tinynet)
    (tmp_path / "othernet.py").write_text(tinynet.replace('"tinynet"', '"othernet"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    from spbench.models import registry

    for name in ("tinynet", "othernet"):
        registry.unregister_method(name)
        sys.modules.pop(name, None)


def test_a_plugin_methods_params_name_its_own_module_only(plugin_modules):
    """A plug-in method's params held every module of ``method_modules``: adding another
    plug-in module, or reordering the list, retrained it. They name the module that
    registers it."""

    def job(modules: list[str], method: str = "tinynet") -> str:
        profile = {**PROFILE, "method_modules": modules, "methods": [method]}
        return canonical_json(train_job(validate_config(profile), method, "lap"))

    alone = job(["tinynet"])
    assert json.loads(alone)["method_modules"] == ["tinynet"]
    assert job(["tinynet", "othernet"]) == alone  # another module appended
    assert job(["othernet", "tinynet"]) == alone  # the list reordered
    assert json.loads(job(["tinynet", "othernet"], "othernet"))["method_modules"] == ["othernet"]
    assert "method_modules" not in train_job(validate_config(PROFILE), "scn", "lap")


def test_a_plugins_training_data_options_are_in_its_params(plugin_modules, tmp_path):
    """The decorator's augment= and needs_edges= change what training sees, and re-ran nothing;
    they are in the plug-in's params where not the defaults (earlier runs keep theirs), as its
    recipe and a stage revision are (README's re-run table)."""
    source = (tmp_path / "tinynet.py").read_text()
    source = source.replace("import Recipe,", "import Recipe, Stage,")
    for name, options in (
        ("augnet", 'augment="rescale_bicubic", '),
        ("edgenet", "needs_edges=True, "),
        ("revnet", "stages=(Stage(revision=1),), "),
    ):
        text = source.replace('"tinynet"', f'"{name}"').replace(
            "recipe=Recipe(", f"{options}recipe=Recipe("
        )
        (tmp_path / f"{name}.py").write_text(text)

    def job(module: str) -> dict:
        profile = {**PROFILE, "method_modules": [module], "methods": [module]}
        return train_job(validate_config(profile), module, "lap")

    try:
        assert "augment" not in job("tinynet") and "needs_edges" not in job("tinynet")
        assert job("augnet")["augment"] == "rescale_bicubic" and "needs_edges" not in job("augnet")
        assert job("edgenet")["needs_edges"] is True and "augment" not in job("edgenet")
        assert job("revnet")["revision"] == 1 and "revision" not in job("tinynet")
        assert job("tinynet")["recipe"]["lr"] == 1e-3  # the decorator's recipe
        assert "augment" not in train_job(
            validate_config({**PROFILE, "methods": ["cds"]}), "cds", "lap"
        )
    finally:
        from spbench.models import registry

        for name in ("augnet", "edgenet", "revnet"):
            registry.unregister_method(name)
            sys.modules.pop(name, None)


def test_an_untrained_methods_params_ignore_the_training_settings():
    """SLIC and the plain grid fit nothing, so no training setting or loss can change their
    labels: their params stay the same (no re-run of their 'training', prediction and
    scoring) while SCN's change."""
    config = validate_config(edited(references=["slic", "grid"]))
    other = validate_config(
        edited(
            references=["slic", "grid"],
            train__steps=30,
            train__lr=1e-3,
            train__crop=48,
            train__batch_size=4,
            train__lr_halve_at=20,
            train__budget=0.5,
            train__train_splits=["train"],
            train__deterministic=True,
            train__per_method={"slic": {"main": {"steps": 7, "lr": 0.1}}},
            losses__lambda_lap=90,
        )
    )
    for method in ("slic", "grid"):
        job = train_job(config, method, "base")
        assert job["steps"] == 0 and job["recipe"]["lr"] == 0
        assert not any(job["losses"].values())
        assert train_job(other, method, "base") == job
        assert train_job(config, method, "lap") == job  # no loss reaches what is not trained
    assert train_job(other, "scn", "lap") != train_job(config, "scn", "lap")
    assert train_job(other, "scn", "lap")["steps"] == 15  # 30 at budget 0.5


def test_validation_does_not_change_the_weights(tmp_path):
    """Validation draws from its own generator: the weights after training are bitwise the same
    whatever ``val_every`` is (it would otherwise consume MSD's training samples)."""
    from spbench.data.synthetic import generate_synthetic
    from spbench.train import load_checkpoint, train

    data = tmp_path / "data"
    generate_synthetic(data, seed=0, n_train=2, n_val=1, n_test=1, height=48, width=48)
    weights = []
    threads = torch.get_num_threads()
    try:
        for val_every in (1, 100):
            profile = edited(
                train__val_every=val_every, train__steps=4, train__train_splits=["train"]
            )
            out = train(
                data,
                tmp_path / f"val{val_every}.pt",
                method="scn",
                variant="lap",
                seed=0,
                **train_settings(validate_config(profile), "scn", "lap"),
                progress=False,
            )
            weights.append(load_checkpoint(out)["model"])
    finally:
        torch.set_num_threads(threads)
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_the_archive_source_reruns_nothing(tmp_path):
    """Where BSDS500 comes from cannot change it (prepare checks every file), so switching to
    an offline copy, another mirror or another timeout must not re-download, hence re-prepare
    and re-train."""
    for name in ("a.tgz", "b.tgz"):  # stand-ins that read as archives of the data tree
        with tarfile.open(tmp_path / name, "w:gz") as tar:
            member = tarfile.TarInfo("BSR/BSDS500/data/images/test/1.jpg")
            member.size = len(name)
            tar.addfile(member, io.BytesIO(name.encode()))
    target = "data/bsds500/BSR_bsds500.tgz"
    profile = {
        **PROFILE,
        "dataset": {"name": "bsds500", "bsds500": {"archive": str(tmp_path / "a.tgz")}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    options = ["--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
    subprocess.run(
        [*SNAKEMAKE, *options, "--cores", "1", target],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (tmp_path / target).read_bytes() == (tmp_path / "a.tgz").read_bytes()
    sources = {"archive": str(tmp_path / "b.tgz"), "timeout": 5, "mirrors": ["http://127.0.0.1:9/"]}
    for key, value in sources.items():
        other = copy.deepcopy(profile)
        other["dataset"]["bsds500"][key] = value
        assert jobs_to_run(tmp_path, other, target) == {}, key
    (tmp_path / target).unlink()
    assert jobs_to_run(tmp_path, profile, target) == {"download_bsds500": 1}


def test_the_dag_builds_without_torch(tmp_path):
    """`snakemake -n` on the paper profile must not import torch: a stand-in that fails on
    import is put first on the path."""
    fake = tmp_path / "notorch/torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch imported while building the DAG')")
    path = os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    paper = str(ROOT / "config/config.yaml")
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "--directory", str(tmp_path), "--configfile", paper, "--cores", "8"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train_stage" in result.stdout
