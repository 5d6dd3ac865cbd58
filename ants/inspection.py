"""Reading, filtering, comparing the MLLM negatives logs; the ANTS banks as they stood at a batch.

Used by the ``ants answers`` / ``ants negatives`` commands (:mod:`ants.cli_inspect`) and by the
report (:mod:`ants.report`). Pure functions over DataFrames plus the readers.

Logs: one Parquet file per stream (``results/answers/{benchmark}/{method}/{ood}/seed{seed}.parquet``)
or, in older runs, one per benchmark (``results/answers/{benchmark}.parquet``); a folder is read
recursively (``**/*.parquet``). The per-answer timing columns (``answered_at``, ``seconds``,
``from_cache``) may live in a JSON sidecar next to the log instead; they are ``None`` when absent.

Banks (:func:`banks_at`): the answers say what each update added; the state machine's own rules
(docs/METHOD.md section 6, :mod:`ants.methods.ants_tta`) say how:

* ENS, at each update batch ``u <= B`` in order: the sentences of the ``ok`` answers of that
  update, de-duplicated (:func:`ants.mllm.parsing.ens_update_sentences`: the parser normalised
  them once), are PREPENDED to the bank, which keeps its last ``ens_bank_cap`` entries;
* VSNL, at each event batch ``v <= B``: the subset = the most predicted ID classes over the
  samples of batches ``1..v`` (:func:`ants.methods.ants_tta.top_predicted` of the score file's
  ``pred``); classes of the subset not cached yet are asked (the log's VSNL rows of batch ``v``),
  each keeps its first ``vsnl_labels_per_class`` normalised labels (``ok`` answers only); cached
  classes that left the subset are dropped; the bank = the cached labels in cache order,
  normalised and de-duplicated (in the method's parse style,
  :func:`ants.mllm.parsing.vsnl_class_labels` / :func:`~ants.mllm.parsing.vsnl_bank_labels`).

Without the score file and the class names, the VSNL bank cannot know which classes left the
subset; :func:`banks_at` then returns the labels asked so far and says so (``vsnl_exact``).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ants.errors import UsageError

__all__ = [
    "SIDECAR_COLUMNS",
    "Banks",
    "banks_at",
    "diff_logs",
    "filter_answers",
    "list_logs",
    "read_logs",
    "read_one_log",
    "read_readable_logs",
    "sidecar_path",
]

SIDECAR_COLUMNS = ("answered_at", "seconds", "from_cache")
STREAM_LOG = re.compile(r"(?P<b>[^/]+)/(?P<m>[^/]+)/(?P<o>[^/]+)/seed(?P<s>\d+)\.parquet$")


def list_logs(path: str | os.PathLike) -> list[Path]:
    """Answer logs under ``path`` (a file, or a folder read recursively), sorted."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        logs = sorted(x for x in p.rglob("*.parquet") if x.is_file())
        if not logs:
            raise UsageError(f"no answers log (*.parquet) under {p}")
        return logs
    raise UsageError(f"answers log not found: {p} (run the workflow first, or give --log)")


def sidecar_path(log: str | os.PathLike) -> Path | None:
    """The timing sidecar of a log, if any: ``<log>.timing.json`` beside it (the answering code's
    default), or where the workflow keeps it outside DVC's folders
    (``results/logs/answer/{benchmark}/{method}/{ood}/seed{seed}.timing.json`` for
    ``results/answers/{benchmark}/{method}/{ood}/seed{seed}.parquet``)."""
    log = Path(log)
    cands = [Path(str(log) + ".timing.json")]
    parts = log.parts
    if "answers" in parts:
        i = len(parts) - 1 - parts[::-1].index("answers")
        rel = Path(*parts[i + 1 :])
        cands.append(Path(*parts[:i]) / "logs" / "answer" / rel.with_suffix(".timing.json"))
    for cand in cands:
        if cand.is_file():
            return cand
    return None


def _sidecar_frame(path: Path, n: int, log: Path | None = None) -> pd.DataFrame | None:
    """The sidecar's columns (row-aligned with the log), or None when it is unreadable, has
    another row count, or records the digest of another version of the log."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if log is not None and isinstance(data, Mapping) and data.get("log_sha256"):
        from ants._io import file_digest

        if data["log_sha256"] != file_digest(log):
            return None
    rows = data.get("rows") if isinstance(data, Mapping) else data
    if isinstance(rows, Mapping):  # columns form {"seconds": [...], ...}
        cols = {k: list(v) for k, v in rows.items() if k in SIDECAR_COLUMNS and len(v) == n}
        return pd.DataFrame(cols) if cols else None
    if isinstance(rows, list) and len(rows) == n and all(isinstance(r, Mapping) for r in rows):
        return pd.DataFrame([{k: r.get(k) for k in SIDECAR_COLUMNS} for r in rows])
    if isinstance(data, Mapping):
        cols = {
            k: list(v)
            for k, v in data.items()
            if k in SIDECAR_COLUMNS and isinstance(v, list) and len(v) == n
        }
        return pd.DataFrame(cols) if cols else None
    return None


def read_one_log(path: str | os.PathLike) -> pd.DataFrame:
    """One answers log as a DataFrame; ``negatives`` as lists; sidecar columns joined when present
    (``None`` otherwise); ``log`` = the file it came from."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one clear line
        raise UsageError(f"{path}: not a readable Parquet answers log ({exc})") from None
    need = ("stream_id", "batch_index", "kind", "raw_text", "negatives", "status")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: not an answers log (no column {missing[0]!r})")
    frame["negatives"] = [list(v) if v is not None else [] for v in frame["negatives"]]
    side = sidecar_path(path)
    extra = _sidecar_frame(side, len(frame), path) if side is not None else None
    for col in SIDECAR_COLUMNS:
        if col not in frame.columns:
            frame[col] = (
                extra[col].tolist() if extra is not None and col in extra else [None] * len(frame)
            )
    for col in (
        "image",
        "image_sha256",
        "class_name",
        "prompt",
        "backend",
        "model_id",
        "revision",
        "settings",
        "cache_key",
        "reason",
    ):
        if col not in frame.columns:
            frame[col] = None
    frame["log"] = str(path)
    return frame


def read_logs(path: str | os.PathLike) -> pd.DataFrame:
    """Every log under ``path`` (:func:`list_logs`), concatenated."""
    frames = [read_one_log(p) for p in list_logs(path)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_readable_logs(path: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """Every log under ``path`` that can be read, concatenated, and one line per log that
    cannot (naming the file and why), so one damaged stream does not hide the others.
    :class:`UsageError` when no log under ``path`` can be read."""
    frames, unreadable = [], []
    for p in list_logs(path):
        try:
            frames.append(read_one_log(p))
        except UsageError as exc:
            unreadable.append(str(exc))
    if not frames:
        more = f" (and {len(unreadable) - 1} more logs like it)" if len(unreadable) > 1 else ""
        raise UsageError(unreadable[0] + more)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame, unreadable


def _names(values: Sequence, limit: int = 20) -> str:
    values = list(values)
    return ", ".join(map(str, values[:limit])) + (
        f" ... ({len(values)} in all)" if len(values) > limit else ""
    )


def filter_answers(
    frame: pd.DataFrame,
    *,
    stream: str | None = None,
    batch: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    text: str | None = None,
) -> pd.DataFrame:
    """Rows of ``frame`` matching every filter given.

    ``stream``: exact stream id, or a prefix ending at a ``/`` boundary (``demo/ants_code``);
    ``text``: case-insensitive substring of the raw answer, the negatives, the class name or the
    image path. An unknown stream or a batch without queries raises :class:`UsageError` naming
    what exists.
    """
    sel = frame
    if stream:
        ids = sel["stream_id"].astype(str)
        hit = (ids == stream) | ids.str.startswith(stream.rstrip("/") + "/")
        if not hit.any():
            known = sorted(frame["stream_id"].dropna().unique())
            raise UsageError(f"no stream {stream!r} in the answers log; streams: {_names(known)}")
        sel = sel[hit]
    if kind:
        sel = sel[sel["kind"] == kind]
    if batch is not None:
        batches = sorted(int(b) for b in sel["batch_index"].dropna().unique())
        sel = sel[sel["batch_index"] == batch]
        if sel.empty:
            where = f"stream {stream!r}" if stream else "the answers log"
            raise UsageError(
                f"{where} has no {kind + ' ' if kind else ''}queries at batch {batch}; "
                f"batches with queries: {_names(batches, 40) or 'none'}"
            )
    if status:
        sel = sel[sel["status"] == status]
    if text:
        t = text.casefold()

        def has(r) -> bool:
            fields_ = [r.raw_text, r.class_name, r.image, " | ".join(r.negatives)]
            return any(t in str(f).casefold() for f in fields_ if f is not None)

        mask = [has(r) for r in sel.itertuples()]
        sel = sel[mask] if len(sel) else sel
    return sel


# -- banks -------------------------------------------------------------------------------------


@dataclass
class Banks:
    """The ENS and VSNL banks of one stream after batch ``batch`` (bank order)."""

    stream: str
    batch: int
    ens: list[str] = field(default_factory=list)
    vsnl: list[str] = field(default_factory=list)
    ens_updates: list[int] = field(default_factory=list)
    vsnl_events: list[int] = field(default_factory=list)
    vsnl_classes: list[str] = field(default_factory=list)
    vsnl_exact: bool = True
    note: str = ""


def banks_at(
    answers: pd.DataFrame,
    batch: int,
    *,
    stream: str = "",
    config: Mapping | None = None,
    preds: Sequence[int] | None = None,
    pred_batches: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
) -> Banks:
    """The banks of one stream's answers (``answers``: its log rows) after batch ``batch``.

    ``config``: the ANTS switches (a mapping for :func:`ants.methods.ants_tta.ants_config`,
    e.g. the score file's ``method.config``); ``preds`` / ``pred_batches``: the score file's
    ``pred`` and ``batch`` columns in stream order; ``class_names``: the ID class names by index.
    """
    from ants.methods.ants_tta import ants_config, top_predicted
    from ants.mllm.parsing import ens_update_sentences, vsnl_bank_labels, vsnl_class_labels

    cfg = ants_config(dict(config or {}))
    style, keep = cfg.answer_parser, cfg.vsnl_labels_per_class
    out = Banks(stream=stream, batch=int(batch))
    rows = answers[answers["batch_index"] <= batch]
    ens = rows[rows["kind"] == "ens"]
    for b in sorted(int(x) for x in ens["batch_index"].unique()):
        part = ens[ens["batch_index"] == b]
        sentences = ens_update_sentences(
            s for r in part.itertuples() if r.status == "ok" for s in r.negatives
        )
        out.ens = (sentences + out.ens)[-cfg.ens_bank_cap :]
        out.ens_updates.append(b)
    vs = rows[rows["kind"] == "vsnl"]
    events = [v for v in range(cfg.vsnl_start, int(batch) + 1, cfg.vsnl_interval)]
    out.vsnl_events = events
    exact = preds is not None and pred_batches is not None and class_names is not None
    cache: dict[str, list[str]] = {}
    if not exact:
        for r in vs.itertuples():
            cache.setdefault(
                str(r.class_name),
                vsnl_class_labels(list(r.negatives) if r.status == "ok" else [], style, keep),
            )
        out.vsnl_exact = False
        out.note = (
            "VSNL: no score file / class names, so classes that left the frequent subset are not "
            "dropped; these are the labels of every class asked so far"
        )
    else:
        k = len(class_names)
        near_k = cfg.near_top_k if cfg.near_subset == "top_k" else max(1, round(cfg.near_delta * k))
        counts: Counter = Counter()
        pb = list(pred_batches)
        pr = list(preds)
        i = 0
        for v in events:
            while i < len(pb) and pb[i] <= v:
                counts[int(pr[i])] += 1
                i += 1
            frequent = [str(class_names[c]) for c in top_predicted(counts, near_k)]
            asked = vs[vs["batch_index"] == v]
            by_class = {str(r.class_name): r for r in asked.itertuples()}
            for c in frequent:
                if c in cache:
                    continue
                r = by_class.get(c)
                got = list(r.negatives) if r is not None and r.status == "ok" else []
                cache[c] = vsnl_class_labels(got, style, keep)
            for c in [c for c in cache if c not in set(frequent)]:
                del cache[c]
    out.vsnl_classes = list(cache)
    out.vsnl = vsnl_bank_labels([lab for labs in cache.values() for lab in labs], style)
    return out


# -- diff --------------------------------------------------------------------------------------

_KEY = ("stream_id", "batch_index", "kind", "class_name", "image_sha256")


def _key_frame(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame.copy()
    f["image_sha256"] = [
        s if s else img for s, img in zip(f["image_sha256"], f["image"], strict=True)
    ]
    f["batch_index"] = f["batch_index"].astype("Int64")
    f["negatives_t"] = [tuple(v) for v in f["negatives"]]
    for c in ("class_name", "image_sha256", "raw_text", "prompt", "status"):
        f[c] = f[c].fillna("").astype(str)
    return f.drop_duplicates(list(_KEY))


def diff_logs(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """What differs between two answers logs.

    Returns ``{"only_a": rows, "only_b": rows, "changed": rows, "entered": {(stream, kind): [...]},
    "left": {...}, "n_a": int, "n_b": int, "same": int}``: queries (stream, batch, kind, class,
    image content) asked in one log only; queries in both whose prompt, raw answer, status or
    negatives differ (columns ``*_a`` / ``*_b``); and per stream and kind the negatives that
    entered (in B, not A) or left (in A, not B) -- the normalised ``ok`` negatives of the stream.
    """
    from ants.mllm.parsing import normalise_sentences

    ka, kb = _key_frame(a), _key_frame(b)
    key = list(_KEY)
    merged = ka.merge(kb, on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_a = merged[merged["_merge"] == "left_only"][key]
    only_b = merged[merged["_merge"] == "right_only"][key]
    both = merged[merged["_merge"] == "both"]
    diff_mask = (
        (both["raw_text_a"] != both["raw_text_b"])
        | (both["status_a"] != both["status_b"])
        | (both["negatives_t_a"] != both["negatives_t_b"])
        | (both["prompt_a"] != both["prompt_b"])
    )
    changed = both[diff_mask][
        key
        + [
            "prompt_a",
            "prompt_b",
            "raw_text_a",
            "raw_text_b",
            "status_a",
            "status_b",
            "negatives_t_a",
            "negatives_t_b",
        ]
    ]

    def bank_terms(f: pd.DataFrame) -> dict:
        out = {}
        for (s, kind), g in f[f["status"] == "ok"].groupby(["stream_id", "kind"]):
            out[(s, kind)] = normalise_sentences([x for v in g["negatives"] for x in v])
        return out

    ta, tb = bank_terms(ka), bank_terms(kb)
    entered, left = {}, {}
    for k in sorted(set(ta) | set(tb)):
        sa = {x.casefold() for x in ta.get(k, [])}
        sb = {x.casefold() for x in tb.get(k, [])}
        e = [x for x in tb.get(k, []) if x.casefold() not in sa]
        lft = [x for x in ta.get(k, []) if x.casefold() not in sb]
        if e:
            entered[k] = e
        if lft:
            left[k] = lft
    return {
        "only_a": only_a.reset_index(drop=True),
        "only_b": only_b.reset_index(drop=True),
        "changed": changed.reset_index(drop=True),
        "entered": entered,
        "left": left,
        "n_a": len(ka),
        "n_b": len(kb),
        "same": int(len(both) - int(diff_mask.sum())),
    }
