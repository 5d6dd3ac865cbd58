"""Batched vs one-at-a-time MLLM answering with the offline demo backend.

Answers 256 ENS queries (generated images, LLaVA prompts) through a :class:`CachedAnswerer`
twice, each time with a fresh temporary cache (no hits): once in batches of ``--batch-size``
and once one query at a time. Prints both wall times, queries per second, the speed-up, and
whether both runs gave the same texts (greedy + left padding: they must).

    python benchmarks/bench_demo_batching.py [--queries 256] [--batch-size 32] [--seed 0]

The demo model is built once under ``$ANTS_CACHE_DIR`` (default ``~/.cache/ants``); the
model load and one warm-up batch are excluded from the timings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ants.mllm.answering import CachedAnswerer
from ants.mllm.base import Query
from ants.mllm.cache import AnswerCache
from ants.mllm.demo import demo_backend
from ants.mllm.prompts import Prompting


def make_images(folder: Path, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(24, 96, size=2))
        path = folder / f"img{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def timed_run(backend, queries, batch_size: int, cache_path: Path) -> tuple[float, list]:
    answerer = CachedAnswerer(
        backend, AnswerCache(cache_path), Prompting("llava"), batch_size=batch_size
    )
    t0 = time.perf_counter()
    answers = answerer.answer(queries, progress=False)
    seconds = time.perf_counter() - t0
    assert answerer.stats["hits"] == 0 and answerer.stats["generated"] == len(queries)
    return seconds, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ants-bench-") as tmp:
        tmp = Path(tmp)
        images = make_images(tmp, args.queries, args.seed)
        classes = ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead shark"]
        queries = [Query("ens", classes[i % len(classes)], image=p) for i, p in enumerate(images)]
        backend = demo_backend(seed=args.seed, device="cpu")
        backend.check()
        prompting = Prompting("llava")
        warm = queries[: args.batch_size]
        backend.generate(warm, [prompting.prompt(q) for q in warm], prompting.settings("ens"))

        batched_s, batched = timed_run(backend, queries, args.batch_size, tmp / "batched.sqlite")
        single_s, single = timed_run(backend, queries, 1, tmp / "single.sqlite")

    same = [a.raw_text for a in batched] == [a.raw_text for a in single]
    ok = sum(a.status == "ok" for a in batched)
    n = len(queries)
    print(
        f"demo MLLM ({backend.identity()['model_id']}, {backend.identity()['revision']}), "
        f"{n} ENS queries, CPU threads {torch.get_num_threads()}"
    )
    print(
        f"  batched (batch size {args.batch_size:3d}): {batched_s:7.2f} s  {n / batched_s:8.1f} queries/s"
    )
    print(f"  one at a time             : {single_s:7.2f} s  {n / single_s:8.1f} queries/s")
    print(f"  speed-up: {single_s / batched_s:.1f}x   same texts: {same}   parsed ok: {ok}/{n}")
    if not same:
        raise SystemExit("batched and one-at-a-time answers differ")


if __name__ == "__main__":
    main()
