"""Paper-scale cost of one MOS-four stream's jobs, each run as the workflow runs it (`ants ...`).

Synthetic CLIP-like features (50,000 ID + 10,000 OOD images, d = 512, K = 1,000 ID labels,
10,000 mined negatives) are written as the workflow's files; then every job of one stream runs
as its own `ants` process, as Snakemake would start it: the static pass of both datasets, the
NegLabel, AdaNeg and ANTS score jobs, the ANTS plan, and the text encoding of the stream's
negatives with a random-weight ViT-B/16 saved to a local file (the answers are synthetic: one
sentence per ENS image, five labels per VSNL class). Prints per job the wall time and peak RSS
(the child's ``ru_maxrss``), whether the ANTS score job imported open_clip (it must not: its
text features come from the encode job), and the targets of issue "Compute each thing once":

* ANTS score job <= 1.5 x the static job (the NegLabel score job reads the static pass, so
  "static" here = the static pass of the stream's two datasets, what NegLabel used to redo);
* peak RSS <= 2 GB per scoring job;
* 0 CLIP text forwards in ANTS score jobs; a second encode job of the same texts encodes 0.

    python benchmarks/bench_paper_scale.py [--id 50000] [--ood 10000] [--skip-adaneg] [--text-model ViT-B-16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: `ants` in a child that reports its own peak RSS (VmHWM of its own address space: unlike
#: ru_maxrss it does not carry over the RSS of the parent it was forked from) and whether it
#: imported open_clip
JOB = [sys.executable, "-c",
       "import re, sys; from ants.cli import main; rc = main(sys.argv[1:]); "
       "print('OPEN_CLIP_LOADED=' + str('open_clip' in sys.modules)); "
       "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()); "
       "print('PEAK_RSS_KB=' + hwm.group(1)); sys.exit(rc)"]


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def run(label: str, args: list[str], rows: list) -> str:
    """Run one `ants` job in its own process; record wall time and peak RSS."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANTS_PROGRESS": "off"}
    t0 = time.perf_counter()
    proc = subprocess.run(JOB + ["-q", *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"{label} failed:\n{out[-3000:]}")
    rss = [int(x.split("=")[1]) for x in out.splitlines() if x.startswith("PEAK_RSS_KB=")]
    rows.append((label, seconds, rss[-1] / 1024 if rss else float("nan")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--id", type=int, default=50_000, dest="n_id")
    ap.add_argument("--ood", type=int, default=10_000, dest="n_ood")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--id-classes", type=int, default=1_000)
    ap.add_argument("--negatives", type=int, default=10_000)
    ap.add_argument("--text-model", default="ViT-B-16", help="open_clip architecture of the text encoder")
    ap.add_argument("--skip-adaneg", action="store_true")
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()

    import open_clip
    import torch

    from ants import stages, views
    from ants.answers_log import answer_records, write_answer_log
    from ants.embeddings import write_embeddings
    from ants.mining import MinedNegatives
    from ants.mllm.base import Answer
    from ants.replay import read_plan

    work = Path(args.keep or tempfile.mkdtemp(prefix="ants-paper-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    d, k, m = args.dim, args.id_classes, args.negatives
    idt = unit_rows(rng.standard_normal((k, d)))
    topics = unit_rows(rng.standard_normal((m // 20, d)))
    neg = unit_rows(np.repeat(topics, 20, axis=0) + 0.8 * unit_rows(rng.standard_normal((m, d))))
    labels = rng.integers(0, k, args.n_id)
    id_x = unit_rows(0.3 * idt[labels] + 0.95 * unit_rows(rng.standard_normal((args.n_id, d))))
    ood_x = unit_rows(rng.uniform(0.1, 0.3, (args.n_ood, 1)) * topics[rng.integers(0, len(topics), args.n_ood)]
                      + 0.95 * unit_rows(rng.standard_normal((args.n_ood, d))))
    f = {}
    for name, x, lab in (("id", id_x, labels), ("ood", ood_x, np.full(args.n_ood, -1))):
        rows = pd.DataFrame({"id": [f"{name}/{i}" for i in range(len(x))],
                             "path": [f"/data/{name}/{i}.jpg" for i in range(len(x))],
                             "label": lab.astype(np.int64), "sha256": [f"{name}{i:060d}" for i in range(len(x))]})
        f[name] = write_embeddings(work / f"emb_{name}.parquet", x, rows, {"dataset": name})
    names = [f"class {i}" for i in range(k)]
    text_rows = pd.DataFrame({"class_index": np.tile(np.arange(k), 2), "class_name": names * 2,
                              "prompt": ["nice"] * k + ["photo"] * k, "template": [""] * (2 * k)})
    f["text"] = write_embeddings(work / "text.parquet", np.concatenate([idt, idt]), text_rows, {})
    f["neg"] = MinedNegatives(pd.DataFrame({"label": [f"neg {i}" for i in range(m)], "kind": "noun",
                                            "stat": np.zeros(m), "max_id_cos": np.zeros(m)}), neg, {}).save(
        work / "negatives.parquet")
    stages.stream(f["id"], f["ood"], seed=0, batch_size=256, out=work / "stream.parquet")

    torch.manual_seed(0)
    model = open_clip.create_model(args.text_model, pretrained=None)
    weights = work / f"{args.text_model}-random.pt"
    torch.save(model.state_dict(), weights)
    del model
    backbone = {"model": args.text_model, "weights_path": str(weights)}
    encoding = {"device": "cpu", "precision": "fp32", "text_batch_size": 256}

    rows: list = []
    j = json.dumps
    ants_scoring = {"tau": 0.01, "group_size": 100, "seed": 0}
    nl_scoring = {"tau": 0.01, "n_groups": 100, "seed": 0}
    for scoring in (ants_scoring, nl_scoring):
        for name in ("id", "ood"):
            run(f"static {name} ({views.scoring_name(scoring)})",
                ["static", "--embeddings", str(f[name]), "--text", str(f["text"]), "--negatives", str(f["neg"]),
                 "--scoring-json", j(scoring), "--out", str(work / f"static_{name}_{views.scoring_name(scoring)}.parquet")],
                rows)

    def statics(scoring):
        n = views.scoring_name(scoring)
        return ["--static-id", str(work / f"static_id_{n}.parquet"), "--static-ood", str(work / f"static_ood_{n}.parquet")]

    common = ["--stream", str(work / "stream.parquet"), "--stream-id", "mos4/x/ood/seed0"]
    run("score NegLabel (G = 100)", ["score", *common, "--method-json",
                                     j({"method": "neglabel", "n_groups": 100, "tau": 0.01, "batch_size": 256}),
                                     *statics(nl_scoring), "--out", str(work / "score_nl.parquet")], rows)
    if not args.skip_adaneg:
        run("score AdaNeg", ["score", *common, "--method-json",
                             j({"method": "adaneg", "config": {}, "batch_size": 256, "label": "AdaNeg"}),
                             "--id-embeddings", str(f["id"]), "--ood-embeddings", str(f["ood"]), "--text", str(f["text"]),
                             "--negatives", str(f["neg"]), "--out", str(work / "score_adaneg.parquet")], rows)
    plan = {"config": {"preset": "authors_code"}, "batch_size": 256}
    run("plan ANTS", ["plan", *common, "--id-embeddings", str(f["id"]), "--ood-embeddings", str(f["ood"]),
                      "--text", str(f["text"]), *statics(ants_scoring), "--plan-json", j(plan),
                      "--out", str(work / "plan.parquet")], rows)
    _, planned = read_plan(work / "plan.parquet")
    queries = [q for _, q in planned]
    answers = [Answer(raw_text=f"a photo of thing {q.image.rsplit('/', 1)[-1]}",
                      negatives=(f"a photo of thing {q.image.rsplit('/', 1)[-1]}",)) if q.kind == "ens" else
               Answer(raw_text="", negatives=tuple(f"{q.class_name} look-alike {i}" for i in range(5)))
               for q in queries]
    write_answer_log(work / "answers.parquet", answer_records(queries, answers, stream_id="mos4/x/ood/seed0",
                                                              batch_index=[b for b, _ in planned]), timings=False)
    method = {"method": "ants", "config": {"preset": "authors_code"}, "in_score": "far_only", "batch_size": 256}
    enc = ["encode-negatives", "--answers", str(work / "answers.parquet"), "--method-json", j(method),
           "--backbone-json", j(backbone), "--encoding-json", j(encoding), "--store", str(work / "text.sqlite")]
    out1 = run("encode negatives (first)", [*enc, "--out", str(work / "negtext.parquet")], rows)
    out2 = run("encode negatives (again)", [*enc, "--out", str(work / "negtext2.parquet")], rows)
    out3 = run("score ANTS (far_only)", ["score", *common, "--method-json", j(method), "--id-embeddings", str(f["id"]),
                                         "--ood-embeddings", str(f["ood"]), "--text", str(f["text"]),
                                         *statics(ants_scoring), "--answers", str(work / "answers.parquet"),
                                         "--negative-text", str(work / "negtext.parquet"),
                                         "--out", str(work / "score_ants.parquet")], rows)

    n_ens = sum(q.kind == "ens" for q in queries)
    print(f"stream: {args.n_id + args.n_ood} samples, d={d}, K={k}, negatives={m}; "
          f"{len(queries)} planned queries (ENS {n_ens}, VSNL {len(queries) - n_ens})")
    print(f"{'job':42s} {'wall s':>8s} {'peak RSS MB':>12s}")
    for label, seconds, rss in rows:
        print(f"{label:42s} {seconds:8.2f} {rss:12.0f}")
    t = {label: s for label, s, _ in rows}
    static_pair = t[f"static id ({views.scoring_name(ants_scoring)})"] + t[f"static ood ({views.scoring_name(ants_scoring)})"]
    ratio = t["score ANTS (far_only)"] / static_pair
    print(f"ANTS score job / static pass of its two datasets: {ratio:.2f} (target <= 1.5: "
          f"{'met' if ratio <= 1.5 else 'NOT met'})")
    scoring_rss = max(rss for label, _, rss in rows if label.startswith("score"))
    print(f"peak RSS of the scoring jobs: {scoring_rss:.0f} MB (target <= 2048: "
          f"{'met' if scoring_rss <= 2048 else 'NOT met'})")
    loaded = "OPEN_CLIP_LOADED=True" in out3
    print(f"ANTS score job imported open_clip (CLIP text forwards possible): {loaded} (target: False)")
    for label, text in (("first", out1), ("again", out2)):
        line = [x for x in text.splitlines() if "text features" in x]
        print(f"encode negatives ({label}): {line[-1] if line else text.strip()[-200:]}")
    print(f"files in {work}")


if __name__ == "__main__":
    main()
