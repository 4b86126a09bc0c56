# Configuration, paths and the parameter helpers shared by every rule file.
import json
import os

import spbench
from spbench.config import (
    SHARED_VARIANT,
    experiment_runs,
    predict_settings,
    report_settings,
    score_settings,
    train_settings,
    validate_config,
)
from spbench.models import get_method, get_stage
from spbench.predict import format_scale
from spbench.report.aggregate import model_label
from spbench.session import run_file

# Validate against workflow/schemas/config.schema.yaml, fill defaults, check the method names.
config.update(validate_config(config))

RUN = config["run_name"]
DATA = config["dataset"]["root"]
RESULTS = f"results/{RUN}"
LOGS = f"logs/{RUN}"
BENCH = f"benchmarks/{RUN}"
SCALES = [format_scale(s) for s in config["predict"]["scales"]]
RUN_KEY = "{method}/{variant}/seed{seed}"
# (method, variant, seed) runs of each experiment: table2, table3 (ablation), sweep.
EXPERIMENTS = experiment_runs(config)
REPORT = f"{RESULTS}/report"
# Rules whose command is package code rerun when spbench's version changes (snakemake.md §3).
IMPL = spbench.__version__


wildcard_constraints:
    method=r"[a-z0-9_]+",
    variant=r"[a-z0-9_]+",
    seed=r"\d+",
    scale=r"\d+(\.\d+)?",
    stage=r"[a-z0-9_]+",


def stage_checkpoint(method, variant, seed, stage):
    """Checkpoint of one training stage; stages without the variant's losses are shared."""
    if not get_stage(method, stage).uses_variant:
        variant = SHARED_VARIANT
    return f"{RESULTS}/models/{method}/{variant}/seed{seed}/{stage}.pt"


def final_checkpoint(wildcards):
    """The last stage's checkpoint of a run: the model that predicts."""
    last = get_method(wildcards.method).stages[-1].name
    return stage_checkpoint(wildcards.method, wildcards.variant, wildcards.seed, last)


def previous_stage_checkpoint(wildcards):
    """The checkpoint a stage starts from (none for a method's first stage)."""
    names = [s.name for s in get_method(wildcards.method).stages]
    index = names.index(wildcards.stage)
    if index == 0:
        return []
    return stage_checkpoint(
        wildcards.method, wildcards.variant, wildcards.seed, names[index - 1]
    )


def adopted_checkpoint(wildcards):
    """The checkpoint of a run in config.trained_elsewhere (named as gpu_session.sh returns it)."""
    name = run_file(wildcards.method, wildcards.variant, int(wildcards.seed))
    return os.path.join(config["trained_elsewhere"], name)


def init_option(wildcards, input):
    """The `--init` option of `spbench train` for stages that continue a previous one."""
    return f"--init {input.previous}" if input.previous else ""


def prediction_paths(wildcards=None):
    return expand(
        f"{RESULTS}/predictions/{RUN_KEY}/scale{{scale}}.npz",
        scale=SCALES,
        allow_missing=True,
    )


def experiment_scores(name):
    """Score files of every run of one experiment."""
    return [
        f"{RESULTS}/scores/{method}/{variant}/seed{seed}.parquet"
        for method, variant, seed in EXPERIMENTS[name]
    ]


def all_scores():
    """Score files of every run of every experiment (each once)."""
    return sorted({path for name in EXPERIMENTS for path in experiment_scores(name)})


def all_checkpoints():
    """Every stage checkpoint of every run (shared first stages once)."""
    return sorted(
        {
            stage_checkpoint(method, variant, seed, stage.name)
            for name in EXPERIMENTS
            for method, variant, seed in EXPERIMENTS[name]
            for stage in get_method(method).stages
        }
    )


def table2_outputs():
    return [
        f"{REPORT}/table2/table2.md",
        f"{REPORT}/table2/table2.csv",
        f"{REPORT}/table2/table2.tex",
        f"{REPORT}/table2/figures/metrics_vs_k_noec.png",
        f"{REPORT}/table2/figures/metrics_vs_k_ec.png",
        f"{REPORT}/table2/figures/asa_co_tradeoff.png",
    ]


def published_entry(wildcards):
    """The config.published entry of a pub_<variant> run."""
    for entry in config["published"]:
        if (entry["method"], f"pub_{entry['variant']}") == (
            wildcards.method,
            wildcards.variant,
        ):
            return entry
    raise ValueError(
        f"no config.published entry for {wildcards.method}/{wildcards.variant}"
    )


def published_params(wildcards):
    entry = published_entry(wildcards)
    return json.dumps(train_settings(config, entry["variant"]))


def published_options(wildcards):
    """Options of `spbench import-weights` for one config.published entry."""
    entry = published_entry(wildcards)
    sha = f" --sha256 {entry['sha256']}" if entry.get("sha256") else ""
    return f"--trained-as {entry['variant']} --source {entry['source']}{sha}"


def report_targets():
    """Every artefact of the profile's report: Table 2, figures, and the enabled experiments."""
    targets = [
        *table2_outputs(),
        f"{REPORT}/figures/qualitative.png",
        f"{REPORT}/provenance.md",
    ]
    if EXPERIMENTS["published"]:
        targets.append(f"{REPORT}/published/table2.md")
    if EXPERIMENTS["table3"]:
        targets.append(f"{REPORT}/table3/table3.md")
    if EXPERIMENTS["sweep"]:
        targets.append(f"{REPORT}/sweep/sweep.md")
    return targets


def qualitative_runs():
    """Label -> prediction file of the first method's base and first other variant."""
    method, seed = config["methods"][0], config["seeds"][0]
    variants = list(config["variants"])
    chosen = (
        ["base", next(v for v in variants if v != "base")]
        if "base" in variants
        else variants[:2]
    )
    scale = min(SCALES, key=lambda s: abs(float(s) - 1.0))
    return {
        model_label(
            method, v
        ): f"{RESULTS}/predictions/{method}/{v}/seed{seed}/scale{scale}.npz"
        for v in chosen
    }


def qualitative_option(wildcards, input):
    """`--prediction LABEL=PATH` options of `spbench qualitative`, in the figure's order."""
    return " ".join(
        f"--prediction {label}={path}" for label, path in qualitative_runs().items()
    )


def dataset_summary_outputs():
    return [f"{DATA}/summary.parquet", f"{DATA}/summary.png"]


def train_params(wildcards):
    return json.dumps(train_settings(config, wildcards.variant))


def predict_params(wildcards):
    return json.dumps(predict_settings(config))


def score_params(wildcards):
    return json.dumps(score_settings(config))


def report_params(wildcards):
    return json.dumps(report_settings(config))


def dataset_params(wildcards):
    return json.dumps(config["dataset"][config["dataset"]["name"]])


def input_folder(name):
    """A params function: the folder of input ``name`` (the prepared dataset, for example)."""

    def folder(wildcards, input):
        return os.path.dirname(input[name])

    return folder


def output_folder(wildcards, output):
    """A params function: the folder of the rule's first output."""
    return os.path.dirname(output[0])


def gpu_guard(workflow):
    """Warn when GPU rules run locally without `--resources gpu=N` (snakemake.md section 2).

    Without the cap Snakemake starts every ready GPU job at once; the device lease still puts
    at most one job on a device, so the others only wait, each holding a core. Internal
    attributes of Snakemake are read here and nowhere else (pinned by min_version).
    """
    plugin = getattr(workflow, "executor_plugin", None)
    if getattr(plugin, "name", "local") != "local":
        return
    resources = getattr(workflow, "global_resources", {}) or {}
    if "gpu" not in resources:
        logger.warning(
            "spbench: GPU jobs (train_stage, predict_scales) are not capped: run with "
            "`--resources gpu=N`, N = the number of GPUs to use (gpu=0 runs them on the CPU). "
            "Without it the extra jobs wait for a free device while holding a core."
        )
