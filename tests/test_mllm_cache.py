"""The content-addressed answer cache, the cached answerer and the negatives log."""

import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from _stores import (
    DAMAGES,
    answer_entry,
    cache_batch_writer,
    cache_writer_hanging_mid_transaction,
    checkpoint,
    damage,
    kill_after,
    kill_when,
    overwrite,
    shared_folder,
    unprivileged,
    user_name,
)
from PIL import Image

from ants._io import file_digest
from ants._sqlite import entry_digest
from ants.answers_log import (
    LOG_COLUMNS,
    TIMING_COLUMNS,
    answer_records,
    read_answer_log,
    write_answer_log,
)
from ants.mllm.answering import CachedAnswerer, answer_all
from ants.mllm.base import Answer, AnswerFailureError, BackendError, Query
from ants.mllm.cache import (
    AnswerCache,
    CachedAnswer,
    CacheError,
    cache_key,
    cache_stats,
    rebuild_cache,
)
from ants.mllm.openai_http import OpenAIBackend
from ants.mllm.prompts import Prompting

IDENTITY = {
    "backend": "transformers",
    "model_id": "llava-hf/llava-1.5-7b-hf",
    "revision": "abc",
    "settings": {"dtype": "fp16"},
}
SETTINGS = {"max_new_tokens": 30, "image_size": None}
QUERY = Query("ens", "tench", image="/data/a.jpg", image_sha256="1" * 64)
PROMPT = "Describe this image in fewer than eight words. Do not include the class name tench."

# -- cache key --------------------------------------------------------------------------------


def test_cache_key_changes_with_what_determines_the_answer():
    base = cache_key(IDENTITY, PROMPT, QUERY, SETTINGS)
    assert len(base) == 64 and int(base, 16) >= 0
    changed = [
        cache_key({**IDENTITY, "model_id": "Qwen/Qwen2-VL-2B-Instruct"}, PROMPT, QUERY, SETTINGS),
        cache_key({**IDENTITY, "revision": "def"}, PROMPT, QUERY, SETTINGS),
        cache_key({**IDENTITY, "backend": "openai"}, PROMPT, QUERY, SETTINGS),
        cache_key({**IDENTITY, "settings": {"dtype": "bf16"}}, PROMPT, QUERY, SETTINGS),
        cache_key(IDENTITY, PROMPT + " ", QUERY, SETTINGS),
        cache_key(
            IDENTITY,
            PROMPT,
            Query("ens", "tench", image="/data/a.jpg", image_sha256="2" * 64),
            SETTINGS,
        ),
        cache_key(IDENTITY, PROMPT, QUERY, {**SETTINGS, "max_new_tokens": 10}),
        cache_key(IDENTITY, PROMPT, QUERY, {**SETTINGS, "image_size": [56, 56]}),
    ]
    assert len(set(changed)) == len(changed) and base not in changed


def test_cache_key_ignores_image_path_and_dict_order():
    base = cache_key(IDENTITY, PROMPT, QUERY, SETTINGS)
    moved = Query("ens", "tench", image="/elsewhere/copy.jpg", image_sha256="1" * 64)
    assert cache_key(IDENTITY, PROMPT, moved, SETTINGS) == base
    reordered = dict(reversed(list(IDENTITY.items())))
    assert cache_key(reordered, PROMPT, QUERY, dict(reversed(list(SETTINGS.items())))) == base


def test_cache_key_vsnl_uses_the_class_name():
    s = {"max_new_tokens": 100, "blank_image_size": [28, 28]}
    a = cache_key(IDENTITY, "p", Query("vsnl", "tench"), s)
    assert a == cache_key(IDENTITY, "p", Query("vsnl", "tench"), s)
    assert a != cache_key(IDENTITY, "p", Query("vsnl", "goldfish"), s)


def test_cache_key_ignores_the_api_key(monkeypatch):
    monkeypatch.setenv("ANTS_TEST_KEY", "sk-first-secret")
    first = OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env="ANTS_TEST_KEY")
    monkeypatch.setenv("ANTS_TEST_KEY", "sk-second-secret")
    second = OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env="ANTS_TEST_KEY")
    assert first.identity() == second.identity()
    assert "secret" not in repr(first.identity()) + repr(first)
    k1 = cache_key(first.identity(), "p", Query("vsnl", "tench"), {"max_new_tokens": 5})
    assert k1 == cache_key(second.identity(), "p", Query("vsnl", "tench"), {"max_new_tokens": 5})


def test_cache_key_needs_an_identity():
    with pytest.raises(ValueError, match="backend identity lacks 'revision'"):
        cache_key({"backend": "x", "model_id": "y"}, "p", QUERY, SETTINGS)


# -- the SQLite store -------------------------------------------------------------------------


def _entry(i: int, tag: str = "") -> CachedAnswer:
    return CachedAnswer(
        key=hashlib.sha256(f"{tag}:{i}".encode()).hexdigest(),
        kind="vsnl",
        raw_text=f"1. name{i}{tag}",
        negatives=(f"name{i}{tag}",),
        answered_at="2026-01-01T00:00:00+00:00",
        seconds=0.5,
        identity=IDENTITY,
        prompt="p",
        settings={"max_new_tokens": 100},
    )


def test_put_get_round_trip_and_failed_not_stored(tmp_path):
    cache = AnswerCache(tmp_path / "a.sqlite")
    failed = CachedAnswer(key="f" * 64, kind="ens", raw_text="", status="failed", reason="timeout")
    empty = CachedAnswer(
        key="e" * 64, kind="ens", raw_text=" ", status="empty", reason="the answer is empty"
    )
    assert cache.put_many([_entry(1), failed, empty]) == 2
    got = cache.get_many([_entry(1).key, "f" * 64, "e" * 64, "x" * 64])
    assert set(got) == {_entry(1).key, "e" * 64}
    assert got[_entry(1).key] == _entry(1)
    assert got[_entry(1).key].identity == IDENTITY and got[_entry(1).key].settings == {
        "max_new_tokens": 100
    }
    assert got["e" * 64].status == "empty"
    assert len(cache) == 2 and ("f" * 64) not in cache
    cache.close()
    # a fresh connection sees the same, and the file is in WAL mode
    with sqlite3.connect(tmp_path / "a.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(AnswerCache(tmp_path / "a.sqlite")) == 2


def test_cache_path_errors(tmp_path):
    with pytest.raises(CacheError, match="is a directory; give a file path"):
        AnswerCache(tmp_path)
    bad = tmp_path / "not.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="is not an SQLite database"):
        AnswerCache(bad)


# -- damaged cache files: one line naming the file and the way out ---------------------------

WAY_OUT = "; move it aside; `ants cache rebuild` rebuilds it from the answers logs"


def _filled_cache(path, n=400):
    cache = AnswerCache(path)
    cache.put_many([_entry(i, "x" * 200) for i in range(n)])  # many pages
    cache.close()
    with sqlite3.connect(path) as conn:  # everything into the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.mark.parametrize(("kind", "what"), DAMAGES.items())
@pytest.mark.faults
def test_damaged_cache_file_is_one_clear_error(tmp_path, kind, what):
    path = _filled_cache(tmp_path / "answers.sqlite")
    assert path.stat().st_size > 4096 * 8
    damage(path, kind)
    size = path.stat().st_size
    with pytest.raises(CacheError) as err:
        AnswerCache(path)
    message = str(err.value)
    assert re.fullmatch(
        re.escape(f"answer cache {str(path)!r} ") + what + re.escape(WAY_OUT), message
    ), message
    assert "\n" not in message and isinstance(err.value, ValueError)
    assert path.stat().st_size == size  # never replaced by a silent fresh cache
    with pytest.raises(CacheError, match=re.escape(WAY_OUT)):
        cache_stats(path)


@pytest.mark.faults
def test_ants_cache_stats_on_a_damaged_file_is_one_line_and_exit_2(tmp_path):
    ants = [str(Path(sys.executable).with_name("ants")), "cache", "stats", "--cache"]
    path = _filled_cache(tmp_path / "answers.sqlite", n=40)
    ok = subprocess.run([*ants, str(path)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "40" in ok.stdout, ok.stderr
    for kind in ("empty", "header-only", "text"):
        what = DAMAGES[kind]
        bad = shutil.copy(path, tmp_path / f"{kind}.sqlite")
        damage(bad, kind)
        proc = subprocess.run([*ants, str(bad)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (kind, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == "", (kind, proc.stderr)
        want = (
            re.escape(f"ants cache: error: answer cache {str(bad)!r} ")
            + what
            + re.escape(WAY_OUT + "\n")
        )
        assert re.fullmatch(want, proc.stderr), (kind, proc.stderr)


def test_foreign_sqlite_files_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(
        CacheError,
        match=r"is an SQLite database but not an answer cache \(it has the tables runs, not 'answers'\)",
    ):
        AnswerCache(other)
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE answers (key TEXT, text TEXT)")
    with pytest.raises(
        CacheError, match=r"has an 'answers' table with the columns key, text, not key, kind"
    ):
        AnswerCache(old)
    # an empty SQLite database (no tables) becomes a cache
    blank = tmp_path / "blank.sqlite"
    with sqlite3.connect(blank) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    assert len(AnswerCache(blank)) == 0


def _open_and_write(path: str, i: int, barrier) -> None:
    barrier.wait(60)
    cache = AnswerCache(path)
    cache.put_many([_entry(i, "race")])
    cache.close()


def test_concurrent_creation_never_sees_a_half_made_file(tmp_path):
    path = str(tmp_path / "new.sqlite")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_open_and_write, args=(path, i, barrier)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(AnswerCache(path).keys()) == sorted(_entry(i, "race").key for i in range(3))
    assert sorted(os.listdir(tmp_path))[0] == "new.sqlite"  # no temporary file left behind
    assert not [n for n in os.listdir(tmp_path) if ".new-" in n]


def test_cache_stats_counts_per_kind_and_status(tmp_path):
    path = tmp_path / "s.sqlite"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cache_stats(path)
    cache = AnswerCache(path)
    entries = [_entry(i) for i in range(3)] + [
        CachedAnswer(key="e" * 64, kind="ens", raw_text="", status="empty", reason="empty"),
        CachedAnswer(key="o" * 64, kind="ens", raw_text="A car", negatives=("A car",)),
        CachedAnswer(key="u" * 64, kind="vsnl", raw_text="no", status="unparsable"),
        CachedAnswer(key="f" * 64, kind="vsnl", raw_text="", status="failed"),
    ]
    cache.put_many(entries)
    assert cache_stats(path) == {"ens": {"empty": 1, "ok": 1}, "vsnl": {"ok": 3, "unparsable": 1}}
    assert not path.with_name("s.sqlite-journal").exists()


def _write_then_die(path: str, n_committed: int) -> None:
    cache = AnswerCache(path)
    for i in range(n_committed):
        cache.put_many([_entry(i)])  # each committed on its own
    conn = cache._connect()
    conn.execute("BEGIN IMMEDIATE")  # a batch in progress when the process dies
    row = ("9" * 64, "ens", "uncommitted", "[]", "ok", "", "", 0.0, "{}", "", "{}")
    conn.execute("INSERT INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (*row, entry_digest(row)))
    os._exit(1)


def _write_many(path: str, tag: str, n: int, barrier) -> None:
    cache = AnswerCache(path)
    barrier.wait(60)  # both writers start together
    for i in range(n):
        cache.put_many([_entry(i, tag)])
        cache.get_many([_entry(i, tag).key])
    cache.close()


@pytest.mark.faults
def test_killed_writer_keeps_every_committed_answer(tmp_path):
    path = str(tmp_path / "k.sqlite")
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_write_then_die, args=(path, 7))
    child.start()
    child.join(60)
    assert child.exitcode == 1
    cache = AnswerCache(path)
    assert sorted(cache.keys()) == sorted(_entry(i).key for i in range(7))
    assert cache.get("9" * 64) is None
    assert cache.get(_entry(3).key).raw_text == "1. name3"


def test_two_processes_write_concurrently(tmp_path):
    path = str(tmp_path / "c.sqlite")
    AnswerCache(path).close()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_many, args=(path, tag, 150, barrier)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = AnswerCache(path)
    assert len(cache) == 300
    got = cache.get_many([_entry(i, t).key for t in ("a", "b") for i in range(150)])
    assert all(
        got[_entry(i, t).key].raw_text == f"1. name{i}{t}" for t in ("a", "b") for i in range(150)
    )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- the cached answerer ----------------------------------------------------------------------


class CountingBackend:
    """A fake backend: deterministic texts, records every call; 'bad' images fail."""

    def __init__(self, model_id="fake-model", fail_on_batch=None):
        self.model_id = model_id
        self.calls: list[list[Query]] = []
        self.checks = 0
        self.fail_on_batch = fail_on_batch

    def identity(self):
        return {"backend": "fake", "model_id": self.model_id, "revision": "r1", "settings": {}}

    def check(self):
        self.checks += 1

    def generate(self, queries, prompts, settings):
        self.calls.append(list(queries))
        if self.fail_on_batch is not None and len(self.calls) == self.fail_on_batch:
            raise KeyboardInterrupt  # the process is killed mid-way
        out = []
        for q in queries:
            if q.kind == "vsnl":
                out.append(f"1. {q.class_name} twin\n2. {q.class_name} cousin")
            elif "bad" in os.path.basename(q.image):
                out.append(RuntimeError("cannot read image"))
            else:
                out.append(f"A picture of {os.path.basename(q.image)}.")
        return out


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _queries(images):
    return [Query("ens", "tench", image=p) for p in images] + [
        Query("vsnl", c) for c in ("tench", "goldfish", "carp")
    ]


def test_hits_never_reach_the_backend(tmp_path, images):
    queries = _queries(images)
    backend = CountingBackend()
    first = CachedAnswerer(
        backend, AnswerCache(tmp_path / "c.sqlite"), Prompting("llava"), batch_size=4
    )
    answers = first(queries)
    # misses in batches of 4, one kind at a time: 10 ENS -> 4 + 4 + 2, 3 VSNL -> 3
    assert [len(c) for c in backend.calls] == [4, 4, 2, 3]
    assert [{q.kind for q in c} for c in backend.calls] == [{"ens"}] * 3 + [{"vsnl"}]
    assert backend.checks == 1
    assert answers[0].negatives == ("A picture of img0.png",) and answers[0].status == "ok"
    assert answers[11].negatives == ("goldfish twin", "goldfish cousin")
    assert answers[0].extra["from_cache"] is False

    again = CountingBackend()
    second = CachedAnswerer(
        again, AnswerCache(tmp_path / "c.sqlite"), Prompting("llava"), batch_size=4
    )
    replayed = second(queries)
    assert again.calls == [] and again.checks == 0  # all hits: no generation, no check
    assert [a.negatives for a in replayed] == [a.negatives for a in answers]
    assert [a.cache_key for a in replayed] == [a.cache_key for a in answers]
    assert all(a.extra["from_cache"] for a in replayed)
    assert second.stats["hits"] == 13 and second.stats["generated"] == 0


def test_a_changed_prompt_or_model_is_asked_again(tmp_path, images):
    queries = _queries(images)[:2]
    cache = AnswerCache(tmp_path / "c.sqlite")
    CachedAnswerer(CountingBackend(), cache, Prompting("llava"))(queries)
    qwen = CountingBackend()
    CachedAnswerer(qwen, cache, Prompting("qwen2vl"))(queries)
    other_model = CountingBackend(model_id="another")
    CachedAnswerer(other_model, cache, Prompting("llava"))(queries)
    assert sum(len(c) for c in qwen.calls) == 2 and sum(len(c) for c in other_model.calls) == 2


def test_moved_image_and_duplicates_are_hits(tmp_path, images):
    backend = CountingBackend()
    answerer = CachedAnswerer(
        backend, AnswerCache(tmp_path / "c.sqlite"), Prompting("qwen2vl"), batch_size=8
    )
    # the same image three times (qwen's ENS prompt has no class name): asked once
    answers = answerer(
        [
            Query("ens", "tench", image=images[0]),
            Query("ens", "carp", image=images[0]),
            Query("ens", "tench", image=images[0]),
        ]
    )
    assert [len(c) for c in backend.calls] == [1]
    assert len({a.cache_key for a in answers}) == 1
    assert answers[0].extra["image_sha256"] == file_digest(images[0])
    copy = tmp_path / "moved" / "renamed.png"
    copy.parent.mkdir()
    shutil.copy(images[0], copy)
    moved = answerer([Query("ens", "tench", image=str(copy))])
    assert [len(c) for c in backend.calls] == [1] and moved[0].cache_key == answers[0].cache_key


def test_failed_answers_are_recorded_and_retried(tmp_path, images):
    bad = str(tmp_path / "bad.png")
    shutil.copy(images[1], bad)
    queries = [Query("ens", "tench", image=images[0]), Query("ens", "tench", image=bad)]
    cache = AnswerCache(tmp_path / "c.sqlite")
    backend = CountingBackend()
    with pytest.raises(AnswerFailureError) as err:  # by default any failure is an error
        CachedAnswerer(backend, cache, Prompting("llava"))(queries)
    assert str(err.value) == (
        "1 of 2 distinct MLLM queries failed (more than max_failed_fraction=0): 'cannot read image'. "
        "Failed answers are never cached; the 1 answered one is in the cache, so a re-run asks "
        "only the 1 failed one again."
    )
    answers = err.value.answers
    assert [a.status for a in answers] == ["ok", "failed"]
    assert answers[1].reason == "cannot read image" and answers[1].negatives == ()
    assert len(cache) == 1  # the good answer was committed, the failed one is not cached
    rerun = CountingBackend()
    tolerant = CachedAnswerer(rerun, cache, Prompting("llava"), max_failed_fraction=0.5)
    assert [a.status for a in tolerant(queries)] == ["ok", "failed"]  # 1 of 2 is allowed
    assert [[os.path.basename(q.image) for q in c] for c in rerun.calls] == [["bad.png"]]


@pytest.mark.faults
def test_a_killed_run_keeps_finished_batches(tmp_path, images):
    queries = _queries(images)
    cache = AnswerCache(tmp_path / "c.sqlite")
    dying = CountingBackend(fail_on_batch=3)
    with pytest.raises(KeyboardInterrupt):
        CachedAnswerer(dying, cache, Prompting("llava"), batch_size=4)(queries)
    assert len(cache) == 8  # two batches of 4 were committed
    rerun = CountingBackend()
    answers = CachedAnswerer(rerun, cache, Prompting("llava"), batch_size=4)(queries)
    assert [len(c) for c in rerun.calls] == [2, 3]  # only the 5 missing ones
    assert all(a.status == "ok" for a in answers)


def test_unusable_backend_fails_before_any_generation(tmp_path, images):
    class Broken(CountingBackend):
        def check(self):
            raise BackendError("wrong key")

    backend = Broken()
    with pytest.raises(BackendError, match="wrong key"):
        CachedAnswerer(backend, AnswerCache(tmp_path / "c.sqlite"))(_queries(images))
    assert backend.calls == []


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="mllm.batch_size: expected a positive int, got 0"):
        CachedAnswerer(CountingBackend(), None, batch_size=0)


def test_cached_text_is_reparsed(tmp_path, images):
    cache = AnswerCache(tmp_path / "c.sqlite")
    answerer = CachedAnswerer(CountingBackend(), cache, Prompting("llava"))
    q = Query("vsnl", "tench")
    key = answerer.prepare(q)[3]
    # a stored raw text with stale parsed values: the current parser wins
    cache.put_many(
        [
            CachedAnswer(
                key=key, kind="vsnl", raw_text="1. carp\n2. Tench\n3. koi", negatives=("stale",)
            )
        ]
    )
    assert answerer([q])[0].negatives == ("carp", "koi")


# -- the negatives log ------------------------------------------------------------------------


def test_answer_log_round_trip(tmp_path, images):
    queries = _queries(images)[:2] + _queries(images)[-1:]
    answers = answer_all(
        queries,
        CachedAnswerer(CountingBackend(), AnswerCache(tmp_path / "c.sqlite")),
        progress=False,
    )
    df = answer_records(queries, answers, stream_id="inat-seed0", batch_index=[3, 3, 10])
    assert tuple(df.columns) == LOG_COLUMNS + TIMING_COLUMNS
    assert "answered_at" not in LOG_COLUMNS and "from_cache" not in LOG_COLUMNS
    assert df["kind"].tolist() == ["ens", "ens", "vsnl"]
    assert df["image_sha256"].tolist()[:2] == [file_digest(images[0]), file_digest(images[1])]
    assert df["negatives"].tolist()[2] == ["carp twin", "carp cousin"]
    assert df["backend"].unique().tolist() == ["fake"]
    assert (
        '"generation":{"blank_image_size":[28,28],"max_new_tokens":100}' in df["settings"].iloc[2]
    )
    path = write_answer_log(tmp_path / "logs" / "answers.parquet", df)
    # no temporary file left behind; the timings are in the sidecar, not in the Parquet file
    assert sorted(os.listdir(path.parent)) == ["answers.parquet", "answers.parquet.timing.json"]
    schema = pq.read_schema(path)
    assert tuple(schema.names) == LOG_COLUMNS
    assert str(schema.field("negatives").type) == "list<element: string>"
    back = read_answer_log(path)
    assert back["negatives"].tolist() == df["negatives"].tolist()
    assert back["batch_index"].tolist() == [3, 3, 10]
    assert back["cache_key"].tolist() == [a.cache_key for a in answers]
    assert back["from_cache"].tolist() == [False] * 3
    assert back["answered_at"].tolist() == df["answered_at"].tolist()
    assert back["parse_style"].tolist() == ["lenient"] * 3


def test_answer_log_errors(tmp_path):
    answer = Answer(raw_text="1. x", negatives=("x",))
    with pytest.raises(ValueError, match="batch_index: expected one value or 2 values"):
        answer_records([Query("vsnl", "a"), Query("vsnl", "b")], [answer] * 2, batch_index=[1])
    with pytest.raises(ValueError, match="lacks column 'stream_id'"):
        write_answer_log(tmp_path / "x.parquet", pd.DataFrame({"kind": ["ens"]}))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_answer_log(tmp_path / "missing.parquet")


def test_file_digest_matches_hashlib(tmp_path):
    p = tmp_path / "blob.bin"
    data = np.random.default_rng(1).integers(0, 256, 3 * 1024 + 5, dtype=np.uint8).tobytes()
    p.write_bytes(data)
    assert file_digest(p, chunk_size=1000) == hashlib.sha256(data).hexdigest()


# -- rebuilding the cache from the answers logs -----------------------------------------------


def _answered_log(tmp_path, images, timings=True):
    queries = _queries(images)
    bad = str(tmp_path / "bad.png")
    shutil.copy(images[1], bad)
    queries.append(Query("ens", "tench", image=bad))  # fails: never cached, never rebuilt
    cache = AnswerCache(tmp_path / "original.sqlite")
    answerer = CachedAnswerer(
        CountingBackend(), cache, Prompting("llava"), batch_size=4, max_failed_fraction=1.0
    )
    answers = answerer(queries)
    # the same questions asked by two streams: one row each in the log
    frame = pd.concat(
        [
            answer_records(queries, answers, stream_id="a", batch_index=1),
            answer_records(queries, answers, stream_id="b", batch_index=2),
        ],
        ignore_index=True,
    )
    log = write_answer_log(tmp_path / "answers.parquet", frame, timings=timings)
    return queries, cache, log


def test_rebuild_cache_round_trip(tmp_path, images):
    queries, original, log = _answered_log(tmp_path, images)
    assert len(original) == 13
    n = rebuild_cache(tmp_path / "rebuilt.sqlite", [log])
    assert n == 13
    rebuilt = AnswerCache(tmp_path / "rebuilt.sqlite")
    assert rebuilt.keys() == original.keys()
    old, new = original.get_many(original.keys()), rebuilt.get_many(original.keys())
    for key in original.keys():
        a, b = old[key], new[key]
        assert (a.kind, a.raw_text, a.negatives, a.status, a.reason, a.prompt) == (
            b.kind,
            b.raw_text,
            b.negatives,
            b.status,
            b.reason,
            b.prompt,
        )
        assert (a.identity, a.settings) == (b.identity, b.settings)
        assert b.answered_at == a.answered_at  # from the timing sidecar
    # a CachedAnswerer over the rebuilt cache answers everything from it
    backend = CountingBackend()
    again = CachedAnswerer(
        backend, rebuilt, Prompting("llava"), batch_size=4, max_failed_fraction=1.0
    )
    answers = again(queries[:-1])
    assert backend.calls == [] and again.stats["generated"] == 0 and again.stats["hits"] == 13
    assert answers[11].negatives == ("goldfish twin", "goldfish cousin")
    assert cache_stats(tmp_path / "rebuilt.sqlite") == cache_stats(tmp_path / "original.sqlite")


@pytest.mark.faults
def test_rebuild_without_sidecar_skips_stale_rows_and_refuses_damage(tmp_path, images, caplog):
    _, original, log = _answered_log(tmp_path, images, timings=False)
    frame = read_answer_log(log)
    assert frame["answered_at"].isna().all()
    # a row whose recorded prompt no longer gives its key (another key version): skipped
    frame.loc[frame["kind"] == "vsnl", "prompt"] = "an edited prompt"
    edited = write_answer_log(tmp_path / "edited.parquet", frame, timings=False)
    assert rebuild_cache(tmp_path / "r.sqlite", [edited]) == 10
    assert "30 log rows skipped" not in caplog.text and "6 log rows skipped" in caplog.text
    ens_key = next(k for k in original.keys() if original.get(k).kind == "ens")
    entry = AnswerCache(tmp_path / "r.sqlite").get(ens_key)
    assert entry is not None and (entry.answered_at, entry.seconds) == ("", 0.0)
    # adding to an existing cache; a damaged one is refused
    assert rebuild_cache(tmp_path / "r.sqlite", [log]) == 13
    assert len(AnswerCache(tmp_path / "r.sqlite")) == 13
    (tmp_path / "broken.sqlite").write_bytes(b"")
    with pytest.raises(CacheError, match="is empty"):
        rebuild_cache(tmp_path / "broken.sqlite", [log])
    with pytest.raises(ValueError, match="no answers log given"):
        rebuild_cache(tmp_path / "x.sqlite", [])


# -- per-entry digests: damaged bytes inside a valid file are never served (issue 21 item 3) ---

ENTRY_WAY_OUT = (
    "; `ants cache rebuild` puts the answers logs' answers back and drops the damaged entries no "
    "log holds (a re-run asks those again)"
)


@pytest.mark.faults
def test_an_entry_with_damaged_bytes_is_an_error_naming_it_and_rebuild_repairs_it(
    tmp_path, images, capsys
):
    from ants.cli import main

    queries, cache, log = _answered_log(tmp_path, images)
    path = cache.path
    cache.close()
    target = next(q for q in queries if q.kind == "vsnl")
    key = CachedAnswerer(CountingBackend(), None, Prompting("llava")).prepare(target)[3]
    raw = AnswerCache(path).get(key).raw_text.encode()
    checkpoint(path)
    overwrite(path, raw, b"Z" * len(raw))  # same length: SQLite's structure is untouched
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # it cannot tell
        assert conn.execute("SELECT raw_text FROM answers WHERE key=?", (key,)).fetchone()[0] == (
            "Z" * len(raw)
        )
    want = (
        f"answer cache {str(path)!r}: the entry {key} is damaged (its bytes do not match the "
        f"digest stored with it){ENTRY_WAY_OUT}"
    )
    backend = CountingBackend()
    with pytest.raises(CacheError) as err:
        CachedAnswerer(backend, AnswerCache(path), Prompting("llava"))(queries[:-1])
    assert str(err.value) == want and backend.calls == []
    other = next(k for k in AnswerCache(path).keys() if k != key)
    assert AnswerCache(path).get(other) is not None  # the intact entries still read
    # `ants cache rebuild` drops it and puts the log's answer back
    assert main(["cache", "rebuild", "--log", str(log), "--cache", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 1 damaged entries dropped, 1 of them put back from the log" in out
    assert AnswerCache(path).damaged_keys() == []
    answers = CachedAnswerer(backend, AnswerCache(path), Prompting("llava"))(queries[:-1])
    assert backend.calls == [] and answers[queries.index(target)].raw_text == raw.decode()


@pytest.mark.faults
def test_damage_no_log_holds_is_dropped_and_asked_again(tmp_path, images, caplog):
    queries, cache, log = _answered_log(tmp_path, images)
    path = cache.path
    keys = cache.keys()
    entry = cache.get(keys[0])
    cache.close()
    checkpoint(path)
    raw = entry.raw_text.encode()
    overwrite(path, raw, raw[::-1] if raw[::-1] != raw else b"?" * len(raw))
    with pytest.raises(CacheError, match=re.escape(f"the entry {keys[0]} is damaged")):
        AnswerCache(path).get(keys[0])
    assert AnswerCache(path).damaged_keys() == [keys[0]]
    # rebuild from a log that lacks it: dropped (a re-run asks it again), the rest untouched
    stranger = write_answer_log(
        tmp_path / "other.parquet",
        read_answer_log(log).query("cache_key != @keys[0]"),
        timings=False,
    )
    rebuild_cache(path, [stranger])
    assert "dropped 1 damaged entry" in caplog.text
    cache = AnswerCache(path)
    assert cache.get(keys[0]) is None and sorted(cache.keys()) == sorted(keys[1:])
    backend = CountingBackend()
    CachedAnswerer(backend, cache, Prompting("llava"), max_failed_fraction=1.0)(queries)
    asked = [q for call in backend.calls for q in call]
    assert len(asked) == 1 and asked[0].kind == entry.kind  # it alone is asked again
    assert AnswerCache(path).get(keys[0]).raw_text == entry.raw_text


def test_non_utf8_bytes_in_an_entry_are_damage_not_a_traceback(tmp_path):
    path = _filled_cache(tmp_path / "answers.sqlite", n=20)
    overwrite(path, b"1. name7xxx", b"1. name7\xff\xfe\xfd")
    with pytest.raises(CacheError) as err:
        AnswerCache(path).get(_entry(7, "x" * 200).key)
    assert str(err.value) == (
        f"answer cache {str(path)!r} is damaged (an entry's raw_text is not valid UTF-8 text)"
        f"{WAY_OUT}"
    )


def test_every_field_of_an_entry_is_under_its_digest(tmp_path):
    path = tmp_path / "a.sqlite"
    with AnswerCache(path) as cache:
        cache.put_many([_entry(1)])
    for column, value in [
        ("status", "empty"),
        ("kind", "ens"),
        ("negatives", "[]"),
        ("prompt", "q"),
        ("settings", "{}"),
        ("identity", "{}"),
        ("reason", "x"),
        ("seconds", 9.0),
        ("answered_at", ""),
        ("digest", "0" * 64),
    ]:
        copy = shutil.copy(path, tmp_path / f"{column}.sqlite")
        with closing(sqlite3.connect(copy)) as conn, conn:
            conn.execute(f"UPDATE answers SET {column}=?", (value,))
        with pytest.raises(CacheError, match="do not match the digest stored with it"):
            AnswerCache(copy).get(_entry(1).key)
    assert AnswerCache(path).get(_entry(1).key) == _entry(1)


def test_a_cache_made_before_the_digests_gets_them_once(tmp_path, caplog):
    path = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(path)) as conn, conn:  # the schema of the previous version
        conn.execute(
            "CREATE TABLE answers (key TEXT PRIMARY KEY, kind TEXT NOT NULL, raw_text TEXT NOT "
            "NULL, negatives TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, "
            "answered_at TEXT NOT NULL, seconds REAL NOT NULL, identity TEXT NOT NULL, prompt "
            "TEXT NOT NULL, settings TEXT NOT NULL)"
        )
        for i in range(3):
            e = _entry(i)
            conn.execute(
                "INSERT INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (e.key, e.kind, e.raw_text, f'["name{i}"]', "ok", "", e.answered_at, 0.5,
                 json.dumps(IDENTITY, sort_keys=True, separators=(",", ":")), "p",
                 '{"max_new_tokens":100}'),
            )  # fmt: skip
    assert cache_stats(path) == {"vsnl": {"ok": 3}}  # read-only: left as it is
    with caplog.at_level("WARNING"):
        cache = AnswerCache(path)
    assert (
        f"answer cache {path} was made before per-entry digests: the digests of its 3 entries "
        "were computed once, now"
    ) in caplog.text
    assert cache.get_many([_entry(i).key for i in range(3)]) == {
        _entry(i).key: _entry(i) for i in range(3)
    }
    assert cache.damaged_keys() == []
    cache.put_many([_entry(3)])
    cache.close()
    caplog.clear()
    assert len(AnswerCache(path)) == 4 and "digests" not in caplog.text  # once only


# -- a cache this user cannot write fails at open, before any query (issue 21 item 6) ---------


def _open_and_put(path):
    cache = AnswerCache(path)
    cache.put_many([_entry(1)])
    return len(cache)


def _open_and_put_permissions_unseen(path):
    """As on a read-only mount, where the permission bits say nothing: only the write probe
    can tell."""
    import ants._sqlite

    ants._sqlite.os.access = lambda *args, **kwargs: True
    return _open_and_put(path)


def test_a_read_only_cache_fails_at_open_naming_the_file():
    with shared_folder() as folder:
        path = folder / "answers.sqlite"
        with AnswerCache(path) as cache:
            cache.put_many([_entry(0)])
        os.chmod(path, 0o444)
        kind, message = unprivileged(_open_and_put, path)
        if kind == "skip":
            pytest.skip(message)
        assert (kind, message) == (
            "CacheError",
            f"answer cache {str(path)!r} cannot be written: {str(path)!r} is read-only for this "
            f"user ({user_name()}); make it writable, or point mllm.cache (`--cache`) at a "
            "writable path (it is checked before any work, so nothing was lost)",
        )
        kind, message = unprivileged(_open_and_put_permissions_unseen, path)
        assert (kind, message) == (
            "CacheError",
            f"answer cache {str(path)!r} cannot be written: SQLite says: attempt to write a "
            "readonly database; make it writable, or point mllm.cache (`--cache`) at a writable "
            "path (it is checked before any work, so nothing was lost)",
        )
        # SQLite made the -wal and -shm files read-only like the database: they are named too
        os.chmod(path, 0o666)
        kind, message = unprivileged(_open_and_put, path)
        assert message.startswith(
            f"answer cache {str(path)!r} cannot be written: '{path}-wal' is read-only for this "
        )
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink()
        os.chmod(folder, 0o555)  # the file is writable, its folder (-wal, -shm) is not
        kind, message = unprivileged(_open_and_put, path)
        assert (kind, message) == (
            "CacheError",
            f"answer cache {str(path)!r} cannot be written: this user ({user_name()}) may not "
            f"write in its folder {str(folder)!r}, where SQLite keeps the store's -wal and -shm "
            "files; "
            "make it writable, or point mllm.cache (`--cache`) at a writable path (it is checked "
            "before any work, so nothing was lost)",
        )
        os.chmod(folder, 0o777)
        assert unprivileged(_open_and_put, path) == ("ok", "2")  # writable again: it works


def test_the_answerer_never_asks_when_the_cache_is_read_only(images):
    def answer(path):
        backend = CountingBackend()
        try:
            CachedAnswerer(backend, AnswerCache(path), Prompting("llava"))(_queries(images))
        except Exception as err:  # noqa: BLE001 - what failed, and whether anything was asked
            return type(err).__name__, len(backend.calls)
        return "answered", len(backend.calls)

    with shared_folder() as folder:
        path = folder / "answers.sqlite"
        AnswerCache(path).close()
        os.chmod(path, 0o444)
        kind, result = unprivileged(answer, path)
        if kind == "skip":
            pytest.skip(result)
        assert result == "('CacheError', 0)"  # it failed opening the cache, before any query


# -- a writer killed at any instant (issue 19 item 2) -----------------------------------------


def test_sigkill_mid_transaction_leaves_only_complete_entries(tmp_path):
    path = str(tmp_path / "k.sqlite")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=cache_writer_hanging_mid_transaction, args=(path, 5, ready))
    child.start()
    kill_when(child, ready)
    assert Path(path + "-wal").stat().st_size > 4_000_000  # the uncommitted rows reached disk
    cache = AnswerCache(path)
    assert sorted(cache.keys()) == sorted(answer_entry(f"committed/{i}").key for i in range(5))
    assert cache.damaged_keys() == []
    cache.close()
    # a writer killed at whatever instant, three times: whole batches only, each entry intact
    size = 200
    for round_ in range(3):
        started = ctx.Event()
        child = ctx.Process(target=cache_batch_writer, args=(path, f"r{round_}", size, started))
        child.start()
        assert started.wait(120)
        kill_after(child, 0.05 + 0.13 * round_)
    cache = AnswerCache(path)
    assert cache.damaged_keys() == []
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        texts = [r[0] for r in conn.execute("SELECT raw_text FROM answers")]
    batches = Counter("/".join(t.split("/")[:2]) for t in texts if t.startswith("r"))
    assert len({b.split("/")[0] for b in batches}) == 3 and set(batches.values()) == {size}
