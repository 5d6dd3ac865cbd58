# Helpers of the rules: validated params, input functions, the rule params -- thin glue.
# File paths are the templates of ants.artifacts (one home of the results layout); each rule
# passes as `params` exactly the config subset its output depends on (ants.views), so
# Snakemake's params trigger re-runs only the rules a changed setting affects.
# Everything imported here is torch-free (and pandas-free): parsing the workflow stays cheap
# (tests/integration/test_imports.py checks it).

import os
import re
import subprocess
import sys

from snakemake.exceptions import WorkflowError

from ants import artifacts
from ants.artifacts import benchmark_path, log_path, template
from ants.config import ConfigError, dvc_restore_hint, load_config_files, paper_sweeps
from ants.datasets.location import manifest_sources
from ants.methods import method_spec
from ants.views import (
    answer_config,
    answers_owner,
    envisioned_owner,
    eoe_answer_config,
    text_config,
    ants_methods,
    dumps,
    method_config,
    metrics_view,
    ood_sets,
    parse_scoring_name,
    plan_config,
    point_params,
    report_view,
    scoring_name,
    static_scoring,
    stream_key,
    sweep_points,
    sweep_view,
    tables_view,
    uses_random_weights,
)

# Rules call the `ants` console script of the interpreter that runs Snakemake.
os.environ.update(PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# A job that finds a damaged input file (truncated, garbage, wrong schema) moves it to
# results/damaged/ and fails with one line saying so: a plain re-run then rebuilds it.
os.environ[artifacts.SET_ASIDE_ENV] = "1"
# Offline mode is never forced here: the real models download from their hubs. Tests, CI and
# the Makefile set HF_HUB_OFFLINE=1 themselves; the demo's models are built locally.


def _config_files():
    """The files Snakemake merged into `config`, in its order: the Snakefile's `configfile:`
    (params.yaml; dropped by --replace-workflow-config), then every --configfile."""
    cli = [str(p) for p in workflow.overwrite_configfiles]  # --configfile, as absolute paths
    own = [str(p) for p in workflow.configfiles[len(cli):]]  # appended by `configfile:` (if present)
    return (own if not workflow.config_settings.replace_workflow_config else []) + cli


# Re-read the config files with ants' own loader (duplicate keys are errors, each problem names
# its file and key) and validate the merged whole before any job: bad params, a missing dataset
# root or image list fail here, at planning time (also at dry-run).
try:
    PARAMS = load_config_files(
        _config_files(),
        overrides=dict(workflow.config_settings.config),
    )  # against the schema shipped in the package (ants.config.SCHEMA_PATH)
except ConfigError as err:
    hint = dvc_restore_hint(_config_files())  # under `dvc exp run -S`: how to restore params.yaml
    raise WorkflowError(f"{err}\nNothing was run." + (f"\n{hint}" if hint else "")) from None

# A results folder that cannot be written (read-only, no permission) stops the run here with one
# line, before any job (Snakemake would fail on it with a traceback).
if not workflow.dryrun and (_unwritable := artifacts.unwritable_folder(artifacts.RESULTS)):
    raise WorkflowError(f"{_unwritable}\nNothing was run.")

BENCHMARKS = PARAMS["run"]["benchmarks"]
METHODS = PARAMS["run"]["methods"]
SEEDS = PARAMS["run"]["seeds"]
ANTS_METHODS = ants_methods(PARAMS)
STATIC_METHODS = [m for m in METHODS if m not in ANTS_METHODS]
MLLM_GPU = int(PARAMS["mllm"].get("gpu", PARAMS["mllm"]["backend"] == "transformers"))
DEMO = uses_random_weights(PARAMS)
DEMO_NOTE = (
    "NOTE: this run uses random-weight models (the offline demo: tiny CLIP and/or demo MLLM, "
    "generated images). Its numbers carry NO meaning."
)


def encode_gpu(backbone):
    """1 when the CLIP image encoder runs on a GPU (encoding.gpu, else device cuda*, or auto with
    real weights): the resource the SLURM profile turns into --gpus=1; the demo asks for none."""
    enc, bb = PARAMS["encoding"], PARAMS["backbones"][backbone]
    real = bool(bb.get("pretrained") or bb.get("weights_path"))
    return int(enc.get("gpu", enc["device"].startswith("cuda") or (enc["device"] == "auto" and real)))


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
    temperature=r"[0-9.eE+-]+",
    scoring=r"(csp-)?(size|groups)\d+-tau[^/]+-seed\d+|mcm-tau[^/]+",
    stream_key=r"[a-z_]+-bs\d+",


def announce(message=""):
    if DEMO:
        print(f"\n{DEMO_NOTE}\n", file=sys.stderr)
    if message:
        print(message, file=sys.stderr)


#: lines of a failed job's log printed in the terminal (the whole log stays in results/logs/)
FAILED_LOG_LINES = 60


def show_failed_logs():
    """Print the end of each failed job's log (`onerror`). The workflow profile hides
    Snakemake's job blocks (`quiet: [rules]`), and with them its error blocks and the logs that
    `show-failed-logs` would print; this prints them instead, once. Under a profile that shows
    the job blocks (e.g. profiles/slurm), Snakemake prints them itself and this prints nothing."""
    from snakemake.settings.enums import Quietness

    if Quietness.RULES not in (workflow.output_settings.quiet or ()):
        return
    failed = getattr(getattr(workflow, "scheduler", None), "failed", None) or ()
    for job in sorted(failed, key=lambda j: (j.rule.name, str(j.wildcards))):
        wildcards = ", ".join(f"{k}={v}" for k, v in job.wildcards_dict.items())
        print(f"\nError in rule {job.rule.name}" + (f" ({wildcards})" if wildcards else ""), file=sys.stderr)
        for log in map(str, job.log):
            if not os.path.isfile(log):
                print(f"  log {log}: not written", file=sys.stderr)
                continue
            with open(log, encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
            cut = len(lines) - FAILED_LOG_LINES
            print(f"  log {log}" + (f" (its last {FAILED_LOG_LINES} of {len(lines)} lines)" if cut > 0 else "")
                  + ":", file=sys.stderr)
            for line in lines[max(cut, 0):]:
                print(f"  | {line}", file=sys.stderr)


def metrics_summary():
    """Print THIS run's metrics summary (`ants metrics --brief`): the merged config's benchmarks
    and methods (its tables view, never params.yaml's), its seeds' answers logs alone. When this
    config's metrics are not built, or older than its score files (a run of another target),
    say so instead of showing numbers that are not this run's."""
    tables = [artifacts.path("metrics_csv", benchmark=b) for b in BENCHMARKS]
    scores = score_files()
    missing = [f for f in [template("metrics_json"), *tables, *scores] if not os.path.exists(f)]
    if missing or min(map(os.path.getmtime, tables)) < max(map(os.path.getmtime, scores)):
        state = "not built" if missing else "older than its scores"
        print(f"The metrics of this config are {state}: `snakemake all` builds them.", file=sys.stderr)
        return
    cmd = ["ants", "metrics", "--brief", "--view-json", dumps(tables_view(PARAMS)), "--answers", *answer_logs()]
    subprocess.run(cmd + (["--demo"] if DEMO else []), check=False)


# -- paths ---------------------------------------------------------------------------------------


def bench(wildcards):
    """The benchmark section of the job: of its method's params when the job has a method (a
    sweep point may change the backbone: its jobs read that backbone's features), else of
    params.yaml."""
    params = point_params(PARAMS, wildcards.method)[0] if hasattr(wildcards, "method") else PARAMS
    return params["benchmarks"][wildcards.benchmark]


def embeddings(backbone, dataset):
    return artifacts.path("embeddings", backbone=backbone, dataset=dataset)


def split_of(wildcards):
    for split, ds in ood_sets(PARAMS, wildcards.benchmark):
        if ds == wildcards.ood:
            return split
    raise WorkflowError(f"dataset {wildcards.ood!r} is not an OOD set of benchmark {wildcards.benchmark!r}")


def stream_name(wildcards):
    return artifacts.stream_id(wildcards.benchmark, wildcards.method, wildcards.ood, wildcards.seed)


def kind_of(method):
    """The detector kind (``methods.<m>.method``) of a method or sweep point."""
    params, base = point_params(PARAMS, method)
    return params["methods"][base]["method"]


def is_ants(method):
    return method_spec(kind_of(method)).uses_answers


def streams_of(benchmark, methods):
    """(method, ood, seed) of every stream of ``benchmark`` for ``methods``."""
    return [(m, ood, s) for m in methods for _, ood in ood_sets(PARAMS, benchmark) for s in SEEDS]


def stream_path(benchmark, method, ood, seed):
    return artifacts.path("stream", benchmark=benchmark, ood=ood, stream_key=stream_key(PARAMS, method),
                          seed=seed)


def per_stream(kind, benchmark, method, ood, seed):
    """Path of one stream's file of ``kind`` (scores, plan, answers, negative_text)."""
    return artifacts.path(kind, benchmark=benchmark, method=method, ood=ood, seed=seed)


def score_files(methods=None):
    return [per_stream("scores", b, m, ood, s) for b in BENCHMARKS
            for m, ood, s in streams_of(b, METHODS if methods is None else methods)]


def answer_logs():
    """Every ANTS stream's answers log (the negatives log, one file per stream)."""
    return [per_stream("answers", b, m, ood, s) for b in BENCHMARKS for m, ood, s in streams_of(b, ANTS_METHODS)]


def static_file(benchmark, method, dataset):
    """The shared static pass ``method`` reads for ``dataset`` on ``benchmark`` (of the method's
    params: a sweep point may change the backbone)."""
    b = point_params(PARAMS, method)[0]["benchmarks"][benchmark]
    scoring = scoring_name(static_scoring(PARAMS, method))
    return artifacts.path("static", backbone=b["backbone"], label_set=b["label_set"], dataset=dataset,
                          scoring=scoring)


def static_path(wildcards, dataset):
    return static_file(wildcards.benchmark, wildcards.method, dataset)


def stream_inputs(wildcards):
    b = bench(wildcards)
    return {
        "id": embeddings(b["backbone"], b["id"]),
        "ood": embeddings(b["backbone"], wildcards.ood),
    }


def scoring_inputs(wildcards):
    """What one method reads for one stream (:class:`ants.methods.MethodSpec`): the stream,
    the image embeddings, the ID text features, and, where it uses them, the mined negatives
    and the shared static pass of both datasets."""
    b = bench(wildcards)
    spec = method_spec(kind_of(wildcards.method))
    files = {
        "stream": stream_path(wildcards.benchmark, wildcards.method, wildcards.ood, wildcards.seed),
        **stream_inputs(wildcards),
        "text": artifacts.path("id_text", backbone=b["backbone"], label_set=b["label_set"]),
    }
    if spec.uses_negatives:
        files["negatives"] = artifacts.path("negatives", backbone=b["backbone"], label_set=b["label_set"])
    if static_scoring(PARAMS, wildcards.method) is not None:
        files["static_id"] = static_path(wildcards, b["id"])
        files["static_ood"] = static_path(wildcards, wildcards.ood)
    if spec.uses_local:
        files["local_id"] = local_path(wildcards, b["id"])
        files["local_ood"] = local_path(wildcards, wildcards.ood)
    if spec.uses_envisioned:
        owner = envisioned_owner(PARAMS, wildcards.method)
        files["envisioned"] = artifacts.path("envisioned_text", backbone=b["backbone"], label_set=b["label_set"],
                                             method=owner)
    return files


def local_key(benchmark, method, dataset):
    """The wildcards of the file of GL-MCM's local term (artifact ``local``) of a dataset's
    images for the method's backbone, ID label set and temperature."""
    params, base = point_params(PARAMS, method)
    b = params["benchmarks"][benchmark]
    t = float(params["methods"][base]["temperature"])
    return {"backbone": b["backbone"], "label_set": b["label_set"], "dataset": dataset, "temperature": f"{t:g}"}


def local_path(wildcards, dataset):
    return artifacts.path("local", **local_key(wildcards.benchmark, wildcards.method, dataset))


def eoe_methods():
    """The active EOE methods (run.methods whose kind reads envisioned labels)."""
    return [m for m in METHODS if method_spec(kind_of(m)).uses_envisioned]


def envisioned_logs():
    """The answers log of every active EOE method's envisioned labels (per label set)."""
    return sorted({artifacts.path("envisioned", label_set=PARAMS["benchmarks"][b]["label_set"], method=m)
                   for b in BENCHMARKS for m in eoe_methods()})


def ants_inputs(wildcards):
    """An ANTS score job's inputs: :func:`scoring_inputs`, the stream's answers log and the
    text features of its negatives."""
    w = wildcards
    owner = answers_owner(PARAMS, w.method)
    return {**scoring_inputs(w), "answers": per_stream("answers", w.benchmark, owner, w.ood, w.seed),
            "negative_text": per_stream("negative_text", w.benchmark, owner, w.ood, w.seed)}


def score_options(wildcards, input):
    """The ``ants score`` options naming the inputs the method reads."""
    flags = {"id": "--id-embeddings", "ood": "--ood-embeddings", "text": "--text", "negatives": "--negatives",
             "static_id": "--static-id", "static_ood": "--static-ood", "answers": "--answers",
             "negative_text": "--negative-text", "local_id": "--local-id", "local_ood": "--local-ood",
             "envisioned": "--envisioned"}
    return " ".join(f"{flag} '{input[key]}'" for key, flag in flags.items() if key in input.keys())


def manifest_inputs(wildcards):
    """The files a manifest is built from: its image list wherever the manifest stage reads it
    (relative to the dataset root included), the demo's list, a download's extracted folder
    (ants.datasets.location, the one resolver)."""
    return manifest_sources(wildcards.dataset, PARAMS["datasets"][wildcards.dataset])


def label_set_inputs(wildcards):
    """The label set's file (when it is one) and a negatives list (``mining.source: file``)."""
    cfg = PARAMS["label_sets"][wildcards.label_set]
    files = [cfg["file"]] if "file" in cfg else []
    if PARAMS["mining"]["source"] == "file":
        files.append(PARAMS["mining"]["file"])
    return files


def negatives_path(backbone, label_set, detector="neglabel"):
    """The negative bank of a static pass: the mined one (``mining``), or the CSP-mined one for
    ANTS's ``initial_detector: csp`` (the mined one when ``mining`` already selects CSP)."""
    if detector == "csp" and not (PARAMS["mining"]["source"] == "wordnet"
                                  and PARAMS["mining"]["selection"] == "csp"):
        return artifacts.path("negatives_csp", backbone=backbone, label_set=label_set)
    return artifacts.path("negatives", backbone=backbone, label_set=label_set)


def static_inputs(wildcards):
    """A static pass reads the image features, the ID text and the negatives of its detector
    (an MCM pass none)."""
    w = wildcards
    files = {"embeddings": artifacts.path("embeddings", backbone=w.backbone, dataset=w.dataset),
             "text": artifacts.path("id_text", backbone=w.backbone, label_set=w.label_set)}
    detector = parse_scoring_name(w.scoring).get("detector", "neglabel")
    if detector != "mcm":
        files["negatives"] = negatives_path(w.backbone, w.label_set, detector)
    return files


def versioned_outputs():
    """Every file of this run that DVC versions (dvc.yaml's outs) besides the metrics, tables
    and figures: the generated or downloaded data, manifests, image embeddings, ID text
    features and mined negatives, static passes, GL-MCM's local terms, EOE's envisioned labels
    and their text features, streams, plans, answers logs, the negatives' text features and
    scores. `all` (and `dvc repro`, which runs it) requires each, so a missing one is rebuilt (an
    answers log from the answer cache, nothing asked twice) instead of being recorded as gone."""
    files = score_files() + envisioned_logs()
    for b in BENCHMARKS:
        bench = PARAMS["benchmarks"][b]
        backbone, label_set = bench["backbone"], bench["label_set"]
        for ds in [bench["id"]] + [o for _, o in ood_sets(PARAMS, b)]:
            cfg = PARAMS["datasets"][ds]
            files += [artifacts.path("manifest", dataset=ds), embeddings(backbone, ds)]
            if cfg["source"] != "local":  # the demo's lists, a download's folder: rule outputs
                files += manifest_sources(ds, cfg)
            files += [static_file(b, m, ds) for m in METHODS if static_scoring(PARAMS, m) is not None]
            files += [artifacts.path("local", **local_key(b, m, ds)) for m in METHODS
                      if method_spec(kind_of(m)).uses_local]
        files += [artifacts.path(kind, backbone=backbone, label_set=label_set) for kind in ("id_text", "negatives")]
        label_file = PARAMS["label_sets"][label_set].get("file", "")
        if label_file.startswith(artifacts.RESULTS + "/"):  # written by a rule (the demo's class names)
            files.append(label_file)
        files += [artifacts.path("envisioned_text", backbone=backbone, label_set=label_set, method=m)
                  for m in eoe_methods()]
        for m, ood, s in streams_of(b, METHODS):
            files.append(stream_path(b, m, ood, s))
        for m, ood, s in streams_of(b, ANTS_METHODS):
            owner = answers_owner(PARAMS, m)
            files += [per_stream(kind, b, owner, ood, s) for kind in ("plan", "answers", "negative_text")]
    return sorted(set(files))


def report_inputs(wildcards):
    datasets = sorted(
        {(PARAMS["benchmarks"][b]["backbone"], ds) for b in BENCHMARKS
         for ds in [PARAMS["benchmarks"][b]["id"]] + [o for _, o in ood_sets(PARAMS, b)]}
    )
    texts = sorted({(PARAMS["benchmarks"][b]["backbone"], PARAMS["benchmarks"][b]["label_set"]) for b in BENCHMARKS})
    return {
        "metrics": template("metrics_json"),
        "scores": score_files(),
        "answers": answer_logs(),
        "negatives": [artifacts.path("negatives", backbone=bb, label_set=ls) for bb, ls in texts],
        "embeddings": [embeddings(bb, ds) for bb, ds in datasets],
        "sweeps": report_sweeps(),
    }


def report_sweeps():
    """The sweep tables the report draws: those already built, and all of them when this run
    builds the `sweeps` target too (`snakemake tables sweeps report`), so the report waits."""
    wanted = "sweeps" in sys.argv[1:]
    paper = "paper" in sys.argv[1:]
    names = list(dict.fromkeys(sweep_names() + paper_sweep_names()))
    files = {s: artifacts.path("sweep_csv", sweep=s) for s in names}
    return [f for s, f in files.items()
            if (wanted and s in sweep_names()) or (paper and s in paper_sweep_names()) or os.path.exists(f)]


def metric_tables():
    """Per-benchmark metric tables (with ANTS's variants) and the ANTS trace (for `dvc plots`)."""
    return [artifacts.path(kind, benchmark=b) for b in BENCHMARKS for kind in ("metrics_csv", "variants_csv")] + [
        template("trace_csv")
    ]


def report_figures():
    """The report's figures: ROC curves per benchmark, score histograms of every method, ANTS's
    threshold and lambda (the sensitivity figures of sweeps built earlier are not listed)."""
    roc = [artifacts.REPORT_FIGURE.format(name=f"roc_{b}") for b in BENCHMARKS]
    hist = [artifacts.REPORT_FIGURE.format(name=f"hist_{b}_{m}") for b in BENCHMARKS for m in METHODS]
    trace = [artifacts.REPORT_FIGURE.format(name=f"trace_{b}_{m}") for b in BENCHMARKS for m in ANTS_METHODS]
    return roc + hist + trace


def table_files():
    """The paper-shaped tables: per benchmark, and its ANTS variants when ANTS runs."""
    stems = list(BENCHMARKS) + ([f"{b}_ants_variants" for b in BENCHMARKS] if ANTS_METHODS else [])
    return [artifacts.path("tables", stem=s, ext=ext) for s in stems for ext in ("csv", "md", "tex")]


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


def text_json(wildcards):
    return dumps({"config": text_config(PARAMS, wildcards.method)})


def answer_json(wildcards):
    return dumps(answer_config(PARAMS, wildcards.method))


def stream_json(wildcards):
    order, batch = wildcards.stream_key.rsplit("-bs", 1)
    return dumps({"order": order, "batch_size": int(batch)})


def static_json(wildcards):
    return dumps(parse_scoring_name(wildcards.scoring))


def method_json(wildcards):
    return dumps(method_config(PARAMS, wildcards.method, split_of(wildcards)))


def backbone_json(wildcards):
    name = wildcards.backbone if hasattr(wildcards, "backbone") else bench(wildcards)["backbone"]
    return dumps(PARAMS["backbones"][name])


def text_store(wildcards):
    """The content-addressed store of the negatives' text features of one backbone."""
    return artifacts.path("text_store", backbone=bench(wildcards)["backbone"])


# -- sweeps (params.yaml `sweeps`; built by `snakemake sweeps`) ---------------------------------


def sweep_names():
    return list(PARAMS["run"].get("sweeps") or PARAMS.get("sweeps") or {})


def sweep_score_files(wildcards):
    return sorted({f[3] for p in sweep_view(PARAMS, wildcards.sweep)["points"] for f in p["files"]})


# -- the paper (params.yaml `paper`; built by `snakemake paper`) -------------------------------

PAPER = PARAMS.get("paper") or {"tables": ["methods", "ants_variants"], "panels": []}


def paper_sweep_names():
    """The sweeps `snakemake paper` builds: the Figure 7 panels and the ablation's sweep."""
    return paper_sweeps(PARAMS)


def ablation_files():
    if "ablation" not in PAPER["tables"]:
        return []
    return [artifacts.path("ablation_table", stem="ablation", ext=ext) for ext in ("csv", "md", "tex")]


def cost_files():
    return [artifacts.REPORT_COST.format(ext=ext) for ext in ("csv", "md", "tex")] if "cost" in PAPER["tables"] else []


def _wanted_or_present(target, files):
    """``files`` when this run builds ``target`` (so the report waits for them), else those
    already built (a later `snakemake all` keeps the same inputs: nothing to redo)."""
    wanted = target in sys.argv[1:]
    return [f for f in files if wanted or os.path.exists(f)]


def ablation_view():
    """The ablation sweep's points as rows (label, value, base method) and the tables' view."""
    name = PAPER["ablation"]
    spec = PARAMS["sweeps"][name]
    labels = spec.get("labels") or spec["values"]
    rows = [{"label": labels[i], "value": spec["values"][i], "method": base}
            for _, base, i in sweep_points(PARAMS, name)]
    return {**tables_view(PARAMS), "ablation": {"sweep": name, "rows": rows}}


def _tsv(rule, kind, **wildcards):
    """A job's benchmark file (Snakemake's `benchmark:`), as the rule names it."""
    return benchmark_path(rule, kind).format(**wildcards)


def cost_view():
    """Per (benchmark, method of run.methods): the benchmark files of every job behind its
    scores, its embeddings and score files, its answers logs with their timing sidecars."""
    rows = []
    for b in BENCHMARKS:
        spec = PARAMS["benchmarks"][b]
        bb, ls = spec["backbone"], spec["label_set"]
        datasets = [spec["id"]] + [o for _, o in ood_sets(PARAMS, b)]
        for m in METHODS:
            streams = streams_of(b, [m])
            per = [dict(benchmark=b, method=m, ood=o, seed=s) for _, o, s in streams]
            parts = {"embed": [_tsv("embed_images", "embeddings", backbone=bb, dataset=ds) for ds in datasets],
                     "score": [_tsv("score", "scores", **w) for w in per]}
            scoring = static_scoring(PARAMS, m)
            if scoring is not None:
                parts["static"] = [_tsv("static", "static", backbone=bb, label_set=ls, dataset=ds,
                                        scoring=scoring_name(scoring)) for ds in datasets]
            answers = []
            kind = method_spec(kind_of(m))
            if kind.uses_local:
                parts["local"] = [_tsv("local_features", "local", **local_key(b, m, ds)) for ds in datasets]
            if kind.uses_envisioned:
                owner = envisioned_owner(PARAMS, m)
                parts["llm"] = [_tsv("envision", "envisioned", label_set=ls, method=owner)]
                parts["encode"] = [_tsv("encode_envisioned", "envisioned_text", backbone=bb, label_set=ls,
                                        method=owner)]
                answers = [[artifacts.path("envisioned", label_set=ls, method=owner),
                            artifacts.path("envision_timings", label_set=ls, method=owner)]]
            if is_ants(m):
                for key, rule, out in (("plan", "plan", "plan"), ("answer", "answer", "answers"),
                                       ("encode", "encode_negatives", "negative_text")):
                    parts[key] = [_tsv(rule, out, **w) for w in per]
                answers = [[artifacts.path("answers", **w), artifacts.path("timings", **w)] for w in per]
            rows.append({"benchmark": b, "method": m, "label": PARAMS["methods"][m].get("label", m),
                         "embeddings": [embeddings(bb, ds) for ds in datasets],
                         "scores": [per_stream("scores", b, m, o, s) for _, o, s in streams],
                         "parts": parts, "answers": answers})
    return {"rows": rows}
