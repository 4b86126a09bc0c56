# Report: Table 2 (Markdown, CSV, LaTeX), per-scale curves and the trade-off plots.


rule report:
    input:
        score_paths(),
    output:
        report_outputs(),
    log:
        f"{LOGS}/report/report.log",
    benchmark:
        f"{BENCH}/report/report.tsv"
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
