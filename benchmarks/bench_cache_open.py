"""What the SQLite stores' checks cost: at open, and per entry read; and rebuilding the cache.

Fills a temporary answer cache with ``--answers`` ENS-like answers, then prints: the file size,
the time to open it (writability, header check, ``PRAGMA quick_check``, schema check and a
rolled-back write probe: what makes a damaged or read-only file a
:class:`~ants.mllm.cache.CacheError` at open instead of a traceback mid-run), the time to look
up every key once, the share of that spent verifying the per-entry digests, and the time of
:func:`~ants.mllm.cache.rebuild_cache` from a negatives log holding the same answers. Then the
same for a text-feature store of ``--features`` 512-d features
(:class:`~ants.text_features.TextFeatureStore`).

    python benchmarks/bench_cache_open.py [--answers 100000] [--features 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np

from ants.answers_log import answer_records, write_answer_log
from ants.mllm.base import Answer, Query
from ants.mllm.cache import KIND, AnswerCache, CachedAnswer, cache_key, rebuild_cache
from ants.text_features import KIND as FEATURES
from ants.text_features import TextFeatureStore

IDENTITY = {"backend": "bench", "model_id": "m", "revision": "r", "settings": {"dtype": "fp16"}}
SETTINGS = {"max_new_tokens": 30, "image_size": None}
PROMPT = "Describe this image in fewer than eight words. Do not include the class name tench."
TEXT = "A small red boat on a calm lake at dusk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20_000)
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
        verify = _digest_time(path, KIND, "answers")

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
        print(f"  verifying digests:  {verify:.3f} s ({verify / looked_up:.0%} of the look-up)")
        print(f"rebuild from the log: {rebuilt:.3f} s")
        print(f"open / look-up ratio: {opened / looked_up:.2f}")
        _features(Path(tmp) / "features.sqlite", args.features)


def _digest_time(path: Path, kind, table: str) -> float:
    """Seconds to verify the digest of every row of ``table`` (the rows already in memory)."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(f"SELECT * FROM {table}").fetchall()
    t0 = time.perf_counter()
    bad = sum(kind.digest(r[:-1]) != r[-1] for r in rows)
    assert bad == 0
    return time.perf_counter() - t0


def _features(path: Path, n: int, dim: int = 512) -> None:
    identity = {"backbone": {"model": "bench"}, "precision": "fp32"}
    pairs = [("", f"{TEXT} {i}") for i in range(n)]
    feats = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    with TextFeatureStore(path, identity) as store:
        for start in range(0, n, 5000):
            store.put_many(pairs[start : start + 5000], feats[start : start + 5000])
    t0 = time.perf_counter()
    store = TextFeatureStore(path, identity)
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert len(store.get_many(pairs)) == n
    looked_up = time.perf_counter() - t0
    store.close()
    verify = _digest_time(path, FEATURES, "features")
    print(f"text features:        {n:,} of {dim} dimensions")
    print(f"store file:           {path.stat().st_size / 1e6:.1f} MB")
    print(f"open (with checks):   {opened:.3f} s  ({opened / n * 1e6:.2f} us per feature)")
    print(f"look up every text:   {looked_up:.3f} s")
    print(f"  verifying digests:  {verify:.3f} s ({verify / looked_up:.0%} of the look-up)")


if __name__ == "__main__":
    main()
