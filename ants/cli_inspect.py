"""The ``ants`` inspection commands: the MLLM negatives, the answer cache, the paper tables.

Registered on the ``ants`` parser by :func:`register`; each command reads workflow artifacts and
prints. Bad input raises :class:`ants.errors.UsageError` (exit 2, one line naming the file,
stream or batch and what exists)::

    ants answers streams [--log P]                      streams, with query counts per kind/status
    ants answers list    [filters] [--limit N]          one line per query
    ants answers show    [filters] [--limit N]          prompt, raw answer, parsed negatives
    ants answers export  [filters] --out F [--format csv|json]
    ants answers diff    A B                            two logs (paths, or REV:PATH via git/dvc)
    ants negatives --stream S --batch B                 the ENS and VSNL banks after batch B
    ants negatives compare A B                          two negative sets: counts, overlap
    ants metrics [--brief]                              paper-shaped tables, published beside
    ants tables --view-json J --metrics-dir D --out-dir D   (workflow stage)
    ants cache stats [--cache F]                        cached answers per kind and status
    ants cache rebuild [--log P] [--cache F]            put a log's answers back into the cache

filters: ``--stream S`` (an id or a prefix such as ``demo/ants_code``), ``--batch N``,
``--kind ens|vsnl``, ``--status ok|empty|unparsable|failed``, ``--text T`` (substring of the
answer, negatives, class or image). ``--log`` is a log file or a folder read recursively
(default ``results/answers``); a log in it that cannot be read does not hide the others: they
are listed, then each unreadable one is named on stderr and the exit status is 1. ``--limit N``
is a whole number >= 0, 0 meaning all.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from ants import artifacts
from ants.errors import UsageError

__all__ = ["register"]

DEFAULT_LOG = artifacts.folder("answers")
#: the name of the metrics-table command
METRICS_COMMAND = "metrics"


def _read(a):
    """The readable answers logs of ``--log``; the unreadable ones are kept in ``a.unreadable``
    and named by :func:`_done` after the output of the others."""
    from ants.answers_log import read_readable_logs

    frame, a.unreadable = read_readable_logs(a.log)
    return frame


def _done(a) -> int:
    """The exit status of a listing: 1 (after one stderr line per log) when a log under
    ``--log`` could not be read, else 0."""
    for line in getattr(a, "unreadable", []):
        print(f"ants answers: skipped an unreadable log: {line}", file=sys.stderr)
    return 1 if getattr(a, "unreadable", []) else 0


def _limit(text: str) -> int:
    """``--limit``: a whole number >= 0; 0 = no limit."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 (0 = all), got {text!r}")
    return value or sys.maxsize


def _filtered(a):
    from ants.inspection import filter_answers

    frame = _read(a)
    try:
        return filter_answers(
            frame, stream=a.stream, batch=a.batch, kind=a.kind, status=a.status, text=a.text
        )
    except UsageError as exc:
        if a.unreadable:  # the stream asked for may be in a log that could not be read
            raise UsageError(f"{exc}; unreadable: {'; '.join(a.unreadable)}") from None
        raise


def _what(r) -> str:
    if r.kind == "ens":
        return f"image {r.image} (predicted {r.class_name!r})"
    return f"class {r.class_name!r}"


def cmd_answers_streams(a) -> int:
    frame = _read(a)
    if frame.empty:
        print("the log holds no queries")
        return _done(a)
    table = (
        frame.groupby(["stream_id", "kind", "status"])
        .size()
        .unstack(["kind", "status"], fill_value=0)
    )
    table.columns = [f"{k}:{s}" for k, s in table.columns]
    print(table.sort_index(axis=1).to_string())
    return _done(a)


def cmd_answers_list(a) -> int:
    sel = _filtered(a)
    if sel.empty:
        print("no queries match")
        return _done(a)
    rows = sel.head(a.limit)
    width = max(len("stream"), *(len(str(x)) for x in rows["stream_id"]))
    print(
        f"{'stream':{width}s}  {'batch':5s} kind {'status':10s} {'class':24s} {'image':24s} answer"
    )
    for r in rows.itertuples():
        raw = (r.raw_text or "").replace("\n", " ")
        image = Path(str(r.image)).name if isinstance(r.image, str) and r.image else "-"
        print(
            f"{r.stream_id:{width}s}  {'b' + str(r.batch_index):5s} {r.kind:4s} {r.status:10s} "
            f"{str(r.class_name)[:24]:24s} {image[-24:]:24s} "
            + textwrap.shorten(raw, 70, placeholder=" ...")
        )
    if len(sel) > a.limit:
        print(f"... {len(sel) - a.limit} more (use --limit)")
    return _done(a)


def _answer_chars(a) -> int | None:
    """How much of a raw answer ``show``/``diff`` print: ``--max-chars`` (0 = all), else
    ``mllm.max_answer_chars`` of ./params.yaml, else the package default."""
    from ants.mllm.answering import MAX_ANSWER_CHARS

    if a.max_chars is not None:
        if a.max_chars < 0:
            raise UsageError(
                f"--max-chars: expected a whole number >= 0 (0 = no limit), got {a.max_chars}"
            )
        return a.max_chars or None
    try:
        import yaml

        return int(
            yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))["mllm"][
                "max_answer_chars"
            ]
        )
    except Exception:  # noqa: BLE001 - no (readable) params.yaml here: the package default
        return MAX_ANSWER_CHARS


def cmd_answers_show(a) -> int:
    from ants.mllm.answering import shorten

    chars = _answer_chars(a)
    sel = _filtered(a)
    if sel.empty:
        print("no queries match")
        return _done(a)
    shown = sel.head(a.limit)
    for r in shown.itertuples():
        print(f"[{r.stream_id} batch {r.batch_index}] {r.kind.upper()} about {_what(r)}")
        print(f"  model:     {r.backend} {r.model_id} @ {r.revision}")
        print("  asked:     " + (r.prompt or "").replace("\n", "\n             "))
        cached = (
            ""
            if r.from_cache is None
            else ("; from cache" if bool(r.from_cache) else "; generated")
        )
        print(
            "  answered:  "
            + (repr(shorten(r.raw_text, chars)) if r.raw_text else "(nothing)")
            + f"  [{r.status}"
            + (f": {r.reason}" if r.reason else "")
            + cached
            + "]"
        )
        print(f"  negatives: {list(r.negatives)}")
    if len(sel) > len(shown):
        print(f"... {len(sel) - len(shown)} more (use --limit)")
    return _done(a)


#: what ``ants answers export`` writes (from the ``--out`` suffix, or ``--format``)
EXPORT_FORMATS = ("csv", "json")


def cmd_answers_export(a) -> int:
    sel = _filtered(a).copy()
    from ants._io import atomic_path

    out = Path(a.out)
    suffix = out.suffix.lower().lstrip(".")
    fmt = a.format or suffix
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"--out {out}: cannot tell the format from {out.suffix or 'no suffix'!r}; "
            "give a .csv or .json file (or --format csv|json)"
        )
    if suffix and suffix != fmt and suffix in EXPORT_FORMATS + ("xlsx", "xls", "parquet", "tsv"):
        raise UsageError(f"--out {out}: a .{suffix} file would hold {fmt.upper()}; name it .{fmt}")
    with atomic_path(out) as tmp:  # a killed export never leaves half a file under --out
        if fmt == "csv":
            sel["negatives"] = [json.dumps(list(v), ensure_ascii=False) for v in sel["negatives"]]
            sel.to_csv(tmp, index=False)
        else:
            records = sel.astype(object).where(sel.notna(), None).to_dict("records")
            for rec in records:
                rec["negatives"] = list(rec["negatives"])
                for k, v in rec.items():
                    if hasattr(v, "item"):
                        rec[k] = v.item()
            tmp.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{len(sel)} queries -> {out} ({fmt})")
    return _done(a)


def _resolve(spec: str, tmp: Path, tag: str) -> Path:
    """A path, or ``REV:PATH`` fetched from git (tracked files) or DVC (``dvc get``, cached outs)."""
    p = Path(spec)
    if p.exists():
        return p
    if ":" not in spec:
        raise UsageError(
            f"answers log not found: {spec} (give a path, or REV:PATH for a git/DVC revision)"
        )
    rev, path = spec.split(":", 1)
    dest = tmp / tag / Path(path).name
    dest.parent.mkdir(parents=True, exist_ok=True)
    git = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True)
    if git.returncode == 0 and not git.stdout.startswith(b"tree "):
        dest.write_bytes(git.stdout)
        return dest
    import shutil
    import sys

    exe = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    try:
        dvc = subprocess.run(
            [exe, "get", ".", path, "--rev", rev, "-o", str(dest), "--force"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(
            f"{spec}: git could not fetch {path!r} at revision {rev!r} and dvc could not run ({exc})"
        ) from None
    if dvc.returncode != 0:
        raise UsageError(_dvc_get_failure(spec, path, rev, dvc.stderr or dvc.stdout))
    return dest


def _dvc_get_failure(spec: str, path: str, rev: str, output: str) -> str:
    """One line for a ``dvc get`` of ``path`` at ``rev`` that failed with ``output``: when the
    revision's files are tracked by DVC but not in this clone's cache (a fresh clone has none),
    say so and how to get them; else DVC's own error line (not its "Having any troubles?")."""
    lines = [x.strip() for x in output.strip().splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("ERROR")] or [
        x for x in lines if not x.startswith("Having any troubles")
    ]
    first = errors[0] if errors else "no output"
    if re.search(r"\.dvc[/\\]cache|missing cache|not in cache|cache files", first, re.I):
        return (
            f"{spec}: {path!r} at revision {rev!r} is tracked by DVC, but its files are not in "
            "this clone's DVC cache (.dvc/cache; a fresh clone has none): fetch them from the "
            "project's DVC remote (`dvc remote list`) with `dvc fetch --all-commits`, or `dvc "
            "pull` in a checkout of that revision; or compare two folders you have"
        )
    return f"{spec}: neither git nor dvc could fetch {path!r} at revision {rev!r} ({first})"


def cmd_answers_diff(a) -> int:
    from ants.answers_log import read_logs
    from ants.inspection import diff_logs, filter_answers
    from ants.mllm.answering import shorten

    chars = _answer_chars(a)
    with tempfile.TemporaryDirectory(prefix="ants-diff-") as tmp:
        fa = read_logs(_resolve(a.a, Path(tmp), "a"))
        fb = read_logs(_resolve(a.b, Path(tmp), "b"))
    if a.stream:
        fa = filter_answers(fa, stream=a.stream)
        fb = filter_answers(fb, stream=a.stream)
    d = diff_logs(fa, fb)
    print(f"A: {a.a} ({d['n_a']} distinct queries)   B: {a.b} ({d['n_b']} distinct queries)")
    print(
        f"same queries and answers: {d['same']}; only in A: {len(d['only_a'])}; only in B: {len(d['only_b'])}; "
        f"answers changed: {len(d['changed'])}"
    )
    for name, rows in (("only in A", d["only_a"]), ("only in B", d["only_b"])):
        for r in rows.head(a.limit).itertuples():
            print(f"  {name}: {r.stream_id} b{r.batch_index} {r.kind} {r.class_name!r}")
    for r in d["changed"].head(a.limit).itertuples():
        print(f"  changed: {r.stream_id} b{r.batch_index} {r.kind} {r.class_name!r}")
        if r.prompt_a != r.prompt_b:
            print(
                f"    prompt  A: {textwrap.shorten(r.prompt_a, 90)}\n            B: {textwrap.shorten(r.prompt_b, 90)}"
            )
        print(
            f"    answer  A: {shorten(r.raw_text_a, chars)!r} [{r.status_a}]\n"
            f"            B: {shorten(r.raw_text_b, chars)!r} [{r.status_b}]"
        )
    for title, bag in (
        ("entered (in B, not in A)", d["entered"]),
        ("left (in A, not in B)", d["left"]),
    ):
        for (stream, kind), terms in bag.items():
            shown = terms[: a.limit]
            print(
                f"  {kind.upper()} negatives {title} {stream}: {shown}"
                + (f" ... {len(terms) - len(shown)} more" if len(terms) > len(shown) else "")
            )
    changed = len(d["only_a"]) + len(d["only_b"]) + len(d["changed"])
    return 1 if (changed and a.exit_code) else 0


def _score_file_for(stream: str, scores_dir: str) -> Path | None:
    """The score file of a stream id in ``scores_dir`` (per-stream files lie at their stream id
    below their folder, :func:`ants.artifacts.stream_id`), if it exists."""
    if artifacts.parse_stream_id(stream) is None:
        return None
    p = Path(scores_dir) / f"{stream}.parquet"
    return p if p.is_file() else None


def _class_names(text: str | None, stream: str, params: str) -> list[str] | None:
    if text:
        return list(artifacts.read_id_text(text, "nice")[1])
    try:
        cfg = _load_params(params)
        bench = cfg["benchmarks"][stream.split("/")[0]]
        path = Path(
            artifacts.path("id_text", backbone=bench["backbone"], label_set=bench["label_set"])
        )
    except Exception:  # noqa: BLE001 - no params: the inexact VSNL view is used
        return None
    return list(artifacts.read_id_text(path, "nice")[1]) if path.is_file() else None


def cmd_negatives_compare(a) -> int:
    from ants.negative_lists import compare_negative_sets, format_comparison, negative_labels_of

    result = compare_negative_sets(
        negative_labels_of(a.a), negative_labels_of(a.b), examples=a.examples
    )
    for line in format_comparison(result, a.a, a.b):
        print(line)
    return 0


def cmd_negatives(a) -> int:
    from ants.answers_log import read_logs
    from ants.inspection import banks_at, filter_answers

    if a.stream is None or a.batch is None:
        raise UsageError(
            "give --stream and --batch (the banks of one ANTS stream after a batch), "
            "or `ants negatives compare A B` (two negative sets)"
        )

    frame = read_logs(a.log)
    rows = filter_answers(frame, stream=a.stream)
    streams = sorted(rows["stream_id"].unique())
    if len(streams) != 1:
        raise UsageError(
            f"--stream {a.stream!r} matches {len(streams)} streams; give one of: {', '.join(streams[:20])}"
        )
    stream = streams[0]
    score = _score_file_for(stream, a.scores)
    config, preds, pbatch, trace, n_batches = {}, None, None, None, None
    if score is not None:
        sframe, meta = artifacts.read_scores(score)
        config = dict((meta.get("method") or {}).get("config") or {})
        preds, pbatch = sframe["pred"].tolist(), sframe["batch"].tolist()
        trace = meta.get("trace")
        n_batches = int(sframe["batch"].max())
    if n_batches is not None and not 1 <= a.batch <= n_batches:
        raise UsageError(f"stream {stream!r} has batches 1..{n_batches}; got --batch {a.batch}")
    names = _class_names(a.text_file, stream, a.params) if score is not None else None
    banks = banks_at(
        rows,
        a.batch,
        stream=stream,
        config=config,
        preds=preds,
        pred_batches=pbatch,
        class_names=names,
    )
    print(
        f"{stream} after batch {a.batch}"
        + ("" if score else "  (no score file: ENS exact, VSNL approximate)")
    )
    print(
        f"  ENS updates at batches {banks.ens_updates or 'none yet'}; bank of {len(banks.ens)} sentences"
        + (" (newest first)" if banks.ens else "")
    )
    for s in banks.ens[: a.limit]:
        print(f"    - {s}")
    if len(banks.ens) > a.limit:
        print(f"    ... {len(banks.ens) - a.limit} more (use --limit)")
    print(
        f"  VSNL events at batches {banks.vsnl_events or 'none yet'}; subset classes "
        f"{banks.vsnl_classes}; bank of {len(banks.vsnl)} labels"
    )
    for s in banks.vsnl[: a.limit]:
        print(f"    - {s}")
    if banks.note:
        print(f"  note: {banks.note}")
    if trace:
        i = list(trace["batch"]).index(a.batch) if a.batch in trace["batch"] else None
        if i is not None:
            te, tv = int(trace["ens_size"][i]), int(trace["vsnl_size"][i])
            ok = te == len(banks.ens) and (tv == len(banks.vsnl) or not banks.vsnl_exact)
            print(
                f"  the score file's trace at batch {a.batch}: ENS {te}, VSNL {tv} entries"
                + ("" if ok else "  (MISMATCH with the reconstruction above)")
            )
    return 0


def _load_params(path: str) -> dict:
    """Validated params; when validation fails (e.g. a params.yaml from another version), the raw
    YAML, which holds every key the tables read (run, methods, benchmarks)."""
    from ants.config import ConfigError, load_params

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"params file not found: {p} (give --params)")
    try:
        return load_params(p)
    except ConfigError:
        import yaml

        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not {"run", "methods", "benchmarks"} <= set(raw):
            raise
        return raw


def _tables_for_terminal(
    metrics_dir: str, params_path: str, benchmark: str | None, view_json: str | None = None
):
    from ants.tables import paper_results, paper_table, read_metric_rows
    from ants.views import tables_view

    view = json.loads(view_json) if view_json else tables_view(_load_params(params_path))
    benches = [benchmark] if benchmark else view["run"]["benchmarks"]
    unknown = [b for b in benches if b not in view["benchmarks"]]
    if unknown:
        raise UsageError(
            f"benchmark {unknown[0]!r} is not run; benchmarks: {', '.join(view['run']['benchmarks'])}"
        )
    paper = paper_results()
    return view, [
        (b, paper_table(b, read_metric_rows(metrics_dir, b), view, paper)) for b in benches
    ]


def cmd_metrics(a) -> int:
    from ants.tables import table_rows_for_terminal

    view, tables = _tables_for_terminal(a.metrics_dir, a.params, a.benchmark, a.view_json)
    demo = a.demo if a.view_json else _is_demo_params(a.params)
    if a.brief:
        for bench, long in tables:
            cols = [c for c in ("far_average", "near_average") if c in set(long["dataset"])]
            if not cols:
                cols = list(dict.fromkeys(long["dataset"]))
            width = max(len(str(x)) for x in long["row"])
            for row in dict.fromkeys(long["row"]):
                part = long[long["row"] == row]
                bits = []
                for c in cols:
                    cell = part[part["dataset"] == c].set_index("metric")
                    if cell.empty or cell["mean"].isna().all():
                        continue
                    bits.append(
                        f"{c}: AUROC {cell.at['auroc', 'mean']:.2f} FPR95-OOD {cell.at['fpr95_ood', 'mean']:.2f}"
                        f" FPR95-ID {cell.at['fpr95_id', 'mean']:.2f}"
                    )
                print(f"{bench:10s} {row:{width}s} " + " | ".join(bits))
        for line in _answers_summary(a.answers):
            print(line)
        where = Path(a.report)
        print(
            f"report: {where}"
            + ("" if where.is_file() else " (not built yet: snakemake report)")
            + f"; tables: {Path(a.tables_dir)}/"
        )
        if demo:
            print("NOTE: offline demo (random weights): these numbers carry NO meaning.")
        return 0
    for bench, long in tables:
        print(f"{bench} (percentages, mean ± std over seeds; [published, ours - published])")
        for line in table_rows_for_terminal(long):
            print(line)
    print(
        "FPR95-ID: ID-positive (MOS, MCM, NegLabel); FPR95-OOD: OOD-positive (OpenOOD v1.5, AdaNeg, ANTS)."
    )
    if demo:
        print("NOTE: offline demo (random weights): these numbers carry NO meaning.")
    return 0


def _answers_summary(logs: list[str], streams_shown: int = 10) -> list[str]:
    """Lines for ``metrics --brief``: the MLLM answers of the logs (files or folders) by
    status, and each stream with an answer that is not ``ok`` (failed, empty, unparsable)
    with its first failure; a named log that is missing is counted."""
    import pandas as pd

    from ants.answers_log import failure_summary, read_logs
    from ants.mllm.answering import shorten

    there = [log for log in logs if Path(log).exists()]
    missing = [log for log in logs if str(log).endswith(".parquet") and log not in there]
    gone = (
        [f"MLLM answers: {len(missing)} answers log(s) missing, e.g. {missing[0]}"]
        if missing
        else []
    )
    if not there:
        return gone
    frames = [read_logs(log) for log in there]
    summary = failure_summary(
        pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    )
    if summary.empty:
        return gone
    total = summary[["queries", "ok", "empty", "unparsable", "failed"]].sum()
    lines = gone + [
        f"MLLM answers: {total['queries']} queries in {len(summary)} streams: {total['ok']} ok, "
        f"{total['empty']} empty, {total['unparsable']} unparsable, {total['failed']} failed"
    ]
    bad = summary[summary["ok"] < summary["queries"]]
    for sid, r in bad.head(streams_shown).iterrows():
        lines.append(
            f"  {sid}: {r['failed']} failed, {r['unparsable']} unparsable, {r['empty']} empty of "
            f"{r['queries']}"
            + (f"; first failure: {shorten(r['first_failure'], 120)}" if r["failed"] else "")
        )
    if len(bad) > streams_shown:
        where = there[0] if len(there) == 1 else DEFAULT_LOG
        lines.append(
            f"  ... {len(bad) - streams_shown} more streams: ants answers streams --log {where}"
        )
    return lines


def _is_demo_params(path: str) -> bool:
    from ants.views import uses_random_weights

    try:
        return uses_random_weights(_load_params(path))
    except Exception:  # noqa: BLE001 - unknown: no note
        return False


def cmd_tables(a) -> int:
    from ants.tables import write_tables

    view = json.loads(a.view_json)
    written = write_tables(view, metrics_dir=a.metrics_dir, out_dir=a.out_dir)
    print(f"{len(written)} table files -> {a.out_dir}")
    return 0


def cmd_cache_stats(a) -> int:
    from ants.mllm.cache import cache_stats

    path = Path(a.cache)
    if not path.is_file():
        raise UsageError(f"answer cache not found: {path}")
    stats = cache_stats(path)  # a damaged file: CacheError, one line naming it and the way out
    print(f"{path}: {sum(n for by in stats.values() for n in by.values())} cached answers")
    for kind, by in stats.items():
        for status, n in by.items():
            print(f"  {kind:5s} {status:11s} {n}")
    return 0


def cmd_cache_rebuild(a) -> int:
    from ants.answers_log import read_logs
    from ants.mllm.cache import AnswerCache, CachedAnswer

    frame = read_logs(a.log)
    frame = frame[
        frame["cache_key"].notna() & (frame["cache_key"] != "") & (frame["status"] != "failed")
    ]
    frame = frame.drop_duplicates("cache_key")
    with AnswerCache(a.cache) as cache:
        damaged = cache.drop_damaged()  # the logs put back those they hold
        have = set(cache.get_many(frame["cache_key"].tolist()))
        entries = []
        for r in frame.itertuples():
            if r.cache_key in have:
                continue
            try:
                settings = json.loads(r.settings) if r.settings else {}
            except json.JSONDecodeError:
                settings = {}
            entries.append(
                CachedAnswer(
                    key=r.cache_key,
                    kind=r.kind,
                    raw_text=r.raw_text or "",
                    negatives=tuple(r.negatives),
                    status=r.status,
                    reason=r.reason or "",
                    answered_at=str(r.answered_at or ""),
                    seconds=float(r.seconds or 0.0),
                    identity={"backend": r.backend, "model_id": r.model_id, "revision": r.revision},
                    prompt=r.prompt or "",
                    settings=settings,
                )
            )
        added = cache.put_many(entries)
    print(
        f"{a.cache}: {added} answers added from {a.log} ({len(have)} already cached, "
        f"{len(frame)} distinct non-failed answers in the log)"
    )
    if damaged:
        back = len(set(damaged) & set(frame["cache_key"]))
        print(
            f"{a.cache}: {len(damaged)} damaged entries dropped, {back} of them put back from "
            f"the log (a re-run asks the other {len(damaged) - back} again)"
        )
    return 0


def _filters(c, *, stream_required: bool = False) -> None:
    c.add_argument(
        "--log",
        default=DEFAULT_LOG,
        help=f"a log file or a folder read recursively (default: {DEFAULT_LOG})",
    )
    c.add_argument(
        "--stream",
        required=stream_required,
        help="stream id (BENCH/METHOD/OOD/seedN) or a prefix, e.g. demo/ants_code",
    )
    c.add_argument("--batch", type=int, help="stream batch (from 1) where the queries arose")
    c.add_argument("--kind", choices=["ens", "vsnl", "eoe"])
    c.add_argument("--status", choices=["ok", "empty", "unparsable", "failed"])
    c.add_argument(
        "--text", help="case-insensitive substring of the answer, negatives, class or image"
    )


def _max_chars(c) -> None:
    c.add_argument(
        "--max-chars",
        type=int,
        help="print at most this many characters of a raw answer (0 = all; default: "
        "mllm.max_answer_chars of ./params.yaml)",
    )


def register(add) -> None:
    """Add the inspection commands through ``add(name, func, help)`` (see :mod:`ants.cli`)."""
    s = add("answers", None, "inspect the negatives log (what the MLLM was asked and answered)")
    asub = s.add_subparsers(dest="answers_command", required=True, metavar="SUBCOMMAND")
    c = asub.add_parser(
        "streams",
        help="streams in the log, with query counts per kind and status",
        description="streams in the log, with query counts per kind and status",
    )
    c.add_argument(
        "--log", default=DEFAULT_LOG, help=f"a log file or a folder (default: {DEFAULT_LOG})"
    )
    c.set_defaults(func=cmd_answers_streams)
    for name, func, text in (
        (
            "list",
            cmd_answers_list,
            "one line per query: stream, batch, kind, status, class, answer",
        ),
        ("show", cmd_answers_show, "the prompt, raw answer and parsed negatives of each query"),
    ):
        c = asub.add_parser(
            name,
            help=text,
            description=text + ". A log that cannot be read is named on stderr after the others "
            "are listed, and the exit status is then 1.",
        )
        _filters(c)
        c.add_argument(
            "--limit",
            type=_limit,
            default=20 if name == "show" else 50,
            help="show at most this many queries (0 = all; default: %(default)s)",
        )
        if name == "show":
            _max_chars(c)
        c.set_defaults(func=func)
    c = asub.add_parser(
        "export",
        help="write the (filtered) queries and answers to CSV or JSON",
        description="write the (filtered) queries and answers to CSV or JSON",
    )
    _filters(c)
    c.add_argument("--out", required=True, help="output file (.csv or .json)")
    c.add_argument("--format", choices=EXPORT_FORMATS, help="default: from the --out suffix")
    c.set_defaults(func=cmd_answers_export)
    c = asub.add_parser(
        "diff",
        help="compare two answers logs: queries, answers, negatives in and out",
        description="compare two answers logs (paths, or REV:PATH fetched with git or dvc, e.g. "
        "HEAD~1:results/answers): which queries changed, which answers "
        "changed, which negatives entered or left the banks",
    )
    c.add_argument("a", help="log A: a file, a folder, or REV:PATH")
    c.add_argument("b", help="log B: a file, a folder, or REV:PATH")
    c.add_argument("--stream", help="only this stream (or prefix)")
    c.add_argument(
        "--limit", type=_limit, default=10, help="lines shown per section (0 = all; default: 10)"
    )
    c.add_argument("--exit-code", action="store_true", help="exit 1 when the logs differ")
    _max_chars(c)
    c.set_defaults(func=cmd_answers_diff)

    s = add(
        "negatives",
        cmd_negatives,
        "the ENS and VSNL banks of one ANTS stream as they stood after a batch",
    )
    s.add_argument("--stream", help="stream id BENCH/METHOD/OOD/seedN (required)")
    s.add_argument("--batch", type=int, help="stream batch (from 1) (required)")
    s.add_argument("--log", default=DEFAULT_LOG)
    s.add_argument(
        "--scores",
        default=artifacts.folder("scores"),
        help="score files folder (predictions, config, trace)",
    )
    s.add_argument("--text-file", help="ID text file (class names); default: from params.yaml")
    s.add_argument("--params", default="params.yaml")
    s.add_argument(
        "--limit", type=_limit, default=30, help="entries shown per bank (0 = all; default: 30)"
    )
    nsub = s.add_subparsers(dest="negatives_command", metavar="[compare]")
    text = (
        "compare two negative sets: a mined-negatives file (results/negatives/...parquet) or a "
        "text file (one label per line, or NegLabel's published list): counts, overlap, the "
        "labels only in one of them"
    )
    c = nsub.add_parser("compare", help=text, description=text)
    c.add_argument("a", help="negatives A (.parquet or text file)")
    c.add_argument("b", help="negatives B (.parquet or text file)")
    c.add_argument("--examples", type=int, default=10, help="labels shown only in A / only in B")
    c.set_defaults(func=cmd_negatives_compare)

    s = add(
        METRICS_COMMAND,
        cmd_metrics,
        "the paper-shaped metric tables, published numbers beside (--brief: one line per method)",
    )
    s.add_argument(
        "--brief",
        action="store_true",
        help="one line per method and benchmark (split averages) and where the report is",
    )
    s.add_argument("--benchmark", help="only this benchmark")
    s.add_argument("--metrics-dir", default=artifacts.folder("metrics_csv"))
    s.add_argument("--params", default="params.yaml")
    s.add_argument(
        "--view-json",
        help="the run's tables view (ants.views.tables_view of the merged config) instead of "
        "--params: what the workflow passes, so the summary is the run's own",
    )
    s.add_argument(
        "--demo",
        action="store_true",
        help="with --view-json: the run used random-weight models (the numbers carry no meaning)",
    )
    s.add_argument("--report", default=artifacts.REPORT)
    s.add_argument("--tables-dir", default=artifacts.folder("tables"))
    s.add_argument(
        "--answers",
        nargs="*",
        default=[DEFAULT_LOG],
        help=f"answers logs (files or folders) summarised per stream by --brief (default: "
        f"{DEFAULT_LOG}; none after --answers: no MLLM answers)",
    )

    s = add(
        "tables", cmd_tables, "write the paper-shaped tables (CSV, Markdown, LaTeX) to a folder"
    )
    s.add_argument("--view-json", required=True)
    s.add_argument("--metrics-dir", required=True)
    s.add_argument("--out-dir", required=True)

    s = add("cache", None, "inspect the MLLM answer cache")
    ksub = s.add_subparsers(dest="cache_command", required=True, metavar="SUBCOMMAND")
    c = ksub.add_parser(
        "stats",
        help="cached answers per kind and status",
        description="cached answers per kind and status",
    )
    c.add_argument("--cache", default="results/mllm-cache.sqlite")
    c.set_defaults(func=cmd_cache_stats)
    c = ksub.add_parser(
        "rebuild",
        help="put the answers of logs (e.g. pulled with dvc) into the cache",
        description="put the answers of logs (e.g. pulled with dvc) into the cache, so a re-run "
        "asks the MLLM nothing it already answered; failed answers are skipped, "
        "existing entries kept",
    )
    c.add_argument("--log", default=DEFAULT_LOG)
    c.add_argument("--cache", default="results/mllm-cache.sqlite")
    c.set_defaults(func=cmd_cache_rebuild)
