"""Parquet embedding tables: round trips, the on-disk layout, atomic writes, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ants.embeddings as emb
from ants.artifacts import ArtifactError
from ants.embeddings import (
    read_embeddings,
    read_embeddings_metadata,
    write_embeddings,
)

#: how the readers end their one-line error for an embedding table outside any workflow
ELSEWHERE = "Rebuild it: write it again with the command that made it"


def error(path, problem: str) -> str:
    """The exact message of an unusable embedding table (a regex)."""
    import re

    return "^" + re.escape(f"{path} (embedding table): {problem}. {ELSEWHERE}") + "$"

META = {"model": "tiny", "seed": 0, "preprocessing": {"size": [32, 32], "mean": [0.5, 0.5, 0.5]}, "note": None}


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(7, 5)).astype(np.float32)
    rows = pd.DataFrame({
        "id": np.arange(100, 107, dtype=np.int64),
        "path": [f"images/{i}.jpg" for i in range(7)],
        "label": np.array([0, 1, 1, 2, 0, 2, 1], dtype=np.int32),
        "dataset": pd.Categorical(["id", "id", "ood", "ood", "id", "ood", "id"]),
        "weight": np.linspace(0, 1, 7),
    })
    return feats, rows


def test_round_trip_values_dtypes_metadata(tmp_path, table):
    feats, rows = table
    path = write_embeddings(tmp_path / "e.parquet", feats, rows, META)
    got, got_rows, meta = read_embeddings(path)
    assert np.array_equal(got, feats)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.flags.writeable
    pd.testing.assert_frame_equal(got_rows, rows)
    assert meta == META


def test_on_disk_layout_read_independently(tmp_path, table):
    feats, rows = table
    path = write_embeddings(tmp_path / "e.parquet", feats, rows, META)
    raw = pq.read_table(path)
    assert raw.schema.field("embedding").type == pa.list_(pa.float32(), 5)
    assert raw.column_names == ["id", "path", "label", "dataset", "weight", "embedding"]
    assert json.loads(raw.schema.metadata[b"ants"]) == META
    # row by row through Python lists: an independent route to the same numbers
    assert raw.column("embedding").to_pylist() == feats.tolist()
    assert read_embeddings_metadata(path) == META


def test_float64_features_are_stored_as_float32(tmp_path, table):
    feats, rows = table
    write_embeddings(tmp_path / "e.parquet", feats.astype(np.float64) / 3, rows, {})
    got, _, meta = read_embeddings(tmp_path / "e.parquet")
    assert got.dtype == np.float32 and meta == {}
    assert np.array_equal(got, (feats.astype(np.float64) / 3).astype(np.float32))


def test_index_is_not_stored_and_parent_is_created(tmp_path, table):
    feats, rows = table
    path = tmp_path / "a" / "b" / "e.parquet"
    write_embeddings(path, feats, rows.set_index(rows["id"] * 10), META)
    _, got_rows, _ = read_embeddings(path)
    assert isinstance(got_rows.index, pd.RangeIndex)
    assert got_rows["id"].tolist() == list(range(100, 107))


def test_empty_table_round_trip(tmp_path):
    rows = pd.DataFrame({"id": pd.Series([], dtype="int64")})
    write_embeddings(tmp_path / "e.parquet", np.zeros((0, 3), np.float32), rows, META)
    got, got_rows, _ = read_embeddings(tmp_path / "e.parquet")
    assert got.shape == (0, 3) and got.dtype == np.float32 and len(got_rows) == 0


def test_many_row_groups_read_as_one_array(tmp_path, table):
    """A file written in small row groups (chunked column) reads back as one (n, d) array."""
    feats, rows = table
    write_embeddings(tmp_path / "e.parquet", feats, rows, META)
    raw = pq.read_table(tmp_path / "e.parquet")
    pq.write_table(raw, tmp_path / "chunked.parquet", row_group_size=3)
    assert pq.ParquetFile(tmp_path / "chunked.parquet").num_row_groups == 3
    got, got_rows, meta = read_embeddings(tmp_path / "chunked.parquet")
    assert np.array_equal(got, feats) and meta == META
    pd.testing.assert_frame_equal(got_rows, rows)


def test_overwrite_replaces_the_file(tmp_path, table):
    feats, rows = table
    path = tmp_path / "e.parquet"
    write_embeddings(path, feats, rows, {"v": 1})
    write_embeddings(path, feats[:2] * 2, rows.iloc[:2], {"v": 2})
    got, got_rows, meta = read_embeddings(path)
    assert np.array_equal(got, feats[:2] * 2) and len(got_rows) == 2 and meta == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.parquet"]


# ---------------------------------------------------------------- atomicity


def _half_write_then_fail(table, where, **kwargs):
    with open(where, "wb") as fh:
        fh.write(b"PAR1 partial bytes")
    raise OSError("disk full (simulated)")


def test_failure_mid_write_leaves_nothing(tmp_path, table, monkeypatch):
    feats, rows = table
    monkeypatch.setattr(emb.pq, "write_table", _half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_embeddings(tmp_path / "e.parquet", feats, rows, META)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_keeps_the_old_file(tmp_path, table, monkeypatch):
    feats, rows = table
    path = write_embeddings(tmp_path / "e.parquet", feats, rows, {"v": 1})
    before = path.read_bytes()
    monkeypatch.setattr(emb.pq, "write_table", _half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_embeddings(path, feats * 2, rows, {"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["e.parquet"]


def test_failed_rename_removes_the_temp_file(tmp_path, table, monkeypatch):
    feats, rows = table

    def no_replace(src, dst):
        raise PermissionError(f"cannot rename {src}")

    monkeypatch.setattr(emb.os, "replace", no_replace)
    with pytest.raises(PermissionError):
        write_embeddings(tmp_path / "e.parquet", feats, rows, META)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- write errors


@pytest.mark.parametrize(
    ("features", "match"),
    [
        (np.zeros(7, np.float32), r"features must be a 2-D array .*got shape \(7,\)"),
        (np.zeros((7, 2, 2), np.float32), r"features must be a 2-D array .*got shape \(7, 2, 2\)"),
        (np.zeros((7, 0), np.float32), r"at least one column, got shape \(7, 0\)"),
        (np.zeros((7, 2), bool), "features must be real numbers, got dtype bool"),
        (np.full((7, 2), "a"), "features must be real numbers"),
        (np.where(np.eye(7, 2) > 0, np.nan, 0.0), r"NaN or infinite values in 2 row\(s\), first at row 0"),
        (np.zeros((6, 2), np.float32), "features and rows differ in length: 6 feature rows but 7 table rows"),
    ],
)
def test_write_rejects_bad_features(tmp_path, table, features, match):
    _, rows = table
    with pytest.raises((ValueError, TypeError), match=match):
        write_embeddings(tmp_path / "e.parquet", features, rows, META)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_bad_rows_and_metadata(tmp_path, table):
    feats, rows = table
    out = tmp_path / "e.parquet"
    with pytest.raises(TypeError, match="rows must be a pandas DataFrame, got dict"):
        write_embeddings(out, feats, {"id": list(range(7))}, META)
    with pytest.raises(ValueError, match="rows must not have a column named 'embedding'"):
        write_embeddings(out, feats, rows.assign(embedding=0), META)
    with pytest.raises(ValueError, match="rows must have at least one column"):
        write_embeddings(out, feats, pd.DataFrame(index=range(7)), META)
    with pytest.raises(ValueError, match=r"row column names must be strings, got \[0\]"):
        write_embeddings(out, feats, pd.DataFrame({0: range(7)}), META)
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        write_embeddings(out, feats, rows, {"bad": {1, 2}})
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        write_embeddings(out, feats, rows, {"bad": float("nan")})
    with pytest.raises(TypeError, match="metadata must be a dict, got list"):
        write_embeddings(out, feats, rows, [1, 2])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- read errors


def test_read_missing_file(tmp_path):
    path = tmp_path / "nope.parquet"
    with pytest.raises(FileNotFoundError, match=error(path, "does not exist")):
        read_embeddings(path)


def test_read_non_parquet(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ArtifactError, match=error(path, "not a Parquet file, or cut short (no Parquet footer)")):
        read_embeddings(path)


def _write_raw(path, columns, metadata):
    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata({b"ants": metadata})
    pq.write_table(table, path)
    return path


def test_read_without_embedding_column(tmp_path):
    path = _write_raw(tmp_path / "x.parquet", {"id": [1, 2]}, json.dumps(META).encode())
    with pytest.raises(ArtifactError, match=error(path, "no 'embedding' column (columns: id)")):
        read_embeddings(path)


def test_read_without_metadata(tmp_path):
    emb_col = pa.FixedSizeListArray.from_arrays(pa.array([1, 2, 3, 4], pa.float32()), 2)
    path = _write_raw(tmp_path / "x.parquet", {"id": [1, 2], "embedding": emb_col}, None)
    problem = "no 'ants' schema metadata (not written by ants)"
    with pytest.raises(ArtifactError, match=error(path, problem)):
        read_embeddings(path)
    with pytest.raises(ArtifactError, match=error(path, problem)):
        read_embeddings_metadata(path)


def test_read_bad_metadata(tmp_path):
    emb_col = pa.FixedSizeListArray.from_arrays(pa.array([1, 2], pa.float32()), 2)
    path = _write_raw(tmp_path / "x.parquet", {"embedding": emb_col}, b"{not json")
    with pytest.raises(ArtifactError, match=error(path, "its 'ants' schema metadata is not valid JSON")):
        read_embeddings(path)
    path = _write_raw(tmp_path / "y.parquet", {"embedding": emb_col}, b"[1, 2]")
    with pytest.raises(ArtifactError, match=error(path, "its 'ants' schema metadata is not a JSON object")):
        read_embeddings(path)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32())),
        pa.FixedSizeListArray.from_arrays(pa.array([1, 2, 3, 4], pa.float64()), 2),
    ],
)
def test_read_wrong_embedding_type(tmp_path, column):
    path = _write_raw(tmp_path / "x.parquet", {"id": [1, 2], "embedding": column}, b"{}")
    stored = pq.read_schema(path).field("embedding").type
    problem = f"column 'embedding' has type {stored}, expected fixed_size_list<float32>[d]"
    with pytest.raises(ArtifactError, match=error(path, problem)):
        read_embeddings(path)


def test_read_null_embeddings(tmp_path):
    column = pa.array([[1.0, 2.0], None], pa.list_(pa.float32(), 2))
    path = _write_raw(tmp_path / "x.parquet", {"id": [1, 2], "embedding": column}, b"{}")
    with pytest.raises(ArtifactError, match=error(path, "column 'embedding' has 1 null entries")):
        read_embeddings(path)
    column = pa.array([[1.0, None], [3.0, 4.0]], pa.list_(pa.float32(), 2))
    path = _write_raw(tmp_path / "y.parquet", {"id": [1, 2], "embedding": column}, b"{}")
    with pytest.raises(ArtifactError, match=error(path, "column 'embedding' holds null or missing values")):
        read_embeddings(path)
