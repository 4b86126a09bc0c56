# Report: Table 2 (Markdown, CSV, LaTeX), per-scale curves and the trade-off plots.


rule report:
    input:
        score_paths(),
    output:
        report_outputs(),
    params:
        settings=report_params,
        out_dir=f"{RESULTS}/report",
        impl=IMPL,
    log:
        f"{LOGS}/report/report.log",
    benchmark:
        f"{BENCH}/report/report.tsv"
    conda:
        "../../environment.yml"
    localrule: True
    shell:
        "spbench report --settings {params.settings:q} --scores {input} "
        "--out-dir {params.out_dir} > {log} 2>&1 && cat {log}"
