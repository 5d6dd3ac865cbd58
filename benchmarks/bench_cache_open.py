"""What the answer cache's integrity check at open costs, and rebuilding it from a log.

Fills a temporary cache with ``--answers`` ENS-like answers, then prints: the file size, the
time to open it (header check + ``PRAGMA quick_check`` + schema check: what makes a damaged
file a :class:`~ants.mllm.cache.CacheError` at open instead of a traceback mid-run), the time
to look up every key once, and the time of :func:`~ants.mllm.cache.rebuild_cache` from a
negatives log holding the same answers.

    python benchmarks/bench_cache_open.py [--answers 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ants.answers_log import answer_records, write_answer_log
from ants.mllm.base import Answer, Query
from ants.mllm.cache import AnswerCache, CachedAnswer, cache_key, rebuild_cache

IDENTITY = {"backend": "bench", "model_id": "m", "revision": "r", "settings": {"dtype": "fp16"}}
SETTINGS = {"max_new_tokens": 30, "image_size": None}
PROMPT = "Describe this image in fewer than eight words. Do not include the class name tench."
TEXT = "A small red boat on a calm lake at dusk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=100_000)
    args = parser.parse_args()
    n = args.answers
    queries = [
        Query("ens", "tench", image=f"img{i}.png", image_sha256=f"{i:064x}") for i in range(n)
    ]
    keys = [cache_key(IDENTITY, PROMPT, q, SETTINGS) for q in queries]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "answers.sqlite"
        cache = AnswerCache(path)
        entries = [
            CachedAnswer(
                key=k,
                kind="ens",
                raw_text=TEXT,
                negatives=(TEXT,),
                identity=IDENTITY,
                prompt=PROMPT,
                settings=SETTINGS,
            )
            for k in keys
        ]
        for start in range(0, n, 5000):
            cache.put_many(entries[start : start + 5000])
        cache.close()

        t0 = time.perf_counter()
        cache = AnswerCache(path)
        opened = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert len(cache.get_many(keys)) == n
        looked_up = time.perf_counter() - t0
        cache.close()

        extra = {
            "prompt": PROMPT,
            "backend": "bench",
            "model_id": "m",
            "revision": "r",
            "settings": {"backend": IDENTITY["settings"], "generation": SETTINGS},
        }
        answers = [Answer(raw_text=TEXT, negatives=(TEXT,), cache_key=k, extra=extra) for k in keys]
        log = write_answer_log(
            Path(tmp) / "log.parquet", answer_records(queries, answers, stream_id="s")
        )
        t0 = time.perf_counter()
        stored = rebuild_cache(Path(tmp) / "rebuilt.sqlite", [log])
        rebuilt = time.perf_counter() - t0
        assert stored == n

        print(f"answers:              {n:,}")
        print(f"cache file:           {path.stat().st_size / 1e6:.1f} MB")
        print(f"open (with checks):   {opened:.3f} s  ({opened / n * 1e6:.2f} us per answer)")
        print(f"look up every key:    {looked_up:.3f} s")
        print(f"rebuild from the log: {rebuilt:.3f} s")
        print(f"open / look-up ratio: {opened / looked_up:.2f}")


if __name__ == "__main__":
    main()
