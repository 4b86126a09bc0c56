# Training stage: one job per (method, variant, seed); gpu=1 so `--resources gpu=N` caps them.


rule train_model:
    input:
        data=f"{DATA}/dataset.json",
    output:
        checkpoint=checkpoint_path(),
        losses=f"{RESULTS}/models/{RUN_KEY}/train_log.jsonl",
    log:
        f"{LOGS}/train/{RUN_KEY}.log",
    benchmark:
        f"{BENCH}/train/{RUN_KEY}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=train_params,
        data=input_folder("data"),
        impl=IMPL,
    shell:
        "spbench train --settings {params.settings:q} --data {params.data} "
        "--method {wildcards.method} --variant {wildcards.variant} --seed {wildcards.seed} "
        "--out {output.checkpoint} --log {output.losses} --no-progress > {log} 2>&1"
