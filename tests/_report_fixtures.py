"""Small, realistic workflow artifacts for the report / tables / inspection tests.

:func:`make_run` writes, under ``root``, what a finished run leaves (same paths, same writers):
generated PNG images, embeddings with encoder metadata (random weights: the demo banner), mined
negatives, per-stream score files (MCM from the package's scorer; ANTS from the real state
machine :func:`ants.methods.ants_tta.run_ants` with a scripted MLLM whose answers include
``<script>`` and ``<img onerror>`` payloads, empty and unparsable ones), per-stream answers
logs and their timing sidecars (:mod:`ants.answers_log`), the metric files
(:func:`ants.stages.compute_metrics`), a sweep CSV and Snakemake benchmark TSVs. Seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ants.mllm.base import Answer

XSS_SCRIPT = "<script>alert('xss')</script> a red bicycle"
XSS_IMG = '<img src=x onerror="alert(1)"> a blue kite'
CLASSES = ["cat", "dog", "car", "tree", "boat", "lamp"]
D = 16


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class ScriptedMLLM:
    """Deterministic answers; every 7th ENS answer is an XSS payload, some are empty / unparsable."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, queries):
        from ants.mllm.parsing import parse_answer

        out = []
        for q in queries:
            self.n += 1
            if q.kind == "ens":
                raw = [XSS_SCRIPT, XSS_IMG, "", f"A photo of a {q.class_name} on grass."][self.n % 4]
            else:
                raw = ("no list here" if q.class_name == "lamp"
                       else "\n".join(f"{i}. {q.class_name}-like thing {i}" for i in range(1, 4)))
            a = parse_answer(q.kind, raw, q.class_name or "")
            out.append(Answer(raw_text=a.raw_text, negatives=a.negatives, status=a.status, reason=a.reason,
                              cache_key=f"k{abs(hash((q.kind, q.class_name, q.image_sha256 or q.image))) % 10**12}",
                              extra={"prompt": f"Describe {q.class_name}", "backend": "demo", "model_id": "tiny-llava",
                                     "revision": "r0", "settings": {}}))
        return out


def make_run(root: Path, *, seeds=(0, 1), with_sweep: bool = True, with_benchmarks: bool = True) -> dict:
    """Write a finished fixture run under ``root``; returns paths and the view."""
    from PIL import Image

    from ants.answers_log import answer_records, write_answer_log
    from ants.artifacts import write_scores
    from ants.embeddings import write_embeddings
    from ants.methods.ants_tta import run_ants
    from ants.mining import MinedNegatives
    from ants.stages import compute_metrics

    root = Path(root)
    rng = np.random.default_rng(0)
    res = root / "results"
    K = len(CLASSES)
    idt = _unit(rng.normal(size=(K, D)))
    neg = _unit(rng.normal(size=(40, D)))
    # images and embeddings: ID near their class text, OOD random
    sets = {"fx_id": 48, "fx_far": 32, "fx_near": 32}
    feats, paths = {}, {}
    for name, n in sets.items():
        d = res / "data" / "fixture" / name
        d.mkdir(parents=True, exist_ok=True)
        ps = []
        for i in range(n):
            p = d / f"{name}_{i:03d}.png"
            Image.fromarray(rng.integers(0, 255, size=(12, 12, 3), dtype=np.uint8)).save(p)
            ps.append(str(p))
        if name == "fx_id":
            labels = np.arange(n) % K
            f = _unit(idt[labels] * 3 + rng.normal(size=(n, D)))
        else:
            labels = np.full(n, -1)
            f = _unit(rng.normal(size=(n, D)) + (0.8 * idt[rng.integers(0, K, n)] if name == "fx_near" else 0))
        feats[name], paths[name] = (f, labels), ps
        rows = pd.DataFrame({"id": [f"{name}/{Path(p).name}" for p in ps], "path": ps, "label": labels,
                             "sha256": [f"sha-{name}-{i}" for i in range(n)]})
        write_embeddings(res / "embeddings" / "tiny" / f"{name}.parquet", f, rows,
                         {"dataset": name, "n_images": n, "skipped": [],
                          "encoder": {"model": "tiny", "random_init": True, "seed": 0, "pretrained": None}})
    negpath = res / "negatives" / "tiny" / "fixture.parquet"
    MinedNegatives(pd.DataFrame({"label": [f"neg{i}" for i in range(40)], "kind": ["noun"] * 40,
                                 "stat": np.linspace(0, 1, 40), "max_id_cos": np.linspace(0, 1, 40)}),
                   neg, {}).save(negpath)

    view = {
        "run": {"methods": ["mcm", "ants_code", "ants_paper"], "benchmarks": ["fixture"], "seeds": list(seeds)},
        "methods": {
            "mcm": {"label": "MCM", "method": "mcm", "preset": None, "in_score": None},
            "ants_code": {"label": "ANTS (authors' code)", "method": "ants", "preset": "authors_code",
                          "in_score": {"far": "far_only", "near": "near_only"}},
            "ants_paper": {"label": "ANTS (paper)", "method": "ants", "preset": "paper",
                           "in_score": {"far": "ada", "near": "ada"}},
        },
        "benchmarks": {"fixture": {"ood": {"far": ["fx_far"], "near": ["fx_near"]}, "backbone": "tiny"}},
        "metrics": {"recall_level": 0.95, "fpr95_roc": "all"},
        "report": {"title": "Fixture report", "negatives_shown": 5, "histogram_bins": 10,
                   "answers_per_update": 3, "seeds_shown": 1, "thumbnail_px": 32, "failed_shown": 10},
    }
    configs = {
        "ants_code": {"preset": "authors_code", "near_top_k": 2, "ens_max_updates": 2, "ens_trigger_size": 6,
                      "vsnl_start": 1, "vsnl_interval": 2, "group_size": 10},
        "ants_paper": {"preset": "paper", "near_delta": 0.34, "ens_max_updates": 2, "ens_trigger_size": 6,
                       "vsnl_start": 1, "vsnl_interval": 2, "group_size": 10},
    }

    def encode_text(texts, template):
        h = np.array([[(hash((t, j)) % 1000) / 1000 - 0.5 for j in range(D)] for t in texts])
        return _unit(h + 1e-3)

    score_files, logs, finals = {}, [], {}
    for ood, split in (("fx_far", "far"), ("fx_near", "near")):
        for seed in seeds:
            r = np.random.default_rng(100 + seed)
            fi, li = feats["fx_id"]
            fo, _ = feats[ood]
            allf = np.concatenate([fo, fi])
            labels = np.concatenate([np.full(len(fo), -1), li])
            is_ood = np.r_[np.ones(len(fo), bool), np.zeros(len(fi), bool)]
            items = paths[ood] + paths["fx_id"]
            order = r.permutation(len(allf))
            allf, labels, is_ood = allf[order], labels[order], is_ood[order]
            items = [items[i] for i in order]
            batch = np.arange(len(allf)) // 8 + 1
            base = {"position": np.arange(len(allf)), "id": items, "batch": batch, "is_ood": is_ood,
                    "label": labels}
            sid = f"fixture/mcm/{ood}/seed{seed}"
            logits = allf @ idt.T
            mcm = np.exp(logits / 0.1) / np.exp(logits / 0.1).sum(1, keepdims=True)
            frame = pd.DataFrame({**base, "pred": logits.argmax(1), "score": mcm.max(1).astype(np.float32)})
            p = res / "scores" / "fixture" / "mcm" / ood / f"seed{seed}.parquet"
            stream = {"n_id": int((~is_ood).sum()), "n_ood": int(is_ood.sum()), "seed": seed}
            write_scores(p, frame, {"stream_id": sid, "method": {"method": "mcm"}, "stream": stream, "trace": None})
            score_files[("fixture", "mcm", ood, seed)] = p
            for m in ("ants_code", "ants_paper"):
                sid = f"fixture/{m}/{ood}/seed{seed}"
                llm = ScriptedMLLM()
                asked: list = []

                def answerer(qs, _llm=llm, _asked=asked):
                    ans = _llm(qs)
                    _asked.extend(zip(qs, ans, strict=True))
                    return ans

                cfg = {**configs[m], "in_score": view["methods"][m]["in_score"][split]}
                result = run_ants(image_features=allf, items=items, id_text_features=idt, negative_features=neg,
                                  class_names=CLASSES, encode_text=encode_text, answerer=answerer, config=cfg,
                                  batch_size=8, item_sha256=[f"sha{hash(x) % 10**9}" for x in items])
                t = result.trace
                finals[sid] = t
                frame = pd.DataFrame({**base, "pred": np.asarray(result.predictions, dtype=np.int64),
                                      "score": np.asarray(result.scores, dtype=np.float32)})
                for name, values in sorted(result.variants.items()):
                    frame[f"v_{name}"] = np.asarray(values, dtype=np.float32)
                trace = {"batch": t.batch, "threshold": t.threshold, "lambda": t.lam, "n_candidates": t.n_candidates,
                         "ens_size": t.ens_size, "vsnl_size": t.vsnl_size, "ens_update": t.ens_update,
                         "vsnl_update": t.vsnl_update}
                p = res / "scores" / "fixture" / m / ood / f"seed{seed}.parquet"
                write_scores(p, frame, {"stream_id": sid, "method": {"method": "ants", "config": configs[m],
                                                                      "in_score": cfg["in_score"]},
                                        "stream": stream, "trace": trace})
                score_files[("fixture", m, ood, seed)] = p
                qb = [b for b, _ in t.queries]
                qs = [q for q, _ in asked]
                rec = answer_records(qs, [a for _, a in asked], stream_id=sid, batch_index=qb)
                rec = rec.assign(answered_at="2026-01-01T00:00:00", seconds=0.01,
                                 from_cache=[bool(i % 2) for i in range(len(rec))])
                lp = res / "answers" / "fixture" / m / ood / f"seed{seed}.parquet"
                # the workflow's timing sidecar: outside results/answers
                side = res / "logs" / "answer" / "fixture" / m / ood / f"seed{seed}.timing.json"
                write_answer_log(lp, rec, timings=side)
                logs.append(lp)
    params = {**view, "methods": {k: {"label": v["label"], "method": v["method"]} for k, v in view["methods"].items()}}
    compute_metrics(score_files, params=params, out_json=res / "metrics.json", out_dir=res / "metrics")
    if with_sweep:
        rows = []
        for method, label in (("ants_code", "ANTS (authors' code)"), ("mcm", "MCM")):
            for v, fpr, auc in ((1, 60.0, 70.0), (2, 55.0, 72.5), (4, 50.0, 74.0)):
                bump = 5.0 if method == "mcm" else 0.0
                rows.append({"sweep": "ens_updates", "setting": "methods.ants_code.config.ens_max_updates", "value": v,
                             "is_default": v == 2, "benchmark": "fixture", "method": method, "label": label,
                             "dataset": "far_average", "split": "far", "auroc": auc - bump, "auroc_std": 1.0,
                             "fpr95_id": fpr + 1, "fpr95_id_std": 0.5, "fpr95_ood": fpr + bump, "fpr95_ood_std": 2.0,
                             "n_seeds": 2})
        (res / "sweeps").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(res / "sweeps" / "ens_updates.csv", index=False)
    if with_benchmarks:
        for rule, secs in (("score", (1.5, 2.5)), ("answer", (4.0,))):
            for i, s in enumerate(secs):
                d = res / "benchmarks" / rule
                d.mkdir(parents=True, exist_ok=True)
                (d / f"job{i}.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\n" f"{s}\t0:00:0{int(s)}\t123.4\t200\n")
        for rule, s in (("metrics", 0.7), ("tables", 0.4), ("report", 1.2)):  # one-job rules: {rule}.tsv
            (res / "benchmarks" / f"{rule}.tsv").write_text(f"s\th:m:s\tmax_rss\tmax_vms\n{s}\t0:00:00\t99.0\t200\n")
    return {"root": root, "results": res, "view": view, "score_files": score_files, "logs": logs,
            "negatives": [negpath], "embeddings": sorted((res / "embeddings").rglob("*.parquet")),
            "finals": finals, "configs": configs}


_SHARED: dict = {}


def shared_run(tmp_path_factory) -> dict:
    """One fixture run per test session (built on first use); tests must not modify it."""
    if "run" not in _SHARED:
        run = make_run(tmp_path_factory.mktemp("fixture-run"))
        write_params(run)
        _SHARED["run"] = run
    return _SHARED["run"]


def write_params(run: dict) -> Path:
    """A params.yaml beside the fixture results (the keys the tables and inspection read)."""
    import yaml

    view = run["view"]
    methods = {}
    for m, v in view["methods"].items():
        methods[m] = {"method": v["method"], "label": v["label"]}
        if v["method"] == "ants":
            methods[m]["config"] = run["configs"][m]
            methods[m]["in_score"] = v["in_score"]
    params = {"run": view["run"], "methods": methods, "benchmarks": {
        "fixture": {"backbone": "tiny", "id": "fx_id", "label_set": "fixture",
                    "ood": view["benchmarks"]["fixture"]["ood"]}},
        "backbones": {"tiny": {"model": "tiny", "seed": 0}}, "mllm": {"backend": "demo"},
        "metrics": view["metrics"], "report": view["report"]}
    path = Path(run["root"]) / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path
