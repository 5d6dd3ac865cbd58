# The paper's other tables (ants.paper_tables): the ablation (paper Table 4) from the points of
# the ablation sweep (params.yaml paper.ablation) -> results/paper/ablation.{csv,md,tex}; and the
# cost per image and MLLM calls per method (paper Tables 5-6 style) from the jobs' benchmark
# files -> reports/cost.{csv,md,tex} (run-dependent, beside the report: not a DVC output).
#   snakemake --cores 2 paper    Tables 1-3, the ablation, the cost table, the Figure 7 panels
#                                (params.yaml paper.panels) and the report
# Runs `ants ablation-table` and `ants cost-table` (ants.paper_tables).


if ablation_files():

    rule ablation_table:
        input:
            lambda w: artifacts.path("sweep_csv", sweep=PAPER["ablation"]),
        output:
            ablation_files(),
        params:
            view=lambda w: dumps(ablation_view()),
            out_dir=artifacts.folder("ablation_table"),
        log:
            log_path("ablation_table"),
        conda:
            "../envs/ants.yaml"
        shell:
            "ants ablation-table --sweep {input:q} --view-json {params.view:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


if cost_files():

    rule cost_table:
        input:
            scores=score_files(),
            answers=answer_logs(),
            sweeps=[artifacts.path("sweep_csv", sweep=s) for s in paper_sweep_names()],
        output:
            cost_files(),
        params:
            view=lambda w: dumps(cost_view()),
            out_dir=os.path.dirname(artifacts.REPORT_COST),
        log:
            log_path("cost_table"),
        conda:
            "../envs/ants.yaml"
        shell:
            "ants cost-table --view-json {params.view:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
