"""The one small interface between test-time methods and multimodal LLM backends.

A method (ANTS) only ever builds :class:`Query` objects and receives :class:`Answer` objects
through an :class:`Answerer` (a callable). Which backend produced the text (transformers,
an OpenAI-compatible server, the offline demo model), whether it came from the cache, or
whether it is replayed from a log, is invisible to the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

QueryKind = Literal["ens", "vsnl", "eoe"]
AnswerStatus = Literal["ok", "empty", "unparsable", "failed"]


@dataclass(frozen=True)
class Query:
    """One question to the MLLM.

    * ``kind="ens"``: describe the image ``image`` (a path or, in simulations, an item id),
      without naming ``class_name`` (the predicted ID class). ``image_sha256`` identifies the
      image content for the cache (None when there is no file, e.g. simulated streams).
    * ``kind="vsnl"``: name five classes that share visual features with ``class_name``
      (text-only; ``image`` is None).
    * ``kind="eoe"``: a text-only question whose whole text is ``prompt`` (EOE's LLM prompts,
      :mod:`ants.methods.eoe`: outlier class names envisioned from the ID label set);
      ``class_name`` is the ID class a per-class prompt is about, else empty.
    """

    kind: QueryKind
    class_name: str
    image: str | None = None
    image_sha256: str | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("ens", "vsnl", "eoe"):
            raise ValueError(f"Query.kind must be 'ens', 'vsnl' or 'eoe', got {self.kind!r}")
        if self.kind == "ens" and not self.image:
            raise ValueError("an 'ens' query needs an image")
        if (self.kind == "eoe") != (self.prompt is not None):
            raise ValueError("an 'eoe' query, and only one, carries its own prompt text")


@dataclass(frozen=True)
class Answer:
    """What came back for one query: the raw text and the parsed negatives.

    ``negatives`` are normalised strings (sentences for ENS, class names for VSNL). An answer
    whose status is not ``"ok"`` has no negatives and a human-readable ``reason`` (an ``"ok"``
    answer may carry one too, e.g. when a negative was dropped for its length). ``"empty"`` and
    ``"unparsable"`` answers are real answers (greedy decoding would give them again);
    ``"failed"`` ones (timeouts, server errors, unreadable images) are never cached, and too
    many of them make the answerer raise :class:`AnswerFailureError`.
    """

    raw_text: str
    negatives: tuple[str, ...] = ()
    status: AnswerStatus = "ok"
    reason: str = ""
    cache_key: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


class Answerer(Protocol):
    """Answers a batch of queries, one :class:`Answer` per query, in order."""

    def __call__(self, queries: Sequence[Query]) -> list[Answer]: ...


class BackendError(RuntimeError):
    """A backend cannot be used at all (bad configuration, wrong key, unknown model).

    Raised before any streaming starts; per-query failures become ``Answer(status="failed")``.
    """


class AnswerFailureError(RuntimeError):
    """Too many MLLM queries of one call failed (more than ``max_failed_fraction``).

    Raised after everything was answered and every good answer committed to the cache, so a
    re-run asks only the failed queries again. ``failed`` and ``total`` count distinct queries,
    ``reasons`` are the distinct failure reasons in first-seen order, ``answers`` (when given)
    every answer of the call, in order.
    """

    def __init__(
        self,
        message: str,
        *,
        failed: int = 0,
        total: int = 0,
        reasons: Sequence[str] = (),
        answers: Sequence[Answer] | None = None,
    ) -> None:
        super().__init__(message)
        self.failed = int(failed)
        self.total = int(total)
        self.reasons = list(reasons)
        self.answers = None if answers is None else list(answers)


class Backend(Protocol):
    """An MLLM backend: prompts (and images) in, raw generated text out, one batch at a time.

    * ``identity()`` -> ``{"backend", "model_id", "revision", "settings"}``: everything about the
      backend that changes an answer (it enters the cache key; never a secret such as an API key).
    * ``check()`` raises :class:`BackendError` when the backend cannot be used at all (model not
      loadable, wrong API key, unknown model); called once before the first generation.
    * ``generate(queries, prompts, settings)`` answers a batch of queries of ONE kind with the
      generation settings of that kind (:mod:`ants.mllm.prompts`), greedily; one raw text or one
      ``Exception`` (a per-query failure) per query, in order.
    """

    def identity(self) -> dict: ...

    def check(self) -> None: ...

    def generate(
        self, queries: Sequence[Query], prompts: Sequence[str], settings: dict
    ) -> list[str | Exception]: ...
