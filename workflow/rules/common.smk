# Helpers of the rules: validated params, file paths, input functions, the rule params.
# Each rule passes as `params` exactly the config subset its output depends on (ants.config's
# views), so Snakemake's params trigger re-runs only the rules a changed setting affects.

import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from ants.config import ConfigError, load_schema, validate_params
from ants.views import (
    ants_methods,
    backend_config,
    dumps,
    method_config,
    metrics_view,
    ood_sets,
    plan_config,
    report_view,
)

# Rules call the `ants` console script of the interpreter that runs Snakemake.
os.environ.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    PARAMS = validate_params(
        config, schema=load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "params.schema.yaml")
    )
except ConfigError as err:
    raise WorkflowError(f"{err}\nNothing was run.") from None

BENCHMARKS = PARAMS["run"]["benchmarks"]
METHODS = PARAMS["run"]["methods"]
SEEDS = PARAMS["run"]["seeds"]
ANTS_METHODS = ants_methods(PARAMS)
STATIC_METHODS = [m for m in METHODS if m not in ANTS_METHODS]
MLLM_GPU = int(PARAMS["mllm"].get("gpu", PARAMS["mllm"]["backend"] == "transformers"))
DEMO = PARAMS["mllm"]["backend"] == "demo" or any(
    not (PARAMS["backbones"][PARAMS["benchmarks"][b]["backbone"]].get("pretrained")
         or PARAMS["backbones"][PARAMS["benchmarks"][b]["backbone"]].get("weights_path"))
    for b in BENCHMARKS
)
DEMO_NOTE = (
    "NOTE: this run uses random-weight models (the offline demo: tiny CLIP and/or demo MLLM, "
    "generated images). Its numbers carry NO meaning."
)


def _alternatives(names):
    """A wildcard regex matching exactly ``names`` (none: a pattern that never matches)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    dataset=r"[^/]+",
    backbone=r"[^/]+",
    label_set=r"[^/]+",
    benchmark=r"[^/]+",
    method=r"[^/]+",
    ood=r"[^/]+",
    seed=r"\d+",


def announce(message=""):
    if DEMO:
        print(f"\n{DEMO_NOTE}\n", file=sys.stderr)
    if message:
        print(message, file=sys.stderr)


# -- paths ---------------------------------------------------------------------------------------


def bench(wildcards):
    return PARAMS["benchmarks"][wildcards.benchmark]


def embeddings(backbone, dataset):
    return f"results/embeddings/{backbone}/{dataset}.parquet"


def split_of(wildcards):
    for split, ds in ood_sets(PARAMS, wildcards.benchmark):
        if ds == wildcards.ood:
            return split
    raise WorkflowError(f"dataset {wildcards.ood!r} is not an OOD set of benchmark {wildcards.benchmark!r}")


def stream_name(wildcards):
    return f"{wildcards.benchmark}/{wildcards.method}/{wildcards.ood}/seed{wildcards.seed}"


def streams_of(benchmark, methods):
    """(method, ood, seed) of every stream of ``benchmark`` for ``methods``."""
    return [(m, ood, s) for m in methods for _, ood in ood_sets(PARAMS, benchmark) for s in SEEDS]


def score_files():
    return [
        f"results/scores/{b}/{m}/{ood}/seed{s}.parquet" for b in BENCHMARKS for m, ood, s in streams_of(b, METHODS)
    ]


def plan_files(wildcards):
    return [
        f"results/plans/{wildcards.benchmark}/{m}/{ood}/seed{s}.parquet"
        for m, ood, s in streams_of(wildcards.benchmark, ANTS_METHODS)
    ]


def answer_logs():
    return [f"results/answers/{b}.parquet" for b in BENCHMARKS] if ANTS_METHODS else []


def stream_inputs(wildcards):
    b = bench(wildcards)
    return {
        "id": embeddings(b["backbone"], b["id"]),
        "ood": embeddings(b["backbone"], wildcards.ood),
    }


def scoring_inputs(wildcards):
    """Stream, image embeddings, ID text features and mined negatives of one stream."""
    b = bench(wildcards)
    return {
        "stream": f"results/streams/{wildcards.benchmark}/{wildcards.ood}/seed{wildcards.seed}.parquet",
        **stream_inputs(wildcards),
        "text": f"results/text/{b['backbone']}/{b['label_set']}.parquet",
        "negatives": f"results/negatives/{b['backbone']}/{b['label_set']}.parquet",
    }


def manifest_inputs(wildcards):
    cfg = PARAMS["datasets"][wildcards.dataset]
    if cfg["source"] == "demo":
        return [f"results/data/demo/{cfg['split']}.txt"]
    if cfg["source"] == "download":
        return [f"results/data/downloads/{wildcards.dataset}/extracted"]
    return [cfg["list"]] if cfg.get("layout") == "list" and cfg.get("list") and os.path.isfile(cfg["list"]) else []


def label_set_inputs(wildcards):
    cfg = PARAMS["label_sets"][wildcards.label_set]
    return [cfg["file"]] if "file" in cfg else []


def report_inputs(wildcards):
    datasets = sorted(
        {(PARAMS["benchmarks"][b]["backbone"], ds) for b in BENCHMARKS
         for ds in [PARAMS["benchmarks"][b]["id"]] + [o for _, o in ood_sets(PARAMS, b)]}
    )
    texts = sorted({(PARAMS["benchmarks"][b]["backbone"], PARAMS["benchmarks"][b]["label_set"]) for b in BENCHMARKS})
    return {
        "metrics": "results/metrics.json",
        "scores": score_files(),
        "answers": answer_logs(),
        "negatives": [f"results/negatives/{bb}/{ls}.parquet" for bb, ls in texts],
        "embeddings": [embeddings(bb, ds) for bb, ds in datasets],
    }


def metric_tables():
    """Per-benchmark metric tables and the ANTS trace (for `dvc plots`)."""
    return [f"results/metrics/{b}.csv" for b in BENCHMARKS] + ["results/plots/ants_trace.csv"]


def report_figures():
    """The report's figures: score histograms of every method, ANTS's threshold and lambda."""
    hist = [f"reports/figures/hist_{b}_{m}.png" for b in BENCHMARKS for m in METHODS]
    trace = [f"reports/figures/trace_{b}_{m}.png" for b in BENCHMARKS for m in ANTS_METHODS]
    return hist + trace


# -- the params of each rule (canonical JSON of the config subset it depends on) -----------------


def as_param(obj):
    """A rule param holding ``obj`` as canonical JSON. A function, so that Snakemake does not
    read the braces of the JSON (or of a prompt's ``{c}``) as wildcards."""
    text = dumps(obj)
    return lambda wildcards: text


def encoding_json(*keys):
    return as_param({k: PARAMS["encoding"][k] for k in keys})


def plan_json(wildcards):
    return dumps(plan_config(PARAMS, wildcards.method))


def method_json(wildcards):
    return dumps(method_config(PARAMS, wildcards.method, split_of(wildcards)))


def backbone_json(wildcards):
    name = wildcards.backbone if hasattr(wildcards, "backbone") else bench(wildcards)["backbone"]
    return dumps(PARAMS["backbones"][name])
