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

The answers (with their prompts, identities and timings in ``Answer.extra``) become the
stream's answers log in :mod:`ants.answers_log` (its format, writer and the one reader).

**Length limits**: raw texts are stored intact in the cache and the log, whatever their length;
:func:`shorten` cuts them for listings (``max_answer_chars``, :data:`MAX_ANSWER_CHARS`). A
parsed negative longer than ``max_negative_chars`` is not accepted in the ``"lenient"`` style;
the ``"authors"`` style has no limit and refuses one (:func:`ants.mllm.parsing.negative_chars_limit`).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from ants._io import file_digest
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
