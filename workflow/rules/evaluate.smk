# Evaluation: predict every scale in one GPU job per run, then score the run on one CPU core
# (the full BSDS500 protocol for one run takes about 2 minutes; runs score in parallel).


rule predict_scales:
    input:
        checkpoint=final_checkpoint,
        data=f"{DATA}/dataset.json",
    output:
        prediction_paths(),
    log:
        f"{LOGS}/predict/{RUN_KEY}.log",
    benchmark:
        f"{BENCH}/predict/{RUN_KEY}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=predict_params,
        runtime=predict_runtime_params,
        data=input_folder("data"),
        out_dir=output_folder,
        impl=IMPL["predict"],
    shell:
        "python -m spbench.gpu_lease --n {resources.gpu} -- "
        "spbench predict --settings {params.settings:q} --runtime {params.runtime:q} "
        "--checkpoint {input.checkpoint} "
        "--data {params.data} --out-dir {params.out_dir} > {log} 2>&1"


rule score_run:
    input:
        predictions=prediction_paths(),
        data=f"{DATA}/dataset.json",
    output:
        f"{RESULTS}/scores/{RUN_KEY}.parquet",
    log:
        f"{LOGS}/score/{RUN_KEY}.log",
    benchmark:
        f"{BENCH}/score/{RUN_KEY}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        settings=score_params,
        data=input_folder("data"),
        impl=IMPL["score"],
    shell:
        "spbench score --settings {params.settings:q} --data {params.data} "
        "--predictions {input.predictions} --out {output} > {log} 2>&1"
