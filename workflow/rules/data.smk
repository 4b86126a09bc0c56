# Data stage: the prepared dataset (synthetic, or BSDS500 downloaded, verified and prepared).


if config["dataset"]["name"] == "synthetic":

    rule make_synthetic:
        output:
            f"{DATA}/dataset.json",
        log:
            f"{LOGS}/data/make_synthetic.log",
        benchmark:
            f"{BENCH}/data/make_synthetic.tsv"
        localrule: True
        conda:
            "../../environment.yml"
        params:
            settings=synthetic_params,
            root=output_folder,
            impl=IMPL["data"],
        shell:
            "spbench data synthetic --settings {params.settings:q} --out {params.root} > {log} 2>&1"

else:

    rule download_bsds500:
        output:
            "data/bsds500/BSR_bsds500.tgz",
        log:
            f"{LOGS}/data/download_bsds500.log",
        benchmark:
            f"{BENCH}/data/download_bsds500.tsv"
        retries: 2
        localrule: True
        conda:
            "../../environment.yml"
        params:
            settings=download_settings,
        shell:
            "spbench data download-bsds500 --settings {params.settings:q} --out {output} > {log} 2>&1"

    rule prepare_bsds500:
        input:
            "data/bsds500/BSR_bsds500.tgz",
        output:
            f"{DATA}/dataset.json",
        log:
            f"{LOGS}/data/prepare_bsds500.log",
        benchmark:
            f"{BENCH}/data/prepare_bsds500.tsv"
        conda:
            "../../environment.yml"
        threads: 2
        params:
            root=output_folder,
            impl=IMPL["data"],
        shell:
            "spbench data prepare-bsds500 --archive {input} --out {params.root} "
            "--workers {threads} > {log} 2>&1"


rule dataset_summary:
    input:
        data=f"{DATA}/dataset.json",
    output:
        parquet=f"{DATA}/summary.parquet",
        figure=f"{DATA}/summary.png",
    log:
        f"{LOGS}/data/dataset_summary.log",
    benchmark:
        f"{BENCH}/data/dataset_summary.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        root=input_folder("data"),
        impl=IMPL["data"],
    shell:
        "spbench data summary --root {params.root} --parquet {output.parquet} "
        "--figure {output.figure} > {log} 2>&1"
