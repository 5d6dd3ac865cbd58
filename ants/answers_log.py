"""The answers log (the negatives log): what the MLLM was asked and answered, one file per stream.

``results/answers/{benchmark}/{method}/{ood}/seed{seed}.parquet`` (:mod:`ants.artifacts`; older
runs: one file per benchmark, ``results/answers/{benchmark}.parquet``), one row per query, in
the order the stream asked them. Written by the answer job (:func:`answer_records`,
:func:`write_answer_log`); read by the score jobs (:func:`answer_map`, replay), the text
features of the negatives, the cache rebuild, ``ants answers`` / ``ants negatives`` and the
report -- all through the ONE reader, :func:`read_answer_log` (a folder: :func:`read_logs`).

* The Parquet file holds only what the answers ARE (:data:`LOG_COLUMNS`): two runs that get the
  same answers write byte-identical files, so the hash DVC records changes only when an answer
  does.
* What depends on the run -- :data:`TIMING_COLUMNS` ``answered_at``, ``seconds``,
  ``from_cache`` -- goes to a JSON timing sidecar: by default ``<log>.timing.json`` beside the
  log; the workflow keeps it outside DVC's folders
  (``results/logs/answer/{benchmark}/{method}/{ood}/seed{seed}.timing.json``). The sidecar
  records the log's SHA-256 and row count, so it is joined only to the very file it was
  written with; a sidecar that does not match, or cannot be read, is ignored with a warning
  (the timings are then unknown): the log itself never depends on it.
* The reader checks the file as every artifact reader does (:func:`ants.artifacts.read_parquet`:
  readable, the required columns :data:`REQUIRED_COLUMNS` and their types) and fails with one
  line naming the file and how to rebuild it; columns a log written by an older version lacks
  read as None (``parse_style``: ``""``).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ants._io import canonical_json, file_digest, write_json, write_table
from ants.artifacts import (
    ARTIFACTS,
    ArtifactError,
    MissingArtifactError,
    match_path,
    parse_path,
    read_parquet,
)
from ants.artifacts import path as artifact_path
from ants.mllm.base import Answer, Query
from ants.mllm.parsing import BY_STYLE, check_style, parse_answer

log = logging.getLogger(__name__)

__all__ = [
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "REQUIRED_COLUMNS",
    "STATUSES",
    "TIMING_COLUMNS",
    "TIMING_SUFFIX",
    "answer_map",
    "answer_records",
    "failure_summary",
    "list_logs",
    "log_queries",
    "read_answer_log",
    "read_logs",
    "read_readable_logs",
    "sidecar_path",
    "timing_path",
    "write_answer_log",
]

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
#: the columns every log has had (:data:`ants.artifacts.ARTIFACTS` ``answers``); the others read
#: as None when a log lacks them
REQUIRED_COLUMNS = ARTIFACTS["answers"].column_names
#: run-dependent columns: in memory and in the JSON timing sidecar, never in the Parquet file
TIMING_COLUMNS = ("answered_at", "seconds", "from_cache")
TIMING_SUFFIX = ".timing.json"
#: the statuses of an answer (:class:`ants.mllm.base.Answer`)
STATUSES = ("ok", "empty", "unparsable", "failed")


def timing_path(path: str | os.PathLike) -> Path:
    """The default timing sidecar of a log: ``<log>.timing.json`` beside it."""
    return Path(str(path) + TIMING_SUFFIX)


def sidecar_path(log_file: str | os.PathLike) -> Path | None:
    """The timing sidecar of a log, if there is one: ``<log>.timing.json`` beside it, or where
    the workflow keeps it (:data:`ants.artifacts.ARTIFACTS` ``timings``) for a log in a
    workflow's ``results/answers``."""
    cands = [timing_path(log_file)]
    found = match_path(log_file)
    if found is not None and found[0].name == "answers":
        wildcards = parse_path("answers", log_file)
        cands.append(Path(artifact_path("timings", root=found[2] or None, **wildcards)))
    for cand in cands:
        if cand.is_file():
            return cand
    return None


# -- writing ---------------------------------------------------------------------------------


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


#: columns a log written before a column was added may lack, and what they read as
_DEFAULTS = {"parse_style": ""}


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
    missing = [c for c in LOG_COLUMNS if c not in df.columns and c not in _DEFAULTS]
    if missing:
        raise ValueError(
            f"answer log for {str(path)!r} lacks column {missing[0]!r}; expected columns: "
            f"{', '.join(LOG_COLUMNS)}"
        )
    frame = df.copy()
    for col, default in _DEFAULTS.items():
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


# -- reading ---------------------------------------------------------------------------------


def _read_timings(path: Path, side: Path, n: int) -> dict | None:
    """The sidecar's columns when it belongs to this very log (digest and row count), else
    None with a warning saying why it is ignored."""
    try:
        payload = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ignoring the timing sidecar %s of %s: %s", side, path, err)
        return None
    if not isinstance(payload, Mapping):
        log.warning("ignoring the timing sidecar %s of %s: not a JSON object", side, path)
        return None
    digest = payload.get("log_sha256")
    if digest is not None and digest != file_digest(path):
        log.warning(
            "ignoring the timing sidecar %s: it was written with another version of %s", side, path
        )
        return None
    columns = {c: payload.get(c) for c in TIMING_COLUMNS}
    if payload.get("rows", n) != n or not all(
        isinstance(v, list) and len(v) == n for v in columns.values()
    ):
        log.warning("ignoring the timing sidecar %s: its row count does not match %s", side, path)
        return None
    return columns


def read_answer_log(
    path: str | os.PathLike, *, timings: str | os.PathLike | bool = True
) -> pd.DataFrame:
    """Read one negatives log (``negatives`` as Python lists of strings): THE reader.

    The frame has :data:`LOG_COLUMNS`, :data:`TIMING_COLUMNS`, then any other column the file
    has. The file is checked first (:func:`ants.artifacts.read_parquet`; an unusable one raises
    :class:`ants.artifacts.ArtifactError`, one line). Timings come from the sidecar
    (``timings``: ``True`` = :func:`sidecar_path`, a path, or ``False`` = none) when it exists
    and was written with this very file; otherwise they are what the log itself holds (a log
    written before the timings moved out of the Parquet file keeps its own), else unknown:
    ``answered_at`` and ``from_cache`` None, ``seconds`` NaN.
    """
    path = Path(path)
    df, _ = read_parquet(path, "answers")
    for col in LOG_COLUMNS:
        if col not in df.columns:
            df[col] = _DEFAULTS.get(col)
    df["negatives"] = [list(v) if v is not None else [] for v in df["negatives"]]
    side = None if timings is False else (sidecar_path(path) if timings is True else Path(timings))
    payload = _read_timings(path, side, len(df)) if side is not None and side.is_file() else None
    if payload is not None:
        for col in TIMING_COLUMNS:
            df[col] = payload[col]
        df["seconds"] = df["seconds"].astype("float64")
    else:
        for col in TIMING_COLUMNS:
            if col not in df.columns:
                df[col] = float("nan") if col == "seconds" else None
    ordered = list(LOG_COLUMNS + TIMING_COLUMNS)
    return df[ordered + [c for c in df.columns if c not in ordered]]


def list_logs(path: str | os.PathLike) -> list[Path]:
    """Answer logs under ``path`` (a file, or a folder read recursively), sorted. A missing
    path, or a folder holding none, raises :class:`ants.artifacts.ArtifactError`."""
    p = Path(path)
    if p.is_file():
        return [p]
    logs = sorted(x for x in p.rglob("*.parquet") if x.is_file()) if p.is_dir() else []
    if logs:
        return logs
    what = "a folder holding no answers log (*.parquet)" if p.is_dir() else "does not exist"
    cls = ArtifactError if p.is_dir() else MissingArtifactError
    raise cls(p, what, "snakemake --cores all (its answer jobs write them)", "answers logs")


def read_logs(path: str | os.PathLike) -> pd.DataFrame:
    """Every log under ``path`` (:func:`list_logs`) through :func:`read_answer_log`,
    concatenated; column ``log`` = the file each row came from."""
    frames = [read_answer_log(p).assign(log=str(p)) for p in list_logs(path)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_readable_logs(path: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """Every log under ``path`` that can be read (as :func:`read_logs`), and one line per log
    that cannot (naming the file, what is wrong and how to rebuild it), so one damaged stream
    does not hide the others. Raises the first log's :class:`ants.artifacts.ArtifactError`
    when none can be read."""
    frames, unreadable, first = [], [], None
    for p in list_logs(path):
        try:
            frames.append(read_answer_log(p).assign(log=str(p)))
        except ArtifactError as exc:
            first = first or exc
            unreadable.append(str(exc))
    if not frames:
        if len(unreadable) > 1:
            more = f"{first.problem} (and {len(unreadable) - 1} more logs like it)"
            raise ArtifactError(first.path, more, first.rebuild, first.what, first.kind)
        raise first
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame, unreadable


# -- the log as answers ----------------------------------------------------------------------


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
