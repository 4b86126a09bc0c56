# Report: one rule per artefact, each a named target that runs only the jobs it needs:
#   snakemake ... table2 | published | table3 | sweep | figures | provenance | report
# Every rule runs `spbench report <artefact>`, told its experiment by its params, and declares
# every file the command writes (spbench.report.artefacts.ARTEFACT_FILES), each with a caption.


rule table2:
    input:
        experiment_scores("table2"),
    output:
        **report_outputs("table2"),
    log:
        f"{LOGS}/report/table2.log",
    benchmark:
        f"{BENCH}/report/table2.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params("table2"),
        out_dir=output_folder,
        impl=IMPL["report"],
    shell:
        "spbench report table2 --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1 && cat {log}"


rule published:
    input:
        artefact_scores("published"),
    output:
        **report_outputs("published"),
    log:
        f"{LOGS}/report/published.log",
    benchmark:
        f"{BENCH}/report/published.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params("published"),
        out_dir=output_folder,
        impl=IMPL["report"],
    shell:
        "spbench report published --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule table3:
    input:
        artefact_scores("table3"),
    output:
        **report_outputs("table3"),
    log:
        f"{LOGS}/report/table3.log",
    benchmark:
        f"{BENCH}/report/table3.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params("table3"),
        out_dir=output_folder,
        impl=IMPL["report"],
    shell:
        "spbench report table3 --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule sweep:
    input:
        artefact_scores("sweep"),
    output:
        **report_outputs("sweep"),
    log:
        f"{LOGS}/report/sweep.log",
    benchmark:
        f"{BENCH}/report/sweep.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params("sweep"),
        out_dir=output_folder,
        impl=IMPL["report"],
    shell:
        "spbench report sweep --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule figures:
    input:
        predictions=list(qualitative_runs().values()),
        data=f"{DATA}/dataset.json",
    output:
        **report_outputs("figures"),
    log:
        f"{LOGS}/report/figures.log",
    benchmark:
        f"{BENCH}/report/figures.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        data=input_folder("data"),
        predictions=qualitative_option,
        title=report_settings(config, "figures")["title"],
        out_dir=output_folder,
        impl=IMPL["report"],
    shell:
        "spbench report figures {params.predictions} --data {params.data} "
        "--title {params.title:q} --out-dir {params.out_dir} > {log} 2>&1"


rule provenance:
    input:
        all_checkpoints(),
    output:
        **report_outputs("provenance"),
    log:
        f"{LOGS}/report/provenance.log",
    benchmark:
        f"{BENCH}/report/provenance.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        out_dir=output_folder,
        impl=IMPL["report"],
    shell:
        "spbench report provenance --checkpoints {input} --out-dir {params.out_dir} "
        "> {log} 2>&1"


rule report:
    input:
        report_targets(),
    localrule: True
