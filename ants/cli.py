"""The ``ants`` command: thin subcommands over :mod:`ants.stages`, plus inspection commands.

Stage commands (called by the Snakemake rules; settings arrive as canonical JSON, the exact
config subset the rule passes as ``params``)::

    ants demo-data     --demo-json J --out DIR
    ants download      --dataset NAME --dataset-json J --out DIR
    ants manifest      --dataset NAME --dataset-json J --out FILE [--no-check-images]
                       [--max-pixels N]
    ants embed-images  --manifest F --backbone-json J --encoding-json J --on-bad-image fail|skip
                       [--max-pixels N] --out F
    ants embed-labels  --label-set-json J --backbone-json J --encoding-json J --mining-json J
                       --out-text F --out-negatives F
    ants mine-negatives --label-set-json J --backbone-json J --encoding-json J --mining-json J
                       --out F
    ants stream        --id-embeddings F --ood-embeddings F --seed N --stream-json J --out F
    ants static        --embeddings F --text F [--negatives F] --scoring-json J --out F
    ants plan          --stream F --id-embeddings F --ood-embeddings F --text F --static-id F
                       --static-ood F --plan-json J --stream-id S --out F
    ants answer        --plan F --answer-json J --cache F --out F [--timings F]
    ants encode-negatives --answers F --method-json J --backbone-json J --encoding-json J
                       --store F --out F
    ants local-features --embeddings F --text F --backbone-json J --encoding-json J
                       --temperature T --out F
    ants envision      --label-set-json J --method-json J --answer-json J --cache F --stream-id S
                       --out F [--timings F]
    ants encode-envisioned --answers F --label-set-json J --method-json J --backbone-json J
                       --encoding-json J --store F --out F
    ants score         --stream F --method-json J --stream-id S --out F  + the inputs its method
                       reads: --id-embeddings --ood-embeddings --text --negatives --static-id
                       --static-ood --answers --negative-text --local-id --local-ood --envisioned
    ants compute-metrics --scores F... --view-json J --out-json F --out-dir DIR --plots F
    ants sweep-metrics --view-json J --out F
    ants ablation-table --sweep F --view-json J --out-dir DIR
    ants cost-table    --view-json J --out-dir DIR
    ants report        --metrics F --scores F... --answers F... --negatives F... --view-json J --out F

Inspection (:mod:`ants.cli_inspect`; ``ants COMMAND --help``)::

    ants config check [params.yaml [configs/X.yaml ...]]  validate the merged whole (exit 2 when invalid)
    ants config merge params.yaml configs/X.yaml --out F  write the merged, validated whole
    ants answers ...  ants negatives ...  ants metrics ...  ants cache ...

Exit status: 0 on success, 2 for bad input (a clear message on stderr naming the file or key;
a damaged or missing artifact: the file, what is wrong and how to rebuild it,
:class:`ants.artifacts.ArtifactError`), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ants.errors import UsageError

__all__ = ["main"]


#: ``--max-pixels`` of the commands that decode images (``params.data.max_pixels``)
MAX_PIXELS_HELP = (
    "refuse images with more pixels (width x height), before decoding; "
    "default: ants.images.DEFAULT_MAX_PIXELS"
)


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what}: not valid JSON ({exc})") from None


def score_file_key(path: str) -> tuple[str, str, str, int]:
    """``(benchmark, method, ood, seed)`` of a score file path (the ``scores`` template of
    :mod:`ants.artifacts`). Raises :class:`UsageError` for a path that is not one."""
    from ants.artifacts import parse_path, template

    w = parse_path("scores", path)
    if w is None:
        raise UsageError(f"{path}: not a score file path (expected .../{template('scores')})")
    return w["benchmark"], w["method"], w["ood"], int(w["seed"])


# --------------------------------------------------------------------------------------------
# stage commands


def cmd_demo_data(a) -> int:
    from ants.stages import make_demo_data

    out = make_demo_data(a.out, _json(a.demo_json, "--demo-json"), progress=not a.quiet)
    print(f"demo image set written to {a.out} ({', '.join(sorted(out))})")
    return 0


def cmd_download(a) -> int:
    from ants.stages import download_dataset

    target = download_dataset(a.dataset, _json(a.dataset_json, "--dataset-json"), a.out)
    print(f"{a.dataset}: extracted to {target}")
    return 0


def cmd_manifest(a) -> int:
    from ants.stages import build_dataset_manifest

    frame = build_dataset_manifest(
        a.dataset,
        _json(a.dataset_json, "--dataset-json"),
        a.out,
        check_images=not a.no_check_images,
        data_dir=a.data_dir,
        progress=not a.quiet,
        max_pixels=a.max_pixels,
    )
    bad = int((~frame["readable"]).sum())
    print(f"{a.dataset}: {len(frame)} images, {bad} unreadable -> {a.out}")
    return 0


def cmd_embed_images(a) -> int:
    from ants.stages import embed_images

    meta = embed_images(
        a.manifest,
        _json(a.backbone_json, "--backbone-json"),
        _json(a.encoding_json, "--encoding-json"),
        a.out,
        on_bad_image=a.on_bad_image,
        progress=not a.quiet,
        max_pixels=a.max_pixels,
    )
    skipped = meta["skipped"]
    print(
        f"{meta['dataset']}: {meta['n_images']} images encoded, {len(skipped)} skipped -> {a.out}"
    )
    for s in skipped:
        print(f"  skipped {s['path']}: {s['error']}")
    return 0


def cmd_embed_labels(a) -> int:
    from ants.stages import embed_label_set

    info = embed_label_set(
        _json(a.label_set_json, "--label-set-json"),
        _json(a.backbone_json, "--backbone-json"),
        _json(a.encoding_json, "--encoding-json"),
        _json(a.mining_json, "--mining-json"),
        a.out_text,
        a.out_negatives,
        label_set_name=a.label_set,
        backbone_name=a.backbone,
        progress=not a.quiet,
    )
    print(
        f"{info['n_classes']} ID classes, {info['n_negatives']} mined negatives -> {a.out_text}, {a.out_negatives}"
    )
    return 0


def cmd_mine_negatives(a) -> int:
    from ants.stages import mine_negatives

    info = mine_negatives(
        _json(a.label_set_json, "--label-set-json"),
        _json(a.backbone_json, "--backbone-json"),
        _json(a.encoding_json, "--encoding-json"),
        _json(a.mining_json, "--mining-json"),
        a.out,
        label_set_name=a.label_set,
        backbone_name=a.backbone,
        progress=not a.quiet,
    )
    print(f"{info['n_classes']} ID classes, {info['n_negatives']} negatives -> {a.out}")
    return 0


def cmd_stream(a) -> int:
    from ants.stages import stream

    cfg = _json(a.stream_json, "--stream-json")
    frame = stream(
        a.id_embeddings,
        a.ood_embeddings,
        seed=a.seed,
        batch_size=int(cfg["batch_size"]),
        order=cfg.get("order", "shuffled"),
        out=a.out,
    )
    print(
        f"stream of {len(frame)} samples ({int(frame['is_ood'].sum())} OOD), "
        f"{int(frame['batch'].max())} batches -> {a.out}"
    )
    return 0


def cmd_static(a) -> int:
    from ants.stages import static

    frame = static(
        a.embeddings,
        a.text,
        a.negatives,
        scoring=_json(a.scoring_json, "--scoring-json"),
        out=a.out,
    )
    print(f"static scores of {len(frame)} images -> {a.out}")
    return 0


def cmd_plan(a) -> int:
    from ants.stages import plan

    frame = plan(
        a.stream,
        a.id_embeddings,
        a.ood_embeddings,
        a.text,
        a.static_id,
        a.static_ood,
        plan=_json(a.plan_json, "--plan-json"),
        stream_name=a.stream_id,
        out=a.out,
        progress=not a.quiet,
    )
    counts = frame["kind"].value_counts().to_dict()
    print(f"{a.stream_id}: {len(frame)} queries planned {counts} -> {a.out}")
    return 0


def cmd_answer(a) -> int:
    from ants.stages import answer

    cfg = _json(a.answer_json, "--answer-json")
    stats = answer(a.plan, cfg, cache=a.cache, out=a.out, timings=a.timings, progress=not a.quiet)
    print(
        f"answered {stats.get('queries', 0)} queries ({stats.get('unique', 0)} distinct, "
        f"{stats.get('hits', 0)} from the cache, {stats.get('generated', 0)} generated, "
        f"{stats.get('failed', 0)} failed) -> {a.out}"
    )
    return 0


def cmd_encode_negatives(a) -> int:
    from ants.stages import encode_negatives

    meta = encode_negatives(
        a.answers,
        method=_json(a.method_json, "--method-json"),
        backbone=_json(a.backbone_json, "--backbone-json"),
        encoding=_json(a.encoding_json, "--encoding-json"),
        store=a.store,
        out=a.out,
    )
    print(
        f"{meta['n_texts']} negatives' text features ({meta['n_encoded_now']} encoded now) -> {a.out}"
    )
    return 0


def cmd_local_features(a) -> int:
    from ants.stages import local_features

    info = local_features(
        a.embeddings,
        a.text,
        _json(a.backbone_json, "--backbone-json"),
        _json(a.encoding_json, "--encoding-json"),
        temperature=a.temperature,
        out=a.out,
        max_pixels=a.max_pixels,
        progress=not a.quiet,
    )
    print(f"GL-MCM local term of {info['n_images']} images -> {a.out}")
    return 0


def cmd_envision(a) -> int:
    from ants.stages import envision

    stats = envision(
        _json(a.label_set_json, "--label-set-json"),
        _json(a.method_json, "--method-json"),
        _json(a.answer_json, "--answer-json"),
        cache=a.cache,
        out=a.out,
        stream_name=a.stream_id,
        timings=a.timings,
        progress=not a.quiet,
    )
    print(
        f"answered {stats.get('queries', 0)} queries ({stats.get('unique', 0)} distinct, "
        f"{stats.get('hits', 0)} from the cache, {stats.get('generated', 0)} generated, "
        f"{stats.get('failed', 0)} failed) -> {a.out}"
    )
    return 0


def cmd_encode_envisioned(a) -> int:
    from ants.stages import encode_envisioned

    info = encode_envisioned(
        a.answers,
        _json(a.label_set_json, "--label-set-json"),
        _json(a.method_json, "--method-json"),
        _json(a.backbone_json, "--backbone-json"),
        _json(a.encoding_json, "--encoding-json"),
        store=a.store,
        out=a.out,
    )
    print(f"{info['n_texts']} envisioned labels ({info['n_encoded_now']} encoded now) -> {a.out}")
    return 0


def cmd_score(a) -> int:
    from ants.stages import score

    method = _json(a.method_json, "--method-json")
    files = {
        k: getattr(a, k)
        for k in (
            "id_embeddings",
            "ood_embeddings",
            "negatives",
            "static_id",
            "static_ood",
            "answers",
            "negative_text",
            "local_id",
            "local_ood",
            "envisioned",
        )
    }
    frame = score(
        a.stream,
        method=method,
        out=a.out,
        stream_name=a.stream_id,
        progress=not a.quiet,
        id_text=a.text,
        **files,
    )
    print(f"{a.stream_id}: {len(frame)} scores ({method['method']}) -> {a.out}")
    return 0


def cmd_compute_metrics(a) -> int:
    from ants.stages import compute_metrics

    view = _json(a.view_json, "--view-json")
    files = {score_file_key(p): p for p in a.scores}
    headline = compute_metrics(
        files, params=view, out_json=a.out_json, out_dir=a.out_dir, out_trace=a.plots
    )
    for bench, methods in headline.items():
        print(f"{bench}:")
        for method, splits in methods.items():
            parts = [
                f"{split} average AUROC {m['auroc']:.2f} FPR95 {m['fpr95']:.2f}"
                for split, m in splits.items()
            ]
            print(f"  {method:12s} " + " | ".join(parts))
    return 0


def cmd_sweep_metrics(a) -> int:
    from ants.stages import sweep_metrics

    frame = sweep_metrics(_json(a.view_json, "--view-json"), a.out)
    print(f"sweep: {len(frame)} rows -> {a.out}")
    return 0


def cmd_ablation_table(a) -> int:
    from ants.paper_tables import write_ablation_tables

    view = _json(a.view_json, "--view-json")
    paths = write_ablation_tables(a.sweep, view, view["ablation"]["rows"], a.out_dir)
    print("ablation table -> " + ", ".join(map(str, paths)))
    return 0


def cmd_cost_table(a) -> int:
    from ants.paper_tables import write_cost_tables

    paths = write_cost_tables(_json(a.view_json, "--view-json"), a.out_dir)
    print("cost table -> " + ", ".join(map(str, paths)))
    return 0


def cmd_report(a) -> int:
    from ants.report import build_report

    out = build_report(
        metrics_json=a.metrics,
        score_files={score_file_key(p): p for p in a.scores},
        answer_logs=a.answers or [],
        negatives=a.negatives or [],
        embeddings=a.embeddings or [],
        view=_json(a.view_json, "--view-json"),
        out=a.out,
        sweeps=a.sweeps,
        ablation=a.ablation,
        cost=a.cost,
    )
    print(f"report written to {out}")
    return 0


# --------------------------------------------------------------------------------------------
# inspection commands


def cmd_config_check(a) -> int:
    from ants.config import load_config_files

    params = load_config_files(a.params)
    print(f"{' + '.join(a.params)}: valid")
    print(f"  benchmarks: {', '.join(params['run']['benchmarks'])}")
    print(f"  methods:    {', '.join(params['run']['methods'])}")
    print(f"  seeds:      {', '.join(map(str, params['run']['seeds']))}")
    print(f"  MLLM:       {params['mllm']['backend']} ({params['mllm']['family']} prompts)")
    return 0


def cmd_config_merge(a) -> int:
    import yaml

    from ants._io import atomic_path
    from ants.config import load_config_files

    params = load_config_files(a.files)
    text = (
        f"# {' + '.join(a.files)}, merged and validated by `ants config merge`\n"
        + yaml.safe_dump(params, sort_keys=False, allow_unicode=True)
    )
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with atomic_path(a.out) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(f"{' + '.join(a.files)} -> {a.out} (valid)")
    return 0


# --------------------------------------------------------------------------------------------
# parser


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ants", description="ANTS workflow stages and inspection tools."
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_):
        s = sub.add_parser(name, help=help_, description=help_)
        s.set_defaults(func=func)
        return s

    s = add("demo-data", cmd_demo_data, "generate the demo image set")
    s.add_argument("--demo-json", required=True)
    s.add_argument("--out", required=True)

    s = add("download", cmd_download, "download (checksum-checked) and extract a dataset archive")
    s.add_argument("--dataset", required=True)
    s.add_argument("--dataset-json", required=True)
    s.add_argument("--out", required=True)

    s = add("manifest", cmd_manifest, "list a dataset's images into a manifest")
    s.add_argument("--dataset", required=True)
    s.add_argument("--dataset-json", required=True)
    s.add_argument("--out", required=True)
    s.add_argument(
        "--data-dir", help="where generated and downloaded sets are (default: results/data)"
    )
    s.add_argument("--no-check-images", action="store_true")
    s.add_argument("--max-pixels", type=_positive_int, help=MAX_PIXELS_HELP)

    s = add("embed-images", cmd_embed_images, "encode a manifest's images with a CLIP backbone")
    s.add_argument("--manifest", required=True)
    s.add_argument("--backbone-json", required=True)
    s.add_argument("--encoding-json", required=True)
    s.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail")
    s.add_argument("--max-pixels", type=_positive_int, help=MAX_PIXELS_HELP)
    s.add_argument("--out", required=True)

    s = add("embed-labels", cmd_embed_labels, "encode an ID label set and mine its negative labels")
    for opt in (
        "--label-set-json",
        "--backbone-json",
        "--encoding-json",
        "--mining-json",
        "--out-text",
        "--out-negatives",
    ):
        s.add_argument(opt, required=True)
    s.add_argument("--label-set", default="")
    s.add_argument("--backbone", default="")

    s = add(
        "mine-negatives",
        cmd_mine_negatives,
        "another negative bank of a label set (e.g. the CSP-mined one), mined or from a file",
    )
    for opt in ("--label-set-json", "--backbone-json", "--encoding-json", "--mining-json", "--out"):
        s.add_argument(opt, required=True)
    s.add_argument("--label-set", default="")
    s.add_argument("--backbone", default="")

    s = add("stream", cmd_stream, "make a seeded [OOD, ID] stream")
    s.add_argument("--id-embeddings", required=True)
    s.add_argument("--ood-embeddings", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument(
        "--stream-json",
        required=True,
        help='{"order": "shuffled|id_first|ood_first", "batch_size": N}',
    )
    s.add_argument("--out", required=True)

    s = add(
        "static",
        cmd_static,
        "per-image static scores (S_nl, prediction, lse of the ID logits) of a dataset",
    )
    for opt in ("--embeddings", "--text", "--scoring-json", "--out"):
        s.add_argument(opt, required=True)
    s.add_argument("--negatives", help="the negatives (not read by an MCM pass)")

    s = add("plan", cmd_plan, "list every MLLM query an ANTS stream asks")
    for opt in (
        "--stream",
        "--id-embeddings",
        "--ood-embeddings",
        "--text",
        "--static-id",
        "--static-ood",
        "--stream-id",
        "--out",
        "--plan-json",
    ):
        s.add_argument(opt, required=True)

    s = add(
        "answer",
        cmd_answer,
        "answer one stream's planned queries through the cache; write its answers log",
    )
    s.add_argument("--plan", required=True)
    s.add_argument("--answer-json", required=True)
    s.add_argument(
        "--timings", help="where the answer times and cache hits go (JSON; default: nowhere)"
    )
    s.add_argument("--cache", required=True)
    s.add_argument("--out", required=True)

    s = add(
        "encode-negatives",
        cmd_encode_negatives,
        "CLIP text features of the negatives in an answers log",
    )
    for opt in (
        "--answers",
        "--method-json",
        "--backbone-json",
        "--encoding-json",
        "--store",
        "--out",
    ):
        s.add_argument(opt, required=True)

    s = add(
        "local-features",
        cmd_local_features,
        "GL-MCM's local term of every image of an embeddings file (a second CLIP pass)",
    )
    for opt in ("--embeddings", "--text", "--backbone-json", "--encoding-json", "--out"):
        s.add_argument(opt, required=True)
    s.add_argument("--temperature", type=float, required=True)
    s.add_argument("--max-pixels", type=_positive_int, help=MAX_PIXELS_HELP)

    s = add(
        "envision",
        cmd_envision,
        "EOE: ask the LLM (text only) for outlier class names of a label set; write the answers log",
    )
    for opt in (
        "--label-set-json",
        "--method-json",
        "--answer-json",
        "--cache",
        "--stream-id",
        "--out",
    ):
        s.add_argument(opt, required=True)
    s.add_argument("--timings", help="where the answer times and cache hits go (JSON)")

    s = add(
        "encode-envisioned",
        cmd_encode_envisioned,
        "EOE: CLIP text features of the envisioned labels of an answers log",
    )
    for opt in (
        "--answers",
        "--label-set-json",
        "--method-json",
        "--backbone-json",
        "--encoding-json",
        "--store",
        "--out",
    ):
        s.add_argument(opt, required=True)

    s = add("score", cmd_score, "score one stream with one method")
    for opt in ("--stream", "--method-json", "--stream-id", "--out"):
        s.add_argument(opt, required=True)
    for opt in (
        "--id-embeddings",
        "--ood-embeddings",
        "--text",
        "--negatives",
        "--static-id",
        "--static-ood",
        "--answers",
        "--negative-text",
        "--local-id",
        "--local-ood",
        "--envisioned",
    ):
        s.add_argument(opt)

    s = add(
        "compute-metrics", cmd_compute_metrics, "metrics (mean and std over seeds) from score files"
    )
    s.add_argument("--scores", nargs="+", required=True)
    s.add_argument("--view-json", required=True)
    s.add_argument("--out-json", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--plots")

    s = add("sweep-metrics", cmd_sweep_metrics, "metrics of every point of a sensitivity sweep")
    s.add_argument("--view-json", required=True)
    s.add_argument("--out", required=True)

    s = add(
        "ablation-table",
        cmd_ablation_table,
        "the ablation table (paper Table 4) from the ablation sweep's metrics: CSV, Markdown, LaTeX",
    )
    s.add_argument(
        "--sweep", required=True, help="the ablation sweep's metrics (results/sweeps/X.csv)"
    )
    s.add_argument("--view-json", required=True)
    s.add_argument("--out-dir", required=True)

    s = add(
        "cost-table",
        cmd_cost_table,
        "time per image and MLLM calls per method, from the jobs' benchmark files: CSV, Markdown, LaTeX",
    )
    s.add_argument("--view-json", required=True)
    s.add_argument("--out-dir", required=True)

    s = add("report", cmd_report, "write the HTML report")
    s.add_argument("--metrics", required=True)
    s.add_argument("--scores", nargs="+", required=True)
    s.add_argument("--answers", nargs="*")
    s.add_argument("--negatives", nargs="*")
    s.add_argument("--embeddings", nargs="*")
    s.add_argument("--view-json", required=True)
    s.add_argument("--out", required=True)
    s.add_argument(
        "--sweeps", nargs="*", help="sweep tables to draw (default: results/sweeps/*.csv)"
    )
    s.add_argument("--ablation", help="the ablation table's CSV (results/paper/ablation.csv)")
    s.add_argument("--cost", help="the cost table's CSV (reports/cost.csv)")

    s = add("config", None, "params.yaml tools")
    csub = s.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    c = csub.add_parser(
        "check",
        help="validate params.yaml (and config files merged over it, as "
        "snakemake --configfile does) and print a summary",
    )
    c.add_argument("params", nargs="*", default=["params.yaml"])
    c.set_defaults(func=cmd_config_check)
    c = csub.add_parser(
        "merge",
        help="merge config files (later ones win, as snakemake --configfile) "
        "into one validated params file, e.g. for `dvc exp run`",
    )
    c.add_argument("files", nargs="+")
    c.add_argument("--out", required=True, help="the merged file ('-': standard output)")
    c.set_defaults(func=cmd_config_merge)

    from ants.cli_inspect import register

    register(add)
    return p


#: Errors reported as bad input (exit 2), besides ``UsageError`` and ``FileNotFoundError``, as
#: ``(module, class)``: a clear line naming the file or key, no traceback.
BAD_INPUT = (
    ("ants.artifacts", "ArtifactError"),
    ("ants.config", "ConfigError"),
    ("ants.datasets", "DatasetError"),
    ("ants.stages", "StageError"),
    ("ants.mllm.cache", "CacheError"),
    ("ants.text_features", "TextFeatureStoreError"),
    ("ants.mllm.base", "BackendError"),
    ("ants.negative_lists", "NegativeListError"),
)
#: Work that could not be done (exit 1): a file that could not be written (a full or read-only
#: folder), failed answers, answers or text features missing.
FAILED = (
    ("ants._io", "WriteError"),
    ("ants.mllm.base", "AnswerFailureError"),
    ("ants.replay", "MissingAnswerError"),
    ("ants.text_features", "MissingTextFeatureError"),
)


def _loaded(errors: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    """The classes of ``errors`` whose modules are loaded: an exception can only be an instance
    of a class whose module ran, so the handler imports nothing (a command imports only the
    modules it uses: ``ants config check`` never imports torch)."""
    return tuple(getattr(sys.modules[m], name) for m, name in errors if m in sys.modules)


def _damaged(exc: BaseException) -> str | None:
    """A damaged workflow file set aside (:func:`ants.artifacts.set_aside`): the line saying so."""
    if "ants.artifacts" not in sys.modules:
        return None
    from ants import artifacts

    return artifacts.set_aside(exc) if isinstance(exc, artifacts.ArtifactError) else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ants`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C, or SIGINT to Snakemake's process group: one line
        print(
            f"ants {args.command}: interrupted; nothing was written (a re-run does this step again)",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        if isinstance(exc, (UsageError, FileNotFoundError, *_loaded(BAD_INPUT))):
            print(f"ants {args.command}: error: {_damaged(exc) or exc}", file=sys.stderr)
            return 2
        if isinstance(exc, _loaded(FAILED)):
            print(f"ants {args.command}: failed: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
