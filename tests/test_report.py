"""The HTML report from fixture artifacts: self-contained, tables first, escaped answers, the
negatives with thumbnails under a size budget, sweeps, provenance, the demo banner."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from _report_fixtures import XSS_IMG, XSS_SCRIPT, shared_run

from ants.report import build_report, sweep_figures


def render(run, out: Path, **report) -> str:
    view = {**run["view"], "report": {**run["view"]["report"], **report}}
    build_report(metrics_json=run["results"] / "metrics.json", score_files=run["score_files"],
                 answer_logs=[run["results"] / "answers"], negatives=run["negatives"],
                 embeddings=run["embeddings"], view=view, out=out)
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "index.html"
    return out, render(run, out)


def test_answers_are_escaped_and_the_page_has_no_script_or_remote_resource(page):
    _, html = page
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; a red bicycle" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; a blue kite" in html
    assert "<script" not in html.lower() and XSS_SCRIPT not in html and XSS_IMG not in html
    srcs = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs), {s[:30] for s in srcs}


def test_tables_come_first_with_ours_published_and_presets(page, run):
    _, html = page
    assert html.index('id="tables"') < html.index('id="roc"') < html.index('id="traces"') < html.index('id="sweeps"') \
        < html.index('id="negatives"') < html.index('id="provenance"')
    main = pd.read_csv(run["results"] / "metrics" / "fixture.csv")
    r = main[(main["method"] == "ants_code") & (main["dataset"] == "fx_near")].iloc[0]
    assert f"{r['fpr95_ood']:.2f} ± {r['fpr95_ood_std']:.2f}" in html
    # the authors' code row is split-selected: its label and the table's note say so
    code = "ANTS (authors&#39; code) [preset authors_code; far_only on far / near_only on near]"
    assert f"<td>{code}</td>" in html
    assert f"{code}: the score is chosen per OOD split (far_only on far / near_only on near)" in html
    assert "ANTS (paper) [preset paper] · oracle" in html
    assert html.count('<table class="paper"') == 2
    assert "Both FPR95s are read off every ROC point (each distinct threshold) (<code>metrics.fpr95_roc: all</code>)" in html
    assert 'id="demo-banner"' in html


def test_figures_are_written_and_inlined(page):
    out, html = page
    figs = out.parent / "figures"
    names = sorted(p.name for p in figs.iterdir())
    assert names == sorted(["hist_fixture_mcm.png", "hist_fixture_ants_code.png", "hist_fixture_ants_paper.png",
                            "roc_fixture.png", "trace_fixture_ants_code.png", "trace_fixture_ants_paper.png",
                            "sweep_ens_updates.png", "sweep_ens_updates.svg"])
    # ROC, 3 histograms, 2 traces and the sweep inlined; the sweep SVG is text with the axis title
    assert html.count('<img src="data:image/png;base64,') > html.count('alt="fixture: ') == 6
    assert 'alt="sweep ens_updates: methods.ants_code.config.ens_max_updates"' in html
    assert "FPR95, OOD-positive" in (figs / "sweep_ens_updates.svg").read_text()


def test_negatives_show_thumbnails_per_update_under_the_budget(run, tmp_path):
    html = render(run, tmp_path / "index.html", answers_per_update=1, seeds_shown=1)
    frame = pd.concat([pd.read_parquet(p) for p in run["logs"]])
    ens_updates = frame[(frame["kind"] == "ens") & frame["stream_id"].str.endswith("seed0")][
        ["stream_id", "batch_index"]].drop_duplicates()
    assert html.count("ENS update at batch") == len(ens_updates)
    assert html.count('<div class="item"><img src="data:image/png;base64,') == len(ens_updates)
    assert "ants answers show --stream fixture/ants_code/fx_far/seed0 --batch" in html
    assert "4 more stream(s) not shown" in html  # seed 1 of the 4 ANTS streams
    assert "VSNL event at batch" in html


def test_failed_answers_listed_with_reason(page, run):
    _, html = page
    frame = pd.concat([pd.read_parquet(p) for p in run["logs"]])
    bad = frame[frame["status"] != "ok"]
    assert f"Failed, empty or unparsable answers ({len(bad)})" in html
    from markupsafe import escape

    assert "unparsable" in html and str(escape(bad["reason"].iloc[0])) in html


def test_provenance_stage_times_and_mllm_calls(page, run):
    _, html = page
    assert "<td>score</td><td>2</td><td>4.0</td><td>2.5</td><td>123</td>" in html
    # a rule with one job has its file at results/benchmarks/{rule}.tsv: named by the rule
    assert "<td>metrics</td><td>1</td><td>0.7</td><td>0.7</td><td>99</td>" in html
    assert "<td>tables</td><td>1</td><td>0.4</td><td>0.4</td><td>99</td>" in html
    assert "<td>report (previous build)</td><td>1</td><td>1.2</td>" in html
    assert ".tsv</td>" not in html
    frame = pd.concat([pd.read_parquet(p) for p in run["logs"]])
    assert f"{len(frame)} queries" in html
    assert "RANDOM WEIGHTS" in html and "demo: tiny-llava" in html
    assert "<td>fx_id</td><td>48</td>" in html
    assert re.search(r"numpy \d", html)


def test_sweep_table_missing_a_column_is_one_clear_error(tmp_path):
    from ants.artifacts import ArtifactError

    bad = tmp_path / "s.csv"
    pd.DataFrame({"sweep": ["x"], "value": [1]}).to_csv(bad, index=False)
    with pytest.raises(ArtifactError) as err:
        sweep_figures([bad], tmp_path)
    assert str(err.value) == (f"{bad} (sweep table): no column 'is_default' (columns: sweep, value). "
                              "Rebuild it: write it again with `ants sweep-metrics`")


def test_answers_per_stream_counted_as_the_log_says(page, run):
    _, html = page
    frame = pd.concat([pd.read_parquet(p) for p in run["logs"]])
    counts = frame.groupby(["stream_id", "status"]).size().unstack(fill_value=0)
    assert counts.get("unparsable", pd.Series(dtype=int)).sum() > 0  # the fixture has bad answers
    table = html.split('id="answers-per-stream"', 1)[1].split("</table>", 1)[0]
    for sid, row in counts.iterrows():
        cells = [str(int(row.get(s, 0))) for s in ("ok", "empty", "unparsable", "failed")]
        assert re.search(rf"<td>{re.escape(sid)}</td><td>{int(row.sum())}</td>" + "".join(
            rf"<td(?: class=\"bad\")?>{c}</td>" for c in cells), table), sid


def test_a_huge_answer_is_cut_in_the_report_and_kept_in_the_log(run, tmp_path):
    logs = tmp_path / "answers"
    logs.mkdir()
    huge = "x" * 100_000
    for i, p in enumerate(run["logs"]):
        frame = pd.read_parquet(p)
        if i == 0:
            bad = frame.index[frame["status"] != "ok"]
            assert len(bad)
            frame.loc[bad[0], "raw_text"] = huge
        frame.to_parquet(logs / f"{i}.parquet")
    view = {**run["view"], "report": {**run["view"]["report"], "max_answer_chars": 1000}}
    out = tmp_path / "index.html"
    build_report(metrics_json=run["results"] / "metrics.json", score_files=run["score_files"],
                 answer_logs=[logs], negatives=run["negatives"], embeddings=run["embeddings"], view=view, out=out)
    html = out.read_text(encoding="utf-8")
    assert "x" * 1001 not in html and "x" * 900 in html
    assert "... [100,000 characters]" in html
    assert (pd.read_parquet(logs / "0.parquet")["raw_text"] == huge).sum() == 1  # the log keeps it whole


def _tie_run(run, tmp_path):
    """One MCM score file whose ID-positive ROC has collinear points at TPR 0.95: (fp, tp) = (0, 94),
    (1, 95), (2, 96), (7, 96), (200, 100) -- FPR95-ID 0.5 % on every point, 1 % on OpenOOD's."""
    import numpy as np

    from ants.artifacts import write_scores

    id_s = np.r_[np.full(94, 10.0), 9.0, 8.0, np.full(4, 0.0)]
    ood_s = np.r_[9.0, 8.0, np.full(5, 7.0), np.full(193, -10.0)]
    n_id, n_ood = id_s.size, ood_s.size
    frame = pd.DataFrame({"position": np.arange(n_id + n_ood), "id": [f"i{k}" for k in range(n_id + n_ood)],
                          "batch": np.ones(n_id + n_ood, np.int64), "is_ood": np.r_[np.zeros(n_id, bool), np.ones(n_ood, bool)],
                          "label": np.r_[np.zeros(n_id, np.int64), -np.ones(n_ood, np.int64)],
                          "pred": np.zeros(n_id + n_ood, np.int64), "score": np.r_[id_s, ood_s].astype(np.float32)})
    path = write_scores(tmp_path / "results" / "scores" / "fixture" / "mcm" / "fx_far" / "seed0.parquet", frame,
                        {"stream": {"n_id": n_id, "n_ood": n_ood}})
    return {("fixture", "mcm", "fx_far", 0): path}, id_s, ood_s


@pytest.mark.parametrize("roc_points", ["all", "openood"])
def test_roc_curves_are_drawn_from_the_points_the_fpr95_columns_use(run, tmp_path, monkeypatch, roc_points):
    """The report's ROC curve is ants.metrics' curve with metrics.fpr95_roc's points: read off the
    drawn curve, the FPR at the first TPR >= 95 % is the table's FPR95-ID."""
    import matplotlib.axes
    import numpy as np

    from ants.metrics import fpr95_id, roc_curve

    files, id_s, ood_s = _tie_run(run, tmp_path)
    drawn = {}
    plot = matplotlib.axes.Axes.plot

    def recording(self, *args, **kw):
        if kw.get("label") == "MCM":  # the first: the ROC figure is drawn before the sweeps'
            drawn.setdefault("MCM", (np.asarray(args[0]), np.asarray(args[1])))
        return plot(self, *args, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording)
    view = {**run["view"], "metrics": {**run["view"]["metrics"], "fpr95_roc": roc_points}}
    build_report(metrics_json=run["results"] / "metrics.json", score_files=files, answer_logs=[],
                 negatives=run["negatives"], embeddings=run["embeddings"], view=view, out=tmp_path / "r" / "index.html")
    fpr, tpr = drawn["MCM"]
    want_fpr, want_tpr = roc_curve(id_s, ood_s, roc_points=roc_points)
    np.testing.assert_array_equal(fpr, want_fpr)
    np.testing.assert_array_equal(tpr, want_tpr)
    read_off = fpr[np.argmax(tpr >= 0.95)]
    assert read_off == fpr95_id(id_s, ood_s, roc_points=roc_points) == {"all": 0.005, "openood": 0.01}[roc_points]


def test_the_report_builds_without_scikit_learn(run, tmp_path):
    """scikit-learn is a dev-only dependency: a `.[workflow]` install must build the report."""
    import json
    import subprocess
    import sys

    files, _, _ = _tie_run(run, tmp_path)
    args = {"metrics_json": str(run["results"] / "metrics.json"), "answer_logs": [str(p) for p in run["logs"]],
            "negatives": [str(p) for p in run["negatives"]], "embeddings": [str(p) for p in run["embeddings"]],
            "view": run["view"], "out": str(tmp_path / "r" / "index.html")}
    code = ("import json, sys; sys.modules['sklearn'] = None\n"  # any `import sklearn...` now fails
            "from pathlib import Path\nfrom ants.report import build_report\n"
            f"a = json.loads({json.dumps(json.dumps(args))})\n"
            f"build_report(score_files={{('fixture', 'mcm', 'fx_far', 0): Path({str(files[('fixture', 'mcm', 'fx_far', 0)])!r})}}, **a)\n"
            "print('sklearn' in sys.modules and sys.modules['sklearn'] is not None)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "False" and (tmp_path / "r" / "index.html").is_file()
