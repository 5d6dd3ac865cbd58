"""Replay of an ANTS stream at ImageNet scale, against static NegLabel on the same stream.

60,000 samples (50,000 ID + 10,000 OOD), d = 512, K = 1,000 ID labels, 10,000 mined negatives,
the ``authors_code`` preset (ENS: trigger 200, E = 10 updates, so the ENS bank grows to about
2,000 sentences; VSNL: top 40 classes x 5 labels = 200), every answer looked up in a dict and
every text feature in a table. Prints the wall time of the planning pass, of the replay, of
static NegLabel (G = 100) on the same features, and the ratio replay / NegLabel.
Target (issue "Test-time streams"): ratio <= 3.0.

    python benchmarks/bench_replay.py [--id 50000] [--ood 10000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ants.methods.static import run_neglabel
from ants.mllm.base import Answer
from ants.replay import plan_queries, replay_scores
from ants.streams import make_stream


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def best_of(repeats: int, fn):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--id", type=int, default=50_000, dest="n_id")
    ap.add_argument("--ood", type=int, default=10_000, dest="n_ood")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--id-classes", type=int, default=1_000)
    ap.add_argument("--negatives", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    d, k = args.dim, args.id_classes
    idt = unit_rows(rng.standard_normal((k, d)))
    # negatives come in topics of 20 words; an OOD image leans on one topic by a varying amount,
    # an ID image on its class text: CLIP-like cosines (~0.3 to its own concept) and an S_nl
    # that is ~1 for ID and spread over [0.6, 1] for OOD, so NIM keeps mining all stream long
    topics = unit_rows(rng.standard_normal((args.negatives // 20, d)))
    neg = unit_rows(
        np.repeat(topics, 20, axis=0) + 0.8 * unit_rows(rng.standard_normal((args.negatives, d)))
    )
    id_x = unit_rows(
        0.3 * idt[rng.integers(0, k, args.n_id)]
        + 0.95 * unit_rows(rng.standard_normal((args.n_id, d)))
    )
    ood_x = unit_rows(
        rng.uniform(0.1, 0.3, (args.n_ood, 1)) * topics[rng.integers(0, len(topics), args.n_ood)]
        + 0.95 * unit_rows(rng.standard_normal((args.n_ood, d)))
    )
    stream = make_stream(args.n_id, args.n_ood, seed=0, batch_size=256)
    x = stream.gather(ood_x, id_x)
    items = stream.gather(
        [f"ood/{i}.jpg" for i in range(args.n_ood)], [f"id/{i}.jpg" for i in range(args.n_id)]
    )
    class_names = [f"class {i}" for i in range(k)]
    common = dict(
        image_features=x,
        items=items,
        id_text_features=idt,
        negative_features=neg,
        class_names=class_names,
        config="authors_code",
        batch_size=256,
    )

    t_plan, plan = best_of(1, lambda: plan_queries(**common))
    answers = {}
    for _, q in plan:
        if q.kind == "ens":
            answers[q] = Answer(raw_text="", negatives=(f"a photo of {q.image}",))
        else:
            answers[q] = Answer(
                raw_text="", negatives=tuple(f"{q.class_name} look-alike {j}" for j in range(5))
            )
    texts = sorted({t for a in answers.values() for t in a.negatives})
    vectors = unit_rows(rng.standard_normal((len(texts), d)))
    table = {t: vectors[i] for i, t in enumerate(texts)}

    def encode_text(batch, template):
        return np.stack([table[t] for t in batch])

    t_replay, result = best_of(
        args.repeats, lambda: replay_scores(**common, encode_text=encode_text, answers=answers)
    )
    t_static, _ = best_of(
        args.repeats,
        lambda: run_neglabel(
            image_features=x, id_text_features=idt, negative_features=neg, n_groups=100
        ),
    )
    tr = result.trace
    n_ens = sum(q.kind == "ens" for _, q in plan)
    print(
        f"stream: {stream.n} samples ({args.n_id} ID + {args.n_ood} OOD), {stream.n_batches} batches, d={d}, "
        f"K={k}, negatives={args.negatives}"
    )
    print(
        f"queries planned: {len(plan)} (ENS {n_ens} in {int(tr.ens_update.sum())} updates, "
        f"VSNL {len(plan) - n_ens} in {int(tr.vsnl_update.sum())} events)"
    )
    print(f"final banks: ENS {tr.ens_size[-1]} sentences, VSNL {tr.vsnl_size[-1]} labels")
    print(f"planning pass:        {t_plan:8.2f} s")
    print(f"replay (all answers): {t_replay:8.2f} s")
    print(f"static NegLabel:      {t_static:8.2f} s")
    ratio = t_replay / t_static
    print(
        f"ratio replay / NegLabel: {ratio:.2f}  (target <= 3.0: {'met' if ratio <= 3.0 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
