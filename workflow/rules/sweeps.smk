# Sensitivity sweeps (params.yaml `sweeps`, like the paper's Figure 7): each point of a sweep is
# a virtual method `{method}~{sweep}~{i}` whose params have the sweep's setting at value i, so
# every point is a set of ordinary jobs: a scoring-only point reads its base method's plans,
# answers and text features and costs a replay alone; a point that changes the queries plans
# them and asks the MLLM only for answers not in the cache. A point at the value params.yaml
# already has reads the main run's scores.
#   snakemake --cores 2 sweeps       -> results/sweeps/{sweep}.csv (figures: the report)
# Runs ants.stages.sweep_metrics (`ants sweep-metrics`).


rule sweep_metrics:
    input:
        sweep_score_files,
    output:
        template("sweep_csv"),
    params:
        view=lambda w: dumps(sweep_view(PARAMS, w.sweep)),
    log:
        log_path("sweeps", "sweep_csv"),
    benchmark:
        benchmark_path("sweeps", "sweep_csv")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants sweep-metrics --view-json {params.view:q} --out {output:q} > {log:q} 2>&1"


rule sweeps:
    input:
        expand(template("sweep_csv"), sweep=sweep_names()),
