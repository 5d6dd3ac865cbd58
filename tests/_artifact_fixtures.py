"""One valid file of every Parquet artifact kind, written by its own writer, with its reader
(``PARQUET``): what the damaged-file and the killed-writer tests start from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ants import artifacts

D = 4


def _unit(rng, n):
    x = rng.normal(size=(n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- one valid file of every Parquet kind, written by its own writer -------------------------------


def _manifest(path):
    frame = pd.DataFrame(
        {
            "id": ["d/a.png", "d/b.png"],
            "path": ["a.png", "b.png"],
            "label": [0, 1],
            "class_name": ["cat", "dog"],
            "sha256": ["s1", "s2"],
            "readable": [True, False],
            "error": ["", "OSError: broken"],
        }
    )
    artifacts.write_manifest(path, frame, {"dataset": "d", "n_unreadable": 1})


def _embeddings(path):
    from ants.embeddings import write_embeddings

    rows = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "path": ["a", "b", "c"],
            "label": [0, 1, -1],
            "sha256": ["1", "2", "3"],
        }
    )
    write_embeddings(
        path,
        _unit(np.random.default_rng(0), 3),
        rows,
        {"dataset": "d", "n_images": 3},
        kind="embeddings",
    )


def _id_text(path):
    from ants.embeddings import write_embeddings

    prompts = artifacts.ID_PROMPTS  # one row per class and prompt
    rows = pd.DataFrame(
        {
            "class_index": [0, 1] * len(prompts),
            "class_name": ["cat", "dog"] * len(prompts),
            "prompt": [p for p in prompts for _ in (0, 1)],
            "template": [tpl for tpl in prompts.values() for _ in (0, 1)],
        }
    )
    write_embeddings(
        path, _unit(np.random.default_rng(1), len(rows)), rows, {"n_classes": 2}, kind="id_text"
    )


def _negatives(path):
    from ants.mining import MinedNegatives

    table = pd.DataFrame(
        {
            "label": ["x", "y", "z"],
            "kind": ["noun"] * 3,
            "stat": [0.1, 0.2, 0.3],
            "max_id_cos": [0.5, 0.4, 0.3],
        }
    )
    MinedNegatives(table, _unit(np.random.default_rng(2), 3), {"selected": {"noun": 3}}).save(path)


def _static(path):
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "s_nl": np.float32([0.1, 0.5, 0.9]),
            "pred": [0, 1, 0],
            "lse_id": np.float32([1.0, 2.0, 3.0]),
        }
    )
    artifacts.write_static(path, frame, {"n_images": 3})


def _stream(path):
    frame = pd.DataFrame(
        {
            "position": [0, 1, 2],
            "batch": [1, 1, 2],
            "is_ood": [True, False, False],
            "source": [0, 0, 1],
            "id": ["o", "a", "b"],
            "path": ["o", "a", "b"],
            "sha256": ["3", "1", "2"],
            "label": [-1, 0, 1],
        }
    )
    artifacts.write_stream(path, frame, {"n_id": 2, "n_ood": 1, "seed": 0, "batch_size": 2})


def _plan(path):
    from ants.mllm.base import Query
    from ants.replay import write_plan

    queries = [(1, Query("ens", "cat", "a.png", "s1")), (2, Query("vsnl", "dog"))]
    write_plan(path, "b/m/o/seed0", queries)


def _answers(path):
    from ants.answers_log import answer_records, write_answer_log
    from ants.mllm.base import Answer, Query

    queries = [Query("ens", "cat", "a.png", "s1"), Query("vsnl", "dog")]
    answers = [Answer("A red kite.", ("A red kite",)), Answer("1. wolf", ("wolf",))]
    write_answer_log(
        path,
        answer_records(queries, answers, stream_id="b/m/o/seed0", batch_index=[1, 2]),
        timings=False,
    )


def _negative_text(path):
    from ants.embeddings import write_embeddings

    rows = pd.DataFrame({"template": ["{}", "The nice {}."], "text": ["A red kite", "wolf"]})
    write_embeddings(
        path, _unit(np.random.default_rng(3), 2), rows, {"n_texts": 2}, kind="negative_text"
    )


def _scores(path):
    frame = pd.DataFrame(
        {
            "position": [0, 1, 2],
            "id": ["o", "a", "b"],
            "batch": [1, 1, 2],
            "is_ood": [True, False, False],
            "label": [-1, 0, 1],
            "pred": [0, 0, 1],
            "score": np.float32([0.1, 0.8, 0.7]),
        }
    )
    artifacts.write_scores(
        path, frame, {"stream_id": "b/m/o/seed0", "stream": {"n_id": 2, "n_ood": 1}}
    )


def _read_embeddings(kind):
    from ants.embeddings import read_embeddings

    return lambda path: read_embeddings(path, kind)


def _read_plan(path):
    from ants.replay import read_plan

    return read_plan(path)


def _read_answers(path):
    from ants.answers_log import read_answer_log

    return read_answer_log(path)


def _read_negatives(path):
    from ants.mining import MinedNegatives

    return MinedNegatives.load(path)


#: kind -> (writer, the reader, wildcards, (a column to drop, a column to retype, its new type),
#:          (metadata key path to bump, the row-count text) or None)
PARQUET = {
    "manifest": (
        _manifest,
        artifacts.read_manifest,
        {"dataset": "d"},
        ("sha256", "readable", pa.string()),
        None,
    ),
    "embeddings": (
        _embeddings,
        _read_embeddings("embeddings"),
        {"backbone": "bb", "dataset": "d"},
        ("id", "label", pa.string()),
        ("n_images", "n_images"),
    ),
    "id_text": (
        _id_text,
        artifacts.read_id_text,
        {"backbone": "bb", "label_set": "ls"},
        ("prompt", "class_index", pa.float64()),
        ("n_classes", f"n_classes x {len(artifacts.ID_PROMPTS)} prompts"),
    ),
    "negatives": (
        _negatives,
        _read_negatives,
        {"backbone": "bb", "label_set": "ls"},
        ("stat", "stat", pa.string()),
        ("mining.selected.noun", "the sum of mining.selected"),
    ),
    "static": (
        _static,
        artifacts.read_static,
        {"backbone": "bb", "label_set": "ls", "dataset": "d", "scoring": "size10-tau0.01-seed0"},
        ("lse_id", "pred", pa.float64()),
        ("n_images", "n_images"),
    ),
    "stream": (
        _stream,
        artifacts.read_stream,
        {"benchmark": "b", "ood": "o", "stream_key": "shuffled-bs2", "seed": 0},
        ("batch", "is_ood", pa.int64()),
        ("n_ood", "n_id + n_ood"),
    ),
    "plan": (
        _plan,
        _read_plan,
        {"benchmark": "b", "method": "m", "ood": "o", "seed": 0},
        ("kind", "batch_index", pa.string()),
        ("n_queries", "n_queries"),
    ),
    "answers": (
        _answers,
        _read_answers,
        {"benchmark": "b", "method": "m", "ood": "o", "seed": 0},
        ("status", "negatives", pa.string()),
        None,
    ),
    "negative_text": (
        _negative_text,
        artifacts.read_negative_text,
        {"benchmark": "b", "method": "m", "ood": "o", "seed": 0},
        ("text", "template", pa.int64()),
        ("n_texts", "n_texts"),
    ),
    "scores": (
        _scores,
        artifacts.read_scores,
        {"benchmark": "b", "method": "m", "ood": "o", "seed": 0},
        ("score", "score", pa.string()),
        ("stream.n_ood", "stream n_id + n_ood"),
    ),
}
