# Training: one job per (method, variant, seed, stage); gpu=1 so `--resources gpu=N` caps them.
# A stage that does not use the variant's losses (AINet's and SSM's first stage) is trained once
# under the variant "_shared" and every variant's next stage starts from it.


rule train_stage:
    input:
        data=f"{DATA}/dataset.json",
        previous=previous_stage_checkpoint,
    output:
        checkpoint=f"{RESULTS}/models/{RUN_KEY}/{{stage}}.pt",
        losses=f"{RESULTS}/models/{RUN_KEY}/{{stage}}_log.jsonl",
    log:
        f"{LOGS}/train/{RUN_KEY}/{{stage}}.log",
    benchmark:
        f"{BENCH}/train/{RUN_KEY}/{{stage}}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=train_params,
        runtime=train_runtime_params,
        data=input_folder("data"),
        init=init_option,
        impl=IMPL["train"],
    shell:
        # The lease claims a free GPU (CUDA_VISIBLE_DEVICES) for the job's lifetime, even if
        # it is killed; with no GPU it runs the job on the CPU.
        "python -m spbench.gpu_lease --n {resources.gpu} -- "
        "spbench train --settings {params.settings:q} --runtime {params.runtime:q} "
        "--data {params.data} "
        "--method {wildcards.method} --variant {wildcards.variant} --seed {wildcards.seed} "
        "--stage {wildcards.stage} {params.init} --out {output.checkpoint} "
        "--log {output.losses} --no-progress > {log} 2>&1"


# Checkpoints trained elsewhere (config.trained_elsewhere, e.g. by benchmarks/gpu_session.sh)
# become the last-stage checkpoints of the profile's learned runs without training.
if config["trained_elsewhere"]:

    ruleorder: adopt_checkpoint > train_stage

    rule adopt_checkpoint:
        input:
            adopted_checkpoint,
        output:
            checkpoint=f"{RESULTS}/models/{RUN_KEY}/{{stage}}.pt",
            # Its mark: a later run without trained_elsewhere refuses to train over it.
            record=f"{RESULTS}/models/{RUN_KEY}/{{stage}}.adopted.json",
        log:
            f"{LOGS}/adopt_checkpoint/{RUN_KEY}/{{stage}}.log",
        benchmark:
            f"{BENCH}/adopt_checkpoint/{RUN_KEY}/{{stage}}.tsv"
        wildcard_constraints:
            method="|".join(m for m in config["methods"] if get_card(m).trained),
            variant="|".join(config["variants"]),
            stage="|".join({get_card(m).stages[-1].name for m in config["methods"]}),
        localrule: True
        conda:
            "../../environment.yml"
        params:
            settings=train_params,
            impl=IMPL["train"],
        shell:
            "spbench adopt-checkpoint --settings {params.settings:q} --source {input} "
            "--method {wildcards.method} --variant {wildcards.variant} "
            "--seed {wildcards.seed} --stage {wildcards.stage} --out {output.checkpoint} "
            "> {log} 2>&1"


# Published weights (config.published) become the last-stage checkpoint of run
# <method>/pub_<variant>/seed0 without training.
ruleorder: import_weights > train_stage


rule import_weights:
    output:
        f"{RESULTS}/models/{RUN_KEY}/{{stage}}.pt",
    log:
        f"{LOGS}/import_weights/{RUN_KEY}/{{stage}}.log",
    benchmark:
        f"{BENCH}/import_weights/{RUN_KEY}/{{stage}}.tsv"
    wildcard_constraints:
        variant=r"pub_[a-z0-9_]+",
    retries: 2
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=published_params,
        options=published_options,
        impl=IMPL["train"],
    shell:
        "spbench import-weights --settings {params.settings:q} --method {wildcards.method} "
        "--variant {wildcards.variant} {params.options} --out {output} > {log} 2>&1"
