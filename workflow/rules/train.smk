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
        data=input_folder("data"),
        init=init_option,
        impl=IMPL,
    shell:
        "spbench train --settings {params.settings:q} --data {params.data} "
        "--method {wildcards.method} --variant {wildcards.variant} --seed {wildcards.seed} "
        "--stage {wildcards.stage} {params.init} --out {output.checkpoint} "
        "--log {output.losses} --no-progress > {log} 2>&1"
