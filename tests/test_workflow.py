"""The Snakemake DAG: lint, the paper profile's job graph, and the whole CI profile end to end."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from spbench.config import load_config, section_defaults
from spbench.jobs import STAGE_VERSIONS
from spbench.predictions import load_predictions
from spbench.report.artefacts import ARTEFACT_FILES

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

SCORE_COLUMNS = {
    "method",
    "variant",
    "seed",
    "use_lap",
    "use_msd",
    "use_wr",
    "lambda_lap",
    "msd_mode",
    "weights",
    "train_steps",
    "budget",
    "dataset",
    "split",
    "image_id",
    "annotation",
    "scale",
    "n_nominal",
    "ec",
    "n_superpixels",
    "asa",
    "ue",
    "ue_np",
    "ue_levin",
    "oe",
    "co",
    "br",
    "bp",
    "ev",
    "xc",
    "stray",
    "gt_cap50",
    "max_annotations",
}


def run(args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout + result.stderr


def dry_run(folder: Path, *configfiles: str, extra: tuple = (), cores: int = 2, gpus: int = 1):
    """Output of a dry run (``-n -p``) in ``folder`` with the repository's ``configfiles``."""
    files = [str(ROOT / f) for f in configfiles]
    command = [*SNAKEMAKE, "--directory", str(folder), "--configfile", *files, *extra]
    return run([*command, "-n", "-p", "--cores", str(cores), "--resources", f"gpu={gpus}"], ROOT)


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Jobs per rule from the "Job stats" table of a dry run (empty if nothing is to be done)."""
    if "Job stats:" not in dry_run_output:
        return {}
    counts = {}
    for line in dry_run_output.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    counts.pop("total", None)
    return counts


def test_lint_is_clean():
    out = run([*SNAKEMAKE, "--lint", "--configfile", "config/smoke.yaml"], ROOT)
    assert "Congratulations, your workflow is in a good condition" in out


def test_every_job_rule_writes_a_log_and_a_benchmark():
    """benchmarks/job_times.py reads every job's benchmark file: a rule without one (the report
    rules once) is missing from a run's job_times.csv."""
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        blocks = re.split(r"^\s*rule (\w+):\n", text, flags=re.MULTILINE)[1:]
        for name, body in zip(blocks[::2], blocks[1::2], strict=True):
            if "shell:" not in body.split("\nrule ")[0] or name in ("report", "all"):
                continue
            assert "log:" in body and "benchmark:" in body, f"{path.name}: rule {name}"


def test_every_rule_carries_its_stages_output_version():
    """Each rule's `impl` param is its own stage's version, so bumping one stage's re-runs that
    stage and what follows, never the training before it."""
    expected = {"data": "data", "train": "train", "report": "report"}
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        text = path.read_text()
        rules = re.split(r"^\s*rule ", text, flags=re.M)[1:]
        for rule in rules:
            name = rule.split(":")[0]
            stages = re.findall(r'impl=IMPL\["(\w+)"\]', rule)
            if path.stem == "evaluate":
                assert stages == [{"predict_scales": "predict", "score_run": "score"}[name]]
            elif stages:
                assert stages == [expected[path.stem]], name
    assert set(STAGE_VERSIONS) == {"data", "train", "predict", "score", "report"}


def test_paper_profile_dry_run_lists_the_full_graph(tmp_path):
    out = dry_run(tmp_path, "config/config.yaml", cores=8, gpus=2)
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["download_bsds500"] == 1
    assert counts["prepare_bsds500"] == 1
    # Training stages: SCN base/lap; AINet's shared stage 1 and two stage-2 runs; the CDS
    # factorial (8, base and lap among them); SSM's shared stage 1 and two stage-2 runs; four
    # more SCN sweep runs (lambda 360 is SCN-LAP); SLIC.
    assert counts["train_stage"] == 2 + 3 + 8 + 3 + 4 + 1
    runs = 2 + 2 + 8 + 2 + 4 + 1
    assert counts["predict_scales"] == runs
    assert counts["score_run"] == runs
    for target in ("table2", "table3", "sweep", "figures"):
        assert counts[target] == 1
    assert "results/paper/models/ainet/_shared/seed0/stage1.pt" in out
    assert "results/paper/models/ssm/lap/seed0/stage2.pt" in out
    for variant in ("base", "lap"):
        assert f"results/paper/models/scn/{variant}/seed0/main.pt" in out


def test_cpu_short_profile_dry_run_lists_its_jobs(tmp_path):
    """config/cpu-short.yaml: SCN base and LAP x 2 seeds and SLIC, 9 scales, Table 2 only."""
    config = load_config(ROOT / "config/cpu-short.yaml")
    nominal = [600 * s**2 for s in config["predict"]["scales"]]
    low, high = config["report"]["auc_range"]
    assert min(nominal) < low and max(nominal) > high  # the AUC range lies inside the scales
    out = dry_run(tmp_path, "config/cpu-short.yaml")
    counts = job_counts(out)
    for rule in ("train_stage", "predict_scales", "score_run"):
        assert counts.pop(rule) == 5, rule  # SCN base and LAP x seeds 0 and 1, and SLIC
    assert counts == {
        "download_bsds500": 1,
        "prepare_bsds500": 1,
        "dataset_summary": 1,
        "table2": 1,
        "figures": 1,
        "provenance": 1,
        "all": 1,
    }
    for variant in ("base", "lap"):
        for seed in (0, 1):
            assert f"results/cpu-short/models/scn/{variant}/seed{seed}/main.pt" in out
    assert "results/cpu-short/predictions/scn/lap/seed1/scale1.5.npz" in out
    assert "scale1.6.npz" not in out and "scale0.6.npz" not in out


def test_full_protocol_overlay_restores_every_image_and_scale(tmp_path):
    """config/full-protocol.yaml after cpu-short: the paper's 13 scales on all 200 images."""
    out = dry_run(
        tmp_path,
        "config/cpu-short.yaml",
        "config/full-protocol.yaml",
        extra=("--config", "run_name=cpu-short-full"),
    )
    assert job_counts(out)["predict_scales"] == 5
    for scale in ("0.3", "1", "1.5"):
        assert f"results/cpu-short-full/predictions/scn/lap/seed1/scale{scale}.npz" in out
    paper_scales = ",".join(f"{s:g}" for s in section_defaults("predict")["scales"])
    assert f'"max_images":null,"scales":[{paper_scales}]' in out
    assert '"device":"cpu"' in out  # the rest of cpu-short's predict section stays


def test_four_times_longer_overlay_changes_the_steps_only(tmp_path):
    """config/four-times-longer.yaml after cpu-short: 2,800 steps, the rest of cpu-short."""
    out = dry_run(
        tmp_path,
        "config/cpu-short.yaml",
        "config/four-times-longer.yaml",
        extra=("--config", "run_name=cpu-long"),
    )
    assert job_counts(out)["train_stage"] == 5
    assert "results/cpu-long/models/scn/lap/seed1/main.pt" in out
    assert '"steps":2800' in out and '"steps":700' not in out
    assert '"crop":96' in out and '"lr":0.0005' in out  # cpu-short's recipe stays
    assert '"max_images":40' in out


def test_cpu_ablation_overlay_trains_each_configuration_once(tmp_path):
    """config/cpu-ablation.yaml after cpu-short: SCN's factorial and λ sweep, two seeds."""
    out = dry_run(tmp_path, "config/cpu-short.yaml", "config/cpu-ablation.yaml")
    counts = job_counts(out)
    # The factorial's 8 (base and lap among them) and the sweep's 90, 1440 and 5760 (its 0 is
    # the factorial's MSD + WR run, its 360 is lap) x 2 seeds, SLIC and the grid (one seed).
    for rule in ("train_stage", "predict_scales", "score_run"):
        assert counts[rule] == (8 + 3) * 2 + 2, rule
    assert counts["table3"] == counts["sweep"] == counts["table2"] == 1
    assert "results/cpu-ablation/models/scn/abl_msd_wr/seed0/main.pt" in out
    assert "lap_l0/" not in out and "lap_l360/" not in out and "grid/base/seed1" not in out
    assert "results/cpu-ablation/predictions/scn/lap_l5760/seed1/scale0.7.npz" in out


def test_bad_config_fails_at_start_naming_the_key(tmp_path):
    (tmp_path / "config").mkdir()
    text = (ROOT / ".test/config/config.yaml").read_text().replace("steps: 6", "steps: -1")
    (tmp_path / "config/config.yaml").write_text(text)
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "config.train.steps" in result.stdout + result.stderr


def test_a_key_given_twice_in_a_profile_file_stops_the_run(tmp_path):
    """Snakemake's YAML reading keeps the last of two `train:` sections, silently; the workflow
    reads each profile file again and stops, naming the file, the key and its lines."""
    overlay = tmp_path / "twice.yaml"
    overlay.write_text("train:\n  steps: 3\ntrain:\n  log_every: 1\n", encoding="utf-8")
    command = [*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "1"]
    configfiles = ("--configfile", str(ROOT / ".test/config/config.yaml"), str(overlay))
    result = subprocess.run(
        [*command, *configfiles], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "twice.yaml: key 'train' is given twice in one mapping (lines 1 and 3)" in (
        result.stdout + result.stderr
    )


@pytest.mark.slow
def test_ci_profile_end_to_end(ci_run):
    """The CI profile's finished run (shared with the fault tests, ``tests/conftest.py``)."""
    tmp_path, command, out = ci_run.folder, ci_run.command(), ci_run.output
    results = tmp_path / "results/test"
    assert "report table2 written" in out  # the Table 2 job prints where everything is

    scores = pd.concat(pd.read_parquet(p) for p in sorted((results / "scores").rglob("*.parquet")))
    assert (
        len(list((results / "scores").rglob("*.parquet"))) == 25
    )  # one per run: 12 x 2 seeds + SLIC
    assert SCORE_COLUMNS <= set(scores.columns)
    # The sweep's λ = 0 on SCN has the switches of the factorial's MSD + WR variant: one name.
    assert {"base", "lap", "abl_lap", "abl_msd_wr", "lap_l1440"} <= set(scores["variant"])
    assert "lap_l0" not in set(scores["variant"])
    assert sorted(scores["scale"].unique()) == [0.4, 0.6, 0.8, 1.0, 1.2]
    assert (scores.loc[scores["ec"], ["xc", "stray"]] == 0).all().all()  # EC output is connected
    # The predict rule passes its 2 threads on: torch and OpenCV do not take every core.
    meta, _, _ = load_predictions(next((results / "predictions").rglob("scale1.npz")))
    assert meta["threads"] == 2
    assert scores["asa"].between(0, 1).all() and scores["bp"].between(0, 1).all()
    pairs = scores.groupby(["method", "variant", "seed", "scale", "ec"]).size()
    assert pairs.nunique() == 1  # every (variant, scale, EC) scores the same pairs

    report = results / "report/table2"
    table = (report / "table2.md").read_text()
    for row in ("| SCN | yes", "| SCN-LAP | yes", "| SCN | no", "| SCN-LAP | no"):
        assert row in table
    assert "\\toprule" in (report / "table2.tex").read_text()
    csv = pd.read_csv(report / "table2.csv")
    assert len(csv) == 6  # SCN, SCN-LAP with and without EC, and the SLIC reference
    assert "| SLIC | yes" in table
    for name in ("metrics_vs_k_noec.png", "metrics_vs_k_ec.png", "asa_co_tradeoff.png"):
        assert (report / "figures" / name).stat().st_size > 10_000
    ckpt_log = results / "models/scn/lap/seed0/main_log.jsonl"
    assert '"lap"' in ckpt_log.read_text()
    table3 = (results / "report/table3/table3.md").read_text()
    assert table3.count("| CDS") == 8  # the full LAP x MSD x WR factorial
    assert "| reference (no training) | SLIC" in table3
    sweep = pd.read_csv(results / "report/sweep/sweep.csv")
    assert sorted(sweep["lambda_lap"].dropna()) == [0, 360, 1440]
    assert list(sweep.loc[sweep["lambda_lap"].isna(), "model"]) == ["SLIC"]
    assert (results / "report/figures/qualitative.png").stat().st_size > 10_000
    assert (scores["ec_relabelled"].between(0, 1)).all()
    provenance = pd.read_csv(results / "report/provenance.csv")
    checkpoints = sorted(str(p.relative_to(tmp_path)) for p in (results / "models").rglob("*.pt"))
    assert sorted(provenance["checkpoint"]) == checkpoints  # every stage of every run, once
    trained = provenance[provenance["method"] != "slic"]
    assert (trained["steps"] > 0).all() and (trained["wall_time_s"] > 0).all()
    assert set(provenance["device"]) == {"cpu"} and set(trained["fast_modes"]) == {"fp32"}
    assert "git commit" in (results / "report/provenance.md").read_text()

    # Each report folder holds its own artefact's files, exactly those the rule declares.
    for artefact in ("table2", "table3", "sweep", "figures"):
        folder = results / "report" / artefact
        written = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        assert written == set(ARTEFACT_FILES[artefact].values()), artefact
    top = {p.name for p in (results / "report").iterdir() if p.is_file()}
    assert top == set(ARTEFACT_FILES["provenance"].values())

    again = run([*command, "-n"], ROOT)
    assert "Nothing to be done" in again

    html = tmp_path / "report.html"
    run([*SNAKEMAKE, "--directory", str(tmp_path), "--report", str(html)], ROOT)
    page = html.read_text(errors="replace")
    assert html.stat().st_size > 100_000
    for name in ("table2.md", "table3.md", "sweep.md", "paired.md", "qualitative.png"):
        assert name in page, name

    # A new AUC range re-runs the tables that use it and nothing upstream or beside them.
    config = tmp_path / "config/config.yaml"
    config.write_text(config.read_text().replace("auc_range: [50, 150]", "auc_range: [60, 150]"))
    assert set(job_counts(run([*command, "-n"], ROOT))) == {"table2", "table3", "sweep", "all"}


def test_named_targets_run_only_what_they_need(tmp_path):
    shutil.copytree(ROOT / ".test/config", tmp_path / "config")

    def target_counts(target):
        # The target goes first: --resources would swallow it as one more resource.
        command = [
            *SNAKEMAKE,
            target,
            "--directory",
            str(tmp_path),
            "-n",
            "--cores",
            "2",
            "--resources",
            "gpu=1",
        ]
        return job_counts(run(command, ROOT))

    table3 = target_counts("table3")
    assert (
        table3["train_stage"] == 8 * 2 + 1 and table3["table3"] == 1
    )  # CDS factorial x 2 seeds, SLIC
    assert "sweep" not in table3 and "table2" not in table3
    sweep = target_counts("sweep")
    assert sweep["train_stage"] == 3 * 2 + 1 and "table3" not in sweep  # λ 0, 360, 1440; SLIC
    figures = target_counts("figures")
    assert figures["predict_scales"] == 2 and "score_run" not in figures
    provenance = target_counts("provenance")
    assert provenance["train_stage"] == 25 and "predict_scales" not in provenance
    # An artefact the profile does not make (no published entry) stops before any job runs.
    command = [*SNAKEMAKE, "published", "--directory", str(tmp_path), "-n", "--cores", "1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "makes no published artefact: add a `published` entry" in result.stdout + result.stderr


def test_a_profile_of_base_runs_only_builds_its_dag(tmp_path):
    """No variant but base: the qualitative figure shows base alone (it needed a second one)."""
    profile = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    profile["variants"] = {"base": {"use_lap": False, "use_msd": False, "use_wr": False}}
    profile["ablation"]["enabled"] = profile["sweep"]["enabled"] = False
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(profile))
    command = [*SNAKEMAKE, "figures", "--directory", str(tmp_path), "-n", "--cores", "1"]
    assert job_counts(run(command, ROOT))["predict_scales"] == 1


def test_a_configfile_replaces_the_default_profile(tmp_path):
    """`--configfile smoke.yaml` must not inherit keys of config/config.yaml (Snakemake merges
    the two by default): the smoke run's training must not get the paper's step counts."""
    out = dry_run(tmp_path, "config/smoke.yaml")
    assert re.search(r'\\?"steps\\?":20\b', out)  # canonical JSON params: no spaces
    assert not re.search(r'"steps\\?":(150000|306000)\b', out)  # the paper's step counts
    assert "is extended by additional config" not in out
