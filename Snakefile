# ANTS reproduction workflow. One Snakefile of includes; one topic per workflow/rules/*.smk.
#   snakemake --cores 2 all        build everything out of date (params.yaml = the config)
#   snakemake -n                   what would run
#   snakemake --cores 2 paper      the whole paper: tables, ablation, cost, Figure 7 panels, report
# params.yaml is validated against ants/schemas/params.schema.yaml before any job runs.

from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/negatives.smk"
include: "workflow/rules/static.smk"
include: "workflow/rules/streams.smk"
include: "workflow/rules/mllm.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/report.smk"


# `all` (and `dvc repro`, which runs it) requires every file DVC versions, so a missing one
# is rebuilt: an answers log from the answer cache, without asking the MLLM again.
rule all:
    default_target: True
    input:
        template("metrics_json"),
        metric_tables(),
        table_files(),
        artifacts.REPORT,
        report_figures(),
        versioned_outputs(),


rule paper:
    input:
        table_files() if "methods" in PAPER["tables"] or "ants_variants" in PAPER["tables"] else [],
        [artifacts.path("sweep_csv", sweep=s) for s in paper_sweep_names()],
        ablation_files(),
        cost_files(),
        artifacts.REPORT,
        report_figures(),


onstart:
    announce()


onerror:
    show_failed_logs()


onsuccess:
    announce()
    metrics_summary()
    print(f"Metrics: {template('metrics_json')}, {artifacts.folder('tables')}/; report: {artifacts.REPORT}",
          file=sys.stderr)
