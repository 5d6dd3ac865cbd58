"""Tables shaped like the paper's: per benchmark, methods x (OOD sets, averages), published beside.

What a table holds (``results/tables/``, CSV + Markdown + LaTeX/booktabs):

* ``{benchmark}.*``: one row per method (in ``run.methods`` order), its main score (ANTS: the
  configured ``in_score`` of each split); per OOD set, then the split averages (shown when a
  split has several sets), three columns: ``FPR95-ID`` (ID-positive: the threshold keeps 95 %
  of ID, the fraction of OOD accepted; MOS, MCM, NegLabel, CSP), ``FPR95-OOD`` (OOD-positive:
  the threshold catches 95 % of OOD, the fraction of ID flagged; OpenOOD v1.5, AdaNeg, ANTS) and
  ``AUROC`` (the same under both). Values are percentages, ``mean ± std`` over the stream
  seeds (population std, ddof 0), ``[published, ours - published]`` beside when the paper
  reports the number in that column's convention. Every ANTS / AdaNeg row names its preset;
  an ANTS row whose ``in_score`` differs per split also names that choice in its label (e.g.
  ``[preset authors_code; far_only on far / near_only on near]``: it equals the variants
  table's ``oracle`` row) and in the legend (:func:`split_notes`).
* ``{benchmark}_ants_variants.*``: every ANTS method with its variants side by side: ``ada``
  (the paper's adaptive score), ``far_only`` (S_ens), ``near_only`` (S_vsnl) and ``oracle``
  (far_only on far sets, near_only on near sets, as the authors' scripts report).

The CSV is long (tidy): one line per (row, dataset, metric) with ours, published and the
difference as separate columns; ``variant`` is the score of that cell and ``split_scores`` the
per-split choice of a split-selected ANTS row. Numbers come from the workflow's metric files only
(``results/metrics/{benchmark}.csv`` and ``{benchmark}_variants.csv``, written by
:func:`ants.stages.compute_metrics` and read through :func:`ants.artifacts.read_metrics_csv`);
nothing is re-derived here. What a table shows of the params is :func:`ants.views.tables_view`.
Lower FPR95 is better; higher AUROC is better; every score is "higher = more ID".
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from ants.artifacts import read_metrics_csv
from ants.metrics import ANTS_VARIANTS

__all__ = [
    "CONVENTION",
    "PAPER_METHOD",
    "TABLE_METRICS",
    "benchmark_columns",
    "LONG_COLUMNS",
    "format_cell",
    "latex_escape",
    "latex_table",
    "markdown_table",
    "paper_results",
    "paper_table",
    "published_for",
    "read_metric_rows",
    "table_rows_for_terminal",
    "variant_metrics",
    "write_tables",
]

#: metric -> (column head, convention named in the head)
TABLE_METRICS = {"fpr95_id": "FPR95-ID ↓", "fpr95_ood": "FPR95-OOD ↓", "auroc": "AUROC ↑"}
#: metric -> the convention of paper-results.csv's ``fpr95_convention`` it matches
CONVENTION = {"fpr95_id": "id", "fpr95_ood": "ood"}
#: our method kinds -> paper-results.csv method names
PAPER_METHOD = {
    "mcm": "MCM",
    "neglabel": "NegLabel",
    "adaneg": "AdaNeg",
    "ants": "ANTS",
    "csp": "CSP",
    "glmcm": "GL-MCM",
    "eoe": "EOE",
}
#: our split averages -> paper-results.csv dataset names, per benchmark
PAPER_AVERAGE = {
    "mos4": {"far_average": "average"},
    "openood_v15": {"far_average": "far", "near_average": "near"},
}


def paper_results() -> pd.DataFrame:
    """The published numbers shipped with the package (percentages; ``ants/data/paper-results.csv``)."""
    with resources.files("ants").joinpath("data/paper-results.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh)


def benchmark_columns(view: Mapping, benchmark: str) -> list[tuple[str, str]]:
    """``[(dataset or {split}_average, split), ...]``: far sets, near sets, then the split
    averages of splits with several sets (one set's average would repeat it)."""
    ood = view["benchmarks"][benchmark]["ood"]
    cols = [(ds, s) for s in ("far", "near") for ds in ood.get(s, [])]
    cols += [(f"{s}_average", s) for s in ("far", "near") if len(ood.get(s, [])) > 1]
    return cols


# -- metrics ---------------------------------------------------------------------------------


def read_metric_rows(metrics_dir: str | os.PathLike, benchmark: str) -> pd.DataFrame:
    """The workflow's per-benchmark metrics CSV (percentages, mean and std over seeds), checked
    (:func:`ants.artifacts.read_metrics_csv`)."""
    return read_metrics_csv(metrics_dir, benchmark)


def variant_metrics(view: Mapping, metrics_dir: str | os.PathLike) -> pd.DataFrame:
    """ANTS variants' metrics of every benchmark of ``view``: the workflow's
    ``{metrics_dir}/{benchmark}_variants.csv`` (columns of the metrics CSV plus ``variant``),
    checked, concatenated."""
    frames = [
        read_metrics_csv(metrics_dir, bench, variants=True) for bench in view["run"]["benchmarks"]
    ]
    return pd.concat(frames, ignore_index=True)


# -- published numbers -----------------------------------------------------------------------


def published_for(
    paper: pd.DataFrame, benchmark: str, kind: str, dataset: str, variant: str | None = None
) -> dict | None:
    """The published row for (benchmark, our method kind, our dataset or split average).

    Rows named ``"{Method}"`` are the paper's; rows named ``"{Method} (...; {variant})"`` are
    the authors' scripts for one score variant and are preferred when ``variant`` matches
    (``far_only`` / ``near_only``). Returns None when the paper has no such number.
    """
    name = PAPER_METHOD.get(kind)
    if name is None:
        return None
    ds = PAPER_AVERAGE.get(benchmark, {}).get(dataset, dataset)
    sel = paper[(paper["benchmark"] == benchmark) & (paper["dataset"] == ds)]
    methods = sel["method"].astype(str)
    exact = sel[methods == name]
    scripted = sel[methods.str.startswith(name + " (")]
    if variant in ("far_only", "near_only"):
        hit = scripted[scripted["method"].astype(str).str.endswith(f"; {variant})")]
        if len(hit):
            return hit.iloc[0].to_dict()
    return exact.iloc[0].to_dict() if len(exact) else None


def published_value(row: Mapping | None, metric: str) -> float | None:
    """The published figure of ``metric`` (a TABLE_METRICS name) in a row of the published
    results, or None: FPR95 only where the row's convention is the metric's."""
    if row is None:
        return None
    if metric == "auroc":
        v = row.get("auroc")
    elif row.get("fpr95_convention") == CONVENTION[metric]:
        v = row.get("fpr95")
    else:
        return None
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def measured_value(hit: pd.DataFrame, metric: str) -> tuple[float | None, float | None, int]:
    """``(mean, std over seeds, seeds)`` of ``metric`` in the first row of ``hit`` (rows of a
    metrics CSV for one method and dataset); ``(None, None, 0)`` when there is none."""
    if not len(hit):
        return None, None, 0
    r = hit.iloc[0]
    return float(r[metric]), float(r[f"{metric}_std"]), int(r["n_seeds"])


# -- the table --------------------------------------------------------------------------------

LONG_COLUMNS = (
    "benchmark",
    "row",
    "method",
    "label",
    "preset",
    "variant",
    "split_scores",
    "dataset",
    "split",
    "metric",
    "convention",
    "mean",
    "std",
    "n_seeds",
    "published",
    "diff",
    "published_method",
    "published_source",
)


def _convention_name(metric: str) -> str:
    return {"fpr95_id": "ID-positive", "fpr95_ood": "OOD-positive"}.get(metric, "either")


def split_scores(in_score: Mapping[str, str] | None) -> str:
    """``"far_only on far / near_only on near"`` when an ANTS method's ``in_score`` differs per
    OOD split (its main-table row is then split-selected: it equals the variants table's
    ``oracle`` row for those choices), else ``""``."""
    if not in_score or len(set(in_score.values())) < 2:
        return ""
    return " / ".join(f"{in_score[s]} on {s}" for s in ("far", "near") if s in in_score)


#: the legend's note on a split-selected ANTS row (``{row}``, ``{scores}``) and on ``oracle``
SPLIT_NOTE = (
    "{row}: the score is chosen per OOD split ({scores}), as the authors' released scripts "
    "report it; it equals the oracle row of the ANTS variants table."
)
ORACLE_NOTE = "oracle: far_only (S_ens) on far sets, near_only (S_vsnl) on near sets."


def split_notes(long: pd.DataFrame) -> list[str]:
    """The legend's notes on the rows of a long table whose score differs per OOD split: an
    ANTS row with a split-dependent ``in_score`` (its ``split_scores`` column) and the
    ``oracle`` variant. The Markdown and LaTeX legends and the report carry them (the CSV has
    the ``split_scores`` column and the row label)."""
    rows = long[long["split_scores"].fillna("") != ""].drop_duplicates("row")
    notes = [
        SPLIT_NOTE.format(row=r.row, scores=r.split_scores) for r in rows.itertuples(index=False)
    ]
    if "oracle" in set(long["variant"]):
        notes.append(ORACLE_NOTE)
    return notes


def _row_label(label: str, preset: str | None, variant: str | None = None, scores: str = "") -> str:
    text = label
    if preset or scores:
        text += " [" + "; ".join(x for x in (f"preset {preset}" if preset else "", scores) if x)
        text += "]"
    if variant:
        text += f" · {variant}"
    return text


def paper_table(
    benchmark: str,
    main: pd.DataFrame,
    view: Mapping,
    paper: pd.DataFrame | None = None,
    *,
    variants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The long table of one benchmark (columns :data:`LONG_COLUMNS`).

    ``main``: the metrics CSV rows (every method's main score); ``variants``: when given, the
    table is the ANTS-variants table instead (rows = ANTS method x variant).
    """
    paper = paper_results() if paper is None else paper
    cols = benchmark_columns(view, benchmark)
    out = []
    source = main if variants is None else variants
    source = source[source["benchmark"] == benchmark]
    for method in view["run"]["methods"]:
        info = view["methods"][method]
        if variants is not None and info["method"] != "ants":
            continue
        mine = source[source["method"] == method]
        if mine.empty:
            continue
        for variant in [None] if variants is None else list(ANTS_VARIANTS):
            rows = mine if variant is None else mine[mine["variant"] == variant]
            if rows.empty:
                continue
            scores = split_scores(info["in_score"]) if variants is None else ""
            label = _row_label(info["label"], info["preset"], variant, scores)
            for ds, split in cols:
                hit = rows[rows["dataset"] == ds]
                if variant is None and info["method"] == "ants":
                    used = info["in_score"][split]
                else:
                    used = variant
                if used == "oracle":
                    used = "far_only" if split == "far" else "near_only"
                pub = published_for(paper, benchmark, info["method"], ds, used)
                for metric in TABLE_METRICS:
                    mean, std, n = measured_value(hit, metric)
                    p = published_value(pub, metric)
                    out.append(
                        {
                            "benchmark": benchmark,
                            "row": label,
                            "method": method,
                            "label": info["label"],
                            "preset": info["preset"] or "",
                            "variant": variant
                            or (info["in_score"][split] if info["method"] == "ants" else ""),
                            "split_scores": scores,
                            "dataset": ds,
                            "split": split,
                            "metric": metric,
                            "convention": _convention_name(metric),
                            "mean": mean,
                            "std": std,
                            "n_seeds": n,
                            "published": p,
                            "diff": None if p is None or mean is None else mean - p,
                            "published_method": pub["method"]
                            if pub is not None and p is not None
                            else "",
                            "published_source": pub["source"]
                            if pub is not None and p is not None
                            else "",
                        }
                    )
    return pd.DataFrame(out, columns=list(LONG_COLUMNS))


def format_cell(mean, std, published=None, *, latex: bool = False) -> str:
    """``"12.34 ± 0.56 [11.20, +1.14]"`` (ours, published, ours - published); "–" when missing."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–" if not latex else "--"
    pm = r"$\pm$" if latex else "±"
    text = f"{mean:.2f} {pm} {std:.2f}"
    if published is not None and not (isinstance(published, float) and math.isnan(published)):
        diff = mean - published
        text += f" [{published:.2f}, {diff:+.2f}]"
    return text


def _wide(
    long: pd.DataFrame, *, latex: bool = False
) -> tuple[list[str], list[tuple[str, str]], list[list[str]]]:
    rows = list(dict.fromkeys(long["row"]))
    datasets = list(dict.fromkeys(long["dataset"]))
    heads = [(ds, m) for ds in datasets for m in TABLE_METRICS]
    cells = []
    for r in rows:
        part = long[long["row"] == r]
        line = []
        for ds, m in heads:
            hit = part[(part["dataset"] == ds) & (part["metric"] == m)]
            if hit.empty:
                line.append("–" if not latex else "--")
                continue
            h = hit.iloc[0]
            pub = None if pd.isna(h["published"]) else float(h["published"])
            line.append(
                format_cell(
                    None if pd.isna(h["mean"]) else float(h["mean"]),
                    None if pd.isna(h["std"]) else float(h["std"]),
                    pub,
                    latex=latex,
                )
            )
        cells.append(line)
    return rows, heads, cells


def _legend(benchmark: str, long: pd.DataFrame, roc_points: str) -> str:
    from ants.metrics import ROC_POINTS_TEXT

    seeds = sorted({int(n) for n in long["n_seeds"] if n})
    return (
        f"{benchmark}: percentages, mean ± std over {', '.join(map(str, seeds)) or '?'} stream seed(s). "
        "FPR95-ID: ID-positive (threshold keeps 95 % of ID; MOS, MCM, NegLabel, CSP). "
        "FPR95-OOD: OOD-positive (threshold catches 95 % of OOD; OpenOOD v1.5, AdaNeg, ANTS). "
        f"Both read off {ROC_POINTS_TEXT[roc_points]} (metrics.fpr95_roc: {roc_points}). "
        "[published, ours - published] where the paper reports that column's convention."
        + "".join(f" {note}" for note in split_notes(long))
    )


def markdown_table(long: pd.DataFrame, title: str = "", *, roc_points: str = "all") -> str:
    """GitHub Markdown of a long table: one line per row, datasets x metrics as columns."""

    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    rows, heads, cells = _wide(long)
    lines = []
    if title:
        lines += [f"### {esc(title)}", ""]
    if not rows:
        return "\n".join(lines + ["(no rows)", ""])
    lines.append(
        "| method | " + " | ".join(f"{esc(ds)} {esc(TABLE_METRICS[m])}" for ds, m in heads) + " |"
    )
    lines.append("|---|" + "---:|" * len(heads))
    for r, line in zip(rows, cells, strict=True):
        lines.append(f"| {esc(r)} | " + " | ".join(esc(c) for c in line) + " |")
    bench = str(long["benchmark"].iloc[0])
    lines += ["", _legend(bench, long, roc_points), ""]
    return "\n".join(lines)


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "·": r"$\cdot$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "±": r"$\pm$",
}


def latex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX table cell."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def latex_table(long: pd.DataFrame, caption: str = "", *, roc_points: str = "all") -> str:
    """A booktabs ``table`` of a long table (needs ``\\usepackage{booktabs}``)."""
    rows, heads, cells = _wide(long, latex=True)
    datasets = list(dict.fromkeys(ds for ds, _ in heads))
    n = len(TABLE_METRICS)
    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\scriptsize",
        r"\begin{tabular}{l" + "r" * len(heads) + "}",
        r"\toprule",
    ]
    out.append(
        " & "
        + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(ds)}}}" for ds in datasets)
        + r" \\"
    )
    out.append(
        "".join(rf"\cmidrule(lr){{{2 + i * n}-{1 + (i + 1) * n}}}" for i in range(len(datasets)))
    )
    out.append("Method & " + " & ".join(latex_escape(TABLE_METRICS[m]) for _, m in heads) + r" \\")
    out.append(r"\midrule")
    for r, line in zip(rows, cells, strict=True):
        out.append(
            latex_escape(r)
            + " & "
            + " & ".join(c.replace("[", "{[}").replace("]", "{]}") for c in line)
            + r" \\"
        )
    out += [r"\bottomrule", r"\end{tabular}"]
    if len(long):
        cap = caption or _legend(str(long["benchmark"].iloc[0]), long, roc_points)
        out.append(r"\caption{" + latex_escape(cap) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def write_tables(
    view: Mapping,
    *,
    metrics_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    benchmarks: Iterable[str] | None = None,
) -> list[Path]:
    """Write ``{out_dir}/{benchmark}.{csv,md,tex}`` and, when ANTS ran,
    ``{benchmark}_ants_variants.{csv,md,tex}``; returns the paths written."""
    from ants._io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paper = paper_results()
    written: list[Path] = []
    has_ants = any(v["method"] == "ants" for v in view["methods"].values())
    roc = view["metrics"]["fpr95_roc"]
    variants = variant_metrics(view, metrics_dir) if has_ants else None
    for bench in benchmarks or view["run"]["benchmarks"]:
        main = read_metric_rows(metrics_dir, bench)
        tables = [(bench, paper_table(bench, main, view, paper), f"{bench}: methods")]
        if has_ants:
            tables.append(
                (
                    f"{bench}_ants_variants",
                    paper_table(bench, main, view, paper, variants=variants),
                    f"{bench}: ANTS variants",
                )
            )
        for stem, long, title in tables:
            for ext, text in (
                ("csv", long.to_csv(index=False)),
                ("md", markdown_table(long, title, roc_points=roc)),
                ("tex", latex_table(long, roc_points=roc)),
            ):
                path = out_dir / f"{stem}.{ext}"
                with atomic_path(path) as tmp:
                    tmp.write_text(text, encoding="utf-8")
                written.append(path)
    return written


def table_rows_for_terminal(long: pd.DataFrame) -> Sequence[str]:
    """Plain-text lines of a long table (``ants metrics``): one block per row."""
    rows, heads, cells = _wide(long)
    width = max([len(r) for r in rows] + [6])
    out = []
    datasets = list(dict.fromkeys(ds for ds, _ in heads))
    for ds in datasets:
        idx = [i for i, (d, _) in enumerate(heads) if d == ds]
        out.append(f"  {ds}")
        out.append(
            "    "
            + "method".ljust(width)
            + "  "
            + "  ".join(TABLE_METRICS[heads[i][1]].ljust(28) for i in idx)
        )
        for r, line in zip(rows, cells, strict=True):
            out.append("    " + r.ljust(width) + "  " + "  ".join(line[i].ljust(28) for i in idx))
    return out
