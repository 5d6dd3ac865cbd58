# The HTML report (ants.report.build_report, `ants report`): one self-contained page (figures and thumbnails inlined) with the
# paper-shaped tables first, ROC curves and score distributions, ANTS's stream traces, the
# sensitivity figures (results/sweeps/*.csv when sweeps ran), the MLLM negatives (thumbnails beside
# sentences, VSNL labels, failed answers) and the provenance. Figures also go to reports/figures/.
#   snakemake --cores 2 report

def report_view_full():
    """ants.views.report_view plus the paper's Figure 7 panels (their figures come first)."""
    return {**report_view(PARAMS), "paper": {"panels": PAPER["panels"]}}


def report_extras(wildcards):
    """The ablation and cost tables (CSV) the report shows: when `snakemake paper` builds them, or
    when they were built before."""
    out = {}
    for key, files in (("ablation", ablation_files()), ("cost", cost_files())):
        found = _wanted_or_present("paper", files[:1])
        if found:
            out[key] = found[0]
    return out


rule report:
    input:
        unpack(report_inputs),
        unpack(report_extras),
        tables=table_files(),
    output:
        html=artifacts.REPORT,
        figures=report_figures(),
    params:
        view=as_param(report_view_full()),
        extras=lambda w, input: " ".join(f"--{k} '{input[k]}'" for k in ("ablation", "cost") if k in input.keys()),
    log:
        log_path("report"),
    benchmark:
        benchmark_path("report")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants report --metrics {input.metrics:q} --scores {input.scores:q} --answers {input.answers:q}"
        " --negatives {input.negatives:q} --embeddings {input.embeddings:q} --view-json {params.view:q}"
        " {params.extras} --out {output.html:q} > {log:q} 2>&1"
