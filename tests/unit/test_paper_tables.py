"""The ablation table (paper Table 4) and the cost table (Tables 5-6 style): values from their
inputs, published numbers beside, every format written (ants.paper_tables)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ants.embeddings import write_embeddings
from ants.paper_tables import (
    ablation_table,
    cost_table,
    describe_point,
    read_benchmark_seconds,
    write_ablation_tables,
    write_cost_tables,
)

VIEW = {
    "benchmarks": {
        "openood_v15": {
            "ood": {"near": ["ssb_hard", "ninco"], "far": ["openood_inaturalist", "textures"]}
        }
    },
    "metrics": {"fpr95_roc": "all"},
}
ROWS = [
    {
        "label": "A",
        "value": {"config": {"nim": False}, "in_score": {"far": "far_only", "near": "far_only"}},
        "method": "ants_paper",
    },
    {"label": "F", "value": {"in_score": {"far": "ada", "near": "ada"}}, "method": "ants_paper"},
]


def _sweep():
    rows = []
    for label, base in (("A", 40.0), ("F", 20.0)):
        for ds, split, off in (
            ("ssb_hard", "near", 1),
            ("ninco", "near", 3),
            ("textures", "far", 0),
            ("openood_inaturalist", "far", 0),
            ("near_average", "near", 2),
            ("far_average", "far", 0),
        ):
            rows.append(
                {
                    "sweep": "ablation",
                    "setting": "methods.{method}",
                    "value": label,
                    "is_default": False,
                    "benchmark": "openood_v15",
                    "method": "ants_paper",
                    "label": "ANTS",
                    "dataset": ds,
                    "split": split,
                    "auroc": 90.0 - off,
                    "auroc_std": 0.1,
                    "fpr95_id": base + off,
                    "fpr95_id_std": 1.0,
                    "fpr95_ood": base + 10 + off,
                    "fpr95_ood_std": 2.0,
                    "n_seeds": 1,
                }
            )
    return pd.DataFrame(rows)


def test_describe_point_says_what_a_row_changes():
    assert describe_point(ROWS[0]["value"]) == "config.nim=false; in_score=far_only/far_only"
    assert describe_point({}) == "(as the base method)"
    assert describe_point(0.5) == "0.5"


def test_ablation_rows_carry_their_published_row(tmp_path):
    long = ablation_table(_sweep(), VIEW, ROWS)
    assert list(dict.fromkeys(long["row"])) == [
        "A [config.nim=false; in_score=far_only/far_only]",
        "F [in_score=ada/ada]",
    ]
    a = long[(long["label"] == "A") & (long["dataset"] == "near_average")].set_index("metric")
    assert a.at["fpr95_ood", "mean"] == 52.0
    # paper Table 4 row A: near 74.48 (OOD-positive, OpenOOD), beside the OOD-positive column only
    assert a.at["fpr95_ood", "published"] == 74.48 and a.at["fpr95_ood", "diff"] == pytest.approx(
        52 - 74.48
    )
    assert pd.isna(a.at["fpr95_id", "published"]) and pd.isna(a.at["auroc", "published"])
    f = long[(long["label"] == "F") & (long["dataset"] == "far_average")].set_index("metric")
    assert f.at["fpr95_ood", "published"] == 15.38
    assert "ANTS ablation F" in f.at["fpr95_ood", "published_method"]
    # per-set columns have no published value (the paper gives split averages)
    assert long[long["dataset"] == "ninco"]["published"].isna().all()
    sweep = tmp_path / "ablation.csv"
    _sweep().to_csv(sweep, index=False)
    paths = write_ablation_tables(sweep, VIEW, ROWS, tmp_path / "out")
    assert [p.name for p in paths] == ["ablation.csv", "ablation.md", "ablation.tex"]
    md = (tmp_path / "out" / "ablation.md").read_text()
    line = next(
        x
        for x in md.splitlines()
        if x.startswith("| A [config.nim=false; in_score=far_only/far_only] |")
    )
    assert line.endswith(
        "| 52.00 ± 2.00 [74.48, -22.48] | 88.00 ± 0.10 |"
    )  # near average, last columns
    tex = (tmp_path / "out" / "ablation.tex").read_text()
    assert r"\toprule" in tex and "74.48" in tex
    from ants.stages import StageError

    with pytest.raises(StageError, match="ablation sweep's metrics .* do not exist"):
        write_ablation_tables(tmp_path / "none.csv", VIEW, ROWS, tmp_path / "out")


def _tsv(path, seconds, rss=100.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"s\th:m:s\tmax_rss\tmax_vms\tcpu_time\n{seconds}\t0:00:01\t{rss}\t1.0\t{seconds}\n"
    )
    return str(path)


def _embeddings(path, n):
    rows = pd.DataFrame({"id": [f"x{i}" for i in range(n)], "path": "p", "label": 0, "sha256": "s"})
    return str(write_embeddings(path, np.eye(n, 4, dtype=np.float32), rows, {"n_images": n}))


def _scores(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"score": np.zeros(n, np.float32)}).to_parquet(path)
    return str(path)


def test_cost_per_image_and_mllm_calls_from_the_jobs_files(tmp_path):
    from ants.answers_log import answer_records, write_answer_log
    from ants.mllm.base import Answer, Query

    t = tmp_path
    emb = [
        _embeddings(t / "id.parquet", 30),
        _embeddings(t / "ood.parquet", 10),
    ]  # 40 images encoded
    scores = [
        _scores(t / "s" / f"{i}.parquet", 40) for i in range(2)
    ]  # 2 streams of 40: 80 stream images
    queries = [Query("vsnl", "cat"), Query("vsnl", "cat"), Query("ens", "dog", image="a.png")]
    answers = [
        Answer(
            raw_text="x",
            negatives=("y",),
            cache_key=k,
            extra={"from_cache": c, "answered_at": "t", "seconds": 0.1},
        )
        for k, c in (("k1", False), ("k1", False), ("k2", True))
    ]
    log = t / "answers.parquet"
    write_answer_log(
        log, answer_records(queries, answers, stream_id="s"), timings=t / "answers.timing.json"
    )
    view = {
        "rows": [
            {
                "benchmark": "b",
                "method": "ants_x",
                "label": "ANTS",
                "embeddings": emb,
                "scores": scores,
                "parts": {
                    "embed": [_tsv(t / "e1.tsv", 2.0), _tsv(t / "e2.tsv", 2.0)],
                    "static": [_tsv(t / "st.tsv", 0.4)],
                    "answer": [_tsv(t / "a1.tsv", 8.0, 900.0), _tsv(t / "a2.tsv", 8.0)],
                    "score": [_tsv(t / "sc1.tsv", 1.0), _tsv(t / "sc2.tsv", 1.0)],
                },
                "answers": [[str(log), str(t / "answers.timing.json")]],
            },
            {
                "benchmark": "b",
                "method": "mcm",
                "label": "MCM",
                "embeddings": emb,
                "scores": scores,
                "parts": {
                    "embed": [_tsv(t / "e1.tsv", 2.0), str(t / "missing.tsv")],
                    "score": [_tsv(t / "sc3.tsv", 1.6), _tsv(t / "sc4.tsv", 1.6)],
                },
                "answers": [],
            },
        ]
    }
    frame = cost_table(view).set_index("method")
    ants = frame.loc["ants_x"]
    assert ants["images"] == 40 and ants["stream_images"] == 80
    assert ants["embed_ms"] == pytest.approx(1000 * 4.0 / 40)  # once per image
    assert ants["static_ms"] == pytest.approx(1000 * 0.4 / 40)
    assert ants["answer_ms"] == pytest.approx(1000 * 16.0 / 80)  # per stream image
    assert ants["score_ms"] == pytest.approx(1000 * 2.0 / 80)
    assert ants["total_ms"] == pytest.approx(100 + 10 + 200 + 25)
    assert ants["peak_rss_mb"] == 900.0
    # 3 queries (2 distinct), 1 generated by this run; per 1,000 stream images
    assert (ants["mllm_queries"], ants["mllm_distinct"], ants["mllm_generated"]) == (3, 2, 1)
    assert ants["queries_per_1000"] == pytest.approx(3 / 80 * 1000)
    assert ants["generated_per_1000"] == pytest.approx(1 / 80 * 1000)
    mcm = frame.loc["mcm"]
    assert mcm["not_measured"] == "embed" and np.isnan(mcm["total_ms"])
    assert mcm["score_ms"] == pytest.approx(40.0) and mcm["mllm_queries"] == 0
    assert read_benchmark_seconds(t / "missing.tsv") is None
    paths = write_cost_tables(view, t / "reports")
    assert [p.name for p in paths] == ["cost.csv", "cost.md", "cost.tex"]
    md = (t / "reports" / "cost.md").read_text()
    assert "| b | MCM | 80 | n/m |" in md and "| b | ANTS | 80 | 100.00 |" in md
    assert (
        "static pass ms/img" in md and "local features" not in md
    )  # parts no row has are left out
    back = pd.read_csv(t / "reports" / "cost.csv")
    assert back.loc[0, "total_ms"] == pytest.approx(335.0)
    assert json.loads(json.dumps(list(back.columns)))[:2] == ["benchmark", "method"]
