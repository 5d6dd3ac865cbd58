"""ants.tables: published numbers matched to our rows, the paper-shaped tables, the ANTS variants."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from _report_fixtures import shared_run
from sklearn.metrics import roc_auc_score

from ants.tables import (
    latex_escape,
    latex_table,
    markdown_table,
    paper_results,
    paper_table,
    published_for,
    read_metric_rows,
    split_scores,
    variant_metrics,
    write_tables,
)
from ants.views import tables_view


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


#: where each benchmark's published rows may point: its OOD sets and split averages
PUBLISHED_DATASETS = {
    "mos4": {"inaturalist", "sun", "places", "textures", "average"},
    "openood_v15": {"near", "far"},
}


def test_shipped_paper_results_are_complete_and_valid():
    """The package's own copy of the published numbers: every row sourced, conventions and
    ranges valid, no duplicate, and each MOS-four average the mean of its four sets (the
    published values are rounded to 0.01, so within 0.03)."""
    p = paper_results()
    assert list(p.columns) == ["method", "benchmark", "dataset", "fpr95", "auroc", "fpr95_convention", "source"]
    assert len(p) == 55
    assert p["source"].map(lambda s: isinstance(s, str) and len(s.strip()) > 5).all()
    assert set(p["fpr95_convention"]) == {"id", "ood"}
    assert p["fpr95"].between(0, 100).all()  # every row has an FPR95; AUROC may be unpublished
    auroc = p["auroc"].dropna()
    assert auroc.between(50, 100).all() and len(auroc) == 36
    for bench, rows in p.groupby("benchmark"):
        assert set(rows["dataset"]) <= PUBLISHED_DATASETS[bench], bench
    assert not p.duplicated(["method", "benchmark", "dataset"]).any()
    mos = p[p["benchmark"] == "mos4"]
    checked = 0
    for method, rows in mos.groupby("method"):
        by = rows.set_index("dataset")
        if len(by) < 5:
            continue  # EOE: only the average is published
        for metric in ("fpr95", "auroc"):
            sets = by.loc[["inaturalist", "sun", "places", "textures"], metric]
            if sets.notna().all():
                assert by.at["average", metric] == pytest.approx(sets.mean(), abs=0.03), (method, metric)
                checked += 1
    assert checked == 12  # FPR95 of seven methods, AUROC of the five that publish it per set
    # the ablation rows (paper Table 4: the ablation table sets them beside its rows A-F)
    assert set(p.loc[p["method"].str.startswith("ANTS ablation"), "method"]) == {
        "ANTS ablation A (ENS without NIM)", "ANTS ablation B (NIM + ENS)",
        "ANTS ablation C (VSNL without SIM)", "ANTS ablation D (SIM + VSNL)", "ANTS ablation E (fixed weight)",
        "ANTS ablation F (full; adaptive lambda)",
    }
    assert p[p["method"] == "EOE"][["fpr95", "auroc"]].values.tolist() == [
        [30.09, 92.96], [82.93, 66.94], [46.73, 89.14]]
    gl = p[p["method"] == "GL-MCM"]
    assert (gl["fpr95_convention"] == "id").all() and gl["source"].str.endswith("(notes)").all()


def test_ablation_rows_are_never_matched_to_a_methods_own_number():
    """The ablation rows (AUROC unpublished) are listed, but never taken for a method's own
    number: tables and report pick the paper's or the scripts' row; EOE and GL-MCM rows go to
    those methods only."""
    from ants.report import _published_rows, paper_rows

    p = paper_results()
    for bench, datasets in PUBLISHED_DATASETS.items():
        for kind in ("mcm", "neglabel", "adaneg", "ants", "csp", "eoe", "glmcm"):
            for ds in datasets | {"far_average", "near_average"}:
                for variant in (None, "ada", "far_only", "near_only"):
                    row = published_for(p, bench, kind, ds, variant)
                    assert row is None or "ablation" not in row["method"]
                    assert row is None or (row["method"] == "EOE") == (kind == "eoe")
                    assert row is None or (row["method"] == "GL-MCM") == (kind == "glmcm")
                for row in paper_rows(bench, kind, ds):
                    assert "ablation" not in row["method"]
    assert [r["fpr95"] for r in paper_rows("openood_v15", "ants", "near_average")] == [60.98]
    assert published_for(p, "mos4", "glmcm", "far_average")["fpr95"] == 35.59
    assert published_for(p, "openood_v15", "eoe", "near_average")["fpr95"] == 82.93
    listed = {r["method"]: r for r in _published_rows() if r["benchmark"] == "openood_v15"}
    assert listed["ANTS ablation E (fixed weight)"]["auroc"] == "–"
    assert listed["ANTS ablation E (fixed weight)"]["convention"] == "OOD-positive"


def test_published_rows_follow_the_score_variant_and_the_split_average_names():
    p = paper_results()
    # far_only on mos4: the authors' script log row; ada: the paper / README row
    assert published_for(p, "mos4", "ants", "far_average", "far_only")["fpr95"] == 15.27
    assert published_for(p, "mos4", "ants", "far_average", "ada")["fpr95"] == 11.20
    assert published_for(p, "mos4", "ants", "sun", None)["auroc"] == 98.77
    assert published_for(p, "openood_v15", "adaneg", "near_average")["fpr95"] == 67.51
    assert published_for(p, "openood_v15", "ants", "far_average", "far_only")["fpr95"] == 15.38  # no script row
    assert published_for(p, "demo", "mcm", "demo_far") is None
    assert published_for(p, "mos4", "csp", "far_average")["fpr95"] == 17.51


def _view(ants_preset="authors_code"):
    return {"run": {"methods": ["neglabel", "ants_x"], "benchmarks": ["mos4"]},
            "methods": {"neglabel": {"label": "NegLabel", "method": "neglabel", "preset": None, "in_score": None},
                        "ants_x": {"label": "ANTS", "method": "ants", "preset": ants_preset,
                                   "in_score": {"far": "far_only", "near": "near_only"}}},
            "benchmarks": {"mos4": {"ood": {"far": ["inaturalist", "sun"]}}}}


def _metric_rows(values):
    rows = []
    for (method, ds), (auroc, fid, food) in values.items():
        rows.append({"benchmark": "mos4", "method": method, "label": method, "dataset": ds, "split": "far",
                     "auroc": auroc, "auroc_std": 0.5, "fpr95_id": fid, "fpr95_id_std": 1.0, "fpr95_ood": food,
                     "fpr95_ood_std": 2.0, "n_seeds": 3})
    return pd.DataFrame(rows)


def test_paper_table_puts_published_values_in_their_convention_and_the_difference():
    main = _metric_rows({("neglabel", "inaturalist"): (99.0, 2.5, 3.0), ("neglabel", "sun"): (95.0, 20.0, 21.0),
                         ("neglabel", "far_average"): (97.0, 11.25, 12.0),
                         ("ants_x", "inaturalist"): (99.5, 1.0, 0.9), ("ants_x", "sun"): (98.0, 6.0, 5.0),
                         ("ants_x", "far_average"): (98.75, 3.5, 2.95)})
    t = paper_table("mos4", main, _view())
    assert list(dict.fromkeys(t["dataset"])) == ["inaturalist", "sun", "far_average"]
    neg = t[(t["method"] == "neglabel") & (t["dataset"] == "inaturalist")].set_index("metric")
    # NegLabel's published FPR95 is ID-positive (1.91): it sits in fpr95_id only
    assert neg.at["fpr95_id", "published"] == 1.91
    assert neg.at["fpr95_id", "diff"] == pytest.approx(2.5 - 1.91)
    assert pd.isna(neg.at["fpr95_ood", "published"])
    assert neg.at["auroc", "published"] == 99.49
    assert neg.at["fpr95_id", "convention"] == "ID-positive"
    ants = t[(t["method"] == "ants_x") & (t["dataset"] == "far_average")].set_index("metric")
    # authors_code reports far_only on far sets: the authors' script average (15.27, OOD-positive)
    assert ants.at["fpr95_ood", "published"] == 15.27
    assert ants.at["fpr95_ood", "diff"] == pytest.approx(2.95 - 15.27)
    # the row is split-selected (far_only on far, near_only on near): its label says so
    row = "ANTS [preset authors_code; far_only on far / near_only on near]"
    assert set(t.loc[t["method"] == "ants_x", "row"]) == {row}
    assert set(t.loc[t["method"] == "ants_x", "split_scores"]) == {"far_only on far / near_only on near"}
    assert set(t.loc[t["method"] == "neglabel", "split_scores"]) == {""}
    md = markdown_table(t, "mos4")
    assert f"| {row} |" in md
    assert "2.95 ± 2.00 [15.27, -12.32]" in md
    note = (f"{row}: the score is chosen per OOD split (far_only on far / near_only on near), as the "
            "authors' released scripts report it; it equals the oracle row of the ANTS variants table.")
    assert md.rstrip().endswith(note)
    tex = latex_table(t)
    for piece in (r"\toprule", r"\midrule", r"\bottomrule", r"far\_average", r"2.95 $\pm$ 2.00 {[}15.27, -12.32{]}",
                  latex_escape(row) + " & ", latex_escape(note) + "}"):
        assert piece in tex
    # the CSV names it per line: the row label and the split_scores column
    back = pd.read_csv(io.StringIO(t.to_csv(index=False)), keep_default_na=False)
    assert set(back.loc[back["method"] == "ants_x", "row"]) == {row}


def test_a_row_with_one_score_on_every_split_is_not_labelled_split_selected():
    view = _view()
    view["methods"]["ants_x"]["in_score"] = {"far": "ada", "near": "ada"}
    main = _metric_rows({("ants_x", "inaturalist"): (99.5, 1.0, 0.9)})
    t = paper_table("mos4", main, view)
    assert set(t.loc[t["method"] == "ants_x", "row"]) == {"ANTS [preset authors_code]"}
    assert "chosen per OOD split" not in markdown_table(t) and "oracle" not in markdown_table(t)
    assert split_scores({"far": "far_only", "near": "near_only"}) == "far_only on far / near_only on near"
    assert split_scores({"far": "ada", "near": "ada"}) == split_scores(None) == ""


def test_variants_match_sklearn_and_the_main_score(run):
    """The variants' table is the workflow's {benchmark}_variants.csv (ants.stages.compute_metrics):
    its numbers agree with scikit-learn on the score files (to the CSV's 6 significant digits)."""
    files, view = run["score_files"], run["view"]
    var = variant_metrics(view, run["results"] / "metrics")
    assert set(var["variant"]) == {"ada", "far_only", "near_only", "oracle"}
    # AUROC of the ada variant on fx_far, by scikit-learn, mean over the seeds
    from ants.artifacts import read_scores

    aucs = []
    for seed in view["run"]["seeds"]:
        f, _ = read_scores(files[("fixture", "ants_code", "fx_far", seed)])
        aucs.append(roc_auc_score(~f["is_ood"].to_numpy(bool), f["v_ada"].to_numpy(np.float64)) * 100)
    got = var[(var["method"] == "ants_code") & (var["dataset"] == "fx_far") & (var["variant"] == "ada")]
    assert got["auroc"].iloc[0] == pytest.approx(np.mean(aucs), rel=1e-5)
    assert got["auroc_std"].iloc[0] == pytest.approx(np.std(aucs), rel=1e-5, abs=1e-9)
    # oracle = far_only on the far set, near_only on the near set
    def cell(ds, v, k="fpr95_ood"):
        return var[(var["method"] == "ants_paper") & (var["dataset"] == ds) & (var["variant"] == v)][k].iloc[0]

    assert cell("fx_far", "oracle") == cell("fx_far", "far_only")
    assert cell("fx_near", "oracle") == cell("fx_near", "near_only")
    # ants_code's main score IS far_only on far sets: the metrics CSV agrees with the variant
    main = read_metric_rows(run["results"] / "metrics", "fixture")
    m = main[(main["method"] == "ants_code") & (main["dataset"] == "fx_far")]
    far_only = var[(var["method"] == "ants_code") & (var["dataset"] == "fx_far") & (var["variant"] == "far_only")]
    assert m["auroc"].iloc[0] == pytest.approx(far_only["auroc"].iloc[0])
    assert m["fpr95_ood"].iloc[0] == pytest.approx(far_only["fpr95_ood"].iloc[0])


def test_variants_come_from_the_workflows_variants_csv_only(run, tmp_path):
    """Nothing is recomputed from score files: the table is the CSV, and a missing or damaged CSV
    is one line naming it and how to rebuild it."""
    from ants.artifacts import ArtifactError

    stats = {k: v for key in ("auroc", "fpr95_id", "fpr95_ood", "aupr_in", "aupr_out", "acc")
             for k, v in ((key, 12.5), (f"{key}_std", 0.0))}
    fake = pd.DataFrame([{"benchmark": "fixture", "method": "ants_code", "label": "x", "variant": "ada",
                          "dataset": "fx_far", "split": "far", **stats, "n_seeds": 1}])
    fake.to_csv(tmp_path / "fixture_variants.csv", index=False)
    var = variant_metrics(run["view"], tmp_path)
    assert var["auroc"].tolist() == [12.5]
    fake.drop(columns=["n_seeds"]).to_csv(tmp_path / "fixture_variants.csv", index=False)
    with pytest.raises(ArtifactError) as err:
        variant_metrics(run["view"], tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'fixture_variants.csv'} (ANTS variants' metrics table): no column 'n_seeds' (columns: "
        "benchmark, method, label, variant, dataset, split, auroc, auroc_std, fpr95_id, fpr95_id_std, fpr95_ood, "
        "fpr95_ood_std). Rebuild it: write it again with `ants compute-metrics`")


def test_write_tables_writes_csv_markdown_latex(run, tmp_path):
    written = write_tables(run["view"], metrics_dir=run["results"] / "metrics", out_dir=tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"{s}.{e}" for s in ("fixture", "fixture_ants_variants") for e in ("csv", "md", "tex"))
    long = pd.read_csv(tmp_path / "fixture_ants_variants.csv")
    assert set(long["variant"]) == {"ada", "far_only", "near_only", "oracle"}
    variants_md = (tmp_path / "fixture_ants_variants.md").read_text()
    assert "ANTS (paper) [preset paper] · oracle" in variants_md
    assert "oracle: far_only (S_ens) on far sets, near_only (S_vsnl) on near sets." in variants_md
    code = "ANTS (authors' code) [preset authors_code; far_only on far / near_only on near]"
    main_md = (tmp_path / "fixture.md").read_text()
    assert f"| {code} |" in main_md and f"{code}: the score is chosen per OOD split" in main_md
    assert "ANTS (paper) [preset paper] |" in main_md  # ada on both splits: nothing to say
    assert "Both read off every ROC point (each distinct threshold) (metrics.fpr95_roc: all)." in \
        (tmp_path / "fixture.md").read_text()
    openood = {**run["view"], "metrics": {**run["view"]["metrics"], "fpr95_roc": "openood"}}
    write_tables(openood, metrics_dir=run["results"] / "metrics", out_dir=tmp_path / "o")
    assert "roc_curve(drop_intermediate=True), as OpenOOD's evaluator (metrics.fpr95_roc: openood)" in \
        (tmp_path / "o" / "fixture.md").read_text()
    assert r"as OpenOOD's evaluator (metrics.fpr95\_roc: openood)" in (tmp_path / "o" / "fixture.tex").read_text()


def _tables_params():
    """The keys tables_view reads, as validated params always hold them."""
    return {"run": {"methods": ["a", "n", "d", "c"], "benchmarks": ["b"], "seeds": [0, 1]},
            "methods": {"a": {"method": "ants", "config": {}, "in_score": {"far": "ada", "near": "ada"}},
                        "n": {"method": "adaneg", "label": "AdaNeg", "config": {"preset": "authors_code"}},
                        "d": {"method": "adaneg", "config": {}},
                        "c": {"method": "neglabel", "label": "CSP"}},
            "benchmarks": {"b": {"ood": {"far": ["x"]}, "backbone": "t"}},
            "metrics": {"recall_level": 0.9, "fpr95_roc": "all"},
            "report": {"title": "T"}}


def test_tables_view_names_presets_and_defaults():
    v = tables_view(_tables_params())
    assert v["methods"]["a"]["preset"] == "authors_code"  # ANTS's default preset
    assert v["methods"]["n"]["preset"] == "authors_code"
    assert v["methods"]["d"]["preset"] == "paper"  # AdaNeg's default preset (adaneg.DEFAULT_PRESET)
    assert v["methods"]["d"]["label"] == "d"  # label is optional: the method's name
    assert v["methods"]["c"]["method"] == "csp"
    assert v["methods"]["a"]["in_score"] == {"far": "ada", "near": "ada"}
    assert v["run"]["seeds"] == [0, 1]
    assert v["metrics"] == {"recall_level": 0.9, "fpr95_roc": "all"} and v["report"] == {"title": "T"}


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        (lambda p: p["run"].pop("seeds"), "seeds"),
        (lambda p: p.pop("metrics"), "metrics"),
        (lambda p: p.pop("report"), "report"),
        (lambda p: p["methods"]["n"].pop("config"), "config"),
        (lambda p: p["methods"]["a"].pop("in_score"), "in_score"),
    ],
)
def test_tables_view_has_no_defaults_for_required_keys(drop, missing):
    """A key the schema requires is read directly: a params dict without it fails loudly."""
    params = _tables_params()
    drop(params)
    with pytest.raises(KeyError, match=missing):
        tables_view(params)
