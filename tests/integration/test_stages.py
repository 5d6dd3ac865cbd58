"""The workflow's stage functions (ants.stages) and the `ants` command (ants.cli), on small files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _mllm import FakeMLLM
from PIL import Image

from ants import stages
from ants._io import read_table, write_table
from ants.answers_log import read_answer_log
from ants.artifacts import ARTIFACTS, read_id_text, read_manifest, write_manifest
from ants.cli import main
from ants.datasets.manifests import build_manifest
from ants.embeddings import read_embeddings, write_embeddings
from ants.views import parse_scoring_name, scoring_name

TINY = {"model": "tiny", "seed": 0}
ENCODING = {"device": "cpu", "precision": "fp32", "image_batch_size": 4, "text_batch_size": 64, "num_workers": 0}


def unit_rows(rng, n, d=64):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------
# bad images: fail naming them, or skip and record them


@pytest.fixture
def manifest_with_a_bad_image(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    entries = [("ok0.png", 0), ("broken.png", 1), ("ok1.png", 1), ("ok2.png", 0)]
    frame = build_manifest("toy", entries, tmp_path, progress=False)
    return write_manifest(tmp_path / "toy.parquet", frame, {"dataset": "toy"}), tmp_path


def test_bad_image_fails_the_embedding_job_naming_it(manifest_with_a_bad_image, tmp_path):
    manifest, _ = manifest_with_a_bad_image
    with pytest.raises(stages.StageError, match=r"dataset 'toy': 1 image\(s\) cannot be decoded: .*broken\.png "
                                                r"\(UnidentifiedImageError.*set data\.on_bad_image: skip"):
        stages.embed_images(manifest, TINY, ENCODING, tmp_path / "e.parquet", on_bad_image="fail", progress=False)
    assert not (tmp_path / "e.parquet").exists()


def test_bad_image_is_skipped_and_recorded(manifest_with_a_bad_image, tmp_path, tiny_clip):
    manifest, root = manifest_with_a_bad_image
    meta = stages.embed_images(manifest, TINY, ENCODING, tmp_path / "e.parquet", on_bad_image="skip", progress=False)
    feats, rows, stored = read_embeddings(tmp_path / "e.parquet")
    assert rows["id"].tolist() == ["toy/ok0.png", "toy/ok1.png", "toy/ok2.png"]
    assert rows["label"].tolist() == [0, 1, 0]
    assert [s["id"] for s in stored["skipped"]] == ["toy/broken.png"] == [s["id"] for s in meta["skipped"]]
    direct = tiny_clip.encode_images([root / f"ok{i}.png" for i in range(3)], progress=False).features
    np.testing.assert_allclose(feats, direct, atol=1e-6)


def test_image_broken_after_the_manifest_fails_naming_it(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    frame = build_manifest("toy", [("a.png", 0)], tmp_path, check_images=False, progress=False)
    manifest = write_manifest(tmp_path / "m.parquet", frame, {"dataset": "toy"})
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.raises(stages.StageError, match=r"cannot read image .*a\.png.*data\.on_bad_image: skip"):
        stages.embed_images(manifest, TINY, ENCODING, tmp_path / "e.parquet", progress=False)


def test_data_max_pixels_reaches_the_manifest_and_the_encoder(tmp_path, capsys):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, side in [("a.png", 8), ("big.png", 16), ("c.png", 8)]:
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(root / name)
    ds = json.dumps({"source": "local", "root": str(root), "layout": "flat"})
    limit = "16 x 16 = 256 pixels exceeds the limit of 100 pixels (max_pixels)"

    def manifest(name, *flags):
        out = tmp_path / f"{name}.parquet"
        assert main(["-q", "manifest", "--dataset", "toy", "--dataset-json", ds, "--out", str(out), *flags]) == 0
        return out, read_manifest(out)[0]

    _, default = manifest("m0")
    assert default["readable"].all()
    _, limited = manifest("m1", "--max-pixels", "100")
    assert limited["readable"].tolist() == [True, False, True]
    assert limited["error"][1].startswith("image of " + limit)
    unchecked, frame = manifest("m2", "--no-check-images", "--max-pixels", "100")
    assert frame["readable"].all()  # not decoded: the encoder applies the limit

    def embed(*flags):
        out = tmp_path / "e.parquet"
        out.unlink(missing_ok=True)
        argv = ["-q", "embed-images", "--manifest", str(unchecked), "--backbone-json", json.dumps(TINY),
                "--encoding-json", json.dumps(ENCODING), "--out", str(out), *flags]
        return main(argv), out

    capsys.readouterr()
    code, out = embed("--max-pixels", "100")
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert f"cannot read image {root / 'big.png'}: image of {limit}" in err and err.count("\n") == 1
    code, out = embed("--max-pixels", "100", "--on-bad-image", "skip")
    _, rows, meta = read_embeddings(out)
    assert code == 0 and rows["id"].tolist() == ["toy/a.png", "toy/c.png"]
    assert [s["id"] for s in meta["skipped"]] == ["toy/big.png"] and limit in meta["skipped"][0]["error"]
    code, out = embed()
    assert code == 0 and len(read_embeddings(out)[1]) == 3  # the default limit (10^8) lets all in
    with pytest.raises(SystemExit) as exit_:
        embed("--max-pixels", "0")
    assert exit_.value.code == 2
    assert "argument --max-pixels: expected a whole number >= 1, got '0'" in capsys.readouterr().err


def test_params_data_max_pixels_is_the_module_default_and_validated(tmp_path, capsys):
    import yaml

    from ants.images import DEFAULT_MAX_PIXELS

    params_file = Path(__file__).resolve().parents[2] / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    assert params["data"]["max_pixels"] == DEFAULT_MAX_PIXELS  # the demo decodes as before
    for bad, why in [(0, "0 is out of range; expected a value >= 1"),
                     ("many", "'many' has the wrong type; expected an integer")]:
        over = tmp_path / "over.yaml"
        over.write_text(yaml.safe_dump({"data": {"max_pixels": bad}}))
        assert main(["config", "check", str(params_file), str(over)]) == 2
        err = capsys.readouterr().err
        assert f"data.max_pixels: {why}" in err, err


# ------------------------------------------------------------------------------------------
# streams and static scores


@pytest.fixture
def toy_benchmark(tmp_path):
    """Embedding files of a 12-image ID set (3 classes) and an 8-image OOD set, text files."""
    rng = np.random.default_rng(1)
    files = {}
    for name, n, labels in (("id", 12, np.arange(12) % 3), ("ood", 8, np.full(8, -1))):
        rows = pd.DataFrame({"id": [f"{name}/{i}" for i in range(n)], "path": [f"/img/{name}/{i}.png" for i in range(n)],
                             "label": labels.astype(np.int64), "sha256": [f"{name}{i:062d}" for i in range(n)]})
        files[name] = write_embeddings(tmp_path / f"{name}.parquet", unit_rows(rng, n), rows,
                                       {"dataset": name, "encoder": {"model": "toy-clip", "revision": "r1"}})
    text_rows = pd.DataFrame({"class_index": np.tile(np.arange(3), 2), "class_name": ["cat", "dog", "fox"] * 2,
                              "prompt": ["nice"] * 3 + ["photo"] * 3, "template": [""] * 6})
    files["text"] = write_embeddings(tmp_path / "text.parquet", unit_rows(rng, 6), text_rows, {})
    from ants.mining import MinedNegatives

    neg = MinedNegatives(pd.DataFrame({"label": [f"n{i}" for i in range(40)], "kind": "noun",
                                       "stat": np.zeros(40), "max_id_cos": np.zeros(40)}), unit_rows(rng, 40), {})
    files["negatives"] = neg.save(tmp_path / "neg.parquet")
    files["stream"] = tmp_path / "stream.parquet"
    stages.stream(files["id"], files["ood"], seed=3, batch_size=4, out=files["stream"])
    for name in ("id", "ood"):
        for scoring in (NEGLABEL_SCORING, ANTS_SCORING):
            files[f"static_{name}_{scoring_name(scoring)}"] = tmp_path / f"static_{name}_{scoring_name(scoring)}.parquet"
            stages.static(files[name], files["text"], files["negatives"], scoring=scoring,
                          out=files[f"static_{name}_{scoring_name(scoring)}"])
    return files


NEGLABEL_SCORING = {"tau": 0.01, "n_groups": 4, "seed": 0}
ANTS_SCORING = {"tau": 0.01, "group_size": 10, "seed": 0}


def statics(files, scoring):
    name = scoring_name(scoring)
    return {"static_id": files[f"static_id_{name}"], "static_ood": files[f"static_ood_{name}"]}


def features_in_stream_order(files):
    stream, _ = read_table(files["stream"])
    fid, _, _ = read_embeddings(files["id"])
    food, _, _ = read_embeddings(files["ood"])
    return np.stack([food[s] if o else fid[s] for o, s in zip(stream["is_ood"], stream["source"], strict=True)])


def test_stream_file_follows_make_stream(toy_benchmark):
    from ants.streams import make_stream

    frame, meta = read_table(toy_benchmark["stream"])
    s = make_stream(12, 8, seed=3, batch_size=4)
    assert meta["n_id"] == 12 and meta["n_ood"] == 8 and meta["ood_dataset"] == "ood"
    expected_ids = [f"ood/{i}" for i in range(8)] + [f"id/{i}" for i in range(12)]
    assert frame["id"].tolist() == [expected_ids[i] for i in s.order]
    assert frame["batch"].tolist() == s.batch_of().tolist()
    assert (frame["label"][frame["is_ood"]] == -1).all()
    assert frame.loc[~frame["is_ood"], "label"].tolist() == [int(i.split("/")[1]) % 3
                                                             for i in frame.loc[~frame["is_ood"], "id"]]


def test_static_scores_are_computed_on_features_in_stream_order(toy_benchmark, tmp_path):
    from ants.scores import mcm

    f = toy_benchmark
    method = {"method": "mcm", "temperature": 0.5, "batch_size": 4}
    out = stages.score(f["stream"], method=method, out=tmp_path / "s.parquet", stream_name="toy/mcm/ood/seed3",
                       id_embeddings=f["id"], ood_embeddings=f["ood"], id_text=f["text"])
    in_order = features_in_stream_order(f)
    idt, names = read_id_text(f["text"], "photo")
    np.testing.assert_array_equal(out["score"].to_numpy(), mcm(in_order, idt, temperature=0.5))
    assert names == ["cat", "dog", "fox"]
    written, meta = read_table(tmp_path / "s.parquet")
    assert written.equals(out) and meta["stream_id"] == "toy/mcm/ood/seed3"


def test_static_pass_once_per_dataset_gives_neglabel_in_stream_order(toy_benchmark, tmp_path):
    from ants.scores import negative_label, predict

    f = toy_benchmark
    method = {"method": "neglabel", "n_groups": 4, "tau": 0.01, "batch_size": 4}
    out = stages.score(f["stream"], method=method, out=tmp_path / "s.parquet", stream_name="toy/nl/ood/seed3",
                       **statics(f, NEGLABEL_SCORING))
    feats = features_in_stream_order(f)
    idt, _ = read_id_text(f["text"], "nice")
    neg = stages._negative_features(f["negatives"])
    np.testing.assert_allclose(out["score"].to_numpy(), negative_label(feats, idt, neg, n_groups=4), rtol=1e-6)
    np.testing.assert_array_equal(out["pred"].to_numpy(), predict(feats, idt))
    static_id, meta = read_table(statics(f, NEGLABEL_SCORING)["static_id"])
    assert list(static_id.columns) == list(ARTIFACTS["static"].column_names) and meta["scoring"] == NEGLABEL_SCORING


def test_scoring_names_round_trip():
    for scoring in (NEGLABEL_SCORING, ANTS_SCORING, {"tau": 0.005, "group_size": 1000, "seed": 3}):
        assert parse_scoring_name(scoring_name(scoring)) == scoring
    with pytest.raises(ValueError, match="not a static-pass name"):
        parse_scoring_name("size100")


# ------------------------------------------------------------------------------------------
# plan -> answer -> replay through the files equals an online ANTS run


ANTS_CFG = {"preset": "authors_code", "initial_threshold": 0.99, "ens_trigger_size": 3, "ens_max_updates": 2,
            "vsnl_start": 1, "vsnl_interval": 2, "near_top_k": 2, "group_size": 10}


def test_plan_answer_replay_through_files_equals_an_online_run(toy_benchmark, tmp_path, tiny_clip):
    from ants.methods.ants_tta import run_ants
    from ants.replay import read_plan

    f = toy_benchmark
    plan = {"config": ANTS_CFG, "batch_size": 4}
    planned = stages.plan(f["stream"], f["id"], f["ood"], f["text"], plan=plan, stream_name="toy/ants/ood/seed3",
                          out=tmp_path / "plan.parquet", **statics(f, ANTS_SCORING))
    assert set(planned["kind"]) == {"ens", "vsnl"}
    assert planned["image"][planned["kind"] == "vsnl"].isna().all()
    name, queries = read_plan(tmp_path / "plan.parquet")
    assert name == "toy/ants/ood/seed3" and len(queries) == len(planned)

    fake = FakeMLLM()
    # ants.views.answer_config's shape; with an answerer given, mllm and parser are its own
    answering = {"answering": {"max_failed_fraction": 0.0, "max_negative_chars": 200}}
    with pytest.raises(KeyError, match="answering"):
        stages.answer(tmp_path / "plan.parquet", {}, cache=tmp_path / "c.sqlite",
                      out=tmp_path / "answers.parquet", progress=False, answerer=fake)
    assert fake.calls == 0 and not (tmp_path / "answers.parquet").exists()
    stats = stages.answer(tmp_path / "plan.parquet", answering, cache=tmp_path / "c.sqlite",
                          out=tmp_path / "answers.parquet", progress=False, answerer=fake)
    assert fake.calls == 1 and isinstance(stats, dict)
    log = read_answer_log(tmp_path / "answers.parquet")
    assert len(log) == len(planned) and (log["stream_id"] == "toy/ants/ood/seed3").all()

    method = {"method": "ants", "config": ANTS_CFG, "in_score": "ada", "batch_size": 4}
    store = tmp_path / "text.sqlite"
    meta = stages.encode_negatives(tmp_path / "answers.parquet", method=method, backbone=TINY, encoding=ENCODING,
                                   store=store, out=tmp_path / "negtext.parquet")
    assert meta["n_texts"] > 0 and meta["n_encoded_now"] == meta["n_texts"]
    again = stages.encode_negatives(tmp_path / "answers.parquet", method=method, backbone=TINY, encoding=ENCODING,
                                    store=store, out=tmp_path / "negtext2.parquet")
    assert again["n_encoded_now"] == 0  # every text comes from the store: CLIP is not even loaded
    assert (tmp_path / "negtext.parquet").read_bytes() == (tmp_path / "negtext2.parquet").read_bytes()

    replayed = stages.score(f["stream"], method=method, out=tmp_path / "s.parquet", stream_name="toy/ants/ood/seed3",
                            id_embeddings=f["id"], ood_embeddings=f["ood"], id_text=f["text"],
                            answers=tmp_path / "answers.parquet", negative_text=tmp_path / "negtext.parquet",
                            **statics(f, ANTS_SCORING))

    stream, _ = read_table(f["stream"])
    feats = features_in_stream_order(f)
    idt, names = read_id_text(f["text"], "nice")
    online = run_ants(image_features=feats, items=stream["path"].tolist(), id_text_features=idt,
                      negative_features=stages._negative_features(f["negatives"]), class_names=names,
                      encode_text=lambda t, tpl: tiny_clip.encode_texts(list(t), template=tpl),
                      answerer=FakeMLLM(), config={**ANTS_CFG, "in_score": "ada"}, batch_size=4,
                      item_sha256=stream["sha256"].tolist())
    assert online.trace.ens_update.any() and online.trace.vsnl_update.any()
    np.testing.assert_allclose(replayed["score"].to_numpy(), online.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(replayed["v_near_only"].to_numpy(), online.variants["near_only"], rtol=1e-5,
                               atol=1e-6)
    _, meta = read_table(tmp_path / "s.parquet")
    assert meta["trace"]["lambda"] == pytest.approx(online.trace.lam.tolist())
    assert meta["trace"]["ens_size"] == online.trace.ens_size.tolist()
    # the models behind the scores: the MLLM of every answer, CLIP's through the stream
    log = pd.read_parquet(tmp_path / "answers.parquet")
    assert meta["mllm"] == [dict(zip(("backend", "model_id", "revision"), k, strict=True))
                            for k in sorted(set(zip(log["backend"], log["model_id"], log["revision"], strict=True)))]
    from ants.embeddings import read_embeddings_metadata

    encoder = read_embeddings_metadata(f["id"])["encoder"]
    assert meta["stream"]["encoder"] == encoder and encoder["model"]


# ------------------------------------------------------------------------------------------
# metrics: mean and std over seeds, split averages


def _score_file(path, id_scores, ood_scores, pred=None, label=None):
    n_id, n_ood = len(id_scores), len(ood_scores)
    frame = pd.DataFrame({
        "position": np.arange(n_id + n_ood), "id": [f"i{k}" for k in range(n_id + n_ood)],
        "batch": np.ones(n_id + n_ood, np.int64), "is_ood": [False] * n_id + [True] * n_ood,
        "label": np.r_[label if label is not None else np.zeros(n_id, np.int64), -np.ones(n_ood, np.int64)],
        "pred": np.r_[pred if pred is not None else np.zeros(n_id, np.int64), np.zeros(n_ood, np.int64)],
        "score": np.r_[id_scores, ood_scores].astype(np.float32),
    })
    return write_table(path, frame, {})


def test_metrics_mean_std_and_split_average_match_sklearn(tmp_path):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    files, aurocs = {}, {}
    for ood in ("farA", "farB"):
        for seed in (0, 1):
            ids, oods = rng.normal(1, 1, 30), rng.normal(0, 1, 20)
            files[("b", "m", ood, seed)] = _score_file(tmp_path / f"{ood}{seed}.parquet", ids, oods,
                                                       pred=np.arange(30) % 2, label=np.zeros(30, np.int64))
            y = np.r_[np.ones(30), np.zeros(20)]
            aurocs[(ood, seed)] = roc_auc_score(y, np.r_[ids, oods].astype(np.float32)) * 100
    view = {"run": {"methods": ["m"]}, "methods": {"m": {"label": "M", "method": "mcm"}},
            "benchmarks": {"b": {"ood": {"far": ["farA", "farB"]}}}, "metrics": {"recall_level": 0.95, "fpr95_roc": "all"}}
    headline = stages.compute_metrics(files, params=view, out_json=tmp_path / "m.json", out_dir=tmp_path / "csv")
    csv = pd.read_csv(tmp_path / "csv" / "b.csv").set_index("dataset")
    assert csv.index.tolist() == ["farA", "farB", "far_average"]
    assert csv["label"].tolist() == ["M"] * 3

    def close(x):  # the CSV holds 6 significant digits
        return pytest.approx(x, rel=1e-5)

    a = csv.loc["farA"]
    assert a["auroc"] == close(np.mean([aurocs[("farA", 0)], aurocs[("farA", 1)]]))
    assert a["auroc_std"] == close(np.std([aurocs[("farA", 0)], aurocs[("farA", 1)]]))
    assert a["acc"] == pytest.approx(50.0) and a["acc_std"] == 0 and a["n_seeds"] == 2
    avg = csv.loc["far_average"]
    per_seed = [(aurocs[("farA", s)] + aurocs[("farB", s)]) / 2 for s in (0, 1)]
    assert avg["auroc"] == close(np.mean(per_seed))
    assert avg["auroc_std"] == close(np.std(per_seed))
    # the DVC metrics file: the split average's AUROC and FPR95 (OOD-positive) only, as the
    # tables read them from the CSV
    assert headline == {"b": {"m": {"far": {"auroc": avg["auroc"], "fpr95": avg["fpr95_ood"]}}}}
    assert headline["b"]["m"]["far"]["auroc"] == close(np.mean(per_seed))
    assert json.loads((tmp_path / "m.json").read_text()) == headline


def test_the_dvc_metrics_file_holds_the_tables_split_averages_only(tmp_path):
    """results/metrics.json: per benchmark, method and split, the average AUROC and FPR95
    (OOD-positive) and nothing else; the same numbers as the paper-shaped tables' averages,
    and a split with one OOD set keeps its average but no per-dataset entry."""
    from ants.artifacts import read_metrics_json
    from ants.tables import paper_table, read_metric_rows

    rng = np.random.default_rng(7)
    ood = {"far": ["farA", "farB"], "near": ["nearA"]}
    files = {}
    for method in ("m", "n"):
        for name in [*ood["far"], *ood["near"]]:
            for seed in (0, 1, 2):
                p = tmp_path / f"{method}{name}{seed}.parquet"
                files[("b", method, name, seed)] = _score_file(p, rng.normal(1, 1, 40), rng.normal(0, 1, 25))
    view = {"run": {"methods": ["m", "n"]},
            "methods": {"m": {"label": "M", "method": "mcm", "preset": None, "in_score": None},
                        "n": {"label": "N", "method": "neglabel", "preset": None, "in_score": None}},
            "benchmarks": {"b": {"ood": ood}}, "metrics": {"recall_level": 0.95, "fpr95_roc": "all"}}
    headline = stages.compute_metrics(files, params=view, out_json=tmp_path / "m.json", out_dir=tmp_path / "csv")
    stored = read_metrics_json(tmp_path / "m.json")
    assert stored == headline
    assert {b: {m: {s: sorted(v) for s, v in splits.items()} for m, splits in ms.items()}
            for b, ms in stored.items()} == {
        "b": {m: {"far": ["auroc", "fpr95"], "near": ["auroc", "fpr95"]} for m in ("m", "n")}}
    long = paper_table("b", read_metric_rows(tmp_path / "csv", "b"), view, paper=pd.DataFrame(
        columns=["method", "benchmark", "dataset", "fpr95", "auroc", "fpr95_convention", "source"]))
    shown = {(r.method, r.dataset, r.metric): r.mean for r in long.itertuples()}
    for method in ("m", "n"):
        far, near = stored["b"][method]["far"], stored["b"][method]["near"]
        assert far == {"auroc": shown[(method, "far_average", "auroc")],
                       "fpr95": shown[(method, "far_average", "fpr95_ood")]}
        # one near set: the table shows no average column, the set's column is its average
        assert near == {"auroc": shown[(method, "nearA", "auroc")],
                        "fpr95": shown[(method, "nearA", "fpr95_ood")]}
        assert (method, "near_average", "auroc") not in shown
        # and the average is of the sets, not a copy of one of them
        assert far["auroc"] == pytest.approx(
            (shown[(method, "farA", "auroc")] + shown[(method, "farB", "auroc")]) / 2, rel=1e-5)
        assert far["auroc"] not in (shown[(method, "farA", "auroc")], shown[(method, "farB", "auroc")])


# ------------------------------------------------------------------------------------------
# the `ants` command


def test_stage_command_bad_json_and_config_check(tmp_path, capsys):
    assert main(["-q", "demo-data", "--demo-json", "{not json", "--out", str(tmp_path)]) == 2
    assert "--demo-json: not valid JSON" in capsys.readouterr().err
    bad = tmp_path / "p.yaml"
    bad.write_text("run: {}\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "run.benchmarks: required key is missing" in err and "stream: required key is missing" in err


# ------------------------------------------------------------------------------------------
# the report's published numbers


def test_paper_rows_map_our_names_to_the_published_table():
    from ants.report import paper_rows

    (row,) = paper_rows("mos4", "neglabel", "far_average")
    assert (row["dataset"], row["fpr95"], row["auroc"], row["fpr95_convention"]) == ("average", 25.40, 94.21, "id")
    (row,) = paper_rows("openood_v15", "ants", "near_average")
    assert (row["fpr95"], row["auroc"]) == (60.98, 82.15)
    assert [r["source"].split()[0] for r in paper_rows("mos4", "ants", "inaturalist")] == ["ANTS", "ANTS"]
    assert paper_rows("demo", "mcm", "demo_far") == []
