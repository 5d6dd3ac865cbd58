"""The workflow's stages: one function per Snakemake rule, files in -> files out.

Each function reads its inputs, calls the package's pure code (:mod:`ants.demo_data`,
:mod:`ants.datasets`, :mod:`ants.encoders`, :mod:`ants.mining`, :mod:`ants.streams`,
:mod:`ants.methods`, :mod:`ants.replay`, :mod:`ants.mllm`) and writes its outputs atomically,
so a killed job never leaves a file that looks complete. The ``ants`` command
(:mod:`ants.cli`) is a thin argument parser over these functions; the Snakemake rules call it.

Files (all Parquet unless noted; ``{...}`` are Snakemake wildcards)::

    results/data/demo/...                          generated demo images + lists
    results/data/downloads/{dataset}/...           downloaded archive, extracted
    results/manifests/{dataset}.parquet            image files, labels, sha256, readable
    results/embeddings/{backbone}/{dataset}.parquet   image features (ants.embeddings)
    results/text/{backbone}/{label_set}.parquet    ID text features, two prompts
    results/negatives/{backbone}/{label_set}.parquet  mined negatives (ants.mining)
    results/streams/{benchmark}/{ood}/seed{s}.parquet stream order
    results/plans/{benchmark}/{method}/{ood}/seed{s}.parquet  planned MLLM queries
    results/answers/{benchmark}.parquet            the negatives log (every query + answer)
    results/scores/{benchmark}/{method}/{ood}/seed{s}.parquet per-sample scores
    results/metrics.json, results/metrics/{benchmark}.csv, results/plots/*.csv

Scores are "higher = more in-distribution" everywhere.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ants._io import METADATA_KEY, atomic_path, read_table, write_json, write_table

log = logging.getLogger("ants")

__all__ = [
    "ID_PROMPTS",
    "StageError",
    "answer_plans",
    "build_dataset_manifest",
    "compute_metrics",
    "download_dataset",
    "embed_images",
    "embed_label_set",
    "load_answer_map",
    "make_demo_data",
    "make_stream_file",
    "plan_stream",
    "score_stream",
    "stream_id",
]

#: Prompt templates of the ID text features: NegLabel / AdaNeg / ANTS use "The nice {}."
#: (the NegMining prompt), MCM "a photo of a {}.".
ID_PROMPTS = {"nice": "The nice {}.", "photo": "a photo of a {}."}


class StageError(RuntimeError):
    """A stage cannot produce its output; the message names the file or setting at fault."""


def _write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return path


# --------------------------------------------------------------------------------------------
# data


def make_demo_data(out_dir: str | os.PathLike, demo: Mapping, *, progress: bool = True) -> dict[str, Path]:
    """Generate the demo image set (``params.demo``) under ``out_dir``."""
    from ants.demo_data import DemoSpec, generate_demo

    return generate_demo(out_dir, DemoSpec.from_config(demo), progress=progress)


def download_dataset(dataset: str, cfg: Mapping, out_dir: str | os.PathLike, *, downloader=None) -> Path:
    """Fetch ``cfg['url']`` (checked against ``cfg['checksum']``) and extract it to
    ``out_dir/extracted``; returns the extracted folder. The archive stays in ``out_dir``."""
    from ants.datasets import extract_archive, fetch_archive

    if cfg.get("source") != "download":
        raise StageError(f"datasets.{dataset}.source is {cfg.get('source')!r}; only 'download' datasets are fetched")
    out_dir = Path(out_dir)
    name = Path(cfg["url"].split("?")[0]).name or f"{dataset}.archive"
    archive = fetch_archive(cfg["url"], out_dir / name, cfg["checksum"], downloader=downloader)
    return extract_archive(archive, out_dir / "extracted")


def dataset_location(dataset: str, cfg: Mapping, *, data_dir: str = "results/data") -> tuple[Path, Path | None]:
    """``(root, list file or None)`` of a dataset as the manifest stage reads it."""
    source = cfg["source"]
    if source == "demo":
        root = Path(data_dir) / "demo"
        return root, root / f"{cfg['split']}.txt"
    if source == "download":
        root = Path(data_dir) / "downloads" / dataset / "extracted" / cfg["root"]
    else:
        if cfg.get("root") is None:
            raise StageError(f"datasets.{dataset}.root is not set: give the folder holding the images")
        root = Path(cfg["root"]).expanduser()
    lst = None
    if cfg.get("layout") == "list":
        if cfg.get("list") is None:
            raise StageError(f"datasets.{dataset}.list is not set: give the image list file")
        lst = Path(cfg["list"]).expanduser()
        if not lst.is_absolute() and not lst.exists():
            lst = root / lst
    return root, lst


def build_dataset_manifest(dataset: str, cfg: Mapping, out: str | os.PathLike, *, check_images: bool = True,
                           data_dir: str = "results/data", progress: bool = True) -> pd.DataFrame:
    """List a dataset (``params.datasets.<dataset>``) and write its manifest to ``out``."""
    from ants.datasets import (
        build_manifest,
        list_class_folders,
        list_flat,
        read_image_list,
        write_manifest,
    )

    root, lst = dataset_location(dataset, cfg, data_dir=data_dir)
    ext = cfg.get("extensions") or None
    layout = "list" if cfg["source"] == "demo" else cfg["layout"]
    class_names = None
    if layout == "list":
        entries = read_image_list(lst, dataset)
    elif layout == "class_folders":
        entries = list_class_folders(root, ext or (".jpg", ".jpeg", ".png"), dataset)
        class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    else:
        entries = list_flat(root, ext or (".jpg", ".jpeg", ".png"), dataset)
    frame = build_manifest(dataset, entries, root, class_names=class_names, check_images=check_images,
                           progress=progress)
    bad = frame[~frame["readable"]]
    for _, row in bad.iterrows():
        log.warning("dataset %s: unreadable image %s (%s)", dataset, row["path"], row["error"])
    write_manifest(out, frame, {"dataset": dataset, "config": dict(cfg), "root": str(root),
                                "list": str(lst) if lst else None, "n_unreadable": int(len(bad))})
    return frame


# --------------------------------------------------------------------------------------------
# encoders


def _encoder(backbone: Mapping, encoding: Mapping):
    from ants.encoders import load_clip

    return load_clip(dict(backbone), device=encoding["device"], precision=encoding["precision"])


def embed_images(manifest: str | os.PathLike, backbone: Mapping, encoding: Mapping, out: str | os.PathLike, *,
                 on_bad_image: str = "fail", progress: bool = True) -> dict:
    """Encode every image of a manifest into ``out`` (:mod:`ants.embeddings` format).

    An image that cannot be decoded (marked in the manifest, or failing now): with
    ``on_bad_image='fail'`` a :class:`StageError` names every such file and the setting to
    change; with ``'skip'`` they are left out, logged, and listed in the metadata
    (``skipped``). Returns the metadata written.
    """
    from ants.datasets import read_manifest
    from ants.embeddings import write_embeddings

    if on_bad_image not in ("fail", "skip"):
        raise ValueError(f"data.on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    frame, mmeta = read_manifest(manifest)
    dataset = mmeta.get("dataset", Path(manifest).stem)
    bad = frame[~frame["readable"]]
    if len(bad) and on_bad_image == "fail":
        listing = "; ".join(f"{r.path} ({r.error})" for r in bad.itertuples())
        raise StageError(
            f"dataset {dataset!r}: {len(bad)} image(s) cannot be decoded: {listing}. Fix or remove "
            f"them, or set data.on_bad_image: skip in params.yaml to leave them out (they are then "
            f"recorded as skipped)"
        )
    skipped = [{"id": r.id, "path": r.path, "error": r.error} for r in bad.itertuples()]
    good = frame[frame["readable"]].reset_index(drop=True)
    from ants.encoders import ImageReadError

    encoder = _encoder(backbone, encoding)
    try:
        result = encoder.encode_images(
            good["path"].tolist(),
            batch_size=int(encoding["image_batch_size"]),
            num_workers=int(encoding["num_workers"]),
            progress=progress,
            on_error="raise" if on_bad_image == "fail" else "skip",
        )
    except ImageReadError as exc:
        raise StageError(
            f"dataset {dataset!r}: {exc}. Fix or remove it, or set data.on_bad_image: skip in params.yaml "
            f"to leave such images out (they are then recorded as skipped)"
        ) from exc
    for failure in result.failures:
        row = good.iloc[failure.index]
        skipped.append({"id": row["id"], "path": row["path"], "error": failure.message})
    for s in skipped:
        log.warning("dataset %s: skipped unreadable image %s (%s)", dataset, s["path"], s["error"])
    kept = good[result.ok].reset_index(drop=True)
    if kept.empty:
        raise StageError(f"dataset {dataset!r}: no readable image is left to encode")
    meta = {"dataset": dataset, "encoder": encoder.identity(), "on_bad_image": on_bad_image,
            "skipped": skipped, "n_images": int(len(kept))}
    write_embeddings(out, result.features, kept[["id", "path", "label", "sha256"]], meta)
    return meta


def _label_names(label_set: Mapping) -> list[str]:
    from ants.labels import load_label_set, read_classnames

    if "builtin" in label_set:
        return load_label_set(label_set["builtin"])
    return read_classnames(label_set["file"])


def embed_label_set(label_set: Mapping, backbone: Mapping, encoding: Mapping, mining: Mapping,
                    out_text: str | os.PathLike, out_negatives: str | os.PathLike, *,
                    label_set_name: str = "", backbone_name: str = "", progress: bool = True) -> dict:
    """ID text features (both :data:`ID_PROMPTS`) and the mined negatives of one label set."""
    from ants.embeddings import write_embeddings
    from ants.mining import mine_negative_labels

    names = _label_names(label_set)
    encoder = _encoder(backbone, encoding)
    batch = int(encoding["text_batch_size"])

    def encode_text(texts: Sequence[str], template: str) -> np.ndarray:
        return encoder.encode_texts(list(texts), template=template, batch_size=batch)

    feats, rows = [], []
    for prompt_name, template in ID_PROMPTS.items():
        feats.append(encode_text(names, template))
        rows.append(pd.DataFrame({"class_index": np.arange(len(names), dtype=np.int64), "class_name": names,
                                  "prompt": prompt_name, "template": template}))
    identity = encoder.identity()
    write_embeddings(out_text, np.concatenate(feats), pd.concat(rows, ignore_index=True),
                     {"label_set": label_set_name, "backbone": backbone_name, "encoder": identity,
                      "n_classes": len(names)})
    mined = mine_negative_labels(names, encode_text, **dict(mining), batch_size=max(batch, 1024), progress=progress)
    mined.meta.update({"label_set": label_set_name, "backbone": backbone_name, "encoder": identity})
    mined.save(out_negatives)
    return {"n_classes": len(names), "n_negatives": len(mined)}


def read_id_text(path: str | os.PathLike, prompt: str = "nice") -> tuple[np.ndarray, list[str]]:
    """``(features (K, d), class names)`` of one prompt from an ID text file."""
    from ants.embeddings import read_embeddings

    feats, rows, _ = read_embeddings(path)
    sel = (rows["prompt"] == prompt).to_numpy()
    if not sel.any():
        raise StageError(f"{path} holds no ID text features for prompt {prompt!r}")
    order = np.argsort(rows.loc[sel, "class_index"].to_numpy(), kind="stable")
    return feats[sel][order], rows.loc[sel, "class_name"].to_numpy()[order].tolist()


# --------------------------------------------------------------------------------------------
# streams


def stream_id(benchmark: str, method: str, ood: str, seed: int) -> str:
    """The name of one method's stream in the negatives log and the CLI."""
    return f"{benchmark}/{method}/{ood}/seed{seed}"


def make_stream_file(id_embeddings: str | os.PathLike, ood_embeddings: str | os.PathLike, *, seed: int,
                     batch_size: int, out: str | os.PathLike) -> pd.DataFrame:
    """The seeded ``[OOD, ID]`` stream (:func:`ants.streams.make_stream`) as a table."""
    from ants.embeddings import read_embeddings_metadata
    from ants.streams import make_stream

    def rows_of(path):
        return pq.read_table(path, columns=["id", "path", "label", "sha256"]).to_pandas()

    id_rows, ood_rows = rows_of(id_embeddings), rows_of(ood_embeddings)
    stream = make_stream(len(id_rows), len(ood_rows), seed=int(seed), batch_size=int(batch_size))
    both = pd.concat([ood_rows, id_rows], ignore_index=True).iloc[stream.order].reset_index(drop=True)
    frame = pd.DataFrame({
        "position": np.arange(stream.n, dtype=np.int64),
        "batch": stream.batch_of(),
        "is_ood": stream.is_ood,
        "source": stream.source,
        "id": both["id"].to_numpy(),
        "path": both["path"].to_numpy(),
        "sha256": both["sha256"].to_numpy(),
        "label": np.where(stream.is_ood, -1, both["label"].to_numpy()).astype(np.int64),
    })
    meta = {"n_id": stream.n_id, "n_ood": stream.n_ood, "seed": int(seed), "batch_size": int(batch_size),
            "id_dataset": read_embeddings_metadata(id_embeddings).get("dataset"),
            "ood_dataset": read_embeddings_metadata(ood_embeddings).get("dataset")}
    write_table(out, frame, meta)
    return frame


def _stream_features(stream: pd.DataFrame, id_embeddings, ood_embeddings) -> np.ndarray:
    """Image features in stream order (checked against the stream's item ids)."""
    from ants.embeddings import read_embeddings

    f_id, r_id, _ = read_embeddings(id_embeddings)
    f_ood, r_ood, _ = read_embeddings(ood_embeddings)
    is_ood = stream["is_ood"].to_numpy()
    src = stream["source"].to_numpy()
    if (src[is_ood] >= len(f_ood)).any() or (src[~is_ood] >= len(f_id)).any():
        raise StageError("the stream does not fit the embeddings (re-run the stream stage)")
    feats = np.where(is_ood[:, None], f_ood[np.minimum(src, len(f_ood) - 1)], f_id[np.minimum(src, len(f_id) - 1)])
    ids = np.where(is_ood, r_ood["id"].to_numpy()[np.minimum(src, len(r_ood) - 1)],
                   r_id["id"].to_numpy()[np.minimum(src, len(r_id) - 1)])
    if not (ids == stream["id"].to_numpy()).all():
        raise StageError("the stream's item ids differ from the embeddings' (re-run the stream stage)")
    return np.ascontiguousarray(feats, dtype=np.float32)


def _negative_features(path) -> np.ndarray:
    from ants.mining import MinedNegatives

    return MinedNegatives.load(path).embeddings


# --------------------------------------------------------------------------------------------
# plan -> answer -> replay


PLAN_COLUMNS = ("stream_id", "batch_index", "kind", "class_name", "image", "image_sha256")


def plan_stream(stream_file, id_embeddings, ood_embeddings, id_text, negatives, *, plan: Mapping,
                stream_name: str, out: str | os.PathLike, progress: bool = False) -> pd.DataFrame:
    """Every MLLM query the ANTS stream will ask (:func:`ants.replay.plan_queries`)."""
    from ants.replay import plan_queries

    stream, _ = read_table(stream_file)
    feats = _stream_features(stream, id_embeddings, ood_embeddings)
    idt, names = read_id_text(id_text, "nice")
    queries = plan_queries(
        image_features=feats, items=stream["path"].tolist(), id_text_features=idt,
        negative_features=_negative_features(negatives), class_names=names, config=dict(plan["config"]),
        batch_size=int(plan["batch_size"]), item_sha256=stream["sha256"].tolist(), progress=progress,
    )
    frame = pd.DataFrame(
        [{"stream_id": stream_name, "batch_index": b, "kind": q.kind, "class_name": q.class_name,
          "image": q.image, "image_sha256": q.image_sha256} for b, q in queries],
        columns=list(PLAN_COLUMNS),
    )
    frame["batch_index"] = frame["batch_index"].astype("int64")
    write_table(out, frame, {"stream_id": stream_name, "plan": dict(plan), "n_queries": len(frame)})
    return frame


def _queries_of(frame: pd.DataFrame) -> list:
    from ants.mllm.base import Query

    def none(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    return [Query(kind=r.kind, class_name=r.class_name, image=none(r.image), image_sha256=none(r.image_sha256))
            for r in frame.itertuples()]


def answer_plans(plans: Sequence[str | os.PathLike], backend_cfg: Mapping, *, cache: str | os.PathLike,
                 out: str | os.PathLike, progress: bool = True, answerer=None) -> dict:
    """Answer every planned query of ``plans`` through the cache; write the negatives log.

    Distinct queries are answered once for all plans (cache hits never reach the backend; every
    answered batch is committed to the SQLite cache at once, so a killed job loses nothing).
    The log has one row per planned query (``stream_id`` and ``batch_index`` say where it
    arose). Returns the answerer's counts (queries, unique, hits, generated, failed).
    """
    from ants.mllm import build_answerer
    from ants.mllm.answering import answer_all, answer_records, write_answer_log

    frames = [read_table(p)[0] for p in plans]
    plan = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PLAN_COLUMNS))
    queries = _queries_of(plan)
    if answerer is None:
        answerer = build_answerer(dict(backend_cfg), cache_path=cache, progress=progress)
    answers = answer_all(queries, answerer, progress=progress) if queries else []
    records = answer_records(queries, answers, stream_id=plan["stream_id"].tolist(),
                             batch_index=plan["batch_index"].astype(int).tolist())
    write_answer_log(out, records)
    stats = dict(getattr(answerer, "stats", {}))
    log.info("MLLM answers: %s", stats)
    return stats


def load_answer_map(log_path: str | os.PathLike, stream_name: str | None = None) -> dict:
    """``{Query: Answer}`` from a negatives log (optionally one stream's rows)."""
    from ants.mllm.answering import read_answer_log
    from ants.mllm.base import Answer

    frame = read_answer_log(log_path)
    if stream_name is not None:
        frame = frame[frame["stream_id"] == stream_name]
    out = {}
    for q, r in zip(_queries_of(frame), frame.itertuples(), strict=True):
        out[q] = Answer(raw_text=r.raw_text or "", negatives=tuple(r.negatives), status=r.status,
                        reason=r.reason or "", cache_key=r.cache_key or "")
    return out


# --------------------------------------------------------------------------------------------
# scoring


def score_stream(stream_file, id_embeddings, ood_embeddings, id_text, negatives, *, method: Mapping,
                 out: str | os.PathLike, answers: str | os.PathLike | None = None, stream_name: str = "",
                 backbone: Mapping | None = None, encoding: Mapping | None = None,
                 progress: bool = False) -> pd.DataFrame:
    """Run one detector over one stream and write the per-sample scores.

    ``method`` is :func:`ants.views.method_config` (its ``method`` key picks the detector).
    ANTS replays the negatives log ``answers`` (so it needs the backbone to encode the MLLM's
    negatives); the others need nothing but the features.
    """
    from ants.methods import run_method

    stream, smeta = read_table(stream_file)
    feats = _stream_features(stream, id_embeddings, ood_embeddings)
    kind = method["method"]
    batch_size = int(method["batch_size"])
    trace = None
    if kind == "mcm":
        idt, _ = read_id_text(id_text, "photo")
        result = run_method("mcm", image_features=feats, id_text_features=idt,
                            temperature=float(method["temperature"]))
    elif kind == "neglabel":
        idt, _ = read_id_text(id_text, "nice")
        result = run_method("neglabel", image_features=feats, id_text_features=idt,
                            negative_features=_negative_features(negatives), n_groups=int(method["n_groups"]),
                            tau=float(method["tau"]))
    elif kind == "adaneg":
        idt, _ = read_id_text(id_text, "nice")
        result = run_method("adaneg", image_features=feats, id_text_features=idt,
                            negative_features=_negative_features(negatives), batch_size=batch_size,
                            config=dict(method["config"]), progress=progress)
    elif kind == "ants":
        from ants.replay import replay_scores

        if answers is None or backbone is None or encoding is None:
            raise StageError("ANTS scoring needs the negatives log (answers) and the backbone to encode it")
        idt, names = read_id_text(id_text, "nice")
        encoder = _encoder(backbone, encoding)
        batch = int(encoding["text_batch_size"])

        def encode_text(texts, template):
            return encoder.encode_texts(list(texts), template=template, batch_size=batch)

        config = {**dict(method["config"]), "in_score": method["in_score"]}
        result = replay_scores(
            image_features=feats, items=stream["path"].tolist(), id_text_features=idt,
            negative_features=_negative_features(negatives), class_names=names, encode_text=encode_text,
            answers=load_answer_map(answers, stream_name), config=config, batch_size=batch_size,
            item_sha256=stream["sha256"].tolist(), progress=progress,
        )
        t = result.trace
        trace = {"batch": t.batch, "threshold": t.threshold, "lambda": t.lam, "n_candidates": t.n_candidates,
                 "ens_size": t.ens_size, "vsnl_size": t.vsnl_size, "ens_update": t.ens_update,
                 "vsnl_update": t.vsnl_update, "ens_sentences": t.ens_sentences[:50],
                 "vsnl_labels": t.vsnl_labels[:50]}
    else:
        raise StageError(f"unknown method kind {kind!r}")
    frame = pd.DataFrame({
        "position": stream["position"].to_numpy(),
        "id": stream["id"].to_numpy(),
        "batch": stream["batch"].to_numpy(),
        "is_ood": stream["is_ood"].to_numpy(),
        "label": stream["label"].to_numpy(),
        "pred": np.asarray(result.predictions, dtype=np.int64),
        "score": np.asarray(result.scores, dtype=np.float32),
    })
    for name, values in sorted((result.variants or {}).items()):
        frame[f"v_{name}"] = np.asarray(values, dtype=np.float32)
    meta = {"stream_id": stream_name, "method": dict(method), "stream": smeta, "trace": trace}
    write_table(out, frame, meta)
    return frame


# --------------------------------------------------------------------------------------------
# metrics


METRIC_KEYS = ("auroc", "fpr95_id", "fpr95_ood", "aupr_in", "aupr_out", "acc")


def stream_metrics(frame: pd.DataFrame, recall_level: float = 0.95) -> dict[str, float]:
    """OOD metrics (fractions) and ID accuracy of one score table."""
    from ants.metrics import accuracy, ood_metrics

    is_ood = frame["is_ood"].to_numpy()
    scores = frame["score"].to_numpy(np.float64)
    out = ood_metrics(scores[~is_ood], scores[is_ood], recall_level=recall_level)
    out["acc"] = accuracy(frame["pred"].to_numpy()[~is_ood], frame["label"].to_numpy()[~is_ood])
    return out


def compute_metrics(score_files: Mapping[tuple[str, str, str, int], str | os.PathLike], *, params: Mapping,
                    out_json: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Aggregate per-stream metrics into mean and std over seeds, per dataset and split average.

    ``score_files`` maps ``(benchmark, method, ood, seed)`` to a score file. Values in the
    outputs are percentages (x100) except the counts; ``*_std`` is the population standard
    deviation over the seeds (ddof=0). Writes ``out_json`` (nested benchmark -> method ->
    dataset or ``{split}_average`` -> metric) and ``{out_dir}/{benchmark}.csv``.
    """
    from ants.metrics import split_average
    from ants.views import ood_sets

    recall = float(params["metrics"]["recall_level"])
    per: dict[tuple[str, str, str], dict[int, dict[str, float]]] = {}
    for (bench, method, ood, seed), path in sorted(score_files.items()):
        frame, _ = read_table(path)
        per.setdefault((bench, method, ood), {})[int(seed)] = stream_metrics(frame, recall)

    nested: dict = {}
    rows = []
    benchmarks = sorted({k[0] for k in per})
    for bench in benchmarks:
        splits = ood_sets(params, bench)
        methods = [m for m in params["run"]["methods"] if any(k[:2] == (bench, m) for k in per)]
        for method in methods:
            label = params["methods"][method].get("label", method)
            entries: list[tuple[str, str, dict[int, dict[str, float]]]] = []
            for split, ood in splits:
                if (bench, method, ood) in per:
                    entries.append((ood, split, per[(bench, method, ood)]))
            for split in ("far", "near"):
                members = [e for e in entries if e[1] == split]
                if not members:
                    continue
                seeds = sorted(set.intersection(*(set(e[2]) for e in members)))
                entries.append((f"{split}_average", split,
                                {s: split_average({e[0]: e[2][s] for e in members}) for s in seeds}))
            for name, split, by_seed in entries:
                stats = {}
                for key in METRIC_KEYS:
                    values = np.array([by_seed[s][key] for s in sorted(by_seed)], dtype=np.float64) * 100
                    stats[key] = float(values.mean())
                    stats[f"{key}_std"] = float(values.std(ddof=0))
                stats["n_seeds"] = len(by_seed)
                nested.setdefault(bench, {}).setdefault(method, {})[name] = stats
                rows.append({"benchmark": bench, "method": method, "label": label, "dataset": name,
                             "split": split, **stats})
        bench_rows = [r for r in rows if r["benchmark"] == bench]
        _write_csv(Path(out_dir) / f"{bench}.csv", pd.DataFrame(bench_rows))
    write_json(out_json, nested)
    return nested


def trace_table(score_files: Mapping[tuple[str, str, str, int], str | os.PathLike]) -> pd.DataFrame:
    """Per-batch ANTS state (threshold, lambda, bank sizes) of every ANTS score file."""
    rows = []
    for (bench, method, ood, seed), path in sorted(score_files.items()):
        meta = json.loads((pq.read_schema(path).metadata or {}).get(METADATA_KEY, b"{}"))
        trace = meta.get("trace")
        if not trace:
            continue
        for i, b in enumerate(trace["batch"]):
            rows.append({"benchmark": bench, "method": method, "ood": ood, "seed": int(seed), "batch": int(b),
                         "threshold": trace["threshold"][i], "lambda": trace["lambda"][i],
                         "ens_size": trace["ens_size"][i], "vsnl_size": trace["vsnl_size"][i]})
    return pd.DataFrame(rows, columns=["benchmark", "method", "ood", "seed", "batch", "threshold", "lambda",
                                       "ens_size", "vsnl_size"])
