# Metrics: AUROC, FPR@95 (both conventions), AUPR-In/Out and ID accuracy per stream, then mean
# and std over seeds per dataset and split average -> one CSV per benchmark (+ ANTS variants);
# results/metrics.json (DVC metrics): the far/near averages' AUROC and FPR95 only, from the CSV;
# the ANTS per-batch trace for `dvc plots`.
# Runs ants.stages.compute_metrics (`ants compute-metrics`).


rule metrics:
    input:
        score_files(),
    output:
        json=template("metrics_json"),
        csv=expand(template("metrics_csv"), benchmark=BENCHMARKS),
        variants=expand(template("variants_csv"), benchmark=BENCHMARKS),
        trace=template("trace_csv"),
    params:
        view=as_param(metrics_view(PARAMS)),
    log:
        log_path("metrics"),
    benchmark:
        benchmark_path("metrics")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants compute-metrics --scores {input:q} --view-json {params.view:q} --out-json {output.json:q}"
        " --out-dir $(dirname {output.csv[0]:q}) --plots {output.trace:q} > {log:q} 2>&1"
