"""The HTML report (``reports/index.html``): one self-contained page, no JavaScript, no network.

Every figure and thumbnail is inlined (``data:`` URIs), so the HTML file works when copied
alone; the same figures are also written to ``reports/figures/`` (PNG; the sensitivity figures
also as SVG) for ``dvc plots`` and for papers. Sections, in order:

1. the demo banner whenever a model has random weights (the numbers then carry no meaning);
2. the paper-shaped tables (:mod:`ants.tables`): per benchmark, methods x OOD sets, FPR95 in
   both named conventions and AUROC, mean ± std over seeds, the published value and the
   difference beside; the preset behind every ANTS / AdaNeg row; then ANTS's variants;
3. per OOD set, the ROC curves of every method (first seed) and the score distributions;
4. the stream traces of ANTS (NIM threshold, ENS and VSNL bank sizes, lambda);
5. the sensitivity figures (``results/sweeps/*.csv``, when the workflow ran sweeps);
6. the MLLM negatives: per stream and ENS update, thumbnails of the images described beside the
   sentence generated; per VSNL event, each class beside the labels proposed; every failed /
   empty / unparsable answer with its reason. A size budget (``report.answers_per_update``,
   ``report.seeds_shown``, ``report.thumbnail_px``) keeps the page small at paper scale; what is
   left out is named with the ``ants answers show`` command that lists it;
7. provenance: git commit and dirty flag, params digest, package versions, model ids and
   revisions, dataset image counts, time of each stage (``results/benchmarks/``), MLLM calls made
   vs taken from the cache, the CPU code path (:mod:`ants.numerics`) and this machine's CPU.

Every answer is text to Jinja's autoescape: an answer holding ``<script>`` shows as text.
Everything here reads files the workflow wrote, through their validating readers
(:mod:`ants.artifacts`, :mod:`ants.answers_log`); metrics come from :mod:`ants.metrics` through
the metric files and :mod:`ants.tables`; the ROC curves are :func:`ants.metrics.roc_curve`'s,
with the points ``metrics.fpr95_roc`` says (those the FPR95 columns are read from). What the page
shows of the params is :func:`ants.views.report_view`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ants import artifacts
from ants._io import atomic_dir, atomic_path, canonical_json
from ants.answers_log import read_logs
from ants.metrics import ROC_POINTS_TEXT
from ants.tables import PAPER_METHOD, TABLE_METRICS, paper_results

__all__ = [
    "DEMO_BANNER",
    "PAPER_METHOD",
    "REPORT_DEFAULTS",
    "build_report",
    "is_demo",
    "paper_results",
    "paper_rows",
    "provenance",
    "roc_of",
    "sweep_figures",
]

DEMO_BANNER = (
    "Offline demo: the CLIP model and/or the MLLM have random weights and the images are generated "
    "shapes. The numbers below carry no meaning; they only show that every stage runs."
)
#: report settings used when params.yaml's ``report`` section does not give them
REPORT_DEFAULTS = {
    "title": "ANTS reproduction",
    "negatives_shown": 20,
    "histogram_bins": 30,
    "answers_per_update": 6,
    "seeds_shown": 1,
    "thumbnail_px": 64,
    "failed_shown": 50,
    "max_answer_chars": None,  # None: ants.mllm.answering.MAX_ANSWER_CHARS
}
PACKAGES = (
    "ants",
    "numpy",
    "pandas",
    "torch",
    "open_clip_torch",
    "transformers",
    "scikit-learn",
    "matplotlib",
    "snakemake",
    "dvc",
    "jinja2",
    "pyarrow",
)


def paper_rows(
    benchmark: str, method_kind: str, dataset: str, table: pd.DataFrame | None = None
) -> list[dict]:
    """Every published row for (benchmark, our method kind, our dataset or split-average name),
    the paper's (``"{Method}"``) and the authors' scripts' (``"{Method} (...)"``;
    :func:`ants.tables.published_for` picks one). Rows of other variants of the method (the
    paper's ablations, ``"ANTS ablation ..."``) are not the method's own numbers."""
    from ants.tables import PAPER_AVERAGE

    table = paper_results() if table is None else table
    name = PAPER_METHOD.get(method_kind)
    ds = PAPER_AVERAGE.get(benchmark, {}).get(dataset, dataset)
    methods = table["method"].astype(str)
    own = (methods == name) | methods.str.startswith(f"{name} (") if name else False
    sel = table[(table["benchmark"] == benchmark) & (table["dataset"] == ds) & own]
    return sel.to_dict("records")


# -- small helpers ---------------------------------------------------------------------------


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _thumbnail(path: str | None, px: int) -> str | None:
    """A JPEG/PNG thumbnail of an image file as a data URI (None when unreadable)."""
    if not path:
        return None
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((px, px))
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
        return _data_uri(buf.getvalue(), "image/png")
    except Exception:  # noqa: BLE001 - a missing or unreadable image: shown as its path
        return None


def is_demo(
    embedding_files: Sequence[str | os.PathLike], answer_logs: Sequence[str | os.PathLike]
) -> bool:
    """True when an encoder had random weights or the MLLM was the demo model."""
    from ants.embeddings import read_embeddings_metadata

    for path in embedding_files:
        if (read_embeddings_metadata(path, "embeddings").get("encoder") or {}).get("random_init"):
            return True
    for path in answer_logs:
        if "demo" in set(read_logs(path)["backend"].dropna()):
            return True
    return False


def _figure_out(fig, fig_dir: Path, name: str, title: str, *, svg: bool = False) -> dict:
    """Save ``fig`` as ``name``.png (and .svg), close it; its report entry (inlined PNG)."""
    import matplotlib.pyplot as plt

    from ants._io import atomic_path

    fig.tight_layout()
    # atomically, like every file the workflow versions: a killed job leaves no half figure
    png = fig_dir / f"{name}.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
    if svg:
        with atomic_path(fig_dir / f"{name}.svg") as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return {
        "file": f"figures/{name}.png",
        "title": title,
        "src": _data_uri(png.read_bytes(), "image/png"),
        "svg": f"figures/{name}.svg" if svg else None,
    }


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ants-report"  # reproducible SVG ids
    return plt


def _label(view: Mapping, method: str) -> str:
    return view["methods"].get(method, {}).get("label", method)


# -- figures -----------------------------------------------------------------------------------


def _score_figures(
    score_files: Mapping, view: Mapping, fig_dir: Path, bins: int
) -> tuple[list, list]:
    """Per benchmark and method: score histograms (ID vs OOD) per set; per benchmark: ROC curves
    (ID positive; the points ``metrics.fpr95_roc`` says, :func:`roc_of`)."""
    plt = _plt()
    roc_points = view["metrics"]["fpr95_roc"]
    hists, rocs = [], []
    keys = sorted(score_files)
    methods_all = list(view["run"]["methods"])
    for bench in sorted({k[0] for k in keys}):
        methods = [m for m in methods_all if any(k[:2] == (bench, m) for k in keys)]
        oods = sorted({k[2] for k in keys if k[0] == bench})
        first = {}
        for m in methods:
            for ood in oods:
                seeds = sorted(k[3] for k in keys if k[:3] == (bench, m, ood))
                if seeds:
                    first[(m, ood)] = (
                        seeds[0],
                        artifacts.read_scores(score_files[(bench, m, ood, seeds[0])])[0],
                    )
        fig, axes = plt.subplots(1, len(oods), figsize=(4.2 * len(oods), 3.4), squeeze=False)
        for ax, ood in zip(axes[0], oods, strict=True):
            for m in methods:
                if (m, ood) not in first:
                    continue
                fpr, tpr = roc_of(first[(m, ood)][1], roc_points)
                ax.plot(fpr, tpr, label=_label(view, m), lw=1.2)
            ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls=":")
            ax.set_title(
                f"{ood} (seed {min(s for (_, o), (s, _) in first.items() if o == ood)})", fontsize=9
            )
            ax.set_xlabel("FPR (OOD accepted as ID)")
            ax.set_ylabel("TPR (ID accepted)")
            ax.legend(fontsize=6, loc="lower right")
        fig.suptitle(f"{bench}: ROC curves, ID positive", fontsize=10)
        rocs.append(_figure_out(fig, fig_dir, f"roc_{bench}", f"{bench}: ROC curves per OOD set"))
        for m in methods:
            fig, axes = plt.subplots(1, len(oods), figsize=(4 * len(oods), 3), squeeze=False)
            for ax, ood in zip(axes[0], oods, strict=True):
                if (m, ood) not in first:
                    ax.set_axis_off()
                    continue
                seed, frame = first[(m, ood)]
                s = frame["score"].to_numpy(np.float64)
                is_ood = frame["is_ood"].to_numpy().astype(bool)
                edges = np.histogram_bin_edges(s, bins=bins)
                ax.hist(s[~is_ood], bins=edges, alpha=0.6, label="ID", color="tab:blue")
                ax.hist(s[is_ood], bins=edges, alpha=0.6, label=f"OOD ({ood})", color="tab:red")
                ax.set_title(f"{ood}, seed {seed}", fontsize=9)
                ax.set_xlabel("score (higher = more ID)")
                ax.legend(fontsize=7)
            fig.suptitle(f"{bench}: {_label(view, m)}", fontsize=10)
            hists.append(
                _figure_out(
                    fig,
                    fig_dir,
                    f"hist_{bench}_{m}",
                    f"{bench}: {_label(view, m)} score histograms",
                )
            )
    return rocs, hists


def roc_of(frame: pd.DataFrame, roc_points: str) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of a score table's ROC curve, ID positive (:func:`ants.metrics.roc_curve`
    with ``roc_points``: the curve the FPR95 columns are read from)."""
    from ants.metrics import roc_curve

    is_ood = frame["is_ood"].to_numpy().astype(bool)
    s = frame["score"].to_numpy(np.float64)
    return roc_curve(s[~is_ood], s[is_ood], roc_points=roc_points)


def _trace_figures(score_files: Mapping, view: Mapping, fig_dir: Path) -> list[dict]:
    from ants.stages import trace_table

    plt = _plt()
    trace = trace_table(score_files)
    figures = []
    panels = (
        ("threshold", "NIM threshold"),
        ("ens_size", "ENS bank size"),
        ("vsnl_size", "VSNL bank size"),
        ("lambda", "lambda (weight of S_ens)"),
    )
    for (bench, method), group in trace.groupby(["benchmark", "method"], sort=True):
        fig, axes = plt.subplots(1, 4, figsize=(14, 3))
        for (ood, seed), g in group.groupby(["ood", "seed"], sort=True):
            for ax, (col, _) in zip(axes, panels, strict=True):
                ax.plot(g["batch"], g[col], marker=".", ms=3, lw=1, label=f"{ood} s{seed}")
        for ax, (_, title) in zip(axes, panels, strict=True):
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("stream batch")
        axes[-1].legend(fontsize=6)
        fig.suptitle(f"{bench}: {_label(view, method)}", fontsize=10)
        figures.append(
            _figure_out(
                fig,
                fig_dir,
                f"trace_{bench}_{method}",
                f"{bench}: {_label(view, method)}: threshold, bank sizes and lambda over batches",
            )
        )
    return figures


def _numeric_or_none(values) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def sweep_figures(
    sweep_csvs: Sequence[str | os.PathLike], fig_dir: str | os.PathLike
) -> list[dict]:
    """One figure per sweep (``results/sweeps/{sweep}.csv``): FPR95 (OOD-positive) and AUROC of
    each method against the swept value, ± std bands, the default value marked with a star.

    Rows used: the split averages (``{split}_average``; one line per method and split when the
    benchmark has both), else the single OOD set. Writes ``sweep_{name}.png`` and ``.svg``.
    """
    plt = _plt()
    fig_dir = Path(fig_dir)
    out = []
    for path in sweep_csvs:
        frame = artifacts.read_csv(path, "sweep_csv")
        name = str(frame["sweep"].iloc[0]) if len(frame) else Path(path).stem
        avg = frame[frame["dataset"].astype(str).str.endswith("_average")]
        frame = avg if len(avg) else frame
        setting = str(frame["setting"].iloc[0]) if "setting" in frame and len(frame) else name
        values = list(dict.fromkeys(frame["value"].tolist()))
        numeric = _numeric_or_none(values)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for (bench, method, ds), g in frame.groupby(["benchmark", "method", "dataset"], sort=False):
            g = g.drop_duplicates("value")
            xs = (
                _numeric_or_none(g["value"])
                if numeric is not None
                else [values.index(v) for v in g["value"]]
            )
            order = np.argsort(xs)
            x = np.asarray(xs)[order]
            label = str(g["label"].iloc[0]) if "label" in g else method
            label += f" ({ds})" if frame["dataset"].nunique() > 1 else ""
            label += f" [{bench}]" if frame["benchmark"].nunique() > 1 else ""
            for ax, col in zip(axes, ("fpr95_ood", "auroc"), strict=True):
                y = g[col].to_numpy(np.float64)[order]
                (line,) = ax.plot(x, y, marker="o", ms=3, lw=1.2, label=label)
                if f"{col}_std" in g:
                    sd = g[f"{col}_std"].to_numpy(np.float64)[order]
                    ax.fill_between(x, y - sd, y + sd, color=line.get_color(), alpha=0.15, lw=0)
                d = g["is_default"].astype(str).str.lower().isin(["true", "1"]).to_numpy()[order]
                if d.any():
                    ax.plot(x[d], y[d], marker="*", ms=11, color=line.get_color(), ls="none")
        for ax, title in zip(axes, ("FPR95, OOD-positive (%) ↓", "AUROC (%) ↑"), strict=True):
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(setting + ("  (★ = default)"))
            if numeric is None:
                ax.set_xticks(range(len(values)), [str(v) for v in values], fontsize=7)
        axes[1].legend(fontsize=6)
        fig.suptitle(f"sensitivity: {name}", fontsize=10)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        out.append(_figure_out(fig, fig_dir, f"sweep_{safe}", f"sweep {name}: {setting}", svg=True))
    return out


# -- tables ------------------------------------------------------------------------------------


def _html_long(title: str, long: pd.DataFrame) -> dict:
    """One long table (:data:`ants.tables.LONG_COLUMNS`) as the template draws it."""
    from ants.tables import split_notes

    datasets = list(dict.fromkeys(long["dataset"]))
    rows = []
    for r in dict.fromkeys(long["row"]):
        part = long[long["row"] == r]
        cells = []
        for ds in datasets:
            for metric in TABLE_METRICS:
                hit = part[(part["dataset"] == ds) & (part["metric"] == metric)]
                h = hit.iloc[0] if len(hit) else None
                ok = h is not None and not pd.isna(h["mean"])
                pub = None if h is None or pd.isna(h["published"]) else float(h["published"])
                cells.append(
                    {
                        "ours": f"{h['mean']:.2f} ± {h['std']:.2f}" if ok else "–",
                        "pub": None if pub is None else f"{pub:.2f}",
                        "diff": None if pub is None or not ok else f"{h['mean'] - pub:+.2f}",
                        "source": ""
                        if h is None
                        else f"{h['published_method']}: {h['published_source']}",
                    }
                )
        rows.append({"label": r, "cells": cells})
    return {
        "title": title,
        "datasets": datasets,
        "metrics": list(TABLE_METRICS.values()),
        "rows": rows,
        "notes": split_notes(long),
    }


def _paper_extras(ablation: str | os.PathLike | None, cost: str | os.PathLike | None) -> dict:
    """The ablation table (its long CSV) and the cost table (its CSV), when given."""
    from ants.paper_tables import COST_NOTE, cost_cells

    out: dict[str, Any] = {"ablation": [], "cost": None}
    if ablation is not None and Path(ablation).is_file():
        long = pd.read_csv(ablation)
        for bench in dict.fromkeys(long["benchmark"]):
            part = long[long["benchmark"] == bench]
            out["ablation"].append(_html_long(f"Ablation on {bench}", part))
    if cost is not None and Path(cost).is_file():
        frame = pd.read_csv(cost, keep_default_na=True)
        frame["not_measured"] = frame["not_measured"].fillna("")
        heads, rows = cost_cells(frame)
        out["cost"] = {"heads": heads, "rows": rows, "note": COST_NOTE}
    return out


def _html_tables(metrics_dir: Path, view: Mapping) -> list[dict]:
    from ants.tables import paper_table, read_metric_rows, variant_metrics

    paper = paper_results()
    out = []
    has_ants = any(v["method"] == "ants" for v in view["methods"].values())
    variants = variant_metrics(view, metrics_dir) if has_ants else None
    for bench in view["run"]["benchmarks"]:
        try:
            main = read_metric_rows(metrics_dir, bench)
        except FileNotFoundError:
            continue
        blocks = [("Methods", paper_table(bench, main, view, paper))]
        if variants is not None and len(variants):
            blocks.append(
                (
                    "ANTS variants (ada = adaptive; far_only = S_ens; near_only = S_vsnl; oracle = far_only "
                    "on far sets, near_only on near sets)",
                    paper_table(bench, main, view, paper, variants=variants),
                )
            )
        tables = [_html_long(title, long) for title, long in blocks]
        out.append({"benchmark": bench, "tables": tables})
    return out


# -- negatives -----------------------------------------------------------------------------------


def _negatives_section(answer_logs: Sequence, negatives: Sequence, settings: Mapping) -> dict:
    from ants.mining import MinedNegatives

    n_mined = int(settings["negatives_shown"])
    mined = []
    for path in negatives:
        neg = MinedNegatives.load(path)
        mined.append(
            {
                "file": str(path),
                "count": len(neg),
                "rows": [
                    {"label": r.label, "kind": r.kind, "stat": f"{r.stat:.3f}"}
                    for r in neg.table.head(n_mined).itertuples()
                ],
            }
        )
    from ants.answers_log import failure_summary
    from ants.mllm.answering import MAX_ANSWER_CHARS, shorten

    frames = [read_logs(p) for p in answer_logs]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    chars = settings["max_answer_chars"] or MAX_ANSWER_CHARS
    per_update = int(settings["answers_per_update"])
    px = int(settings["thumbnail_px"])
    seeds_shown = int(settings["seeds_shown"])
    streams = []
    hidden_streams = []
    if len(frame):
        ids = sorted(frame["stream_id"].dropna().unique())
        seeds = sorted(
            {s.rsplit("seed", 1)[-1] for s in ids if "seed" in s},
            key=lambda x: int(x) if x.isdigit() else 0,
        )
        keep_seeds = set(seeds[:seeds_shown]) if seeds_shown > 0 else set(seeds)
        for sid in ids:
            if sid.rsplit("seed", 1)[-1] not in keep_seeds:
                hidden_streams.append(sid)
                continue
            g = frame[frame["stream_id"] == sid]
            ens_updates = []
            for b, part in g[g["kind"] == "ens"].groupby("batch_index", sort=True):
                ok = part[part["status"] == "ok"]
                shown = ok.drop_duplicates("cache_key").head(per_update)
                ens_updates.append(
                    {
                        "batch": int(b),
                        "asked": len(part),
                        "ok": len(ok),
                        "entries": [
                            {
                                "thumb": _thumbnail(r.image, px),
                                "image": str(r.image),
                                "class_name": r.class_name,
                                "sentence": shorten(" | ".join(r.negatives) or r.raw_text, chars),
                            }
                            for r in shown.itertuples()
                        ],
                        "more": len(ok.drop_duplicates("cache_key")) - len(shown),
                        "command": f"ants answers show --stream {sid} --batch {int(b)} --kind ens --limit {len(part)}",
                    }
                )
            vsnl_events = []
            for b, part in g[g["kind"] == "vsnl"].groupby("batch_index", sort=True):
                vsnl_events.append(
                    {
                        "batch": int(b),
                        "entries": [
                            {
                                "class_name": r.class_name,
                                "labels": ", ".join(r.negatives),
                                "status": r.status,
                            }
                            for r in part.head(per_update * 4).itertuples()
                        ],
                        "more": max(0, len(part) - per_update * 4),
                        "command": f"ants answers show --stream {sid} --batch {int(b)} --kind vsnl --limit {len(part)}",
                    }
                )
            streams.append(
                {
                    "id": sid,
                    "ens": ens_updates,
                    "vsnl": vsnl_events,
                    "command": f"ants negatives --stream {sid} --batch N",
                }
            )
        bad = frame[frame["status"] != "ok"]
        failed_rows = [
            {
                "stream": r.stream_id,
                "batch": r.batch_index,
                "kind": r.kind,
                "status": r.status,
                "reason": r.reason or "",
                "raw": shorten(r.raw_text, chars),
                "about": r.class_name if r.kind == "vsnl" else f"{r.image} ({r.class_name})",
            }
            for r in bad.head(int(settings["failed_shown"])).itertuples()
        ]
        n_bad = len(bad)
        summary = failure_summary(frame)
        per_stream = [
            {
                "stream": sid,
                **{k: int(r[k]) for k in ("queries", "ok", "empty", "unparsable", "failed")},
                "first_failure": shorten(r["first_failure"], 300),
            }
            for sid, r in summary.iterrows()
        ]
    else:
        failed_rows, n_bad, per_stream = [], 0, []
    return {
        "mined": mined,
        "streams": streams,
        "hidden_streams": hidden_streams,
        "failed": failed_rows,
        "n_failed": n_bad,
        "n_failed_hidden": max(0, n_bad - len(failed_rows)),
        "per_stream": per_stream,
        "counts": (
            {}
            if not len(frame)
            else {
                f"{k}:{s}": int(n) for (k, s), n in frame.groupby(["kind", "status"]).size().items()
            }
        ),
    }


# -- provenance ----------------------------------------------------------------------------------


def _git(*args: str, cwd: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            continue
    return out


def _stage_times(results_dir: Path) -> list[dict]:
    """Per rule: jobs, total and max wall seconds, peak RSS, from Snakemake ``benchmark:`` files
    (``results/benchmarks/{rule}/...tsv``, or ``{rule}.tsv`` for a rule with one job). The
    report's own file is written when its job ends, so its row is the previous build's."""
    root = results_dir / "benchmarks"
    if not root.is_dir():
        return []
    per: dict[str, list] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        parts = tsv.relative_to(root).parts
        rule = parts[0] if len(parts) > 1 else tsv.stem
        if rule == "report":
            rule = "report (previous build)"
        try:
            frame = pd.read_csv(tsv, sep="\t")
        except Exception:  # noqa: BLE001 - a malformed file is skipped, not fatal
            continue
        if "s" not in frame:
            continue
        per.setdefault(rule, []).append(
            (
                float(frame["s"].iloc[-1]),
                float(frame["max_rss"].iloc[-1])
                if "max_rss" in frame and pd.notna(frame["max_rss"].iloc[-1])
                else None,
            )
        )
    rows = []
    for rule, vals in sorted(per.items()):
        secs = [v[0] for v in vals]
        rss = [v[1] for v in vals if v[1] is not None]
        rows.append(
            {
                "rule": rule,
                "jobs": len(vals),
                "total_s": f"{sum(secs):.1f}",
                "max_s": f"{max(secs):.1f}",
                "max_rss_mb": f"{max(rss):.0f}" if rss else "–",
            }
        )
    return rows


def _mllm_calls(answer_logs: Sequence) -> dict:
    """Queries, distinct questions and, where the timing sidecars say, how many answers were
    generated vs taken from the cache."""
    if not answer_logs:
        return {}
    frame = pd.concat([read_logs(p) for p in answer_logs], ignore_index=True)
    distinct = frame.drop_duplicates("cache_key")
    out = {"queries": len(frame), "distinct": len(distinct)}
    fc = distinct["from_cache"]
    if fc.notna().any():
        out["from_cache"] = int((fc == True).sum())  # noqa: E712 - object column of bools / None
        out["generated"] = int((fc == False).sum())  # noqa: E712
    return out


def provenance(
    *,
    results_dir: Path,
    embeddings: Sequence,
    answer_logs: Sequence,
    view: Mapping,
    params_file: str | os.PathLike = "params.yaml",
) -> dict:
    """What produced this report (see the module docstring, section 7)."""
    from ants.embeddings import read_embeddings_metadata

    commit = _git("rev-parse", "HEAD")
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no"))
    pfile = Path(params_file)
    models, datasets = [], []
    seen = set()
    for path in embeddings:
        meta = read_embeddings_metadata(path, "embeddings")
        enc = meta.get("encoder") or {}
        key = (
            enc.get("model"),
            enc.get("pretrained"),
            enc.get("weights_sha256"),
            enc.get("random_init"),
        )
        if key not in seen:
            seen.add(key)
            models.append(
                {
                    "role": "CLIP",
                    "id": f"{enc.get('model')}"
                    + (f" / {enc.get('pretrained')}" if enc.get("pretrained") else ""),
                    "revision": enc.get("weights_sha256") or enc.get("revision") or "–",
                    "note": f"RANDOM WEIGHTS (seed {enc.get('seed')})"
                    if enc.get("random_init")
                    else "",
                }
            )
        datasets.append(
            {
                "dataset": meta.get("dataset", Path(path).stem),
                "images": meta.get("n_images"),
                "skipped": len(meta.get("skipped") or []),
                "file": str(path),
            }
        )
    for p in answer_logs:
        f = read_logs(p)
        for (b, m, r), _ in f.groupby(["backend", "model_id", "revision"], dropna=False):
            models.append(
                {
                    "role": "MLLM",
                    "id": f"{b}: {m}",
                    "revision": r or "–",
                    "note": "random-weight demo model" if b == "demo" else "",
                }
            )
    models = list({json.dumps(x, sort_keys=True): x for x in models}.values())
    numerics = _cpu_numerics(embeddings)
    return {
        "commit": commit or "not a git checkout",
        "dirty": dirty,
        "params_file": str(pfile),
        "params_sha256": hashlib.sha256(pfile.read_bytes()).hexdigest() if pfile.is_file() else "–",
        "view_sha256": hashlib.sha256(canonical_json(view).encode()).hexdigest(),
        "versions": _versions(),
        "models": models,
        "datasets": datasets,
        "stages": _stage_times(results_dir),
        "mllm": _mllm_calls(answer_logs),
        "cpu_numerics": numerics,
    }


def _cpu_numerics(embeddings: Sequence) -> dict:
    """The CPU code path the features were computed under (as their files record it) and this
    machine's (:func:`ants.numerics.describe`)."""
    from ants import numerics
    from ants.embeddings import read_embeddings_metadata

    recorded = {
        json.dumps((read_embeddings_metadata(p).get("encoder") or {}).get("cpu_numerics"))
        for p in embeddings
    }
    here = numerics.describe()
    settings = here.get("settings") or {}
    return {
        "mode": here["mode"],
        "settings": ", ".join(f"{k}={v}" for k, v in settings.items()) or "none",
        "machine": f"{here.get('cpu', '?')}; torch CPU capability "
        f"{here.get('torch_cpu_capability', '?')}, {here.get('torch_threads', '?')} threads",
        "features": sorted((json.loads(r) or {}).get("mode", "not recorded") for r in recorded),
    }


# -- the page --------------------------------------------------------------------------------------


def build_report(
    *,
    metrics_json: str | os.PathLike,
    score_files: Mapping[tuple[str, str, str, int], Any],
    answer_logs: Sequence[str | os.PathLike],
    negatives: Sequence[str | os.PathLike],
    embeddings: Sequence[str | os.PathLike],
    view: Mapping,
    out: str | os.PathLike,
    sweeps: Sequence[str | os.PathLike] | None = None,
    results_dir: str | os.PathLike | None = None,
    ablation: str | os.PathLike | None = None,
    cost: str | os.PathLike | None = None,
) -> Path:
    """Write ``out`` (one self-contained HTML file) and its figures in ``<out's folder>/figures``
    (replaced whole). ``view``: :func:`ants.views.report_view`; ``sweeps``: sweep CSVs (default:
    ``{results_dir}/sweeps/*.csv``); ``results_dir``: default the folder of ``metrics_json``
    (metric tables, benchmarks); ``ablation``, ``cost``: the CSVs of the ablation and cost
    tables (:mod:`ants.paper_tables`), shown after the paper-shaped tables when given. The
    sweeps of ``view["paper"]["panels"]`` come first, titled as the paper's Figure 7 panels.
    Every input is checked by its reader first: a damaged one raises
    :class:`ants.artifacts.ArtifactError` naming it."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results_dir = Path(results_dir) if results_dir is not None else Path(metrics_json).parent
    artifacts.read_metrics_json(metrics_json)
    settings = {**REPORT_DEFAULTS, **dict(view.get("report") or {})}
    if sweeps is None:
        sweeps = (
            sorted((results_dir / "sweeps").glob("*.csv"))
            if (results_dir / "sweeps").is_dir()
            else []
        )
    fig_dir = out.parent / "figures"
    with atomic_dir(fig_dir) as tmp_dir:
        rocs, hists = _score_figures(score_files, view, tmp_dir, int(settings["histogram_bins"]))
        traces = _trace_figures(score_files, view, tmp_dir)
        sweep_figs = _panels_first(sweep_figures(sweeps, tmp_dir), view)
    env = Environment(
        loader=PackageLoader("ants", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = env.get_template("report.html.j2").render(
        title=settings["title"],
        demo=is_demo(embeddings, answer_logs),
        banner=DEMO_BANNER,
        benchmarks=_html_tables(results_dir / "metrics", view),
        extras=_paper_extras(ablation, cost),
        rocs=rocs,
        hists=hists,
        traces=traces,
        sweeps=sweep_figs,
        negatives=_negatives_section(answer_logs, negatives, settings),
        prov=provenance(
            results_dir=results_dir, embeddings=embeddings, answer_logs=answer_logs, view=view
        ),
        paper=_published_rows(),
        roc_points=view["metrics"]["fpr95_roc"],
        roc_points_text=ROC_POINTS_TEXT[view["metrics"]["fpr95_roc"]],
        seeds=sorted({k[3] for k in score_files}),
        settings=settings,
    )
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out


def _panels_first(figures: list[dict], view: Mapping) -> list[dict]:
    """The sweep figures with the paper's Figure 7 panels (``view["paper"]["panels"]``) first,
    in that order, titled "Figure 7 (a) ..."."""
    panels = list(((view.get("paper") or {}).get("panels")) or [])
    by_name = {f["title"].split(":")[0].removeprefix("sweep "): f for f in figures}
    out = []
    for i, name in enumerate(panels):
        f = by_name.pop(name, None)
        if f is not None:
            out.append({**f, "title": f"Figure 7 ({chr(ord('a') + i)}): {f['title']}"})
    return out + [f for f in figures if f in by_name.values()]


def _published_rows() -> list[dict]:
    """The shipped published numbers as the report lists them (no AUROC: "–")."""
    rows = paper_results().to_dict("records")
    for r in rows:
        r["auroc"] = "–" if pd.isna(r["auroc"]) else r["auroc"]
        r["convention"] = "ID-positive" if r["fpr95_convention"] == "id" else "OOD-positive"
    return rows
