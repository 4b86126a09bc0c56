# Report: one rule per artefact, each a named target that runs only the jobs it needs:
#   snakemake ... table2 | table3 | sweep | published | figures | provenance | report


rule table2:
    input:
        experiment_scores("table2"),
    output:
        report(
            f"{REPORT}/table2/table2.md",
            caption="../report/table2.rst",
            category="Tables",
        ),
        f"{REPORT}/table2/table2.csv",
        f"{REPORT}/table2/table2.tex",
        report(
            f"{REPORT}/table2/figures/metrics_vs_k_noec.png",
            caption="../report/curves.rst",
            category="Figures",
            labels={"figure": "metrics vs K, without EC"},
        ),
        report(
            f"{REPORT}/table2/figures/metrics_vs_k_ec.png",
            caption="../report/curves.rst",
            category="Figures",
            labels={"figure": "metrics vs K, with EC"},
        ),
        report(
            f"{REPORT}/table2/figures/asa_co_tradeoff.png",
            caption="../report/tradeoff.rst",
            category="Figures",
            labels={"figure": "ASA-CO trade-off"},
        ),
    log:
        f"{LOGS}/report/table2.log",
    benchmark:
        f"{BENCH}/report/table2.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params,
        out_dir=output_folder,
        impl=IMPL,
    shell:
        "spbench report --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1 && cat {log}"


rule table3:
    input:
        experiment_scores("table3"),
    output:
        report(
            f"{REPORT}/table3/table3.md",
            caption="../report/table3.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/report/table3.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params,
        out_dir=output_folder,
        impl=IMPL,
    shell:
        "spbench report --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule sweep:
    input:
        experiment_scores("sweep"),
    output:
        report(
            f"{REPORT}/sweep/sweep.md",
            caption="../report/sweep.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/report/sweep.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params,
        out_dir=output_folder,
        impl=IMPL,
    shell:
        "spbench report --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule published:
    input:
        experiment_scores("published"),
    output:
        report(
            f"{REPORT}/published/table2.md",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "published weights"},
        ),
    log:
        f"{LOGS}/report/published.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        settings=report_params,
        out_dir=output_folder,
        impl=IMPL,
    shell:
        "spbench report --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule figures:
    input:
        predictions=list(qualitative_runs().values()),
        data=f"{DATA}/dataset.json",
    output:
        report(
            f"{REPORT}/figures/qualitative.png",
            caption="../report/qualitative.rst",
            category="Figures",
            labels={"figure": "qualitative"},
        ),
    log:
        f"{LOGS}/report/figures.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        data=input_folder("data"),
        predictions=qualitative_option,
        impl=IMPL,
    shell:
        "spbench qualitative {params.predictions} --data {params.data} --out {output} "
        "> {log} 2>&1"


rule provenance:
    input:
        all_checkpoints(),
    output:
        markdown=report(
            f"{REPORT}/provenance.md",
            caption="../report/provenance.rst",
            category="Runs",
        ),
        csv=f"{REPORT}/provenance.csv",
    log:
        f"{LOGS}/report/provenance.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        impl=IMPL,
    shell:
        "spbench provenance --checkpoints {input} --out {output.markdown} > {log} 2>&1"


rule report:
    input:
        report_targets(),
    localrule: True
