# Tables shaped like the paper's (ants.tables.write_tables, `ants tables`): per benchmark, methods x OOD sets (FPR95 in both
# named conventions, AUROC; mean ± std over seeds; published value and difference beside; the
# preset of each ANTS / AdaNeg row), and ANTS's variants side by side (ada, far_only, near_only,
# oracle). CSV (long), Markdown and LaTeX (booktabs) under results/tables/.
#   snakemake --cores 2 tables

rule tables:
    input:
        csv=expand(template("metrics_csv"), benchmark=BENCHMARKS),
        variants=expand(template("variants_csv"), benchmark=BENCHMARKS),
    output:
        table_files(),
    params:
        view=as_param(tables_view(PARAMS)),
    log:
        log_path("tables"),
    benchmark:
        benchmark_path("tables")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants tables --view-json {params.view:q} --metrics-dir $(dirname {input.csv[0]:q})"
        " --out-dir $(dirname {output[0]:q}) > {log:q} 2>&1"
