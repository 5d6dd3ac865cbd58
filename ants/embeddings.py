"""Embedding tables: one Parquet file per (backbone, dataset), written atomically.

Layout
------
* One row per item. The caller's row columns (e.g. ``id``, ``path``, ``label``, ``dataset``)
  are stored as they are, plus a column ``embedding`` of Arrow type
  ``fixed_size_list<float32>[d]`` holding the feature vector.
* The caller's metadata dict (e.g. the encoder's ``identity()``) is stored as canonical JSON
  (:func:`ants._io.canonical_json`: sorted keys, no whitespace, no NaN) in the Parquet schema
  metadata under the key ``b"ants"``; pandas' own schema metadata is kept too, so row columns
  come back with their dtypes. Reading accepts any JSON object there (files written before the
  canonical form, with ``", "`` separators, read the same).
* Writes are atomic: the table goes to a temporary file in the target directory, is fsynced
  and then renamed over the target with ``os.replace``, so a reader (or a crashed run) never
  sees a half-written file.
* Reading turns the embedding column into one contiguous float32 ``(n, d)`` array from the
  Arrow buffer (no Python loop over rows), after the checks every artifact reader makes
  (:mod:`ants.artifacts`: readable, the columns of its kind, the row count of its metadata).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ants._io import METADATA_KEY, atomic_path, canonical_json
from ants.artifacts import artifact_error, check_frame, open_parquet, read_arrow, resolve_kind

__all__ = [
    "EMBEDDING_COLUMN",
    "METADATA_KEY",
    "read_embeddings",
    "read_embeddings_metadata",
    "write_embeddings",
]

EMBEDDING_COLUMN = "embedding"


def _check_features(features: Any) -> np.ndarray:
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise ValueError(
            f"features must be a 2-D array (rows = items, columns = dims), got shape {arr.shape}"
        )
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"features must be real numbers, got dtype {arr.dtype}")
    if arr.shape[1] < 1:
        raise ValueError(f"features must have at least one column, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"features contain NaN or infinite values in {rows.size} row(s), first at row {int(rows[0])}"
        )
    return arr


def _encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return canonical_json(dict(metadata)).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"metadata must be JSON-serialisable (str/number/bool/None/list/dict): {exc}"
        ) from exc


def write_embeddings(
    path: str | os.PathLike,
    features: Any,
    rows: pd.DataFrame,
    metadata: Mapping[str, Any],
    kind: str | None = None,
) -> Path:
    """Write ``features`` (n, d) with ``rows`` (n rows) and ``metadata`` to a Parquet file.

    ``kind``: the artifact (:data:`ants.artifacts.ARTIFACTS`) it is, whose declared columns and
    row count are checked first (:func:`ants.artifacts.check_frame`).

    ``features`` are stored as float32; ``rows``' columns are stored as they are (the index
    is not stored) and must not include ``"embedding"``; ``metadata`` must be JSON-serialisable.
    The parent directory is created if needed. The write is atomic (temporary file in the same
    directory, fsync, ``os.replace``); on failure nothing is left behind and an existing file
    at ``path`` is untouched. Returns the path written.
    """
    path = Path(path)
    arr = _check_features(features)
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"rows must be a pandas DataFrame, got {type(rows).__name__}")
    if len(rows) != arr.shape[0]:
        raise ValueError(
            f"features and rows differ in length: {arr.shape[0]} feature rows but {len(rows)} table rows"
        )
    if EMBEDDING_COLUMN in rows.columns:
        raise ValueError(
            f"rows must not have a column named {EMBEDDING_COLUMN!r}: it holds the features"
        )
    if rows.shape[1] == 0:
        raise ValueError(
            "rows must have at least one column (e.g. an item id) besides the features"
        )
    bad_names = [c for c in rows.columns if not isinstance(c, str)]
    if bad_names:
        raise ValueError(f"row column names must be strings, got {bad_names!r}")
    meta_bytes = _encode_metadata(metadata)
    if kind is not None:
        check_frame(kind, rows, metadata)

    table = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
    n, d = arr.shape
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), type=pa.float32()), d)
    table = table.append_column(
        pa.field(EMBEDDING_COLUMN, embedding.type, nullable=False), embedding
    )
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[METADATA_KEY] = meta_bytes
    table = table.replace_schema_metadata(schema_meta)

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_embeddings_metadata(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """The metadata dict of an embedding file, read from the schema only (no data pages);
    the schema is checked as :func:`read_embeddings` says."""
    return open_parquet(path, kind)[1]


def read_embeddings(
    path: str | os.PathLike, kind: str | None = None
) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Read an embedding table written by :func:`write_embeddings`.

    Returns ``(features, rows, metadata)``: a C-contiguous, writable float32 array (n, d); a
    DataFrame of the other columns (RangeIndex); the metadata dict. ``kind``: the artifact
    (:data:`ants.artifacts.ARTIFACTS`: ``embeddings``, ``id_text``, ``negatives``,
    ``negative_text``) whose columns and row count are checked too; None: the one the path says
    when it lies in a workflow's ``results/``, else any embedding table. A missing, empty, cut
    short or foreign file, a missing column or metadata, a wrong type, null features or a row
    count other than the metadata's raise :class:`ants.artifacts.ArtifactError` (one line: the
    file, the problem, how to rebuild it).
    """
    path = Path(path)
    table, meta = read_arrow(path, kind)
    kind = resolve_kind(path, kind)
    column = table.column(EMBEDDING_COLUMN).combine_chunks()
    n, d = len(column), column.type.list_size
    if column.null_count:
        raise artifact_error(
            path, f"column {EMBEDDING_COLUMN!r} has {column.null_count} null entries", kind
        )
    flat = column.flatten()  # honours the array offset; no per-row work
    if len(flat) != n * d or flat.null_count:
        raise artifact_error(
            path, f"column {EMBEDDING_COLUMN!r} holds null or missing values", kind
        )
    features = np.array(flat.to_numpy(zero_copy_only=False), dtype=np.float32, copy=True).reshape(
        n, d
    )

    rows = table.drop_columns([EMBEDDING_COLUMN]).to_pandas()
    if not isinstance(rows.index, pd.RangeIndex):
        rows = rows.reset_index(drop=True)
    return features, rows, meta
