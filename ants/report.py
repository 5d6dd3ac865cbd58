"""The HTML report (``reports/index.html``): plain Jinja, static figures, no JavaScript.

Sections:

* a banner when any model is random-weight (the offline demo): the numbers carry no meaning;
* per benchmark, a metric table (percentages, mean ± std over the stream seeds) per method and
  OOD set with the split averages, and the published numbers (``ants/data/paper-results.csv``,
  a copy of the spec's table) beside ours where the benchmark has them;
* figures (matplotlib, PNG under ``reports/figures/``): score histograms (ID vs OOD) of every
  method on every OOD set (first seed), and ANTS's NIM threshold and adaptive weight lambda
  over the stream batches;
* samples of the negatives: the mined negative labels (lowest 95th-percentile similarity
  first) and what the MLLM generated (ENS sentences, VSNL class names).

Everything here reads files the workflow wrote; nothing is recomputed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ants._io import atomic_dir, atomic_path

__all__ = ["DEMO_BANNER", "PAPER_METHOD", "build_report", "is_demo", "paper_results", "paper_rows"]

DEMO_BANNER = (
    "Offline demo: the CLIP model and/or the MLLM have random weights and the images are generated "
    "shapes. The numbers below carry no meaning; they only show that every stage runs."
)
#: Our method kinds -> the method names of paper-results.csv.
PAPER_METHOD = {"mcm": "MCM", "neglabel": "NegLabel", "adaneg": "AdaNeg", "ants": "ANTS"}
#: Our split-average rows -> the dataset names of paper-results.csv, per benchmark.
_PAPER_AVERAGE = {"mos4": {"far_average": "average"}, "openood_v15": {"far_average": "far", "near_average": "near"}}
METRIC_LABELS = {
    "auroc": "AUROC ↑",
    "fpr95_id": "FPR95 (ID conv.) ↓",
    "fpr95_ood": "FPR95 (OOD conv.) ↓",
    "aupr_in": "AUPR-In ↑",
    "aupr_out": "AUPR-Out ↑",
    "acc": "ID acc. ↑",
}


def paper_results() -> pd.DataFrame:
    """The published numbers shipped with the package (percentages)."""
    with resources.files("ants").joinpath("data/paper-results.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh)


def paper_rows(benchmark: str, method_kind: str, dataset: str, table: pd.DataFrame | None = None) -> list[dict]:
    """Published rows for (benchmark, our method kind, our dataset or split-average name)."""
    table = paper_results() if table is None else table
    name = PAPER_METHOD.get(method_kind)
    ds = _PAPER_AVERAGE.get(benchmark, {}).get(dataset, dataset)
    sel = table[(table["benchmark"] == benchmark) & (table["dataset"] == ds)
                & table["method"].astype(str).str.startswith(name or "\0")]
    return sel.to_dict("records")


def is_demo(embedding_files: Sequence[str | os.PathLike], answer_logs: Sequence[str | os.PathLike]) -> bool:
    """True when an encoder had random weights or the MLLM was the demo model."""
    import pyarrow.parquet as pq

    from ants.embeddings import read_embeddings_metadata

    for path in embedding_files:
        if (read_embeddings_metadata(path).get("encoder") or {}).get("random_init"):
            return True
    for path in answer_logs:
        backends = pq.read_table(path, columns=["backend"]).column("backend").to_pylist()
        if "demo" in backends:
            return True
    return False


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def _tables(metrics: Mapping, view: Mapping, paper: pd.DataFrame) -> list[dict]:
    out = []
    for bench, methods in metrics.items():
        splits = view["benchmarks"].get(bench, {}).get("ood", {})
        datasets = [ds for s in ("far", "near") for ds in splits.get(s, [])]
        # a split average is shown when the split has several datasets (else it repeats one)
        columns = datasets + [f"{s}_average" for s in ("far", "near") if len(splits.get(s, [])) > 1]
        rows = []
        order = [m for m in view["run"]["methods"] if m in methods] + sorted(set(methods) - set(view["run"]["methods"]))
        for method in order:
            entries = methods[method]
            kind = view["methods"].get(method, {}).get("method", method)
            label = view["methods"].get(method, {}).get("label", method)
            cells = []
            for col in columns:
                m = entries.get(col)
                cells.append(None if m is None else {k: _fmt(m[k], m[f"{k}_std"]) for k in METRIC_LABELS}
                             | {"n_seeds": m["n_seeds"]})
            published = []
            for col in columns:
                recs = paper_rows(bench, kind, col, paper)
                published.append([{"method": r["method"], "auroc": r["auroc"], "fpr95": r["fpr95"],
                                   "convention": r["fpr95_convention"], "source": r["source"]} for r in recs])
            rows.append({"method": method, "label": label, "cells": cells, "published": published,
                         "has_published": any(published)})
        out.append({"benchmark": bench, "columns": columns, "rows": rows})
    return out


def _histograms(score_files: Mapping, view: Mapping, fig_dir: Path, bins: int) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ants._io import read_table

    figures = []
    keys = sorted(score_files)
    for bench in sorted({k[0] for k in keys}):
        for method in [m for m in view["run"]["methods"] if any(k[:2] == (bench, m) for k in keys)]:
            oods = sorted({k[2] for k in keys if k[:2] == (bench, method)})
            fig, axes = plt.subplots(1, len(oods), figsize=(4 * len(oods), 3), squeeze=False)
            for ax, ood in zip(axes[0], oods, strict=True):
                seed = min(k[3] for k in keys if k[:3] == (bench, method, ood))
                frame, _ = read_table(score_files[(bench, method, ood, seed)])
                s = frame["score"].to_numpy(np.float64)
                is_ood = frame["is_ood"].to_numpy()
                edges = np.histogram_bin_edges(s, bins=bins)
                ax.hist(s[~is_ood], bins=edges, alpha=0.6, label="ID", color="tab:blue")
                ax.hist(s[is_ood], bins=edges, alpha=0.6, label=f"OOD ({ood})", color="tab:red")
                ax.set_title(f"{ood}, seed {seed}", fontsize=9)
                ax.set_xlabel("score (higher = more ID)")
                ax.legend(fontsize=7)
            figures.append(_save_figure(fig, fig_dir, "hist", bench, method, view, "score histograms"))
    return figures


def _save_figure(fig, fig_dir: Path, kind: str, bench: str, method: str, view: Mapping,
                 what: str) -> dict:
    """Title, save (PNG, no timestamped metadata) and close ``fig``; its entry for the report."""
    import matplotlib.pyplot as plt

    label = view["methods"].get(method, {}).get("label", method)
    fig.suptitle(f"{bench}: {label}", fontsize=10)
    fig.tight_layout()
    name = f"{kind}_{bench}_{method}.png"
    fig.savefig(fig_dir / name, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return {"file": f"figures/{name}", "title": f"{bench}: {label} {what}"}


def _trace_figures(score_files: Mapping, view: Mapping, fig_dir: Path) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ants.stages import trace_table

    trace = trace_table(score_files)
    figures = []
    for (bench, method), group in trace.groupby(["benchmark", "method"], sort=True):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        for (ood, seed), g in group.groupby(["ood", "seed"], sort=True):
            axes[0].plot(g["batch"], g["threshold"], marker=".", label=f"{ood} s{seed}")
            axes[1].plot(g["batch"], g["lambda"], marker=".", label=f"{ood} s{seed}")
        axes[0].set_title("NIM threshold", fontsize=9)
        axes[1].set_title("lambda (weight of S_ens)", fontsize=9)
        for ax in axes:
            ax.set_xlabel("stream batch")
            ax.legend(fontsize=6)
        figures.append(
            _save_figure(fig, fig_dir, "trace", bench, method, view, "threshold and lambda over batches")
        )
    return figures


def _negative_samples(negatives: Sequence[str | os.PathLike], answer_logs: Sequence[str | os.PathLike],
                      n: int) -> dict[str, Any]:
    from ants.mining import MinedNegatives
    from ants.mllm.answering import read_answer_log

    mined = []
    for path in negatives:
        neg = MinedNegatives.load(path)
        table = neg.table.head(n)
        mined.append({"file": str(path), "count": len(neg),
                      "rows": [{"label": r.label, "kind": r.kind, "stat": f"{r.stat:.3f}"} for r in table.itertuples()]})
    generated = []
    for path in answer_logs:
        frame = read_answer_log(path)
        ok = frame[frame["status"] == "ok"]
        for kind in ("ens", "vsnl"):
            part = ok[ok["kind"] == kind].drop_duplicates("cache_key").head(n)
            generated.append({
                "file": str(path), "kind": kind,
                "asked": int((frame["kind"] == kind).sum()),
                "ok": int((ok["kind"] == kind).sum()),
                "rows": [{"about": (r.class_name if kind == "vsnl" else f"{Path(str(r.image)).name} ({r.class_name})"),
                          "stream": r.stream_id, "batch": r.batch_index, "raw": r.raw_text,
                          "negatives": ", ".join(r.negatives)} for r in part.itertuples()],
            })
    return {"mined": mined, "generated": generated}


def build_report(*, metrics_json: str | os.PathLike, score_files: Mapping[tuple[str, str, str, int], Any],
                 answer_logs: Sequence[str | os.PathLike], negatives: Sequence[str | os.PathLike],
                 embeddings: Sequence[str | os.PathLike], view: Mapping, out: str | os.PathLike) -> Path:
    """Write ``out`` (HTML) and its figures in ``<out's folder>/figures`` (replaced whole)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(metrics_json, encoding="utf-8") as fh:
        metrics = json.load(fh)
    report_cfg = view.get("report", {})
    fig_dir = out.parent / "figures"
    with atomic_dir(fig_dir) as tmp_dir:
        figures = _histograms(score_files, view, tmp_dir, int(report_cfg.get("histogram_bins", 30)))
        figures += _trace_figures(score_files, view, tmp_dir)
    paper = paper_results()
    env = Environment(loader=PackageLoader("ants", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    html = env.get_template("report.html.j2").render(
        title=report_cfg.get("title", "ANTS reproduction"),
        demo=is_demo(embeddings, answer_logs),
        banner=DEMO_BANNER,
        metric_labels=METRIC_LABELS,
        tables=_tables(metrics, view, paper),
        figures=figures,
        samples=_negative_samples(negatives, answer_logs, int(report_cfg.get("negatives_shown", 20))),
        paper=paper.to_dict("records"),
        seeds=sorted({k[3] for k in score_files}),
    )
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
