"""The ``ants`` inspection commands: what the MLLM was asked and answered, the answer cache.

Registered on the ``ants`` parser by :func:`register`; each command reads workflow artifacts
and prints. Bad input raises :class:`ants.errors.UsageError` (exit 2, one line).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ants.errors import UsageError

__all__ = ["register"]


def _read_log(path: str):
    from ants.mllm.answering import read_answer_log

    p = Path(path)
    if p.is_dir():
        logs = sorted(p.glob("*.parquet"))
        if not logs:
            raise UsageError(f"no negatives log (*.parquet) in {p}")
        import pandas as pd

        return pd.concat([read_answer_log(x) for x in logs], ignore_index=True)
    if not p.is_file():
        raise UsageError(f"negatives log not found: {p} (run the workflow first, or give --log)")
    return read_answer_log(p)


def cmd_answers_streams(a) -> int:
    frame = _read_log(a.log)
    if frame.empty:
        print("the log holds no queries")
        return 0
    table = frame.groupby(["stream_id", "kind"]).size().unstack(fill_value=0)
    print(table.to_string())
    return 0


def cmd_answers_show(a) -> int:
    frame = _read_log(a.log)
    sel = frame[frame["stream_id"] == a.stream]
    if sel.empty:
        known = sorted(frame["stream_id"].unique())
        raise UsageError(f"no stream {a.stream!r} in the log; streams: {', '.join(known[:20])}"
                         + (" ..." if len(known) > 20 else ""))
    if a.batch is not None:
        sel = sel[sel["batch_index"] == a.batch]
    if a.kind:
        sel = sel[sel["kind"] == a.kind]
    if sel.empty:
        batches = sorted(frame.loc[frame["stream_id"] == a.stream, "batch_index"].dropna().unique().tolist())
        raise UsageError(f"stream {a.stream!r} has no {a.kind or ''} queries at batch {a.batch}; "
                         f"batches with queries: {batches}")
    shown = sel.head(a.limit)
    for r in shown.itertuples():
        what = f"image {r.image} (predicted {r.class_name!r})" if r.kind == "ens" else f"class {r.class_name!r}"
        print(f"[batch {r.batch_index}] {r.kind.upper()} about {what}")
        print(f"  model:    {r.backend} {r.model_id} @ {r.revision}")
        print("  asked:    " + textwrap.shorten(r.prompt, 200))
        print("  answered: " + (repr(r.raw_text) if r.raw_text else "(nothing)") + f"  [{r.status}"
              + (f": {r.reason}" if r.reason else "") + ("; from cache" if r.from_cache else "") + "]")
        print(f"  negatives: {list(r.negatives)}")
    if len(sel) > len(shown):
        print(f"... {len(sel) - len(shown)} more (use --limit)")
    return 0


def cmd_cache_stats(a) -> int:
    import sqlite3

    path = Path(a.cache)
    if not path.is_file():
        raise UsageError(f"answer cache not found: {path}")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT kind, status, COUNT(*) FROM answers GROUP BY kind, status ORDER BY 1, 2").fetchall()
    total = sum(r[2] for r in rows)
    print(f"{path}: {total} cached answers")
    for kind, status, n in rows:
        print(f"  {kind:5s} {status:11s} {n}")
    return 0



def register(add) -> None:
    """Add the inspection commands through ``add(name, func, help)`` (see :mod:`ants.cli`)."""
    s = add("answers", None, "inspect the negatives log (what the MLLM was asked and answered)")
    asub = s.add_subparsers(dest="answers_command", required=True, metavar="SUBCOMMAND")
    c = asub.add_parser("streams", help="streams in the log, with query counts per kind")
    c.add_argument("--log", default="results/answers", help="a log file or a folder of logs (default: results/answers)")
    c.set_defaults(func=cmd_answers_streams)
    c = asub.add_parser("show", help="the queries and answers of one stream (optionally one batch, one kind)")
    c.add_argument("--stream", required=True, help="stream id, e.g. demo/ants_code/demo_far/seed0")
    c.add_argument("--batch", type=int)
    c.add_argument("--kind", choices=["ens", "vsnl"])
    c.add_argument("--log", default="results/answers")
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(func=cmd_answers_show)

    s = add("cache", None, "inspect the MLLM answer cache")
    ksub = s.add_subparsers(dest="cache_command", required=True, metavar="SUBCOMMAND")
    c = ksub.add_parser("stats", help="cached answers per kind and status")
    c.add_argument("--cache", default="results/mllm-cache.sqlite")
    c.set_defaults(func=cmd_cache_stats)
