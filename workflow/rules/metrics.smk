# Metrics: AUROC, FPR@95 (both conventions), AUPR-In/Out and ID accuracy per stream, then mean
# and std over seeds per dataset and split average -> results/metrics.json (DVC metrics) and
# one CSV per benchmark; the ANTS per-batch trace for `dvc plots`.
# Runs ants.stages.compute_metrics (`ants compute-metrics`).


rule metrics:
    input:
        score_files(),
    output:
        json="results/metrics.json",
        csv=expand("results/metrics/{benchmark}.csv", benchmark=BENCHMARKS),
        variants=expand("results/metrics/{benchmark}_variants.csv", benchmark=BENCHMARKS),
        trace="results/plots/ants_trace.csv",
    params:
        view=as_param(metrics_view(PARAMS)),
    log:
        "results/logs/metrics.log",
    benchmark:
        "results/benchmarks/metrics.tsv"
    conda:
        "../envs/ants.yaml"
    shell:
        "ants compute-metrics --scores {input:q} --view-json {params.view:q} --out-json {output.json:q}"
        " --out-dir $(dirname {output.json:q})/metrics --plots {output.trace:q} > {log:q} 2>&1"
