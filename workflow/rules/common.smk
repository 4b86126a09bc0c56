# Configuration, paths and the parameter helpers shared by every rule file. Nothing here
# imports torch: the DAG is built from the torch-free catalogue, and the networks are imported
# only by the jobs that run them.
import mimetypes
import os

from spbench.catalogue import get_card, model_label
from spbench.config import (
    check_yaml_files,
    experiment_runs,
    export_module_roots,
    report_settings,
    validate_config,
)
from spbench.jobs import (
    STAGE_VERSIONS,
    canonical_json,
    job_losses,
    predict_job,
    predict_runtime,
    score_job,
    stage_runs,
    stage_variant,
    train_job,
    train_runtime,
)
from spbench.errors import UserError
from spbench.plan import plan_text
from spbench.predictions import format_scale
from spbench.report.artefacts import ARTEFACT_FILES
from spbench.session import refuse_dropped_adoption, refuse_missing_adoptions, run_file

# Snakemake reads the profile files itself, keeping the last of a key given twice (a second
# `train:` section replaces the first whole): read them again as spbench does, which refuses it.
check_yaml_files(getattr(workflow, "configfiles", []))
# Validate against workflow/schemas/config.schema.yaml, fill defaults, check the method names.
config.update(validate_config(config))
# Jobs import config.method_modules from where this process did (its folder is on Snakemake's
# own path, not on its jobs'), so a module beside the Snakefile needs no PYTHONPATH.
export_module_roots(config["method_modules"])

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
# Checkpoints an earlier invocation adopted are never trained over (docs/workflow.md §1).
refuse_dropped_adoption(RESULTS, config["trained_elsewhere"])
# ... nor trained here because a checkpoint to adopt is missing from trained_elsewhere.
refuse_missing_adoptions(config)
# Each rule's `impl` param: its stage's output version (docs/workflow.md §3).
IMPL = STAGE_VERSIONS


wildcard_constraints:
    method=r"[a-z0-9_]+",
    variant=r"[a-z0-9_]+",
    seed=r"\d+",
    scale=r"\d+(\.\d+)?",
    stage=r"[a-z0-9_]+",


def stage_checkpoint(method, variant, seed, stage):
    """Checkpoint of one training stage; stages without the variant's losses are shared."""
    variant = stage_variant(method, variant, stage)
    return f"{RESULTS}/models/{method}/{variant}/seed{seed}/{stage}.pt"


def final_checkpoint(wildcards):
    """The last stage's checkpoint of a run: the model that predicts."""
    last = get_card(wildcards.method).stages[-1].name
    return stage_checkpoint(wildcards.method, wildcards.variant, wildcards.seed, last)


def previous_stage_checkpoint(wildcards):
    """The checkpoint a stage starts from (none for a method's first stage)."""
    names = [s.name for s in get_card(wildcards.method).stages]
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


# How a profile turns on each optional report artefact: asking for one it does not make stops
# the run at once, instead of a report job that fails on no input (docs/workflow.md §1).
ARTEFACT_SWITCHES = {
    "published": "a `published` entry (a released checkpoint)",
    "table3": "`ablation: {enabled: true}`",
    "sweep": "`sweep: {enabled: true}`",
}


def artefact_scores(name):
    """Input function: the score files of one artefact's experiment. Asking for an artefact the
    profile does not make stops the run before any job starts, naming the switch."""

    def scores(wildcards):
        paths = experiment_scores(name)
        if not paths:
            raise UserError(
                f"this profile makes no {name} artefact: add {ARTEFACT_SWITCHES[name]} to it"
            )
        return paths

    return scores


def all_scores():
    """Score files of every run of every experiment (each once)."""
    return sorted({path for name in EXPERIMENTS for path in experiment_scores(name)})


def all_checkpoints():
    """Every stage checkpoint of every run (shared first stages once)."""
    return [
        f"{RESULTS}/models/{method}/{variant}/seed{seed}/{stage}.pt"
        for method, variant, seed, stage in stage_runs(config)
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
    """The loss settings the published checkpoint was trained with (its variant's)."""
    return canonical_json(job_losses(config, published_entry(wildcards)["variant"]))


def published_options(wildcards):
    """Options of `spbench import-weights` for one config.published entry."""
    entry = published_entry(wildcards)
    sha = f" --sha256 {entry['sha256']}" if entry.get("sha256") else ""
    return f"--trained-as {entry['variant']} --source {entry['source']}{sha}"


# The HTML report embeds the Parquet files as downloads; Python's table lacks their type.
mimetypes.add_type("application/vnd.apache.parquet", ".parquet")

# Output folder, HTML-report category and whether the profile makes it, per report artefact.
REPORT_ARTEFACTS = {
    "table2": (f"{REPORT}/table2", "Table 2", True),
    "published": (
        f"{REPORT}/published",
        "Table 2, published weights",
        bool(EXPERIMENTS["published"]),
    ),
    "table3": (f"{REPORT}/table3", "Table 3", bool(EXPERIMENTS["table3"])),
    "sweep": (f"{REPORT}/sweep", "λ_LAP sweep", bool(EXPERIMENTS["sweep"])),
    "figures": (f"{REPORT}/figures", "Qualitative", True),
    "provenance": (REPORT, "Provenance", True),
}

# Caption (workflow/report/<name>.rst) of each report file, by its key in ARTEFACT_FILES.
REPORT_CAPTIONS = {
    "table2_md": "table2",
    "table2_csv": "table2",
    "table2_tex": "table2",
    "curves": "aggregates",
    "auc": "aggregates",
    "auc_summary": "aggregates",
    "paired_md": "paired",
    "paired": "paired",
    "ec_change_md": "ec_change",
    "ec_change_csv": "ec_change",
    "ec_change_png": "ec_change",
    "ec_change_pdf": "ec_change",
    "secondary_md": "secondary",
    "secondary_csv": "secondary",
    "metrics_vs_k_noec_png": "curves",
    "metrics_vs_k_noec_pdf": "curves",
    "metrics_vs_k_ec_png": "curves",
    "metrics_vs_k_ec_pdf": "curves",
    "asa_co_tradeoff_png": "tradeoff",
    "asa_co_tradeoff_pdf": "tradeoff",
    "table3_md": "table3",
    "table3_csv": "table3",
    "table3_tex": "table3",
    "sweep_md": "sweep",
    "sweep_csv": "sweep",
    "lambda_sweep_png": "sweep",
    "lambda_sweep_pdf": "sweep",
    "table3_paired_md": "table3_paired",
    "table3_paired": "table3_paired",
    "sweep_paired_md": "sweep_paired",
    "sweep_paired": "sweep_paired",
    "qualitative_png": "qualitative",
    "qualitative_pdf": "qualitative",
    "provenance_md": "provenance",
    "provenance_csv": "provenance",
}


def report_folder(artefact):
    """The output folder of one report artefact (`--out-dir` of its command)."""
    return REPORT_ARTEFACTS[artefact][0]


def report_files(artefact):
    """Key -> path of every file one report artefact writes."""
    return {
        key: f"{report_folder(artefact)}/{name}"
        for key, name in ARTEFACT_FILES[artefact].items()
    }


def report_outputs(artefact):
    """Named outputs of one report artefact: every file it writes, each in the HTML report."""
    category = REPORT_ARTEFACTS[artefact][1]
    return {
        key: report(
            path,
            caption=f"../report/{REPORT_CAPTIONS[key]}.rst",
            category=category,
            labels={"file": ARTEFACT_FILES[artefact][key]},
        )
        for key, path in report_files(artefact).items()
    }


def report_targets():
    """Every file of every report artefact the profile makes."""
    return [
        path
        for artefact, (_, _, enabled) in REPORT_ARTEFACTS.items()
        if enabled
        for path in report_files(artefact).values()
    ]


def qualitative_runs():
    """Label -> prediction file of the first method's base and first other variant (base
    alone in a profile of base runs only)."""
    method, seed = config["methods"][0], config["seeds"][0]
    variants = list(config["variants"])
    others = [v for v in variants if v != "base"]
    chosen = ["base", *others[:1]] if "base" in variants else variants[:2]
    scale = min(SCALES, key=lambda s: abs(float(s) - 1.0))
    return {
        model_label(
            method, v
        ): f"{RESULTS}/predictions/{method}/{v}/seed{seed}/scale{scale}.npz"
        for v in chosen
    }


def qualitative_option(wildcards, input):
    """`--prediction LABEL=PATH` options of `spbench report figures`, in the figure's order."""
    return " ".join(
        f"--prediction {label}={path}" for label, path in qualitative_runs().items()
    )


def dataset_summary_outputs():
    return [f"{DATA}/summary.parquet", f"{DATA}/summary.png"]


# Params are what can change a job's output, resolved for that job, in canonical form
# (spbench/jobs.py): another method's steps or a reordered profile re-run nothing.
def train_params(wildcards):
    return canonical_json(
        train_job(config, wildcards.method, wildcards.variant, wildcards.stage)
    )


# A params function that takes `resources` is "derived": Snakemake does not compare it when
# deciding what to re-run. Runtime settings (cadences, device, threads, fast modes) go there:
# they change how a job runs, not its result, and checkpoints record them for provenance.
def train_runtime_params(wildcards, resources):
    return canonical_json(train_runtime(config, wildcards.method, wildcards.stage))


def predict_params(wildcards):
    return canonical_json(predict_job(config))


def predict_runtime_params(wildcards, resources, threads):
    return canonical_json(predict_runtime(config, threads))


def score_params(wildcards):
    return canonical_json(score_job(config))


def report_params(artefact):
    """The settings of `spbench report <artefact>`: only what can change that artefact."""
    return canonical_json(report_settings(config, artefact))


def synthetic_params(wildcards):
    return canonical_json(config["dataset"]["synthetic"])


# Where the BSDS500 archive comes from (local copy, URLs, mirrors, timeouts) cannot change it:
# its files are checked against the shipped sha256 list when it is prepared. So these are
# derived params (see train_runtime_params): switching to an offline copy re-downloads nothing,
# hence re-prepares and re-trains nothing.
def download_settings(wildcards, resources):
    return canonical_json(config["dataset"]["bsds500"])


def input_folder(name):
    """A params function: the folder of input ``name`` (the prepared dataset, for example)."""

    def folder(wildcards, input):
        return os.path.dirname(input[name])

    return folder


def output_folder(wildcards, output):
    """A params function: the folder of the rule's first output."""
    return os.path.dirname(output[0])


def gpu_guard(workflow):
    """Warn when GPU rules run locally without `--resources gpu=N` (docs/workflow.md section 2).

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


def log_plan(workflow):
    """Log the run's compute plan (`spbench plan`) for its `--resources gpu=N` (default 1)."""
    gpus = (getattr(workflow, "global_resources", {}) or {}).get("gpu")
    gpus = getattr(gpus, "value", gpus)  # Snakemake 9 wraps the value in a Resource
    try:
        logger.info(plan_text(config, max(1, int(gpus or 1))))
    except UserError as err:  # a bad step-time table must not stop the run
        logger.warning(f"spbench: no compute plan: {err}")
