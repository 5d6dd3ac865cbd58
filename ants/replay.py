"""Plan -> answer -> replay for ANTS (docs/ARCHITECTURE.md, docs/METHOD.md section 6).

Every MLLM query of an ANTS stream is determined by the static scores, the predictions and
the stream order, never by earlier answers. So:

* :func:`plan_queries` runs the ANTS state machine (:func:`ants.methods.ants_tta.run_ants`,
  the same code as an online run) with an answerer that records the queries and answers
  nothing, and returns every ``(stream batch, Query)`` in the order an online run asks them;
* the queries are answered elsewhere, in large batches (:mod:`ants.mllm.answering`);
* :func:`replay_scores` runs the same state machine with an answerer that looks each query up
  in the answers, so each answer is applied exactly at the batch where an online run would
  have had it: the scores equal an online run's bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ants import artifacts
from ants.artifacts import PLAN_COLUMNS
from ants.methods.ants_switches import AntsConfig
from ants.mllm.base import Answer, Query

if TYPE_CHECKING:  # the detector (torch) is imported when a stream is planned or replayed
    from ants.methods.ants_tta import AntsResult, EncodeText
    from ants.scores import StaticScores

__all__ = [
    "MissingAnswerError",
    "PlanningAnswerer",
    "ReplayAnswerer",
    "PLAN_COLUMNS",
    "plan_queries",
    "read_plan",
    "replay_scores",
    "write_plan",
]

PLANNING_REASON = "planning pass: not answered yet"


class MissingAnswerError(LookupError):
    """A replayed stream asked a query that the answers do not contain."""


class PlanningAnswerer:
    """Records every query and answers each with an empty ``Answer`` (status ``"empty"``)."""

    def __init__(self) -> None:
        self.queries: list[Query] = []

    def __call__(self, queries: Sequence[Query]) -> list[Answer]:
        self.queries.extend(queries)
        return [Answer(raw_text="", status="empty", reason=PLANNING_REASON) for _ in queries]


class ReplayAnswerer:
    """Answers from a mapping ``Query -> Answer``; a missing query is a clear error."""

    def __init__(self, answers: Mapping[Query, Answer]) -> None:
        self.answers = answers

    def __call__(self, queries: Sequence[Query]) -> list[Answer]:
        out = []
        for q in queries:
            try:
                out.append(self.answers[q])
            except KeyError:
                raise MissingAnswerError(
                    f"no answer for {q!r} in the {len(self.answers)} replayed answers; "
                    "re-run the planning and answering steps for this stream"
                ) from None
        return out


def plan_queries(
    *,
    image_features: Any,
    items: Sequence[str],
    id_text_features: Any,
    negative_features: Any,
    class_names: Sequence[str],
    config: AntsConfig | str | Mapping[str, Any] | None = None,
    batch_size: int = 256,
    item_sha256: Sequence[str | None] | None = None,
    static: StaticScores | None = None,
    progress: bool = False,
) -> list[tuple[int, Query]]:
    """Every ``(stream batch, Query)`` an online ANTS run of this stream asks, in order.

    A VSNL class may be asked again in a later batch if it left the frequent subset and came
    back, exactly as online; answer each distinct query once.
    """
    from ants.methods.ants_tta import run_ants

    result = run_ants(
        image_features=image_features,
        items=items,
        id_text_features=id_text_features,
        negative_features=negative_features,
        class_names=class_names,
        encode_text=None,  # with empty answers the banks stay empty: nothing to encode
        answerer=PlanningAnswerer(),
        config=config,
        batch_size=batch_size,
        item_sha256=item_sha256,
        static=static,
        progress=progress,
    )
    return list(result.trace.queries)


def replay_scores(
    *,
    image_features: Any,
    items: Sequence[str],
    id_text_features: Any,
    negative_features: Any,
    class_names: Sequence[str],
    encode_text: EncodeText,
    answers: Mapping[Query, Answer],
    config: AntsConfig | str | Mapping[str, Any] | None = None,
    batch_size: int = 256,
    item_sha256: Sequence[str | None] | None = None,
    static: StaticScores | None = None,
    progress: bool = False,
) -> AntsResult:
    """The ANTS result of this stream with every MLLM answer looked up in ``answers``.

    Raises :class:`MissingAnswerError` naming the first query without an answer.
    """
    from ants.methods.ants_tta import run_ants

    return run_ants(
        image_features=image_features,
        items=items,
        id_text_features=id_text_features,
        negative_features=negative_features,
        class_names=class_names,
        encode_text=encode_text,
        answerer=ReplayAnswerer(answers),
        config=config,
        batch_size=batch_size,
        item_sha256=item_sha256,
        static=static,
        progress=progress,
    )


# -- the plan file ----------------------------------------------------------------------------


def write_plan(
    out: str | os.PathLike,
    stream_name: str,
    queries: Sequence[tuple[int, Query]],
    metadata: Mapping | None = None,
) -> pd.DataFrame:
    """Write one stream's planned ``(batch, Query)`` list atomically (the ``plan`` artifact of
    :mod:`ants.artifacts`: :data:`~ants.artifacts.PLAN_COLUMNS`, metadata ``stream_id``,
    ``n_queries``)."""
    frame = pd.DataFrame(
        [
            {
                "stream_id": stream_name,
                "batch_index": b,
                "kind": q.kind,
                "class_name": q.class_name,
                "image": q.image,
                "image_sha256": q.image_sha256,
            }
            for b, q in queries
        ],
        columns=list(PLAN_COLUMNS),
    )
    frame["batch_index"] = frame["batch_index"].astype("int64")
    artifacts.write_parquet(
        out,
        "plan",
        frame,
        {"stream_id": stream_name, "n_queries": len(frame), **dict(metadata or {})},
    )
    return frame


def read_plan(path: str | os.PathLike) -> tuple[str, list[tuple[int, Query]]]:
    """``(stream name, [(batch, Query), ...])`` of a plan file written by :func:`write_plan`
    (checked by :func:`ants.artifacts.read_parquet`)."""
    from ants.answers_log import log_queries

    frame, meta = artifacts.read_parquet(path, "plan")
    queries = list(zip(frame["batch_index"].astype(int).tolist(), log_queries(frame), strict=True))
    return str(meta.get("stream_id", "")), queries
