"""The ``ants`` command: thin subcommands over :mod:`ants.stages`, plus inspection commands.

Stage commands (called by the Snakemake rules; settings arrive as canonical JSON, the exact
config subset the rule passes as ``params``)::

    ants demo-data     --demo-json J --out DIR
    ants download      --dataset NAME --dataset-json J --out DIR
    ants manifest      --dataset NAME --dataset-json J --out FILE [--no-check-images]
    ants embed-images  --manifest F --backbone-json J --encoding-json J --on-bad-image fail|skip --out F
    ants embed-labels  --label-set-json J --backbone-json J --encoding-json J --mining-json J
                       --out-text F --out-negatives F
    ants stream        --id-embeddings F --ood-embeddings F --seed N --batch-size N --out F
    ants plan          --stream F --id-embeddings F --ood-embeddings F --text F --negatives F
                       --plan-json J --stream-id S --out F
    ants answer        --plans F... --mllm-json J --cache F --out F
    ants score         --stream F --id-embeddings F --ood-embeddings F --text F --negatives F
                       --method-json J --stream-id S --out F [--answers F --backbone-json J --encoding-json J]
    ants metrics       --scores F... --view-json J --out-json F --out-dir DIR --plots F
    ants report        --metrics F --scores F... --answers F... --negatives F... --view-json J --out F

Inspection::

    ants config check [params.yaml]            validate, print a summary (exit 2 when invalid)
    ants answers streams  [--log F]            streams in a negatives log, with query counts
    ants answers show --stream S [--batch N] [--kind ens|vsnl] [--log F] [--limit N]
                                               what the MLLM was asked and what it answered
    ants cache stats [--cache F]               how many answers the SQLite cache holds, per kind

Exit status: 0 on success, 2 for bad input (a clear message on stderr naming the file or key),
1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from ants.errors import UsageError

__all__ = ["main"]

SCORE_PATH = re.compile(r"(?:^|/)scores/(?P<b>[^/]+)/(?P<m>[^/]+)/(?P<o>[^/]+)/seed(?P<s>\d+)\.parquet$")
DEMO_NOTE = ("NOTE: this is the offline demo (random-weight CLIP and MLLM, generated images): "
             "its numbers carry NO meaning.")




def _json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what}: not valid JSON ({exc})") from None


def _score_key(path: str) -> tuple[str, str, str, int]:
    m = SCORE_PATH.search(Path(path).as_posix())
    if not m:
        raise UsageError(f"{path}: not a score file path (expected .../scores/BENCH/METHOD/OOD/seedN.parquet)")
    return m["b"], m["m"], m["o"], int(m["s"])


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

    frame = build_dataset_manifest(a.dataset, _json(a.dataset_json, "--dataset-json"), a.out,
                                   check_images=not a.no_check_images, data_dir=a.data_dir, progress=not a.quiet)
    bad = int((~frame["readable"]).sum())
    print(f"{a.dataset}: {len(frame)} images, {bad} unreadable -> {a.out}")
    return 0


def cmd_embed_images(a) -> int:
    from ants.stages import embed_images

    meta = embed_images(a.manifest, _json(a.backbone_json, "--backbone-json"), _json(a.encoding_json, "--encoding-json"),
                        a.out, on_bad_image=a.on_bad_image, progress=not a.quiet)
    skipped = meta["skipped"]
    print(f"{meta['dataset']}: {meta['n_images']} images encoded, {len(skipped)} skipped -> {a.out}")
    for s in skipped:
        print(f"  skipped {s['path']}: {s['error']}")
    return 0


def cmd_embed_labels(a) -> int:
    from ants.stages import embed_label_set

    info = embed_label_set(_json(a.label_set_json, "--label-set-json"), _json(a.backbone_json, "--backbone-json"),
                           _json(a.encoding_json, "--encoding-json"), _json(a.mining_json, "--mining-json"),
                           a.out_text, a.out_negatives, label_set_name=a.label_set, backbone_name=a.backbone,
                           progress=not a.quiet)
    print(f"{info['n_classes']} ID classes, {info['n_negatives']} mined negatives -> {a.out_text}, {a.out_negatives}")
    return 0


def cmd_stream(a) -> int:
    from ants.stages import make_stream_file

    frame = make_stream_file(a.id_embeddings, a.ood_embeddings, seed=a.seed, batch_size=a.batch_size, out=a.out)
    print(f"stream of {len(frame)} samples ({int(frame['is_ood'].sum())} OOD), "
          f"{int(frame['batch'].max())} batches -> {a.out}")
    return 0


def cmd_plan(a) -> int:
    from ants.stages import plan_stream

    frame = plan_stream(a.stream, a.id_embeddings, a.ood_embeddings, a.text, a.negatives,
                        plan=_json(a.plan_json, "--plan-json"), stream_name=a.stream_id, out=a.out)
    counts = frame["kind"].value_counts().to_dict()
    print(f"{a.stream_id}: {len(frame)} queries planned {counts} -> {a.out}")
    return 0


def cmd_answer(a) -> int:
    from ants.stages import answer_plans

    stats = answer_plans(a.plans, _json(a.mllm_json, "--mllm-json"), cache=a.cache, out=a.out, progress=not a.quiet)
    print(f"answered {stats.get('queries', 0)} queries ({stats.get('unique', 0)} distinct, "
          f"{stats.get('hits', 0)} from the cache, {stats.get('generated', 0)} generated, "
          f"{stats.get('failed', 0)} failed) -> {a.out}")
    return 0


def cmd_score(a) -> int:
    from ants.stages import score_stream

    method = _json(a.method_json, "--method-json")
    frame = score_stream(
        a.stream, a.id_embeddings, a.ood_embeddings, a.text, a.negatives, method=method, out=a.out,
        answers=a.answers, stream_name=a.stream_id,
        backbone=_json(a.backbone_json, "--backbone-json") if a.backbone_json else None,
        encoding=_json(a.encoding_json, "--encoding-json") if a.encoding_json else None,
    )
    print(f"{a.stream_id}: {len(frame)} scores ({method['method']}) -> {a.out}")
    return 0


def cmd_metrics(a) -> int:
    from ants.stages import _write_csv, compute_metrics, trace_table

    view = _json(a.view_json, "--view-json")
    files = {_score_key(p): p for p in a.scores}
    nested = compute_metrics(files, params=view, out_json=a.out_json, out_dir=a.out_dir)
    if a.plots:
        _write_csv(a.plots, trace_table(files))
    for bench, methods in nested.items():
        print(f"{bench}:")
        for method, entries in methods.items():
            parts = [f"{name} AUROC {m['auroc']:.2f}±{m['auroc_std']:.2f} FPR95 {m['fpr95_id']:.2f}"
                     for name, m in entries.items()]
            print(f"  {method:12s} " + " | ".join(parts))
    return 0


def cmd_report(a) -> int:
    from ants.report import build_report

    out = build_report(
        metrics_json=a.metrics, score_files={_score_key(p): p for p in a.scores}, answer_logs=a.answers or [],
        negatives=a.negatives or [], embeddings=a.embeddings or [], view=_json(a.view_json, "--view-json"),
        out=a.out,
    )
    print(f"report written to {out}")
    return 0


# --------------------------------------------------------------------------------------------
# inspection commands


def cmd_config_check(a) -> int:
    from ants.config import load_params

    params = load_params(a.params)
    print(f"{a.params}: valid")
    print(f"  benchmarks: {', '.join(params['run']['benchmarks'])}")
    print(f"  methods:    {', '.join(params['run']['methods'])}")
    print(f"  seeds:      {', '.join(map(str, params['run']['seeds']))}")
    print(f"  MLLM:       {params['mllm']['backend']} ({params['mllm']['family']} prompts)")
    return 0


# --------------------------------------------------------------------------------------------
# parser


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ants", description="ANTS workflow stages and inspection tools.")
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
    s.add_argument("--data-dir", default="results/data")
    s.add_argument("--no-check-images", action="store_true")

    s = add("embed-images", cmd_embed_images, "encode a manifest's images with a CLIP backbone")
    s.add_argument("--manifest", required=True)
    s.add_argument("--backbone-json", required=True)
    s.add_argument("--encoding-json", required=True)
    s.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail")
    s.add_argument("--out", required=True)

    s = add("embed-labels", cmd_embed_labels, "encode an ID label set and mine its negative labels")
    for opt in ("--label-set-json", "--backbone-json", "--encoding-json", "--mining-json", "--out-text",
                "--out-negatives"):
        s.add_argument(opt, required=True)
    s.add_argument("--label-set", default="")
    s.add_argument("--backbone", default="")

    s = add("stream", cmd_stream, "make a seeded [OOD, ID] stream")
    s.add_argument("--id-embeddings", required=True)
    s.add_argument("--ood-embeddings", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--batch-size", type=int, required=True)
    s.add_argument("--out", required=True)

    common = ("--stream", "--id-embeddings", "--ood-embeddings", "--text", "--negatives", "--stream-id", "--out")
    s = add("plan", cmd_plan, "list every MLLM query an ANTS stream asks")
    for opt in common + ("--plan-json",):
        s.add_argument(opt, required=True)

    s = add("answer", cmd_answer, "answer planned queries through the cache; write the negatives log")
    s.add_argument("--plans", nargs="*", default=[])
    s.add_argument("--mllm-json", required=True)
    s.add_argument("--cache", required=True)
    s.add_argument("--out", required=True)

    s = add("score", cmd_score, "score one stream with one method")
    for opt in common + ("--method-json",):
        s.add_argument(opt, required=True)
    s.add_argument("--answers")
    s.add_argument("--backbone-json")
    s.add_argument("--encoding-json")

    s = add("metrics", cmd_metrics, "metrics (mean and std over seeds) from score files")
    s.add_argument("--scores", nargs="+", required=True)
    s.add_argument("--view-json", required=True)
    s.add_argument("--out-json", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--plots")

    s = add("report", cmd_report, "write the HTML report")
    s.add_argument("--metrics", required=True)
    s.add_argument("--scores", nargs="+", required=True)
    s.add_argument("--answers", nargs="*")
    s.add_argument("--negatives", nargs="*")
    s.add_argument("--embeddings", nargs="*")
    s.add_argument("--view-json", required=True)
    s.add_argument("--out", required=True)

    s = add("config", None, "params.yaml tools")
    csub = s.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    c = csub.add_parser("check", help="validate params.yaml and print a summary")
    c.add_argument("params", nargs="?", default="params.yaml")
    c.set_defaults(func=cmd_config_check)

    from ants.cli_inspect import register

    register(add)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ants`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from ants.config import ConfigError
    from ants.datasets import DatasetError
    from ants.stages import StageError

    try:
        return int(args.func(args) or 0)
    except (UsageError, ConfigError, DatasetError, StageError, FileNotFoundError) as exc:
        print(f"ants {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
