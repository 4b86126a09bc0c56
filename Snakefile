# spbench: the reproduction DAG of "Differentiable Laplacian Matrix Guided Superpixel Segmentation".
#   snakemake --cores 8 --resources gpu=2                            # paper profile (BSDS500, GPUs)
#   snakemake --cores 2 --configfile config/smoke.yaml --resources gpu=1   # synthetic data, CPU
# Every rule calls the `spbench` command line; the stages are data -> train -> predict -> score -> report.
from snakemake.utils import min_version

min_version("9.12")


# The paper profile is the default; a profile given with --configfile replaces it whole (by
# default Snakemake would merge the two, leaking e.g. the paper's step counts into the smoke run).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onstart:
    gpu_guard(workflow)
    log_plan(workflow)


rule all:
    default_target: True
    input:
        report_targets(),
        dataset_summary_outputs(),
        # Scores too: a lost score file is regenerated even when the report is up to date.
        all_scores(),
