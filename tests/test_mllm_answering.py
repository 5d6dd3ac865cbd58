"""Loud failures, the answers log (deterministic Parquet + timing sidecar), answer_map, limits."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ants.answers_log import (
    LOG_COLUMNS,
    TIMING_COLUMNS,
    answer_map,
    answer_records,
    failure_summary,
    read_answer_log,
    timing_path,
    write_answer_log,
)
from ants.mllm import build_answerer
from ants.mllm.answering import MAX_ANSWER_CHARS, CachedAnswerer, answer_all, shorten
from ants.mllm.base import Answer, AnswerFailureError, Query
from ants.mllm.cache import AnswerCache
from ants.mllm.prompts import Prompting


class ScriptedBackend:
    """A fake backend: ``texts[key]`` per query (key = image name or class name); an Exception
    entry fails that query. Records every call."""

    def __init__(self, texts):
        self.texts = dict(texts)
        self.calls: list[list[str]] = []

    def identity(self):
        return {"backend": "scripted", "model_id": "m", "revision": "r", "settings": {}}

    def check(self):
        pass

    def generate(self, queries, prompts, settings):
        names = [os.path.basename(q.image) if q.kind == "ens" else q.class_name for q in queries]
        self.calls.append(names)
        return [self.texts[n] for n in names]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _texts(images, failures=None):
    texts = {os.path.basename(p): f"A picture number {i}." for i, p in enumerate(images)}
    texts.update({"tench": "1. carp\n2. Tench\n3. koi", "goldfish": "1. koi\n2. carp"})
    texts.update(failures or {})
    return texts


def _queries(images):
    return [Query("ens", "tench", image=p) for p in images] + [
        Query("vsnl", "tench"),
        Query("vsnl", "goldfish"),
    ]


# -- failures are loud ------------------------------------------------------------------------


def test_failures_raise_after_everything_is_answered(tmp_path, images):
    failures = {
        "img1.png": TimeoutError("timed out after 60 s"),
        "img2.png": RuntimeError("HTTP 500: server error"),
        "img3.png": TimeoutError("timed out after 60 s"),
        "img4.png": RuntimeError("HTTP 502: bad gateway"),
        "goldfish": RuntimeError("HTTP 429: rate limited"),
    }
    backend = ScriptedBackend(_texts(images, failures))
    cache = AnswerCache(tmp_path / "c.sqlite")
    answerer = CachedAnswerer(backend, cache, Prompting("llava"), batch_size=3)
    # img1 asked once more with the same prompt (a duplicate) and once about another class (the
    # LLaVA prompt names it: a distinct question): 10 queries, 9 distinct
    queries = _queries(images) + [
        Query("ens", "tench", image=images[1]),
        Query("ens", "carp", image=images[1]),
    ]
    with pytest.raises(AnswerFailureError) as err:
        answer_all(queries, answerer, progress=False)
    e = err.value
    assert str(e) == (
        "6 of 9 distinct MLLM queries failed (more than max_failed_fraction=0): "
        "'timed out after 60 s' (x3); 'HTTP 500: server error'; 'HTTP 502: bad gateway'; "
        "and 1 other reason. Failed answers are never cached; the 3 answered ones are in the "
        "cache, so a re-run asks only the 6 failed ones again."
    )
    assert isinstance(e, RuntimeError) and (e.failed, e.total) == (6, 9)
    assert e.reasons == [
        "timed out after 60 s",
        "HTTP 500: server error",
        "HTTP 502: bad gateway",
        "HTTP 429: rate limited",
    ]
    assert [a.status for a in e.answers].count("failed") == 7  # the duplicate shares its answer
    # every batch was answered before raising, and only the good answers were committed
    assert sum(len(c) for c in backend.calls) == 9
    assert len(cache) == 3
    assert answerer.stats["failed"] == 6 and answerer.stats["generated"] == 3

    # the server recovers: a re-run asks exactly the failed ones again
    fixed = ScriptedBackend(_texts(images))
    again = CachedAnswerer(fixed, cache, Prompting("llava"), batch_size=10)
    answers = answer_all(queries, again, progress=False)
    assert fixed.calls == [
        ["img1.png", "img2.png", "img3.png", "img4.png", "img1.png"],
        ["goldfish"],
    ]
    assert all(a.status == "ok" for a in answers) and len(cache) == 9


def test_max_failed_fraction_bounds_the_share(tmp_path, images):
    failures = {"img0.png": RuntimeError("boom")}
    queries = _queries(images)  # 8 distinct, 1 fails: 12.5 %
    for fraction, raises in [(0.0, True), (0.1, True), (0.125, False), (1.0, False)]:
        answerer = CachedAnswerer(
            ScriptedBackend(_texts(images, failures)), None, max_failed_fraction=fraction
        )
        if raises:
            with pytest.raises(AnswerFailureError, match="1 of 8 distinct MLLM queries failed"):
                answerer(queries)
        else:
            assert [a.status for a in answerer(queries)].count("failed") == 1
    # without a cache the message says a re-run asks everything again
    with pytest.raises(AnswerFailureError, match="there is no cache, so a re-run asks everything"):
        CachedAnswerer(ScriptedBackend(_texts(images, failures)), None)(queries)
    # a per-call bound overrides the answerer's own
    lax = CachedAnswerer(ScriptedBackend(_texts(images, failures)), None, max_failed_fraction=0.5)
    with pytest.raises(AnswerFailureError):
        answer_all(queries, lax, progress=False, max_failed_fraction=0.0)
    for bad in (-0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(
            ValueError, match=r"mllm.max_failed_fraction: expected a number in \[0, 1\]"
        ):
            CachedAnswerer(ScriptedBackend({}), None, max_failed_fraction=bad)


def test_answer_all_holds_any_answerer_to_the_bound():
    def plain(queries):
        return [Answer(raw_text="", status="failed", reason="down", cache_key="k")] * len(queries)

    queries = [Query("vsnl", "a"), Query("vsnl", "a")]
    with pytest.raises(AnswerFailureError, match="^1 of 1 distinct MLLM queries failed"):
        answer_all(queries, plain, progress=False)
    assert len(answer_all(queries, plain, progress=False, max_failed_fraction=1.0)) == 2


def test_build_answerer_reads_the_limits(tmp_path):
    config = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    answerer = build_answerer(config, max_failed_fraction=0.25, max_negative_chars=50)
    assert (answerer.max_failed_fraction, answerer.max_negative_chars) == (0.25, 50)
    # the authors' parser has no length limit (their code keeps every negative) and refuses one
    authors = build_answerer(config, parse_style="authors", max_failed_fraction=0.25)
    assert (authors.parse_style, authors.max_negative_chars) == ("authors", None)
    with pytest.raises(ValueError, match="max_negative_chars=50 does not apply to the 'authors'"):
        build_answerer(config, parse_style="authors", max_negative_chars=50)
    default = build_answerer(config)
    assert (default.max_failed_fraction, default.max_negative_chars, default.parse_style) == (
        0.0,
        200,
        "lenient",
    )
    with pytest.raises(ValueError, match="unknown answer parsing style 'paper'"):
        build_answerer(config, parse_style="paper")
    with pytest.raises(ValueError, match="max_negative_chars: expected a positive int or None"):
        build_answerer(config, max_negative_chars=-1)
    # judging settings are not backend settings
    with pytest.raises(ValueError, match="mllm.max_failed_fraction: unknown setting"):
        build_answerer({**config, "max_failed_fraction": 0.5})


# -- the log: deterministic Parquet, timings in a sidecar -------------------------------------


def test_same_answers_give_byte_identical_logs(tmp_path, images):
    queries = _queries(images)
    cache = AnswerCache(tmp_path / "c.sqlite")
    first = answer_all(
        queries, CachedAnswerer(ScriptedBackend(_texts(images)), cache), progress=False
    )
    second = answer_all(  # all from the cache: other timings, same answers
        queries, CachedAnswerer(ScriptedBackend({}), cache), progress=False
    )
    assert [a.extra["from_cache"] for a in first] == [False] * 8
    assert [a.extra["from_cache"] for a in second] == [True] * 8
    a = write_answer_log(
        tmp_path / "one" / "answers.parquet", answer_records(queries, first, stream_id="s")
    )
    b = write_answer_log(
        tmp_path / "two" / "answers.parquet", answer_records(queries, second, stream_id="s")
    )
    assert a.read_bytes() == b.read_bytes()
    # the run-dependent fields went to the sidecars, which do differ
    side_a = json.loads(timing_path(a).read_text())
    side_b = json.loads(timing_path(b).read_text())
    assert side_a["from_cache"] == [False] * 8 and side_b["from_cache"] == [True] * 8
    assert side_a["rows"] == 8 and side_a["log"] == "answers.parquet"
    back = read_answer_log(b)
    assert tuple(back.columns) == LOG_COLUMNS + TIMING_COLUMNS
    assert back["from_cache"].tolist() == [True] * 8
    assert back["seconds"].dtype == np.float64


def test_sidecar_elsewhere_none_and_stale(tmp_path, images):
    queries = _queries(images)
    answers = CachedAnswerer(ScriptedBackend(_texts(images)), None)(queries)
    frame = answer_records(queries, answers, stream_id="s", batch_index=4)
    side = tmp_path / "logs" / "timing" / "bench.json"
    log = write_answer_log(tmp_path / "answers" / "bench.parquet", frame, timings=side)
    assert os.listdir(log.parent) == ["bench.parquet"] and side.is_file()
    assert read_answer_log(log)["answered_at"].isna().all()  # not where it looks by default
    timed = read_answer_log(log, timings=side)
    assert timed["answered_at"].tolist() == frame["answered_at"].tolist()
    assert timed["seconds"].tolist() == pytest.approx(frame["seconds"].tolist())
    # rewriting the log (other answers) without timings leaves a stale sidecar: ignored
    changed = frame.assign(raw_text="something else")
    write_answer_log(log, changed, timings=False)
    stale = read_answer_log(log, timings=side)
    assert stale["from_cache"].isna().all() and stale["seconds"].isna().all()
    # a frame without timing columns writes no sidecar
    write_answer_log(tmp_path / "bare.parquet", frame[list(LOG_COLUMNS)])
    assert not timing_path(tmp_path / "bare.parquet").exists()


def test_a_log_written_before_the_sidecar_keeps_its_timings(tmp_path):
    old = pd.DataFrame(
        {
            **{c: ["x"] for c in LOG_COLUMNS if c != "parse_style"},
            "batch_index": [1],
            "negatives": [["x"]],
            "answered_at": ["2026-01-01T00:00:00+00:00"],
            "seconds": [0.5],
            "from_cache": [True],
        }
    )
    old.to_parquet(tmp_path / "old.parquet")
    back = read_answer_log(tmp_path / "old.parquet")
    assert back["from_cache"].tolist() == [True] and back["parse_style"].tolist() == [""]


# -- answer_map and failure_summary ------------------------------------------------------------


def test_answer_map_from_a_file_or_a_frame_and_reparsed(tmp_path, images):
    texts = _texts(images, {"img5.png": RuntimeError("timeout")})
    texts["tench"] = "1. Carp..\n3 - koi\n4. Tench"
    queries = _queries(images)
    answers = CachedAnswerer(ScriptedBackend(texts), None, max_failed_fraction=1.0)(queries)
    frame = pd.concat(
        [
            answer_records(queries[:4], answers[:4], stream_id="s1", batch_index=1),
            answer_records(queries, answers, stream_id="s2", batch_index=2),
        ],
        ignore_index=True,
    )
    log = write_answer_log(tmp_path / "a.parquet", frame)

    def asked(mapping):
        return {(q.kind, q.class_name, q.image) for q in mapping}

    for source in (log, read_answer_log(log)):
        assert asked(answer_map(source)) == asked(queries)
        assert asked(answer_map(source, "s1")) == asked(queries[:4])
    logged = answer_map(log, "s2")
    vsnl = logged[Query("vsnl", "tench")]
    assert vsnl.negatives == ("Carp.", "koi") and vsnl.extra["parse_style"] == "lenient"
    assert vsnl.cache_key == answers[6].cache_key and vsnl.extra["model_id"] == "m"
    authors = answer_map(log, "s2", parse_style="authors")
    assert authors[Query("vsnl", "tench")].negatives == ("Carp", "Tench")
    assert authors[Query("vsnl", "tench")].extra["parse_style"] == "authors"
    (failed,) = [a for q, a in authors.items() if q.image == images[5]]
    assert (failed.status, failed.reason, failed.negatives) == ("failed", "timeout", ())
    with pytest.raises(ValueError, match="unknown answer parsing style 'x'"):
        answer_map(log, parse_style="x")


def test_failure_summary_counts_per_stream():
    queries = [Query("vsnl", c) for c in "abcdef"]
    answers = [
        Answer(raw_text="1. x", negatives=("x",)),
        Answer(raw_text="", status="failed", reason="timeout"),
        Answer(raw_text="", status="empty", reason="the answer is empty"),
        Answer(raw_text="", status="failed", reason="HTTP 500"),
        Answer(raw_text="nope", status="unparsable", reason="no numbered line"),
        Answer(raw_text="1. y", negatives=("y",)),
    ]
    frame = answer_records(queries, answers, stream_id=["s2", "s2", "s1", "s2", "s1", "s3"])
    got = failure_summary(frame)
    expected = pd.DataFrame(
        {
            "queries": [2, 3, 1],
            "ok": [0, 1, 1],
            "empty": [1, 0, 0],
            "unparsable": [1, 0, 0],
            "failed": [0, 2, 0],
            "failed_fraction": [0.0, 2 / 3, 0.0],
            "first_failure": ["", "timeout", ""],
        },
        index=pd.Index(["s1", "s2", "s3"], name="stream_id"),
    )
    pd.testing.assert_frame_equal(got, expected)
    assert failure_summary(frame.iloc[:0]).empty


# -- length limits -----------------------------------------------------------------------------


def test_a_huge_answer_is_stored_intact_and_a_huge_name_rejected(tmp_path, images):
    huge = "sky " * 25_000  # 100,000 characters
    monster = "Leopard" * 715  # 5,005 characters
    texts = _texts(images, {"img0.png": huge})
    texts["tench"] = f"1. {monster}\n2. lynx"
    cache = AnswerCache(tmp_path / "c.sqlite")
    queries = _queries(images)
    answerer = CachedAnswerer(ScriptedBackend(texts), cache, Prompting("llava"))
    answers = answerer(queries)
    ens, vsnl = answers[0], answers[6]
    assert len(huge) == 100_000 and ens.raw_text == huge
    assert ens.status == "empty" and ens.negatives == ()
    assert ens.reason == (
        "dropped 1 sentence longer than 200 characters (max_negative_chars; the longest has 99999)"
    )
    assert vsnl.status == "ok" and vsnl.negatives == ("lynx",)
    assert vsnl.reason.startswith("dropped 1 class name longer than 200 characters")
    # intact in the cache and in the log
    assert cache.get(ens.cache_key).raw_text == huge
    log = write_answer_log(tmp_path / "a.parquet", answer_records(queries, answers, stream_id="s"))
    back = read_answer_log(log)
    assert back["raw_text"].iloc[0] == huge and back["raw_text"].iloc[6] == texts["tench"]
    assert back["reason"].iloc[6] == vsnl.reason
    # only listings shorten it
    shown = shorten(back["raw_text"].iloc[0], MAX_ANSWER_CHARS)
    assert len(shown) == MAX_ANSWER_CHARS == 500
    assert shown.endswith("... [100,000 characters]") and huge.startswith(shown[:470])
    # with no limit, the same cached raw text gives the long negatives
    unlimited = CachedAnswerer(
        ScriptedBackend({}), cache, Prompting("llava"), max_negative_chars=None
    )
    assert unlimited(queries[6:7])[0].negatives == (monster, "lynx")
    # the authors' parser has no limit: the cached raw texts (the cache keeps raw text, never
    # a parse) are parsed again on the way out, so nothing parsed under the limit is served
    authors = CachedAnswerer(ScriptedBackend({}), cache, Prompting("llava"), parse_style="authors")
    vsnl_a, ens_a = authors([queries[6], queries[0]])
    assert vsnl_a.negatives == (monster, "lynx") and vsnl_a.reason == ""
    assert ens_a.status == "ok" and ens_a.negatives == (huge.strip(),)
    assert authors.stats["hits"] == 2 and authors.stats["generated"] == 0


def test_shorten():
    assert shorten("short", 10) == "short" and shorten(None) == ""
    assert shorten("x" * 10, 10) == "x" * 10
    assert shorten("a" * 30, 25) == "aaaaaa... [30 characters]"
    assert shorten("a" * 30, 5) == "aa..."
    assert shorten("a" * 30, None) == "a" * 30
    with pytest.raises(ValueError, match="max_answer_chars: expected a positive int or None"):
        shorten("a" * 30, 0)


def test_answering_logs_progress_lines_when_not_on_a_terminal(tmp_path, images, monkeypatch, caplog):
    """Under Snakemake stderr is a log file: plain progress lines, never a carriage-return bar."""
    import logging
    import time

    class SlowBackend(ScriptedBackend):
        def generate(self, queries, prompts, settings):
            time.sleep(0.4)  # two ENS batches and one VSNL batch: longer than the 1 s quiet start
            return super().generate(queries, prompts, settings)

    monkeypatch.setenv("ANTS_PROGRESS", "log")
    answerer = CachedAnswerer(SlowBackend(_texts(images)), None, Prompting("llava"), batch_size=3, progress=True)
    with caplog.at_level(logging.INFO, logger="ants.progress"):
        answerer.answer(_queries(images), desc="answer demo/ants_code/x/seed0")
    lines = [r.getMessage() for r in caplog.records if r.name == "ants.progress"]
    assert lines and all("\r" not in x for x in lines)
    assert lines[-1].startswith("answer demo/ants_code/x/seed0: done, 8 query in "), lines
