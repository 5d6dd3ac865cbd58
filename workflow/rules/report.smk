# The HTML report: metric tables (mean ± std over seeds) beside the published numbers, score
# histograms, the ANTS threshold and lambda over batches, samples of the generated negatives.


rule report:
    input:
        unpack(report_inputs),
    output:
        html="reports/index.html",
        figures=report_figures(),
    params:
        view=as_param(report_view(PARAMS)),
    log:
        "results/logs/report.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q report --metrics {input.metrics:q} --scores {input.scores:q} --answers {input.answers:q}"
        " --negatives {input.negatives:q} --embeddings {input.embeddings:q} --view-json {params.view:q}"
        " --out {output.html:q} > {log:q} 2>&1"
