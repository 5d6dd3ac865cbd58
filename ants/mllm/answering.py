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
* raw texts are parsed with :mod:`ants.mllm.parsing` in the answerer's ``parse_style`` (also
  when read from the cache, so the current parser always applies); a per-query failure becomes
  ``Answer(status="failed")`` and is never cached;
* **failures are loud**: when, after everything was answered (and every good answer
  committed), more than ``max_failed_fraction`` (default 0: any) of the distinct queries
  failed, :class:`~ants.mllm.base.AnswerFailureError` says how many, why, and that a re-run
  asks only the failed ones again.

**The negatives log** (:func:`answer_records`, :func:`write_answer_log`): one row per query.
The Parquet file holds only what the answers ARE (:data:`LOG_COLUMNS`): two runs that get the
same answers write byte-identical files, so the hash DVC records changes only when an answer
does. What depends on the run -- :data:`TIMING_COLUMNS` ``answered_at``, ``seconds``,
``from_cache`` -- goes to a JSON sidecar (``timings=``: by default ``<log>.timing.json`` beside
the log; give a path outside DVC-tracked folders, or ``False`` for none). The sidecar records
the log's SHA-256, so :func:`read_answer_log` joins it only to the very file it was written
with. :func:`answer_map` turns a log into ``{Query: Answer}`` for replay (optionally re-parsing
the raw texts in another style); :func:`failure_summary` counts statuses per stream.

**Length limits**: raw texts are stored intact in the cache and the log, whatever their length;
:func:`shorten` cuts them for listings (``max_answer_chars``, :data:`MAX_ANSWER_CHARS`). A
parsed negative longer than ``max_negative_chars`` is not accepted in the ``"lenient"`` style;
the ``"authors"`` style has no limit and refuses one (:func:`ants.mllm.parsing.negative_chars_limit`).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ants._io import canonical_json, file_digest, write_json, write_table
from ants.mllm.base import Answer, AnswerFailureError, Backend, BackendError, Query
from ants.mllm.cache import AnswerCache, CachedAnswer, cache_key
from ants.mllm.parsing import BY_STYLE, check_style, negative_chars_limit, parse_answer
from ants.mllm.prompts import ALL_KINDS, Prompting
from ants.progress import progress as progress_bar

log = logging.getLogger(__name__)

#: listings (CLI, report) show at most this many characters of a raw answer
MAX_ANSWER_CHARS = 500
#: distinct failure reasons quoted by :class:`AnswerFailureError`
_REASONS_SHOWN = 3


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class CachedAnswerer:
    """Answers queries through an :class:`~ants.mllm.cache.AnswerCache` and a backend.

    ``cache=None`` answers everything with the backend (no persistence). ``parse_style`` (one
    of :data:`ants.mllm.parsing.PARSE_STYLES`), ``max_items`` and ``max_negative_chars`` decide
    how raw texts become negatives (``max_negative_chars``: see
    :func:`ants.mllm.parsing.negative_chars_limit`; a number with the ``"authors"`` style is
    refused here). ``max_failed_fraction`` (in [0, 1]; 0 = any failure is an
    error) bounds the share of distinct queries of one call that may fail before
    :class:`~ants.mllm.base.AnswerFailureError` is raised. ``stats`` counts, over the
    answerer's life: ``queries``, ``unique``, ``hits``, ``generated``, ``failed``.
    """

    def __init__(
        self,
        backend: Backend,
        cache: AnswerCache | None = None,
        prompting: Prompting | None = None,
        batch_size: int = 16,
        progress: bool = False,
        max_items: int = 5,
        *,
        parse_style: str = "lenient",
        max_failed_fraction: float = 0.0,
        max_negative_chars: int | str | None = BY_STYLE,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"mllm.batch_size: expected a positive int, got {batch_size!r}")
        check_style(parse_style)
        # validates max_negative_chars and max_items with the parser's own messages
        parse_answer("vsnl", "", "", max_items, parse_style, max_negative_chars)
        max_negative_chars = negative_chars_limit(parse_style, max_negative_chars)
        self.backend = backend
        self.cache = cache
        self.prompting = prompting if prompting is not None else Prompting()
        self.batch_size = batch_size
        self.progress = progress
        self.max_items = max_items
        self.parse_style = parse_style
        self.max_failed_fraction = check_fraction(max_failed_fraction)
        self.max_negative_chars = max_negative_chars
        self.stats: Counter = Counter()
        self._checked = False
        self._identity = dict(backend.identity())
        self._settings = {kind: self.prompting.settings(kind) for kind in ALL_KINDS}
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
            "parse_style": self.parse_style,
            "answered_at": answered_at,
            "seconds": float(seconds),
            "from_cache": from_cache,
        }

    def _parsed(self, q: Query, raw: str, key: str, extra: dict) -> Answer:
        parsed = parse_answer(
            q.kind,
            raw,
            q.class_name,
            max_items=self.max_items,
            style=self.parse_style,
            max_negative_chars=self.max_negative_chars,
        )
        return replace(parsed, cache_key=key, extra=extra)

    def __call__(self, queries: Sequence[Query]) -> list[Answer]:
        return self.answer(queries)

    def answer(
        self,
        queries: Sequence[Query],
        progress: bool | None = None,
        desc: str = "MLLM answers",
        max_failed_fraction: float | None = None,
    ) -> list[Answer]:
        """One :class:`Answer` per query, in order (see the module docstring).

        ``max_failed_fraction``: this call's bound (None: the answerer's). Raises
        :class:`~ants.mllm.base.AnswerFailureError` after answering everything when more than
        that share of the distinct queries failed.
        """
        limit = (
            self.max_failed_fraction
            if max_failed_fraction is None
            else check_fraction(max_failed_fraction)
        )
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
        with progress_bar(
            total=len(misses), desc=desc, unit="query", enabled=bool(show and misses)
        ) as bar:
            for kind in ALL_KINDS:
                todo = [p for p in misses if p[0].kind == kind]
                for start in range(0, len(todo), self.batch_size):
                    chunk = todo[start : start + self.batch_size]
                    for key, answer in self._answer_batch(chunk).items():
                        done[key] = answer
                    bar.update(len(chunk))
        answers = [done[k] for k in keys]
        check_failures(
            [done[k] for k in first], limit, cached=self.cache is not None, answers=answers
        )
        return answers

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


def check_fraction(value, key: str = "mllm.max_failed_fraction") -> float:
    """``value`` as a float in [0, 1], else ValueError naming ``key``."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
        and 0.0 <= float(value) <= 1.0
    )
    if not ok:
        raise ValueError(
            f"{key}: expected a number in [0, 1] (the share of distinct queries that may fail), got {value!r}"
        )
    return float(value)


def check_failures(
    distinct: Sequence[Answer],
    max_failed_fraction: float,
    *,
    cached: bool = True,
    answers: Sequence[Answer] | None = None,
) -> None:
    """Raise :class:`AnswerFailureError` if more than ``max_failed_fraction`` of ``distinct`` failed.

    ``distinct``: one answer per distinct question. The message gives the count, the first
    :data:`_REASONS_SHOWN` distinct reasons (with how often each occurred) and what a re-run
    does. ``answers`` (all answers of the call, in order) is attached to the error.
    """
    total = len(distinct)
    failed = [a for a in distinct if a.status == "failed"]
    if not total or len(failed) / total <= max_failed_fraction:
        return
    counts = Counter(a.reason or "(no reason given)" for a in failed)
    reasons = list(counts)  # first-seen order
    shown = "; ".join(
        f"{shorten(r, 200)!r}" + (f" (x{counts[r]})" if counts[r] > 1 else "")
        for r in reasons[:_REASONS_SHOWN]
    )
    if len(reasons) > _REASONS_SHOWN:
        more = len(reasons) - _REASONS_SHOWN
        shown += f"; and {more} other reason{'s' if more > 1 else ''}"
    n_ok, n_failed = total - len(failed), len(failed)
    rerun = (
        f"the {n_ok} answered {'one is' if n_ok == 1 else 'ones are'} in the cache, so a re-run "
        f"asks only the {n_failed} failed {'one' if n_failed == 1 else 'ones'} again"
        if cached
        else "there is no cache, so a re-run asks everything again"
    )
    message = (
        f"{len(failed)} of {total} distinct MLLM queries failed "
        f"(more than max_failed_fraction={max_failed_fraction:g}): {shown}. Failed answers are "
        f"never cached; {rerun}."
    )
    raise AnswerFailureError(
        message, failed=len(failed), total=total, reasons=reasons, answers=answers
    )


def answer_all(
    queries: Sequence[Query],
    answerer,
    *,
    progress: bool = True,
    desc: str = "MLLM answers",
    max_failed_fraction: float | None = None,
) -> list[Answer]:
    """Answer a (planned) list of queries with a progress bar; any Answerer works.

    ``max_failed_fraction``: None uses a :class:`CachedAnswerer`'s own bound (default 0.0);
    any other answerer is held to 0.0 unless given. Its distinct questions are told apart by
    cache key (by position when an answer has none). Raises :class:`AnswerFailureError`.
    """
    if isinstance(answerer, CachedAnswerer):
        return answerer.answer(
            queries, progress=progress, desc=desc, max_failed_fraction=max_failed_fraction
        )
    if hasattr(answerer, "answer"):
        answers = list(answerer.answer(queries, progress=progress, desc=desc))
    else:
        answers = list(answerer(queries))
    limit = 0.0 if max_failed_fraction is None else check_fraction(max_failed_fraction)
    distinct: dict[object, Answer] = {}
    for i, a in enumerate(answers):
        distinct.setdefault(a.cache_key or i, a)
    check_failures(list(distinct.values()), limit, cached=False, answers=answers)
    return answers


def shorten(text, limit: int | None = MAX_ANSWER_CHARS) -> str:
    """``text`` for a listing: unchanged when at most ``limit`` characters, else cut to ``limit``.

    A cut text ends with a marker giving the full length (``"... [100,000 characters]"``), and
    the result is at most ``limit`` characters long. ``None`` text gives ``""``; ``limit=None``
    never cuts. The stored answers are never shortened; only what is shown is.

    >>> shorten("a" * 30, 25)
    'aaaaaa... [30 characters]'
    """
    if text is None:
        return ""
    text = str(text)
    if limit is None or len(text) <= limit:
        return text
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"max_answer_chars: expected a positive int or None, got {limit!r}")
    marker = f"... [{len(text):,} characters]"
    if limit <= len(marker):
        return text[: max(limit - 3, 0)] + "..."[:limit]
    return text[: limit - len(marker)] + marker


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
        ("parse_style", pa.string()),
        ("cache_key", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)
#: the columns of the Parquet log: what the answers are, nothing that depends on the run
LOG_COLUMNS = tuple(LOG_SCHEMA.names)
#: run-dependent columns: in memory and in the JSON timing sidecar, never in the Parquet file
TIMING_COLUMNS = ("answered_at", "seconds", "from_cache")
#: columns a log written before a column was added may lack, and what they read as
_OPTIONAL_COLUMNS = {"parse_style": ""}
TIMING_SUFFIX = ".timing.json"


def timing_path(path: str | os.PathLike) -> Path:
    """The default timing sidecar of a log: ``<log>.timing.json`` beside it."""
    return Path(str(path) + TIMING_SUFFIX)


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
    """The negatives log: one row per query, columns :data:`LOG_COLUMNS` + :data:`TIMING_COLUMNS`.

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
                "parse_style": x.get("parse_style", ""),
                "cache_key": a.cache_key,
                "status": a.status,
                "reason": a.reason,
                "answered_at": x.get("answered_at", ""),
                "seconds": float(x.get("seconds", 0.0)),
                "from_cache": bool(x.get("from_cache", False)),
            }
        )
    df = pd.DataFrame(rows, columns=list(LOG_COLUMNS + TIMING_COLUMNS))
    df["batch_index"] = pd.array(df["batch_index"].tolist(), dtype="Int64")
    return df


def _json_scalar(value, kind: str):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if kind == "seconds":
        return float(value)
    if kind == "from_cache":
        return bool(value)
    return str(value)


def write_answer_log(
    path: str | os.PathLike, df: pd.DataFrame, *, timings: str | os.PathLike | bool = True
) -> Path:
    """Write the negatives log to Parquet atomically; its timings to a JSON sidecar.

    The Parquet file holds :data:`LOG_COLUMNS` only, so the same answers always give the same
    bytes. ``timings``: where the :data:`TIMING_COLUMNS` go when ``df`` has them -- ``True``:
    :func:`timing_path` (``<path>.timing.json``); a path: there (for the workflow: outside any
    DVC-tracked folder); ``False``: nowhere. The sidecar is ``{"log": file name, "log_sha256":
    digest of the Parquet file, "rows": n, "answered_at": [...], "seconds": [...],
    "from_cache": [...]}``, row-aligned with the log. Returns the log's path.
    """
    missing = [c for c in LOG_COLUMNS if c not in df.columns and c not in _OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(
            f"answer log for {str(path)!r} lacks column {missing[0]!r}; expected columns: {', '.join(LOG_COLUMNS)}"
        )
    frame = df.copy()
    for col, default in _OPTIONAL_COLUMNS.items():
        if col not in frame.columns:
            frame[col] = default
    out = write_table(path, frame[list(LOG_COLUMNS)], schema=LOG_SCHEMA)
    if timings is not False and all(c in df.columns for c in TIMING_COLUMNS):
        side = timing_path(out) if timings is True else Path(timings)
        payload = {
            "log": out.name,
            "log_sha256": file_digest(out),
            "rows": len(df),
            **{c: [_json_scalar(v, c) for v in df[c].tolist()] for c in TIMING_COLUMNS},
        }
        write_json(side, payload)
    return out


def _read_timings(path: Path, side: Path, n: int) -> dict | None:
    try:
        payload = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ignoring the timing sidecar %s of %s: %s", side, path, err)
        return None
    if not isinstance(payload, Mapping) or payload.get("log_sha256") != file_digest(path):
        log.warning(
            "ignoring the timing sidecar %s: it was written with another version of %s", side, path
        )
        return None
    if payload.get("rows") != n or any(len(payload.get(c) or []) != n for c in TIMING_COLUMNS):
        log.warning("ignoring the timing sidecar %s: its row count does not match %s", side, path)
        return None
    return payload


def read_answer_log(
    path: str | os.PathLike, *, timings: str | os.PathLike | bool = True
) -> pd.DataFrame:
    """Read a negatives log (``negatives`` as Python lists of strings).

    The frame has :data:`LOG_COLUMNS` and :data:`TIMING_COLUMNS`. Timings come from the sidecar
    (``timings``: ``True`` = :func:`timing_path`, a path, or ``False`` = none) when it exists
    and was written with this very file (its recorded SHA-256 matches); otherwise they are
    unknown: ``answered_at`` and ``from_cache`` None, ``seconds`` NaN. (A log written before
    the timings moved out of the Parquet file keeps its own.)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answer log {str(path)!r} does not exist")
    df = pq.read_table(path).to_pandas()
    missing = [c for c in LOG_COLUMNS if c not in df.columns and c not in _OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"{str(path)!r} is not an answer log: it lacks column {missing[0]!r}")
    for col, default in _OPTIONAL_COLUMNS.items():
        if col not in df.columns:
            df[col] = default
    df["negatives"] = [list(v) if v is not None else [] for v in df["negatives"]]
    side = None if timings is False else (timing_path(path) if timings is True else Path(timings))
    payload = _read_timings(path, side, len(df)) if side is not None and side.is_file() else None
    if payload is not None:
        for col in TIMING_COLUMNS:
            df[col] = payload[col]
        df["seconds"] = df["seconds"].astype("float64")
    else:
        for col in TIMING_COLUMNS:
            if col not in df.columns:
                df[col] = float("nan") if col == "seconds" else None
    return df[
        list(LOG_COLUMNS + TIMING_COLUMNS)
        + [c for c in df.columns if c not in LOG_COLUMNS + TIMING_COLUMNS]
    ]


def _none(value) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def log_queries(frame: pd.DataFrame) -> list[Query]:
    """The :class:`Query` of each row of a log (or plan) frame, in order."""
    return [
        Query(
            kind=r["kind"],
            class_name=str(r["class_name"]),
            image=_none(r.get("image")),
            image_sha256=_none(r.get("image_sha256")),
            prompt=str(r.get("prompt") or "") if r["kind"] == "eoe" else None,
        )
        for r in frame.to_dict("records")
    ]


def answer_map(
    frame_or_path: pd.DataFrame | str | os.PathLike,
    stream_id: str | None = None,
    *,
    parse_style: str | None = None,
    max_items: int = 5,
    max_negative_chars: int | str | None = BY_STYLE,
) -> dict[Query, Answer]:
    """``{Query: Answer}`` from a negatives log (a frame or a file), optionally one stream's rows.

    ``parse_style=None`` keeps the negatives as logged; a style (``"lenient"`` / ``"authors"``)
    re-parses every non-failed raw text with it (and ``max_items``, ``max_negative_chars``), so
    one log serves both ANTS presets. Failed answers stay failed. ``Answer.extra`` holds the
    row's prompt, backend, model id and revision.
    """
    frame = (
        frame_or_path
        if isinstance(frame_or_path, pd.DataFrame)
        else read_answer_log(frame_or_path, timings=False)
    )
    if parse_style is not None:
        check_style(parse_style)
    if stream_id is not None:
        frame = frame[frame["stream_id"] == stream_id]
    out: dict[Query, Answer] = {}
    for q, r in zip(log_queries(frame), frame.to_dict("records"), strict=True):
        extra = {k: r.get(k, "") for k in ("prompt", "backend", "model_id", "revision")}
        raw = r.get("raw_text") or ""
        key = r.get("cache_key") or ""
        if parse_style is not None and r["status"] != "failed":
            parsed = parse_answer(
                q.kind, raw, q.class_name, max_items, parse_style, max_negative_chars
            )
            answer = replace(parsed, cache_key=key, extra={**extra, "parse_style": parse_style})
        else:
            answer = Answer(
                raw_text=raw,
                negatives=tuple(r.get("negatives") or ()),
                status=r["status"],
                reason=r.get("reason") or "",
                cache_key=key,
                extra={**extra, "parse_style": r.get("parse_style") or ""},
            )
        out[q] = answer
    return out


STATUSES = ("ok", "empty", "unparsable", "failed")


def failure_summary(log_frame: pd.DataFrame) -> pd.DataFrame:
    """Per stream: how many queries, per status, the failed share and the first failure reason.

    Columns ``queries``, ``ok``, ``empty``, ``unparsable``, ``failed`` (row counts),
    ``failed_fraction`` (failed / queries) and ``first_failure`` (the reason of the stream's
    first failed row, ``""`` if none); indexed by ``stream_id``, sorted.
    """
    columns = ["queries", *STATUSES, "failed_fraction", "first_failure"]
    if log_frame.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="stream_id"))
    frame = log_frame.assign(stream_id=log_frame["stream_id"].fillna(""))
    counts = (
        frame.groupby(["stream_id", "status"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=list(STATUSES), fill_value=0)
    )
    out = counts.astype("int64")
    out.insert(0, "queries", out.sum(axis=1))
    out["failed_fraction"] = out["failed"] / out["queries"]
    failed = frame[frame["status"] == "failed"]
    first = failed.groupby("stream_id")["reason"].first()
    out["first_failure"] = [str(first.get(s, "") or "") for s in out.index]
    out.columns.name = None
    return out.sort_index()[columns]
