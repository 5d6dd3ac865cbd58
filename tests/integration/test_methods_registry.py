"""The method registry (ants.methods.METHODS): data that names each detector's functions, and a
smoke test of every registered method, run directly (run_method) and through the workflow's
score adapter (ants.stages.score over files), on a tiny world as confident as real CLIP."""

from __future__ import annotations

import hashlib
import importlib
import inspect

import numpy as np
import pandas as pd
import pytest
from _mllm import FakeMLLM  # ENS: one sentence per image; VSNL: five made-up cousins

from ants import stages
from ants._io import read_table, write_table
from ants.config import load_schema
from ants.embeddings import read_embeddings, write_embeddings
from ants.methods import METHOD_NAMES, METHODS, method_spec, run_method

D, K, M, B = 32, 4, 40, 6
CLASSES = ["heron", "otter", "maple", "kettle"]


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def text_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return unit(np.random.default_rng(seed).standard_normal(D))


def encode_text(texts, template):
    """A deterministic stand-in for CLIP's text encoder (the same vector for the same prompt)."""
    return np.stack([text_vector(template.format(t)) for t in texts]).reshape(len(texts), D)


def near(rng, centres, cos):
    """Unit rows whose cosine with their centre row is ``cos`` (CLIP-like 0.35-0.6: logits of
    35-60 after the 0.01 temperature)."""
    noise = rng.standard_normal(centres.shape)
    noise -= (noise * centres).sum(1, keepdims=True) * centres  # orthogonal to the centre
    return unit(cos[:, None] * centres + np.sqrt(1 - cos[:, None] ** 2) * unit(noise))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Embedding, text, negatives and stream files of 24 ID images (4 classes) and 18 OOD
    images lying near the mined negatives, and the same features in stream order."""
    from ants.mining import MinedNegatives

    tmp = tmp_path_factory.mktemp("registry")
    rng = np.random.default_rng(7)
    nice = unit(rng.standard_normal((K, D)))
    neg = unit(rng.standard_normal((M, D)))
    labels = np.arange(24) % K
    feats = {
        "id": near(rng, nice[labels], rng.uniform(0.35, 0.6, 24)),
        "ood": near(rng, neg[rng.integers(0, M, 18)], rng.uniform(0.35, 0.6, 18)),
    }
    files = {}
    for name, lab in (("id", labels), ("ood", np.full(18, -1))):
        n = len(lab)
        rows = pd.DataFrame(
            {
                "id": [f"{name}/{i}" for i in range(n)],
                "path": [f"/img/{name}/{name}{i}.png" for i in range(n)],
                "label": lab.astype(np.int64),
                "sha256": [hashlib.sha256(f"{name}{i}".encode()).hexdigest() for i in range(n)],
            }
        )
        files[name] = write_embeddings(
            tmp / f"{name}.parquet",
            feats[name],
            rows,
            {"dataset": name, "encoder": {"model": "toy", "revision": "r"}},
        )
    photo = unit(nice + 0.3 * rng.standard_normal((K, D)))
    bare = unit(nice + 0.2 * rng.standard_normal((K, D)))
    text_rows = pd.DataFrame(
        {
            "class_index": np.tile(np.arange(K), 3),
            "class_name": CLASSES * 3,
            "prompt": ["nice"] * K + ["photo"] * K + ["photo_bare"] * K,
            "template": [""] * (3 * K),
        }
    )
    files["text"] = write_embeddings(
        tmp / "text.parquet", np.concatenate([nice, photo, bare]), text_rows, {}
    )
    # GL-MCM's patch features (3 per image, near the image) and their local term at T = 0.01
    from ants.methods.glmcm import local_mcm

    patches = {}
    for name in ("id", "ood"):
        f = feats[name]
        patches[name] = near(rng, np.repeat(f, 3, axis=0), rng.uniform(0.7, 0.9, 3 * len(f))).reshape(
            len(f), 3, D
        )
        l_mcm, pred = local_mcm(patches[name], bare, temperature=0.01)
        ids = [f"{name}/{i}" for i in range(len(f))]
        files[f"local_{name}"] = tmp / f"local_{name}.parquet"
        write_table(
            files[f"local_{name}"], pd.DataFrame({"id": ids, "l_mcm": l_mcm, "local_pred": pred}), {}
        )
    # EOE's envisioned labels: outlier names lying near the negatives
    env = unit(neg[:10] + 0.1 * rng.standard_normal((10, D)))
    files["envisioned"] = write_embeddings(
        tmp / "envisioned.parquet",
        env,
        pd.DataFrame({"template": "a photo of a {}", "text": [f"e{i}" for i in range(10)]}),
        {},
    )
    mined = pd.DataFrame(
        {
            "label": [f"n{i}" for i in range(M)],
            "kind": "noun",
            "stat": np.zeros(M),
            "max_id_cos": np.zeros(M),
        }
    )
    files["negatives"] = MinedNegatives(mined, neg, {}).save(tmp / "negatives.parquet")
    files["stream"] = tmp / "stream.parquet"
    stages.stream(files["id"], files["ood"], seed=1, batch_size=B, out=files["stream"])

    stream, _ = read_table(files["stream"])
    fid, food = read_embeddings(files["id"])[0], read_embeddings(files["ood"])[0]
    in_order = np.stack(
        [food[s] if o else fid[s] for o, s in zip(stream["is_ood"], stream["source"], strict=True)]
    )
    logits = 100 * in_order[~stream["is_ood"].to_numpy()] @ nice.T
    assert 35 <= logits.max(1).min() and logits.max(1).max() <= 60  # as confident as CLIP
    local = np.stack(
        [
            patches["ood"][s] if o else patches["id"][s]
            for o, s in zip(stream["is_ood"], stream["source"], strict=True)
        ]
    )
    return {
        "files": files,
        "tmp": tmp,
        "stream": stream,
        "features": in_order,
        "nice": nice,
        "photo": photo,
        "bare": bare,
        "negatives": neg,
        "local": local,
        "envisioned": env,
    }


ANTS_CONFIG = {
    "preset": "authors_code",
    "initial_threshold": 0.99,
    "ens_trigger_size": 3,
    "ens_max_updates": 2,
    "vsnl_start": 1,
    "vsnl_interval": 2,
    "near_top_k": 2,
    "group_size": 10,
}

#: Each method's score-job section (ants.views.method_config's shape) and its direct arguments.
SECTIONS = {
    "mcm": {"method": "mcm", "temperature": 0.01},
    "neglabel": {"method": "neglabel", "n_groups": 4, "tau": 0.01},
    "adaneg": {"method": "adaneg", "config": {"preset": "authors_code", "n_groups": 4}},
    "ants": {"method": "ants", "config": ANTS_CONFIG, "in_score": "ada"},
    "glmcm": {"method": "glmcm", "temperature": 0.01, "lambda_local": 0.5},
    "eoe": {"method": "eoe", "beta": 0.25, "temperature": 0.01, "task": "far"},
}


def direct_arguments(name, w):
    common = {"image_features": w["features"]}
    if name == "mcm":
        return {**common, "id_text_features": w["photo"], "temperature": 0.01}
    if name == "neglabel":
        return {
            **common,
            "id_text_features": w["nice"],
            "negative_features": w["negatives"],
            "n_groups": 4,
            "tau": 0.01,
        }
    if name == "adaneg":
        return {
            **common,
            "id_text_features": w["nice"],
            "negative_features": w["negatives"],
            "batch_size": B,
            "config": SECTIONS["adaneg"]["config"],
        }
    if name == "ants":
        return {
            **common,
            "id_text_features": w["nice"],
            "negative_features": w["negatives"],
            "items": w["stream"]["path"].tolist(),
            "item_sha256": w["stream"]["sha256"].tolist(),
            "class_names": CLASSES,
            "encode_text": encode_text,
            "answerer": FakeMLLM(),
            "config": {**ANTS_CONFIG, "in_score": "ada"},
            "batch_size": B,
        }
    if name == "glmcm":
        return {
            **common,
            "id_text_features": w["bare"],
            "local_features": w["local"],
            "temperature": 0.01,
            "lambda_local": 0.5,
        }
    if name == "eoe":
        return {
            **common,
            "id_text_features": w["bare"],
            "envisioned_features": w["envisioned"],
            "beta": 0.25,
            "temperature": 0.01,
        }
    raise KeyError(f"no direct arguments for method {name!r}: add them to this smoke test")


def job_files(name, section, w, tmp):
    """The files ``ants score`` gets for this method, made by the stages the workflow runs."""
    spec, f = method_spec(name), w["files"]
    files = {"id_embeddings": f["id"], "ood_embeddings": f["ood"], "id_text": f["text"]}
    if spec.uses_negatives:
        files["negatives"] = f["negatives"]
    scoring = spec.static_scoring(section)
    if scoring is not None:
        for ds in ("id", "ood"):
            files[f"static_{ds}"] = tmp / f"static_{ds}.parquet"
            stages.static(
                f[ds], f["text"], f["negatives"], scoring=scoring, out=files[f"static_{ds}"]
            )
    if spec.uses_local:
        files.update(local_id=f["local_id"], local_ood=f["local_ood"])
    if spec.uses_envisioned:
        files["envisioned"] = f["envisioned"]
    if spec.uses_answers:
        plan = {"config": section["config"], "batch_size": B}
        stages.plan(
            f["stream"],
            f["id"],
            f["ood"],
            f["text"],
            plan=plan,
            stream_name="toy/x/ood/seed1",
            out=tmp / "plan.parquet",
            static_id=files["static_id"],
            static_ood=files["static_ood"],
        )
        answering = {"answering": {"max_failed_fraction": 0.0, "max_negative_chars": 200}}
        stages.answer(
            tmp / "plan.parquet",
            answering,
            cache=tmp / "cache.sqlite",
            out=tmp / "answers.parquet",
            progress=False,
            answerer=FakeMLLM(),
        )
        pairs = stages.negative_texts(tmp / "answers.parquet", section)
        feats = np.stack([encode_text([t], tpl)[0] for tpl, t in pairs])
        rows = pd.DataFrame({"template": [p[0] for p in pairs], "text": [p[1] for p in pairs]})
        write_embeddings(tmp / "negtext.parquet", feats, rows, {"n_texts": len(pairs)})
        files.update(answers=tmp / "answers.parquet", negative_text=tmp / "negtext.parquet")
    return files


def _function(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def test_the_registry_is_data_naming_functions_that_exist():
    schema_kinds = load_schema()["$defs"]["method"]["properties"]["method"]["enum"]
    assert list(METHOD_NAMES) == schema_kinds == list(METHODS)
    for name, spec in METHODS.items():
        assert spec.name == name and spec.id_prompt in stages.ID_PROMPTS
        targets = [spec.runner, spec.scorer] + (
            [spec.static_settings] if spec.static_settings else []
        )
        for target in targets:
            assert target.startswith("ants.methods.") and callable(_function(target)), target
        assert list(inspect.signature(_function(spec.scorer)).parameters) == ["section", "inputs"]
    with pytest.raises(
        ValueError, match="unknown method 'antz'; valid methods: mcm, neglabel, adaneg, ants"
    ):
        method_spec("antz")


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_method_runs_directly_and_through_the_score_adapter_alike(name, world, tmp_path):
    section = {**SECTIONS[name], "batch_size": B}
    direct = run_method(name, **direct_arguments(name, world))
    files = job_files(name, section, world, tmp_path)
    table = stages.score(
        world["files"]["stream"],
        method=section,
        out=tmp_path / "scores.parquet",
        stream_name="toy/x/ood/seed1",
        **files,
    )
    n = len(world["stream"])
    assert (
        direct.method == name and direct.scores.shape == (n,) and direct.predictions.shape == (n,)
    )
    assert np.isfinite(direct.scores).all()
    np.testing.assert_allclose(table["score"].to_numpy(), direct.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table["pred"].to_numpy(), direct.predictions)
    for variant, values in direct.variants.items():
        np.testing.assert_allclose(table[f"v_{variant}"].to_numpy(), values, rtol=1e-5, atol=1e-6)
    if name != "mcm":  # the OOD images lie near negative labels, which the others read
        is_ood = world["stream"]["is_ood"].to_numpy()
        assert direct.scores[~is_ood].mean() > direct.scores[is_ood].mean()  # higher = more ID
    if METHODS[name].uses_answers:  # the answers were used: both banks grew during the stream
        assert direct.trace.ens_update.any() and direct.trace.vsnl_update.any()
