"""ants._io: atomic files and folders, digests, Parquet with metadata."""

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ants._io import (
    atomic_dir,
    atomic_path,
    canonical_json,
    file_digest,
    read_table,
    write_json,
    write_table,
)
from ants.embeddings import (
    METADATA_KEY,
    read_embeddings,
    read_embeddings_metadata,
    write_embeddings,
)


def test_atomic_path_replaces_on_success_and_keeps_old_on_failure(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("one")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "one"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_atomic_dir_replaces_whole_folder_and_keeps_old_on_failure(tmp_path):
    target = tmp_path / "figs"
    with atomic_dir(target) as tmp:
        (tmp / "a.png").write_bytes(b"a")
    with atomic_dir(target) as tmp:
        (tmp / "b.png").write_bytes(b"b")
    assert sorted(p.name for p in target.iterdir()) == ["b.png"]  # a.png gone: replaced, not merged
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_dir(target) as tmp:
            (tmp / "c.png").write_bytes(b"c")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["b.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figs"]


def test_atomic_dir_and_path_get_the_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f.txt").write_text("x")
        with atomic_path(tmp_path / "g.txt") as tmp:
            tmp.write_text("y")
        os.umask(0o027)
        with atomic_dir(tmp_path / "e"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0o700
    assert (tmp_path / "d" / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "g.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "e").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_file_digest_matches_hashlib(tmp_path, algorithm):
    data = np.random.default_rng(0).bytes(2500)
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert file_digest(p, algorithm, chunk_size=1000) == hashlib.new(algorithm, data).hexdigest()
    with pytest.raises(ValueError, match="unknown checksum algorithm 'sha1'; valid: sha256, md5"):
        file_digest(p, "sha1")


def test_table_round_trip_with_metadata(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "score": [0.25, 0.5]}, index=[7, 9])
    path = write_table(tmp_path / "t.parquet", frame, {"seed": np.int64(3), "arr": np.arange(2)})
    back, meta = read_table(path)
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    assert meta == {"seed": 3, "arr": [0, 1]}
    with pytest.raises(FileNotFoundError, match=r"manifest not found: .*nope.parquet"):
        read_table(tmp_path / "nope.parquet", what="manifest")


def test_write_json_is_sorted_and_handles_numpy(tmp_path):
    p = write_json(tmp_path / "m.json", {"b": np.float32(0.5), "a": 1})
    assert p.read_text() == '{\n  "a": 1,\n  "b": 0.5\n}\n'


def test_embedding_metadata_is_canonical_json_and_older_files_still_read(tmp_path):
    """Embedding files store ``canonical_json(metadata)``; files from before (``", "``) read the same."""
    meta = {"model": "ViT-B-16", "dim": 3, "name": "café", "nested": {"b": 1, "a": [1, 2]}}
    rows = pd.DataFrame({"id": ["x", "y"]})
    features = np.eye(2, 3, dtype=np.float32)
    path = write_embeddings(tmp_path / "new.parquet", features, rows, meta)
    raw = pq.read_schema(path).metadata[METADATA_KEY]
    assert raw == canonical_json(meta).encode("utf-8")
    assert raw.startswith(b'{"dim":3,"model":"ViT-B-16","name":"caf\xc3\xa9","nested":{"a":[1,2],"b":1}')
    # Byte-identical run to run.
    again = write_embeddings(tmp_path / "again.parquet", features, rows, dict(reversed(meta.items())))
    assert again.read_bytes() == path.read_bytes()
    # A file written with the former encoding (json.dumps(sort_keys=True): spaces, \u escapes).
    old = pq.read_table(path)
    old_raw = json.dumps(meta, sort_keys=True, allow_nan=False).encode("utf-8")
    assert old_raw != raw
    old = old.replace_schema_metadata({**old.schema.metadata, METADATA_KEY: old_raw})
    pq.write_table(old, tmp_path / "old.parquet")
    assert read_embeddings_metadata(tmp_path / "old.parquet") == meta
    got, got_rows, got_meta = read_embeddings(tmp_path / "old.parquet")
    np.testing.assert_array_equal(got, features)
    assert got_rows["id"].tolist() == ["x", "y"] and got_meta == meta
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        write_embeddings(tmp_path / "nan.parquet", features, rows, {"x": float("nan")})
