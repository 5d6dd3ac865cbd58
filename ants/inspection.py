"""Filtering and comparing the MLLM answers logs; the ANTS banks as they stood at a batch.

Used by the ``ants answers`` / ``ants negatives`` commands (:mod:`ants.cli_inspect`) and by the
report (:mod:`ants.report`): pure functions over the frames :func:`ants.answers_log.read_logs`
reads (the logs' format and its one reader live in :mod:`ants.answers_log`).

Banks (:func:`banks_at`): the answers say what each update added; the detector's own update
steps (docs/METHOD.md section 6, :mod:`ants.methods.ants_tta`: :func:`~ants.methods.ants_tta.ens_update_texts`,
:func:`~ants.methods.ants_tta.prepend_keep_last`, :func:`~ants.methods.ants_tta.vsnl_event`,
with the preset's ``answer_parser``) say how -- the very functions the detector runs, on the
answers the score job replays (:func:`ants.answers_log.answer_map`):

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

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ants.errors import UsageError

__all__ = [
    "Banks",
    "banks_at",
    "diff_logs",
    "filter_answers",
]


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
    e.g. the score file's ``method.config``: its preset's ``answer_parser`` normalises);
    ``preds`` / ``pred_batches``: the score file's ``pred`` and ``batch`` columns in stream
    order; ``class_names``: the ID class names by index.
    """
    from ants.answers_log import answer_map, log_queries
    from ants.methods.ants_tta import (
        ants_config,
        ens_update_texts,
        is_vsnl_batch,
        near_subset_size,
        prepend_keep_last,
        top_predicted,
        vsnl_answer_labels,
        vsnl_bank_texts,
        vsnl_event,
    )
    from ants.mllm.base import Answer, Query

    cfg = ants_config(dict(config or {}))
    out = Banks(stream=stream, batch=int(batch))
    rows = answers[answers["batch_index"] <= batch]
    replayed = answer_map(rows)  # what the score job's replay answers
    ens = rows[rows["kind"] == "ens"]
    for b in sorted(int(x) for x in ens["batch_index"].unique()):
        part = ens[ens["batch_index"] == b]
        sentences = ens_update_texts([replayed[q] for q in log_queries(part)], cfg)
        out.ens = prepend_keep_last(out.ens, sentences, cfg.ens_bank_cap)
        out.ens_updates.append(b)
    vs = rows[rows["kind"] == "vsnl"]
    out.vsnl_events = [v for v in range(1, int(batch) + 1) if is_vsnl_batch(v, cfg)]
    exact = preds is not None and pred_batches is not None and class_names is not None
    none = Answer(raw_text="", status="failed", reason="not in the answers log")
    if not exact:
        cache: dict = {}
        for q in log_queries(vs):
            cache.setdefault(q.class_name, vsnl_answer_labels(replayed[q], cfg))
        out.vsnl_classes = list(cache)
        out.vsnl = vsnl_bank_texts(cache, cfg)
        out.vsnl_exact = False
        out.note = (
            "VSNL: no score file / class names, so classes that left the frequent subset are not "
            "dropped; these are the labels of every class asked so far"
        )
        return out
    near_k = near_subset_size(cfg, len(class_names))
    counts: Counter = Counter()
    pb, pr = list(pred_batches), list(preds)
    cache, i = {}, 0
    for v in out.vsnl_events:
        while i < len(pb) and pb[i] <= v:
            counts[int(pr[i])] += 1
            i += 1
        asked = {q.class_name for q in log_queries(vs[vs["batch_index"] == v])}

        def ask(new, asked=asked):
            names = [str(class_names[c]) for c in new]
            return [replayed.get(Query("vsnl", n), none) if n in asked else none for n in names]

        subset = top_predicted(counts, near_k) if cfg.sim else list(range(len(class_names)))
        out.vsnl = vsnl_event(cache, subset, ask, cfg)  # no SIM: every class (ablation row C)
    out.vsnl_classes = [str(class_names[c]) for c in cache]
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
