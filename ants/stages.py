"""The workflow's stages: one function per Snakemake rule, files in -> files out.

Each function reads its inputs, calls the package's pure code (:mod:`ants.demo_data`,
:mod:`ants.datasets`, :mod:`ants.encoders`, :mod:`ants.mining`, :mod:`ants.streams`,
:mod:`ants.methods`, :mod:`ants.replay`, :mod:`ants.mllm`) and writes its outputs atomically,
so a killed job never leaves a file that looks complete. The ``ants`` command
(:mod:`ants.cli`) is a thin argument parser over these functions; the Snakemake rules call it.

Every file a stage reads or writes is an artifact of :mod:`ants.artifacts` (the results layout,
each kind's columns and metadata, the validating readers): a damaged input fails with one line
naming the file and how to rebuild it, before any work. The math is elsewhere: metrics and
their aggregation in :mod:`ants.metrics`, the answers log in :mod:`ants.answers_log`.

Scores are "higher = more in-distribution" everywhere.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ants import artifacts, numerics
from ants.artifacts import ID_PROMPTS, read_id_text
from ants.views import parse_scoring_name, scoring_name  # noqa: F401  (the static passes' names)

log = logging.getLogger("ants")

__all__ = [
    "ID_PROMPTS",
    "StageError",
    "answer",
    "build_dataset_manifest",
    "download_dataset",
    "embed_images",
    "embed_label_set",
    "encode_envisioned",
    "encode_negatives",
    "envision",
    "local_features",
    "make_demo_data",
    "mine_negatives",
    "compute_metrics",
    "sweep_metrics",
    "plan",
    "score",
    "static",
    "stream",
    "trace_table",
]


class StageError(RuntimeError):
    """A stage cannot produce its output; the message names the file or setting at fault."""


# --------------------------------------------------------------------------------------------
# data


def make_demo_data(
    out_dir: str | os.PathLike, demo: Mapping, *, progress: bool = True
) -> dict[str, Path]:
    """Generate the demo image set (``params.demo``) under ``out_dir``."""
    from ants.demo_data import DemoSpec, generate_demo

    return generate_demo(out_dir, DemoSpec.from_config(demo), progress=progress)


def download_dataset(
    dataset: str,
    cfg: Mapping,
    out_dir: str | os.PathLike,
    *,
    downloader=None,
    progress: bool = True,
) -> Path:
    """``ants download``: fetch ``cfg['url']`` (or take its ``mirror`` / ``extracted`` copy),
    check it against ``cfg['checksum']`` and extract it to ``out_dir/extracted``
    (:func:`ants.datasets.download.obtain_dataset`); returns the extracted folder."""
    from ants.datasets.download import obtain_dataset

    if cfg.get("source") != "download":
        raise StageError(
            f"datasets.{dataset}.source is {cfg.get('source')!r}; only 'download' datasets are fetched"
        )
    return obtain_dataset(dataset, cfg, out_dir, downloader=downloader, progress=progress)


def build_dataset_manifest(
    dataset: str,
    cfg: Mapping,
    out: str | os.PathLike,
    *,
    check_images: bool = True,
    data_dir: str | None = None,
    progress: bool = True,
    max_pixels: int | None = None,
) -> pd.DataFrame:
    """``ants manifest``: list a dataset (``params.datasets.<dataset>``) and write its manifest;
    a count other than ``expected_images`` is warned about with the difference.

    ``max_pixels`` (``params.data.max_pixels``; None = :data:`ants.images.DEFAULT_MAX_PIXELS`):
    images with more pixels are recorded as unreadable, refused before decoding. Where its
    images and list are: :func:`ants.datasets.location.dataset_location` (``data_dir``: where
    the workflow keeps generated and downloaded sets, default its ``DATA_DIR``)."""
    from ants.datasets.location import (
        DATA_DIR,
        class_folder_names,
        dataset_extensions,
        dataset_location,
    )
    from ants.datasets.manifests import (
        build_manifest,
        list_class_folders,
        list_flat,
        read_image_list,
    )

    root, lst = dataset_location(dataset, cfg, data_dir=DATA_DIR if data_dir is None else data_dir)
    ext = dataset_extensions(cfg)
    layout = "list" if cfg["source"] == "demo" else cfg["layout"]
    class_names = None
    if layout == "list":
        entries = read_image_list(lst, dataset)
    elif layout == "class_folders":
        entries = list_class_folders(root, ext, dataset)
        class_names = class_folder_names(root)
    else:
        entries = list_flat(root, ext, dataset)
    from ants.images import DEFAULT_MAX_PIXELS

    frame = build_manifest(
        dataset,
        entries,
        root,
        class_names=class_names,
        check_images=check_images,
        progress=progress,
        expected_images=cfg.get("expected_images"),
        max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
    )
    bad = frame[~frame["readable"]]
    for _, row in bad.iterrows():
        log.warning("dataset %s: unreadable image %s (%s)", dataset, row["path"], row["error"])
    artifacts.write_manifest(
        out,
        frame,
        {
            "dataset": dataset,
            "config": dict(cfg),
            "root": str(root),
            "list": str(lst) if lst else None,
            "n_unreadable": int(len(bad)),
        },
    )
    return frame


# --------------------------------------------------------------------------------------------
# encoders


def _encoder(backbone: Mapping, encoding: Mapping):
    from ants.encoders import load_clip

    return load_clip(
        dict(backbone),
        device=encoding["device"],
        precision=encoding["precision"],
        cache_dir=encoding.get("cache_dir"),
    )


def embed_images(
    manifest: str | os.PathLike,
    backbone: Mapping,
    encoding: Mapping,
    out: str | os.PathLike,
    *,
    on_bad_image: str = "fail",
    progress: bool = True,
    max_pixels: int | None = None,
) -> dict:
    """Encode every image of a manifest into ``out`` (:mod:`ants.embeddings` format).

    An image that cannot be decoded (marked in the manifest, or failing now; more than
    ``max_pixels`` pixels, ``params.data.max_pixels``, None =
    :data:`ants.images.DEFAULT_MAX_PIXELS`, is refused before decoding): with
    ``on_bad_image='fail'`` a :class:`StageError` names every such file and the setting to
    change; with ``'skip'`` they are left out, logged, and listed in the metadata
    (``skipped``). Returns the metadata written.
    """
    from ants.embeddings import write_embeddings

    if on_bad_image not in ("fail", "skip"):
        raise ValueError(f"data.on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    frame, mmeta = artifacts.read_manifest(manifest)
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
    from ants.images import DEFAULT_MAX_PIXELS

    encoder = _encoder(backbone, encoding)
    try:
        result = encoder.encode_images(
            good["path"].tolist(),
            batch_size=int(encoding["image_batch_size"]),
            num_workers=int(encoding["num_workers"]),
            progress=progress,
            on_error="raise" if on_bad_image == "fail" else "skip",
            max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
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
    meta = {
        "dataset": dataset,
        "encoder": encoder.identity(),
        "on_bad_image": on_bad_image,
        "skipped": skipped,
        "n_images": int(len(kept)),
    }
    write_embeddings(
        out, result.features, kept[["id", "path", "label", "sha256"]], meta, kind="embeddings"
    )
    return meta


def _label_names(label_set: Mapping) -> list[str]:
    from ants.labels import load_label_set, read_classnames

    if "builtin" in label_set:
        return load_label_set(label_set["builtin"])
    return read_classnames(label_set["file"])


def embed_label_set(
    label_set: Mapping,
    backbone: Mapping,
    encoding: Mapping,
    mining: Mapping,
    out_text: str | os.PathLike,
    out_negatives: str | os.PathLike,
    *,
    label_set_name: str = "",
    backbone_name: str = "",
    progress: bool = True,
) -> dict:
    """ID text features (both :data:`ID_PROMPTS`) and the mined negatives of one label set."""
    from ants.embeddings import write_embeddings

    names = _label_names(label_set)
    encoder = _encoder(backbone, encoding)
    batch = int(encoding["text_batch_size"])

    def encode_text(texts: Sequence[str], template: str) -> np.ndarray:
        return encoder.encode_texts(list(texts), template=template, batch_size=batch)

    feats, rows = [], []
    for prompt_name, template in ID_PROMPTS.items():
        feats.append(encode_text(names, template))
        rows.append(
            pd.DataFrame(
                {
                    "class_index": np.arange(len(names), dtype=np.int64),
                    "class_name": names,
                    "prompt": prompt_name,
                    "template": template,
                }
            )
        )
    identity = encoder.identity()
    write_embeddings(
        out_text,
        np.concatenate(feats),
        pd.concat(rows, ignore_index=True),
        {
            "label_set": label_set_name,
            "backbone": backbone_name,
            "encoder": identity,
            "n_classes": len(names),
        },
        kind="id_text",
    )
    mined = _negatives(names, encode_text, mining, batch, progress)
    mined.meta.update({"label_set": label_set_name, "backbone": backbone_name, "encoder": identity})
    mined.save(out_negatives)
    return {"n_classes": len(names), "n_negatives": len(mined)}


#: mining keys that choose where the negatives come from, not how NegMining runs
_SOURCE_KEYS = ("source", "file")


def _negatives(names, encode_text, mining: Mapping, batch: int, progress: bool):
    """The negatives of ``params.mining``: NegMining on WordNet, or the list in ``mining.file``
    (:mod:`ants.negative_lists`; what the file holds is logged and kept in the metadata)."""
    from ants.mining import mine_negative_labels

    if mining.get("source", "wordnet") == "file":
        from ants.negative_lists import negatives_from_list, read_negative_list

        lst = read_negative_list(mining["file"])
        mined = negatives_from_list(
            lst,
            names,
            encode_text,
            percentile=float(mining.get("percentile", 95)),
            percentile_method=mining.get("percentile_method", "inverted_cdf"),
            batch_size=max(batch, 1024),
        )
        meta = mined.meta
        log.info(
            "negatives from %s (%s format): %d entries %s; %d duplicate(s)%s; %d equal to an ID "
            "class name%s",
            lst.path,
            lst.format,
            len(lst),
            meta["counts"],
            meta["n_duplicates"],
            f", e.g. {meta['duplicate_examples'][0]}" if meta["n_duplicates"] else "",
            meta["n_id_overlap"],
            f", e.g. {meta['id_overlap_examples']}" if meta["n_id_overlap"] else "",
        )
        return mined
    settings = {k: v for k, v in mining.items() if k not in _SOURCE_KEYS}
    return mine_negative_labels(
        names, encode_text, **settings, batch_size=max(batch, 1024), progress=progress
    )


def mine_negatives(
    label_set: Mapping,
    backbone: Mapping,
    encoding: Mapping,
    mining: Mapping,
    out: str | os.PathLike,
    *,
    label_set_name: str = "",
    backbone_name: str = "",
    progress: bool = True,
) -> dict:
    """``ants mine-negatives``: another set of negatives of one label set (e.g. the CSP-mined
    bank ANTS can start from, ``initial_detector: csp``), written like
    :func:`embed_label_set`'s."""
    names = _label_names(label_set)
    encoder = _encoder(backbone, encoding)
    batch = int(encoding["text_batch_size"])

    def encode_text(texts: Sequence[str], template: str) -> np.ndarray:
        return encoder.encode_texts(list(texts), template=template, batch_size=batch)

    mined = _negatives(names, encode_text, mining, batch, progress)
    mined.meta.update(
        {"label_set": label_set_name, "backbone": backbone_name, "encoder": encoder.identity()}
    )
    mined.save(out)
    return {"n_classes": len(names), "n_negatives": len(mined)}


# --------------------------------------------------------------------------------------------
# streams


def stream(
    id_embeddings: str | os.PathLike,
    ood_embeddings: str | os.PathLike,
    *,
    seed: int,
    batch_size: int,
    out: str | os.PathLike,
    order: str = "shuffled",
) -> pd.DataFrame:
    """``ants stream``: the seeded ``[OOD, ID]`` stream (:func:`ants.streams.make_stream`) as a table."""
    from ants.embeddings import read_embeddings_metadata
    from ants.streams import make_stream

    def rows_of(path):
        return artifacts.read_parquet(path, "embeddings", ["id", "path", "label", "sha256"])[0]

    id_rows, ood_rows = rows_of(id_embeddings), rows_of(ood_embeddings)
    s = make_stream(
        len(id_rows), len(ood_rows), seed=int(seed), batch_size=int(batch_size), order=order
    )
    both = pd.concat([ood_rows, id_rows], ignore_index=True).iloc[s.order].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "position": np.arange(s.n, dtype=np.int64),
            "batch": s.batch_of(),
            "is_ood": s.is_ood,
            "source": s.source,
            "id": both["id"].to_numpy(),
            "path": both["path"].to_numpy(),
            "sha256": both["sha256"].to_numpy(),
            "label": np.where(s.is_ood, -1, both["label"].to_numpy()).astype(np.int64),
        }
    )
    meta = {
        "n_id": s.n_id,
        "n_ood": s.n_ood,
        "seed": int(seed),
        "batch_size": int(batch_size),
        "order": order,
        "id_dataset": read_embeddings_metadata(id_embeddings, "embeddings").get("dataset"),
        "ood_dataset": read_embeddings_metadata(ood_embeddings, "embeddings").get("dataset"),
        # the CLIP model (id, revision / weights digest) behind the features
        "encoder": read_embeddings_metadata(id_embeddings, "embeddings").get("encoder"),
    }
    artifacts.write_stream(out, frame, meta)
    return frame


def _stream_rows(
    frame: pd.DataFrame, n_id: int, n_ood: int, ids_id, ids_ood, what: str
) -> np.ndarray:
    """Row index into ``concat([OOD rows, ID rows])`` of every stream position, checked by item id."""
    is_ood = frame["is_ood"].to_numpy()
    src = frame["source"].to_numpy()
    if (src[is_ood] >= n_ood).any() or (src[~is_ood] >= n_id).any():
        raise StageError(f"the stream does not fit the {what} (re-run the stream stage)")
    rows = np.where(is_ood, src, src + n_ood)
    ids = np.concatenate([np.asarray(ids_ood), np.asarray(ids_id)])[rows]
    if not (ids == frame["id"].to_numpy()).all():
        raise StageError(f"the stream's item ids differ from the {what}' (re-run the stream stage)")
    return rows


def _stream_features(frame: pd.DataFrame, id_embeddings, ood_embeddings) -> np.ndarray:
    """Image features in stream order (checked against the stream's item ids)."""
    from ants.embeddings import read_embeddings

    f_id, r_id, _ = read_embeddings(id_embeddings, "embeddings")
    f_ood, r_ood, _ = read_embeddings(ood_embeddings, "embeddings")
    rows = _stream_rows(frame, len(f_id), len(f_ood), r_id["id"], r_ood["id"], "embeddings")
    return np.ascontiguousarray(np.concatenate([f_ood, f_id])[rows], dtype=np.float32)


def _negative_features(path) -> np.ndarray:
    from ants.mining import MinedNegatives

    return MinedNegatives.load(path).embeddings


# --------------------------------------------------------------------------------------------
# the static pass: per-image results shared by every method, seed and stream


def static(
    embeddings: str | os.PathLike,
    id_text: str | os.PathLike,
    negatives: str | os.PathLike | None,
    *,
    scoring: Mapping,
    out: str | os.PathLike,
) -> pd.DataFrame:
    """``ants static``: the grouped negative-label score, ID prediction and ``lse_id`` of every
    image of one dataset (:func:`ants.scores.negative_label_parts`), once per (backbone, label
    set, dataset, grouping); NegLabel, the ANTS plans and the ANTS score jobs of every seed and
    stream read it.

    ``scoring`` is :func:`ants.views.parse_scoring_name` of the file's name. With ``detector:
    mcm`` (ANTS's ``initial_detector``) the score is MCM at ``tau``
    (:func:`ants.scores.mcm_parts`; ``negatives`` unused, may be None); with ``detector: csp``
    ``negatives`` is the CSP-mined bank."""
    from ants.embeddings import read_embeddings
    from ants.methods.ants_tta import STATIC_CHUNK
    from ants.scores import mcm_parts, negative_label_parts

    feats, rows, meta = read_embeddings(embeddings, "embeddings")
    idt, _ = read_id_text(id_text, "nice")
    if scoring.get("detector") == "mcm":
        parts = mcm_parts(feats, idt, tau=float(scoring["tau"]), chunk_size=STATIC_CHUNK)
    else:
        if negatives is None:
            raise StageError(f"the static pass {dict(scoring)} needs the negatives (--negatives)")
        grouping = {k: int(scoring[k]) for k in ("n_groups", "group_size") if k in scoring}
        parts = negative_label_parts(
            feats,
            idt,
            _negative_features(negatives),
            tau=float(scoring["tau"]),
            seed=int(scoring["seed"]),
            chunk_size=STATIC_CHUNK,
            **grouping,
        )
    frame = pd.DataFrame(
        {
            "id": rows["id"].to_numpy(),
            "s_nl": parts.scores,
            "pred": parts.predictions,
            "lse_id": parts.lse_id,
        }
    )
    artifacts.write_static(
        out,
        frame,
        {
            "dataset": meta.get("dataset"),
            "encoder": meta.get("encoder"),
            "scoring": dict(scoring),
            "n_images": len(frame),
            "cpu_numerics": numerics.provenance(),
        },
    )
    return frame


def _stream_static(frame: pd.DataFrame, static_id, static_ood):
    """The static results of both datasets in stream order (:class:`ants.scores.StaticScores`)."""
    from ants.scores import StaticScores

    s_id, _ = artifacts.read_static(static_id)
    s_ood, _ = artifacts.read_static(static_ood)
    rows = _stream_rows(frame, len(s_id), len(s_ood), s_id["id"], s_ood["id"], "static scores")
    both = pd.concat([s_ood, s_id], ignore_index=True)
    return StaticScores(
        both["s_nl"].to_numpy(np.float32),
        both["pred"].to_numpy(np.int64),
        both["lse_id"].to_numpy(np.float32),
    ).take(rows)


# --------------------------------------------------------------------------------------------
# plan -> answer -> encode -> replay


def plan(
    stream_file,
    id_embeddings,
    ood_embeddings,
    id_text,
    static_id,
    static_ood,
    *,
    plan: Mapping,
    stream_name: str,
    out: str | os.PathLike,
    progress: bool = False,
) -> pd.DataFrame:
    """``ants plan``: every MLLM query the ANTS stream will ask (:func:`ants.replay.plan_queries`)."""
    from ants.replay import plan_queries, write_plan

    frame, _ = artifacts.read_stream(stream_file)
    feats = _stream_features(frame, id_embeddings, ood_embeddings)
    idt, names = read_id_text(id_text, "nice")
    queries = plan_queries(
        image_features=feats,
        items=frame["path"].tolist(),
        id_text_features=idt,
        negative_features=np.zeros((1, feats.shape[1]), np.float32),
        class_names=names,
        config=dict(plan["config"]),
        batch_size=int(plan["batch_size"]),
        item_sha256=frame["sha256"].tolist(),
        static=_stream_static(frame, static_id, static_ood),
        progress=progress,
    )
    return write_plan(out, stream_name, queries, {"plan": dict(plan)})


def answer(
    plan_file: str | os.PathLike,
    answer_cfg: Mapping,
    *,
    cache: str | os.PathLike,
    out: str | os.PathLike,
    timings: str | os.PathLike | None = None,
    progress: bool = True,
    answerer=None,
) -> dict:
    """``ants answer``: answer one stream's planned queries through the cache; write its log.

    ``answer_cfg`` is :func:`ants.views.answer_config` (``mllm``: the backend config;
    ``answering``: ``max_failed_fraction`` and ``max_negative_chars``; ``parser``: the parse
    style); every key is required (``mllm`` and ``parser`` only when no ``answerer`` is given,
    which then parses the answers itself). Cache hits
    never reach the backend; every answered batch is committed to the SQLite cache at once, so
    a killed job loses nothing and a re-run asks only what is missing. More failed answers than
    ``mllm.max_failed_fraction`` fail the job (:class:`ants.mllm.base.AnswerFailureError`),
    and no log is written. The log holds no run-dependent field; answer times and cache hits
    go to ``timings`` (a JSON sidecar, outside what DVC hashes). Returns the answerer's counts.
    """
    from ants.answers_log import answer_records, write_answer_log
    from ants.mllm import build_answerer
    from ants.mllm.answering import answer_all
    from ants.replay import read_plan

    stream_name, planned = read_plan(plan_file)
    queries = [q for _, q in planned]
    answering = answer_cfg["answering"]
    if answer_cfg.get("parser") == "authors":
        log.info(
            "answers parsed in the authors' style: no length limit on negatives "
            "(mllm.max_negative_chars applies to the lenient parser only)"
        )
    if answerer is None:
        answerer = build_answerer(
            dict(answer_cfg["mllm"]),
            cache_path=cache,
            progress=progress,
            parse_style=answer_cfg["parser"],
            max_failed_fraction=float(answering["max_failed_fraction"]),
            max_negative_chars=answering["max_negative_chars"],
        )
    answers = (
        answer_all(
            queries,
            answerer,
            progress=progress,
            max_failed_fraction=answering["max_failed_fraction"],
        )
        if queries
        else []
    )
    records = answer_records(
        queries, answers, stream_id=stream_name, batch_index=[b for b, _ in planned]
    )
    write_answer_log(out, records, timings=timings if timings is not None else False)
    stats = dict(getattr(answerer, "stats", {}))
    log.info("MLLM answers of %s: %s", stream_name, stats)
    return stats


def _ants_section_config(method: Mapping):
    from ants.methods.ants_switches import ants_config

    return ants_config(
        {**dict(method["config"]), "in_score": method["in_score"]}
        if isinstance(method.get("in_score"), str)
        else dict(method["config"])
    )


def negative_texts(answers_log: str | os.PathLike, method: Mapping) -> list[tuple[str, str]]:
    """Every ``(template, text)`` the replay of this stream can encode, with the method's
    templates: the ENS sentences of its ``ok`` answers as logged (the ENS update only
    de-duplicates them) and each VSNL label in the form the bank holds it (normalised again
    per class and over the bank, :mod:`ants.mllm.parsing`)."""
    from ants.answers_log import read_answer_log
    from ants.mllm.parsing import ens_update_sentences, vsnl_bank_labels, vsnl_class_labels

    cfg = _ants_section_config(method)
    frame = read_answer_log(answers_log, timings=False)
    pairs: list[tuple[str, str]] = []
    for r in frame[frame["status"] == "ok"].itertuples():
        if r.kind == "ens":
            pairs.extend((cfg.ens_template, t) for t in ens_update_sentences(r.negatives))
        else:
            labels = vsnl_class_labels(r.negatives, cfg.answer_parser, cfg.vsnl_labels_per_class)
            pairs.extend(
                (cfg.vsnl_template, t) for t in vsnl_bank_labels(labels, cfg.answer_parser)
            )
    return list(dict.fromkeys(pairs))


def encode_negatives(
    answers_log: str | os.PathLike,
    *,
    method: Mapping,
    backbone: Mapping,
    encoding: Mapping,
    store: str | os.PathLike,
    out: str | os.PathLike,
) -> dict:
    """``ants encode-negatives``: CLIP text features of every negative in one stream's answers.

    Looked up in the content-addressed :class:`ants.text_features.TextFeatureStore`; only texts
    not yet stored are encoded (CLIP is loaded only then). Writes the stream's texts and
    features (:mod:`ants.embeddings` format, rows ``template``, ``text``) to ``out``.
    """
    return _encode_text_pairs(negative_texts(answers_log, method), backbone, encoding, store, out)


def _encode_text_pairs(
    pairs: list[tuple[str, str]],
    backbone: Mapping,
    encoding: Mapping,
    store,
    out,
    kind: str = "negative_text",
) -> dict:
    """CLIP text features of ``(template, text)`` pairs through the content-addressed store
    (only texts not yet stored are encoded), written to ``out`` (rows ``template``, ``text``;
    the :data:`ants.artifacts.ARTIFACTS` ``kind``)."""
    from ants.embeddings import write_embeddings
    from ants.text_features import TextFeatureStore, encode_texts_once, encoder_key

    identity = encoder_key(backbone, encoding["precision"])

    def make_encoder():
        encoder = _encoder(backbone, encoding)
        # one text per forward pass: a text's feature then never depends on which other texts
        # happened to be missing from the store in this job (batch composition changes the last
        # bits of a matmul), so every run writes the same bytes whatever the job order
        return lambda texts, template: encoder.encode_texts(
            list(texts), template=template, batch_size=1
        )

    with TextFeatureStore(store, identity) as st:
        pairs, feats, n_new = encode_texts_once(pairs, st, make_encoder)
    if not pairs:
        feats = np.zeros((0, 1), np.float32)
    rows = pd.DataFrame({"template": [p[0] for p in pairs], "text": [p[1] for p in pairs]})
    meta = {
        "encoder": identity,
        "n_texts": len(pairs),
    }  # nothing run-dependent: DVC hashes this file
    if pairs:
        write_embeddings(out, feats, rows, meta, kind=kind)
    else:
        artifacts.write_parquet(out, kind, rows.assign(embedding=[]), meta)
    log.info(
        "text features: %d texts, %d encoded now, %d from the store",
        len(pairs),
        n_new,
        len(pairs) - n_new,
    )
    return {**meta, "n_encoded_now": n_new}


# --------------------------------------------------------------------------------------------
# the other training-free baselines: GL-MCM's local term, EOE's envisioned labels


def local_features(
    embeddings: str | os.PathLike,
    id_text: str | os.PathLike,
    backbone: Mapping,
    encoding: Mapping,
    *,
    temperature: float,
    out: str | os.PathLike,
    max_pixels: int | None = None,
    progress: bool = True,
) -> dict:
    """``ants local-features``: GL-MCM's local term of every image of an embeddings file.

    A second pass of CLIP over the images (decoded as :func:`embed_images` does), taking the
    value-path patch features of the last block (:func:`ants.local_features.value_path_features`)
    and reducing them at once to ``l_mcm`` = :func:`ants.methods.glmcm.local_mcm` against the
    ID labels ("a photo of a {}") at ``temperature``: one number per image, plus the class of
    the best patch (``local_pred``). The global feature of the same pass must match the stored
    embedding (cosine >= 0.99), else the images or the model changed since embedding: an error.
    """
    import torch

    from ants.embeddings import read_embeddings
    from ants.encoders import _collate, _ImageFiles
    from ants.images import DEFAULT_MAX_PIXELS
    from ants.local_features import LocalFeatureError, value_path_features
    from ants.methods.glmcm import GLMCM_PROMPT, local_mcm
    from ants.progress import progress as progress_bar

    feats, rows, meta = read_embeddings(embeddings, "embeddings")
    idt, _ = read_id_text(id_text, GLMCM_PROMPT)
    encoder = _encoder(backbone, encoding)
    paths = rows["path"].tolist()
    scores = np.empty(len(paths), dtype=np.float32)
    preds = np.empty(len(paths), dtype=np.int64)
    worst = 1.0
    loader = torch.utils.data.DataLoader(
        _ImageFiles(
            paths, encoder.preprocess, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        ),
        batch_size=int(encoding["image_batch_size"]),
        shuffle=False,
        num_workers=int(encoding["num_workers"]),
        collate_fn=_collate,
    )
    with (
        progress_bar(total=len(paths), desc="local features", unit="img", enabled=progress) as bar,
        torch.inference_mode(),
        encoder._autocast(),
    ):
        for indices, pixels, bad in loader:
            if bad:
                i, message = bad[0]
                raise StageError(
                    f"{paths[i]}: {message} (it was encoded into {embeddings}; re-run embed_images)"
                )
            try:
                glob, local = value_path_features(encoder.model, pixels.to(encoder.device))
            except LocalFeatureError as exc:
                raise StageError(f"GL-MCM with backbone {dict(backbone)}: {exc}") from None
            rows_ = indices.numpy()
            glob = torch.nn.functional.normalize(glob.float(), dim=-1).cpu().numpy()
            worst = min(worst, float((glob * feats[rows_]).sum(axis=1).min()))
            scores[rows_], preds[rows_] = local_mcm(
                local.float().cpu(), idt, temperature=temperature
            )
            bar.update(len(rows_))
    if worst < 0.99:
        raise StageError(
            f"the global features of this pass differ from {embeddings} (cosine {worst:.4f} < 0.99): "
            "the images or the model changed since they were embedded; re-run embed_images"
        )
    frame = pd.DataFrame({"id": rows["id"].to_numpy(), "l_mcm": scores, "local_pred": preds})
    info = {
        "dataset": meta.get("dataset"),
        "encoder": encoder.identity(),
        "temperature": float(temperature),
        "template": ID_PROMPTS[GLMCM_PROMPT],
        "n_images": len(frame),
        "min_global_cosine": round(worst, 6),
    }
    artifacts.write_parquet(out, "local", frame, info)
    return info


def envision(
    label_set: Mapping,
    method: Mapping,
    answer_cfg: Mapping,
    *,
    cache: str | os.PathLike,
    out: str | os.PathLike,
    stream_name: str,
    timings: str | os.PathLike | None = None,
    progress: bool = True,
    answerer=None,
) -> dict:
    """``ants envision``: EOE's LLM questions for one label set (:func:`ants.methods.eoe.envision`),
    answered through the MLLM backend and the answer cache (text only), written as an answers
    log like an ANTS stream's (``stream_id`` = ``stream_name``; answer times to ``timings``).
    ``method``: the EOE method section (``task``, ``n_envisioned``, ``class_type``, ``parser``);
    ``answer_cfg``: :func:`ants.views.eoe_answer_config`. A failed answer fails the job (a
    later turn needs the earlier ones); a re-run asks only what the cache lacks."""
    from ants.answers_log import answer_records, write_answer_log
    from ants.methods.eoe import envision as ask
    from ants.mllm import build_answerer

    names = _label_names(label_set)
    answering = answer_cfg["answering"]
    if answerer is None:
        answerer = build_answerer(
            dict(answer_cfg["mllm"]),
            cache_path=cache,
            progress=progress,
            parse_style=method["parser"],
            max_failed_fraction=0.0,
            max_negative_chars=answering.get("max_negative_chars"),
        )
    asked = ask(
        names,
        answerer,
        task=method["task"],
        n_envisioned=int(method["n_envisioned"]),
        class_type=method.get("class_type"),
    )
    queries = [q for q, _ in asked]
    answers = [a for _, a in asked]
    records = answer_records(
        queries, answers, stream_id=stream_name, batch_index=list(range(1, len(queries) + 1))
    )
    write_answer_log(out, records, timings=timings if timings is not None else False)
    stats = dict(getattr(answerer, "stats", {}))
    log.info("EOE answers of %s: %s", stream_name, stats)
    return stats


def encode_envisioned(
    answers_log: str | os.PathLike,
    label_set: Mapping,
    method: Mapping,
    backbone: Mapping,
    encoding: Mapping,
    *,
    store: str | os.PathLike,
    out: str | os.PathLike,
) -> dict:
    """``ants encode-envisioned``: the text features ("a photo of a {}") of the labels EOE
    scores with (:func:`ants.methods.eoe.envisioned_labels` of the log's ``ok`` answers)."""
    from ants.answers_log import read_answer_log
    from ants.methods.eoe import EOE_PROMPT, envisioned_labels

    frame = read_answer_log(answers_log, timings=False)
    ok = frame[frame["status"] == "ok"]
    labels = envisioned_labels(list(ok["negatives"]), _label_names(label_set), method["task"])
    log.info("EOE: %d envisioned labels from %d ok answers", len(labels), len(ok))
    template = ID_PROMPTS[EOE_PROMPT]
    return _encode_text_pairs(
        [(template, x) for x in labels], backbone, encoding, store, out, kind="envisioned_text"
    )


# --------------------------------------------------------------------------------------------
# scoring


class _StreamInputs:
    """Lazy, stream-ordered inputs of one score job (what :class:`ants.methods.MethodSpec`
    ``score`` functions read): each file is read only when a method asks for it."""

    def __init__(
        self,
        stream_file,
        *,
        id_embeddings=None,
        ood_embeddings=None,
        id_text=None,
        negatives=None,
        static_id=None,
        static_ood=None,
        answers=None,
        negative_text=None,
        local_id=None,
        local_ood=None,
        envisioned=None,
        batch_size: int,
        stream_name: str = "",
        progress: bool = False,
    ) -> None:
        self.frame, self.meta = artifacts.read_stream(stream_file)
        self._files = {
            "id": id_embeddings,
            "ood": ood_embeddings,
            "text": id_text,
            "negatives": negatives,
            "static_id": static_id,
            "static_ood": static_ood,
            "answers": answers,
            "negative_text": negative_text,
            "local_id": local_id,
            "local_ood": local_ood,
            "envisioned": envisioned,
        }
        self.batch_size = int(batch_size)
        self.stream_name = stream_name
        self.progress = progress
        self.items = self.frame["path"].tolist()
        self.sha256 = self.frame["sha256"].tolist()

    def _need(self, key: str, what: str):
        path = self._files[key]
        if path is None:
            raise StageError(f"this method needs {what} (--{key.replace('_', '-')})")
        return path

    @functools.cached_property
    def features(self) -> np.ndarray:
        return _stream_features(
            self.frame,
            self._need("id", "the ID embeddings"),
            self._need("ood", "the OOD embeddings"),
        )

    def id_text(self, prompt: str):
        return read_id_text(self._need("text", "the ID text features"), prompt)

    @functools.cached_property
    def negatives(self) -> np.ndarray:
        return _negative_features(self._need("negatives", "the mined negatives"))

    @functools.cached_property
    def static(self):
        return _stream_static(
            self.frame,
            self._need("static_id", "the ID static scores"),
            self._need("static_ood", "the OOD static scores"),
        )

    @functools.cached_property
    def local(self) -> np.ndarray:
        """GL-MCM's local term of each stream sample (``ants local-features`` of both sets)."""
        l_id, _ = artifacts.read_parquet(self._need("local_id", "the ID local features"), "local")
        l_ood, _ = artifacts.read_parquet(
            self._need("local_ood", "the OOD local features"), "local"
        )
        rows = _stream_rows(
            self.frame, len(l_id), len(l_ood), l_id["id"], l_ood["id"], "local features"
        )
        return pd.concat([l_ood, l_id], ignore_index=True)["l_mcm"].to_numpy(np.float32)[rows]

    @functools.cached_property
    def envisioned(self) -> np.ndarray:
        """The text features of EOE's envisioned labels (``ants encode-envisioned``)."""
        path = self._need("envisioned", "the envisioned labels' text features")
        pairs, feats = artifacts.read_negative_text(path, "envisioned_text")
        return feats if pairs else np.zeros((0, self.features.shape[1]), np.float32)

    @functools.cached_property
    def answerer(self):
        from ants.answers_log import answer_map
        from ants.replay import ReplayAnswerer

        return ReplayAnswerer(answer_map(self._need("answers", "the stream's answers log")))

    @functools.cached_property
    def encode_text(self):
        from ants.text_features import lookup_encoder

        path = self._need("negative_text", "the text features of the stream's negatives")
        pairs, feats = artifacts.read_negative_text(path)
        return lookup_encoder(pairs, feats, source=str(path))


def _mllm_models(answers_file: str | os.PathLike) -> list[dict]:
    """The MLLMs (backend, model id, revision) behind an answers log, sorted."""
    from ants.answers_log import read_answer_log

    cols = ["backend", "model_id", "revision"]
    frame = read_answer_log(answers_file, timings=False)[cols].drop_duplicates()
    return frame.sort_values(cols).astype(object).where(frame.notna(), None).to_dict("records")


def score(
    stream_file,
    *,
    method: Mapping,
    out: str | os.PathLike,
    stream_name: str = "",
    progress: bool = False,
    **files,
) -> pd.DataFrame:
    """``ants score``: run one detector over one stream and write the per-sample scores.

    ``method`` is :func:`ants.views.method_config` (its ``method`` key picks the detector in
    :data:`ants.methods.METHODS`); ``files`` are the inputs that detector reads
    (``id_embeddings``, ``ood_embeddings``, ``id_text``, ``negatives``, ``static_id``,
    ``static_ood``, ``answers``, ``negative_text``): ANTS replays the stream's answers log with
    the negatives' precomputed text features, so no score job loads CLIP.
    """
    from ants.methods import method_spec

    spec = method_spec(method["method"])
    inputs = _StreamInputs(
        stream_file,
        batch_size=int(method["batch_size"]),
        stream_name=stream_name,
        progress=progress,
        **files,
    )
    result = spec.score(method, inputs)
    trace = None
    if spec.uses_answers:
        t = result.trace
        trace = {
            "batch": t.batch,
            "threshold": t.threshold,
            "lambda": t.lam,
            "n_candidates": t.n_candidates,
            "ens_size": t.ens_size,
            "vsnl_size": t.vsnl_size,
            "ens_update": t.ens_update,
            "vsnl_update": t.vsnl_update,
            "ens_sentences": t.ens_sentences[:50],
            "vsnl_labels": t.vsnl_labels[:50],
        }
    frame = inputs.frame
    table = pd.DataFrame(
        {
            "position": frame["position"].to_numpy(),
            "id": frame["id"].to_numpy(),
            "batch": frame["batch"].to_numpy(),
            "is_ood": frame["is_ood"].to_numpy(),
            "label": frame["label"].to_numpy(),
            "pred": np.asarray(result.predictions, dtype=np.int64),
            "score": np.asarray(result.scores, dtype=np.float32),
        }
    )
    for name, values in sorted((result.variants or {}).items()):
        table[f"v_{name}"] = np.asarray(values, dtype=np.float32)
    meta = {
        "stream_id": stream_name,
        "method": dict(method),
        "stream": inputs.meta,
        "trace": trace,
        "cpu_numerics": numerics.provenance(),
    }
    if spec.uses_answers and files.get("answers"):
        meta["mllm"] = _mllm_models(files["answers"])  # CLIP's: meta["stream"]["encoder"]
    artifacts.write_scores(out, table, meta)
    return table


# --------------------------------------------------------------------------------------------
# metrics


def _stat_columns() -> list[str]:
    """The metric tables' columns after the row keys: each metric (percent) and its std over
    the seeds, then the number of seeds."""
    from ants.metrics import METRIC_KEYS

    return [k for key in METRIC_KEYS for k in (key, f"{key}_std")] + ["n_seeds"]


def _stream_metrics(frame: pd.DataFrame, metrics: Mapping, column: str = "score") -> dict:
    """:func:`ants.metrics.stream_metrics` of one score table (``column``: the score used),
    with the ``metrics`` section's recall level and FPR95 ROC points."""
    from ants.metrics import stream_metrics

    return stream_metrics(
        frame["is_ood"].to_numpy(),
        frame[column].to_numpy(np.float64),
        frame["pred"].to_numpy(),
        frame["label"].to_numpy(),
        recall_level=float(metrics["recall_level"]),
        roc_points=metrics["fpr95_roc"],
    )


def _rows(
    per: Mapping, view: Mapping, bench: str, methods: Sequence[str], extra: Mapping
) -> list[dict]:
    """The metric-table rows of one benchmark (:func:`ants.metrics.summary_rows`) with the
    benchmark, each method's label and the ``extra`` keys."""
    from ants.metrics import summary_rows
    from ants.views import ood_sets

    labels = {m: view["methods"].get(m, {}).get("label", m) for m in methods}
    return [
        {
            "benchmark": bench,
            "method": method,
            "label": labels[method],
            **extra,
            "dataset": dataset,
            "split": split,
            **stats,
        }
        for method, dataset, split, stats in summary_rows(per, ood_sets(view, bench), methods)
    ]


def compute_metrics(
    score_files: Mapping[tuple[str, str, str, int], str | os.PathLike],
    *,
    params: Mapping,
    out_json: str | os.PathLike,
    out_dir: str | os.PathLike,
    out_trace: str | os.PathLike | None = None,
) -> dict:
    """``ants compute-metrics``: per-stream metrics -> mean and std over seeds, per dataset and
    split average (:mod:`ants.metrics`).

    ``score_files`` maps ``(benchmark, method, ood, seed)`` to a score file. Values in the
    outputs are percentages (x100) except the counts; ``*_std`` is the population standard
    deviation over the seeds (ddof=0). Writes ``{out_dir}/{benchmark}.csv`` (every metric with
    its std and ``n_seeds``, per dataset and ``{split}_average``), ``{out_dir}/{benchmark}_variants.csv``
    (the ANTS methods' :data:`ants.metrics.ANTS_VARIANTS`, column ``variant``; no rows without
    ANTS), ``out_json``, the DVC metrics file: the headline numbers only, benchmark -> method ->
    split (``far`` / ``near``) -> ``auroc``, ``fpr95`` (:func:`ants.metrics.headline_metrics` of
    the CSV as written: the tables' split averages, digit for digit) and, when given, ``out_trace``
    (:func:`trace_table`). Returns what ``out_json`` holds.
    """
    from ants.metrics import ANTS_VARIANTS, headline_metrics, variant_column
    from ants.views import ood_sets

    metrics = params["metrics"]
    per: dict[str, dict] = {}
    per_variant: dict[tuple[str, str], dict] = {}
    for (bench, method, ood, seed), path in sorted(score_files.items()):
        frame, _ = artifacts.read_scores(path)
        per.setdefault(bench, {}).setdefault((method, ood), {})[int(seed)] = _stream_metrics(
            frame, metrics
        )
        if "v_far_only" in frame.columns:
            split = dict((o, s) for s, o in ood_sets(params, bench)).get(ood, "far")
            for variant in ANTS_VARIANTS:
                per_variant.setdefault((bench, variant), {}).setdefault((method, ood), {})[
                    int(seed)
                ] = _stream_metrics(frame, metrics, variant_column(variant, split))

    headline: dict = {}
    keys = ("benchmark", "method", "label", "dataset", "split")
    for bench in sorted(per):
        methods = [m for m in params["run"]["methods"] if any(k[0] == m for k in per[bench])]
        rows = _rows(per[bench], params, bench, methods, {})
        artifacts.write_csv(Path(out_dir) / f"{bench}.csv", pd.DataFrame(rows))
        # the split averages as the tables read them, digit for digit
        table = artifacts.read_metrics_csv(out_dir, bench)
        headline.update(headline_metrics(table.to_dict("records")))
        vrows = []
        for variant in ANTS_VARIANTS:
            if (bench, variant) in per_variant:
                vrows += _rows(
                    per_variant[(bench, variant)], params, bench, methods, {"variant": variant}
                )
        columns = [*keys[:3], "variant", *keys[3:], *_stat_columns()]
        artifacts.write_csv(
            Path(out_dir) / f"{bench}_variants.csv", pd.DataFrame(vrows, columns=columns)
        )
    artifacts.write_metrics_json(out_json, headline)
    if out_trace is not None:
        artifacts.write_csv(out_trace, trace_table(score_files))
    return headline


def sweep_metrics(view: Mapping, out: str | os.PathLike) -> pd.DataFrame:
    """``ants sweep-metrics``: one row per (point, method, dataset or split average) of a sweep.

    ``view`` is :func:`ants.views.sweep_view`: ``sweep``, ``setting``, ``points`` (each:
    ``method``, ``value``, ``label``, ``is_default``, ``files`` = ``[benchmark, ood, seed, score
    file]``) plus :func:`ants.views.metrics_view`. Columns: sweep, setting, value (the x-axis
    label), is_default, benchmark, method, label, dataset, split, then every metric with its
    ``_std`` over the seeds and ``n_seeds`` (percentages, as :func:`compute_metrics`).
    """
    rows = []
    for point in view["points"]:
        per: dict[str, dict] = {}
        for bench, ood, seed, path in point["files"]:
            frame, _ = artifacts.read_scores(path)
            per.setdefault(bench, {}).setdefault((point["method"], ood), {})[int(seed)] = (
                _stream_metrics(frame, view["metrics"])
            )
        for bench, entries in sorted(per.items()):
            extra = {
                "sweep": view["sweep"],
                "setting": view["setting"],
                "value": point["label"],
                "is_default": bool(point["is_default"]),
            }
            rows += _rows(entries, view, bench, [point["method"]], extra)
    columns = [
        "sweep",
        "setting",
        "value",
        "is_default",
        "benchmark",
        "method",
        "label",
        "dataset",
        "split",
        *_stat_columns(),
    ]
    frame = pd.DataFrame(rows)
    frame = (
        frame[[c for c in columns if c in frame.columns]] if rows else pd.DataFrame(columns=columns)
    )
    artifacts.write_csv(out, frame)
    return frame


def trace_table(score_files: Mapping[tuple[str, str, str, int], str | os.PathLike]) -> pd.DataFrame:
    """Per-batch ANTS state (threshold, lambda, bank sizes) of every ANTS score file
    (``results/plots/ants_trace.csv``; read from the score files' metadata only)."""
    rows = []
    for (bench, method, ood, seed), path in sorted(score_files.items()):
        trace = artifacts.read_parquet_metadata(path, "scores").get("trace")
        if not trace:
            continue
        for i, b in enumerate(trace["batch"]):
            rows.append(
                {
                    "benchmark": bench,
                    "method": method,
                    "ood": ood,
                    "seed": int(seed),
                    "batch": int(b),
                    "threshold": trace["threshold"][i],
                    "lambda": trace["lambda"][i],
                    "ens_size": trace["ens_size"][i],
                    "vsnl_size": trace["vsnl_size"][i],
                }
            )
    return pd.DataFrame(rows, columns=list(artifacts.ARTIFACTS["trace_csv"].column_names))
