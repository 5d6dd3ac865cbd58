# Tables shaped like the paper's (ants.tables.write_tables, `ants tables`): per benchmark, methods x OOD sets (FPR95 in both
# named conventions, AUROC; mean ± std over seeds; published value and difference beside; the
# preset of each ANTS / AdaNeg row), and ANTS's variants side by side (ada, far_only, near_only,
# oracle). CSV (long), Markdown and LaTeX (booktabs) under results/tables/.
#   snakemake --cores 2 tables

from ants.views import tables_view


def table_files():
    stems = [b for b in BENCHMARKS] + ([f"{b}_ants_variants" for b in BENCHMARKS] if ANTS_METHODS else [])
    return [f"results/tables/{s}.{ext}" for s in stems for ext in ("csv", "md", "tex")]


rule tables:
    input:
        csv=expand("results/metrics/{benchmark}.csv", benchmark=BENCHMARKS),
        scores=[f for f in score_files() if f.split("/")[3] in ANTS_METHODS],
    output:
        table_files(),
    params:
        view=as_param(tables_view(PARAMS)),
    log:
        "results/logs/tables.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants tables --view-json {params.view:q} --metrics-dir results/metrics --out-dir results/tables"
        " --scores {input.scores:q} > {log:q} 2>&1"
