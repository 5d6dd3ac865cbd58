"""Answer planned MLLM queries in batches through the cache, and write the negatives log.

:class:`CachedAnswerer` is the :class:`~ants.mllm.base.Answerer` used online and by the
answering stage of plan -> answer -> replay:

* each query gets its prompt and generation settings (:class:`~ants.mllm.prompts.Prompting`),
  its image SHA-256 (computed from the file when the query does not carry one) and its
  :func:`~ants.mllm.cache.cache_key`;
* identical questions within a call are asked once (the same image with the same prompt, e.g.
  an ID test image that appears in several streams);
* cache hits never reach the backend; misses are answered in batches of ``batch_size``, one
  kind at a time, and every batch is committed to the cache as soon as it is answered -- a
  killed run keeps what it answered and a re-run asks only for what is missing;
* the backend's :meth:`check` runs once, before the first generation (never for an all-hit call);
* raw texts are parsed with :mod:`ants.mllm.parsing` (also when read from the cache, so the
  current parser always applies); a per-query failure becomes ``Answer(status="failed")`` and
  is not cached.

:func:`answer_records` turns queries and answers into the negatives log (one row per query) and
:func:`write_answer_log` writes it to Parquet atomically.
"""

from __future__ import annotations

import numbers
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ants._io import file_digest, write_table
from ants.mllm.base import Answer, Backend, BackendError, Query
from ants.mllm.cache import AnswerCache, CachedAnswer, cache_key, canonical_json
from ants.mllm.parsing import parse_answer
from ants.mllm.prompts import KINDS, Prompting


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class CachedAnswerer:
    """Answers queries through an :class:`~ants.mllm.cache.AnswerCache` and a backend.

    ``cache=None`` answers everything with the backend (no persistence). ``stats`` counts,
    over the answerer's life: ``queries``, ``unique``, ``hits``, ``generated``, ``failed``.
    """

    def __init__(
        self,
        backend: Backend,
        cache: AnswerCache | None = None,
        prompting: Prompting | None = None,
        batch_size: int = 16,
        progress: bool = False,
        max_items: int = 5,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"mllm.batch_size: expected a positive int, got {batch_size!r}")
        self.backend = backend
        self.cache = cache
        self.prompting = prompting if prompting is not None else Prompting()
        self.batch_size = batch_size
        self.progress = progress
        self.max_items = max_items
        self.stats: Counter = Counter()
        self._checked = False
        self._identity = dict(backend.identity())
        self._settings = {kind: self.prompting.settings(kind) for kind in KINDS}
        self._sha_memo: dict[tuple[str, int, int], str] = {}

    @property
    def identity(self) -> dict:
        return dict(self._identity)

    # -- keys ---------------------------------------------------------------------------------
    def _with_sha(self, query: Query) -> Query:
        if query.kind != "ens" or query.image_sha256 or not query.image:
            return query
        try:
            st = os.stat(query.image)
        except OSError:
            return query  # not a file (a simulated item id): keyed by the id itself
        memo = (str(query.image), st.st_size, st.st_mtime_ns)
        if memo not in self._sha_memo:
            self._sha_memo[memo] = file_digest(query.image)
        return replace(query, image_sha256=self._sha_memo[memo])

    def prepare(self, query: Query) -> tuple[Query, str, dict, str]:
        """(query with its image SHA-256, prompt, generation settings, cache key)."""
        q = self._with_sha(query)
        prompt = self.prompting.prompt(q)
        settings = self._settings[q.kind]
        return q, prompt, settings, cache_key(self._identity, prompt, q, settings)

    # -- answering ----------------------------------------------------------------------------
    def _extra(
        self,
        q: Query,
        prompt: str,
        settings: dict,
        answered_at: str,
        seconds: float,
        from_cache: bool,
    ) -> dict:
        return {
            "prompt": prompt,
            "backend": self._identity["backend"],
            "model_id": self._identity["model_id"],
            "revision": self._identity["revision"],
            "settings": {
                "backend": dict(self._identity.get("settings") or {}),
                "generation": dict(settings),
            },
            "image_sha256": q.image_sha256,
            "answered_at": answered_at,
            "seconds": float(seconds),
            "from_cache": from_cache,
        }

    def _parsed(self, q: Query, raw: str, key: str, extra: dict) -> Answer:
        parsed = parse_answer(q.kind, raw, q.class_name, max_items=self.max_items)
        return replace(parsed, cache_key=key, extra=extra)

    def __call__(self, queries: Sequence[Query]) -> list[Answer]:
        return self.answer(queries)

    def answer(
        self, queries: Sequence[Query], progress: bool | None = None, desc: str = "MLLM answers"
    ) -> list[Answer]:
        """One :class:`Answer` per query, in order (see the module docstring)."""
        prepared = [self.prepare(q) for q in queries]
        keys = [p[3] for p in prepared]
        first: dict[str, tuple[Query, str, dict, str]] = {}
        for p in prepared:
            first.setdefault(p[3], p)
        self.stats["queries"] += len(queries)
        self.stats["unique"] += len(first)

        done: dict[str, Answer] = {}
        hits = self.cache.get_many(list(first)) if self.cache is not None else {}
        for key, hit in hits.items():
            q, prompt, settings, _ = first[key]
            done[key] = self._parsed(
                q,
                hit.raw_text,
                key,
                self._extra(q, prompt, settings, hit.answered_at, hit.seconds, True),
            )
        self.stats["hits"] += len(hits)

        misses = [p for key, p in first.items() if key not in done]
        if misses and not self._checked:
            self.backend.check()
            self._checked = True
        show = self.progress if progress is None else progress
        with tqdm(
            total=len(misses), desc=desc, unit="query", disable=not show or not misses
        ) as bar:
            for kind in KINDS:
                todo = [p for p in misses if p[0].kind == kind]
                for start in range(0, len(todo), self.batch_size):
                    chunk = todo[start : start + self.batch_size]
                    for key, answer in self._answer_batch(chunk).items():
                        done[key] = answer
                    bar.update(len(chunk))
        return [done[k] for k in keys]

    def _answer_batch(self, chunk: list[tuple[Query, str, dict, str]]) -> dict[str, Answer]:
        qs = [p[0] for p in chunk]
        prompts = [p[1] for p in chunk]
        settings = chunk[0][2]
        t0 = time.perf_counter()
        try:
            raws = self.backend.generate(qs, prompts, settings)
        except BackendError:
            raise
        except Exception as err:  # the backend failed on the whole batch: record, go on
            raws = [RuntimeError(f"{type(err).__name__}: {err}")] * len(chunk)
        if len(raws) != len(chunk):
            raise RuntimeError(f"backend returned {len(raws)} answers for {len(chunk)} queries")
        seconds = (time.perf_counter() - t0) / len(chunk)
        answered_at = _now()
        out: dict[str, Answer] = {}
        entries = []
        for (q, prompt, s, key), raw in zip(chunk, raws, strict=True):
            extra = self._extra(q, prompt, s, answered_at, seconds, False)
            if isinstance(raw, Exception):
                answer = Answer(
                    raw_text="",
                    status="failed",
                    reason=str(raw) or type(raw).__name__,
                    cache_key=key,
                    extra=extra,
                )
                self.stats["failed"] += 1
            else:
                answer = self._parsed(q, raw, key, extra)
                self.stats["generated"] += 1
            out[key] = answer
            entries.append(
                CachedAnswer(
                    key=key,
                    kind=q.kind,
                    raw_text=answer.raw_text,
                    negatives=answer.negatives,
                    status=answer.status,
                    reason=answer.reason,
                    answered_at=answered_at,
                    seconds=seconds,
                    identity=self._identity,
                    prompt=prompt,
                    settings=s,
                )
            )
        if self.cache is not None:
            self.cache.put_many(entries)  # one commit per batch; failed answers are skipped
        return out


def answer_all(
    queries: Sequence[Query], answerer, *, progress: bool = True, desc: str = "MLLM answers"
) -> list[Answer]:
    """Answer a (planned) list of queries with a progress bar; any Answerer works."""
    if hasattr(answerer, "answer"):
        return answerer.answer(queries, progress=progress, desc=desc)
    return list(answerer(queries))


# -- the negatives log ------------------------------------------------------------------------
LOG_SCHEMA = pa.schema(
    [
        ("stream_id", pa.string()),
        ("batch_index", pa.int64()),
        ("kind", pa.string()),
        ("image", pa.string()),
        ("image_sha256", pa.string()),
        ("class_name", pa.string()),
        ("prompt", pa.string()),
        ("backend", pa.string()),
        ("model_id", pa.string()),
        ("revision", pa.string()),
        ("settings", pa.string()),
        ("raw_text", pa.string()),
        ("negatives", pa.list_(pa.string())),
        ("cache_key", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("answered_at", pa.string()),
        ("seconds", pa.float64()),
        ("from_cache", pa.bool_()),
    ]
)
LOG_COLUMNS = tuple(LOG_SCHEMA.names)


def _per_query(value, n: int, name: str) -> list:
    if value is None or isinstance(value, (str, numbers.Integral)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(
            f"{name}: expected one value or {n} values (one per query), got {len(values)}"
        )
    return values


def answer_records(
    queries: Sequence[Query],
    answers: Sequence[Answer],
    *,
    stream_id: str | Sequence[str] | None = None,
    batch_index: int | Sequence[int] | None = None,
) -> pd.DataFrame:
    """The negatives log: one row per query, columns :data:`LOG_COLUMNS`.

    ``stream_id`` and ``batch_index`` (the stream batch where the query arose) are one value
    for all queries or one per query. Never holds an API key: identities carry none.
    """
    if len(queries) != len(answers):
        raise ValueError(f"got {len(queries)} queries but {len(answers)} answers")
    n = len(queries)
    streams = _per_query(stream_id, n, "stream_id")
    batches = _per_query(batch_index, n, "batch_index")
    rows = []
    for q, a, s, b in zip(queries, answers, streams, batches, strict=True):
        x = a.extra or {}
        rows.append(
            {
                "stream_id": None if s is None else str(s),
                "batch_index": None if b is None else int(b),
                "kind": q.kind,
                "image": q.image,
                "image_sha256": q.image_sha256 or x.get("image_sha256"),
                "class_name": q.class_name,
                "prompt": x.get("prompt", ""),
                "backend": x.get("backend", ""),
                "model_id": x.get("model_id", ""),
                "revision": x.get("revision", ""),
                "settings": canonical_json(x.get("settings", {})),
                "raw_text": a.raw_text,
                "negatives": list(a.negatives),
                "cache_key": a.cache_key,
                "status": a.status,
                "reason": a.reason,
                "answered_at": x.get("answered_at", ""),
                "seconds": float(x.get("seconds", 0.0)),
                "from_cache": bool(x.get("from_cache", False)),
            }
        )
    df = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    df["batch_index"] = pd.array(df["batch_index"].tolist(), dtype="Int64")
    return df


def write_answer_log(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write the negatives log to Parquet atomically (a temporary file, then ``os.replace``)."""
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"answer log for {str(path)!r} lacks column {missing[0]!r}; expected columns: {', '.join(LOG_COLUMNS)}"
        )
    return write_table(path, df[list(LOG_COLUMNS)], schema=LOG_SCHEMA)


def read_answer_log(path: str | os.PathLike) -> pd.DataFrame:
    """Read a negatives log (``negatives`` as Python lists of strings)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answer log {str(path)!r} does not exist")
    df = pq.read_table(path).to_pandas()
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{str(path)!r} is not an answer log: it lacks column {missing[0]!r}")
    df["negatives"] = [list(v) if v is not None else [] for v in df["negatives"]]
    return df
