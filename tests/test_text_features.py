"""The content-addressed store of the negatives' text features (ants.text_features): encoding
once, and damage, read-only files, old files and killed writers (issue 21 items 3 and 7,
issue 19 items 1 and 2)."""

import json
import multiprocessing as mp
import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from _stores import (
    DAMAGES,
    checkpoint,
    damage,
    feature_of,
    features_batch_writer,
    features_writer_hanging_mid_transaction,
    kill_after,
    kill_when,
    overwrite,
    shared_folder,
    unprivileged,
    user_name,
)

from ants.text_features import (
    TextFeatureStore,
    TextFeatureStoreError,
    encode_texts_once,
    text_key,
)

IDENTITY = {"backbone": {"model": "tiny", "seed": 0}, "precision": "fp32"}
WAY_OUT = (
    "; delete it: it only caches features, and the encode_negatives jobs re-create it, "
    "re-encoding what they need (`snakemake --forcerun encode_negatives` re-encodes every "
    "stream's negatives)"
)
DIM = 512


class Encoder:
    """A fake text encoder: a fixed random feature per text; counts its builds and texts."""

    def __init__(self):
        self.built = 0
        self.texts: list[str] = []

    def make(self):
        self.built += 1

        def encode(texts, template):
            self.texts.extend(texts)
            return np.stack([feature_of(template + "|" + t, DIM) for t in texts])

        return encode


def _filled(path, n=300):
    pairs = [("The nice {}.", f"label {i}") for i in range(n)]
    encoder = Encoder()
    with TextFeatureStore(path, IDENTITY) as store:
        encode_texts_once(pairs, store, encoder.make)
    checkpoint(path)
    return pairs


def test_features_are_encoded_once_and_read_back_exactly(tmp_path):
    path = tmp_path / "tiny.sqlite"
    encoder = Encoder()
    pairs = [("", "a red car"), ("The nice {}.", "koi"), ("", "a red car"), ("", "a blue car")]
    with TextFeatureStore(path, IDENTITY) as store:
        got, feats, n_new = encode_texts_once(pairs, store, encoder.make)
        assert got == [("", "a red car"), ("The nice {}.", "koi"), ("", "a blue car")]
        assert n_new == 3 and encoder.built == 1 and len(store) == 3
        for pair, feat in zip(got, feats, strict=True):
            np.testing.assert_array_equal(feat, feature_of(pair[0] + "|" + pair[1], DIM))
    with TextFeatureStore(path, IDENTITY) as store:
        again, feats2, n_new = encode_texts_once(pairs[:2], store, encoder.make)
        assert n_new == 0 and encoder.built == 1  # all hits: the encoder is never built
        np.testing.assert_array_equal(feats2, feats[:2])
    with TextFeatureStore(path, {**IDENTITY, "precision": "fp16"}) as store:
        assert store.get_many(pairs) == {}  # another encoder: other keys


# -- damaged bytes inside a valid file are never served (issue 21 item 3) --------------------


def test_permuted_feature_bytes_are_an_error_naming_the_entry(tmp_path):
    path = tmp_path / "tiny.sqlite"
    pairs = _filled(path, n=20)
    template, text = pairs[7]
    blob = feature_of(template + "|" + text, DIM).astype("<f4").tobytes()
    overwrite(path, blob, blob[::-1])  # the same bytes, in another order
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # it cannot tell
    encoder = Encoder()
    with TextFeatureStore(path, IDENTITY) as store, pytest.raises(TextFeatureStoreError) as err:
        encode_texts_once(pairs, store, encoder.make)
    key = text_key(IDENTITY, template, text)
    assert str(err.value) == (
        f"text feature store {str(path)!r}: the entry of {text!r} (template {template!r}, key "
        f"{key}) is damaged (its bytes do not match the digest stored with it){WAY_OUT}"
    )
    assert encoder.built == 0
    with TextFeatureStore(path, IDENTITY) as store:
        assert store.damaged_keys() == [key]
        assert len(store.get_many(pairs[:7] + pairs[8:])) == 19  # the others still read


@pytest.mark.parametrize("column", ["template", "text", "dim", "key", "digest"])
def test_every_field_of_a_feature_is_under_its_digest(tmp_path, column):
    path = tmp_path / "tiny.sqlite"
    with TextFeatureStore(path, IDENTITY) as store:
        store.put_many([("", "koi")], feature_of("koi", DIM)[None])
    value = {"template": "x", "text": "carp", "dim": 4, "key": "k", "digest": "0" * 64}[column]
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"UPDATE features SET {column}=?", (value,))
    with TextFeatureStore(path, IDENTITY) as store:
        if column == "key":  # asked by its key, it is missing; the full scan finds it
            assert store.get_many([("", "koi")]) == {} and store.damaged_keys() == ["k"]
        else:
            with pytest.raises(TextFeatureStoreError, match="do not match the digest"):
                store.get_many([("", "koi")])


# -- damage SQLite itself sees: at open, one line (issue 21 item 7) ---------------------------


@pytest.mark.parametrize(("kind", "what"), DAMAGES.items())
@pytest.mark.faults
def test_a_damaged_store_is_one_line_at_open(tmp_path, kind, what):
    path = tmp_path / "tiny.sqlite"
    _filled(path)
    assert path.stat().st_size > 100 * 4096
    damage(path, kind)
    size = path.stat().st_size
    with pytest.raises(TextFeatureStoreError) as err:
        TextFeatureStore(path, IDENTITY)
    message = str(err.value)
    assert re.fullmatch(
        re.escape(f"text feature store {str(path)!r} ") + what + re.escape(WAY_OUT), message
    ), message
    assert "\n" not in message and path.stat().st_size == size  # never silently replaced


def test_foreign_files_and_folders_are_refused(tmp_path):
    with pytest.raises(TextFeatureStoreError, match=r"is a directory; give a file path$"):
        TextFeatureStore(tmp_path, IDENTITY)
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(TextFeatureStoreError) as err:
        TextFeatureStore(other, IDENTITY)
    assert str(err.value) == (
        f"{str(other)!r} is an SQLite database but not a text feature store (it has the tables "
        "runs, not 'features'); give another path"
    )
    odd = tmp_path / "odd.sqlite"
    with closing(sqlite3.connect(odd)) as conn:
        conn.execute("CREATE TABLE features (key TEXT, vector BLOB)")
    with pytest.raises(TextFeatureStoreError, match=r"has a 'features' table with the columns key"):
        TextFeatureStore(odd, IDENTITY)


@pytest.mark.faults
def test_the_cli_reports_a_damaged_store_in_one_line_and_a_deleted_one_is_rebuilt(tmp_path, capsys):
    from ants.answers_log import answer_records, write_answer_log
    from ants.cli import main
    from ants.mllm.base import Answer, Query

    queries = [Query("ens", "tench", image="a.png"), Query("vsnl", "tench")]
    answers = [
        Answer("A red car.", negatives=("A red car",), cache_key="k1"),
        Answer("1. koi\n2. carp", negatives=("koi", "carp"), cache_key="k2"),
    ]
    log = write_answer_log(
        tmp_path / "answers.parquet",
        answer_records(queries, answers, stream_id="s", batch_index=0),
        timings=False,
    )
    config = {"preset": "authors_code", "initial_threshold": 0.99, "ens_trigger_size": 3,
              "ens_max_updates": 2, "vsnl_start": 1, "vsnl_interval": 2, "near_top_k": 2,
              "group_size": 10}  # fmt: skip
    method = {"method": "ants", "config": config, "in_score": "ada", "batch_size": 4}
    store = tmp_path / "text-features" / "tiny.sqlite"

    def encode(out):
        return main(
            ["encode-negatives", "--answers", str(log), "--method-json", json.dumps(method),
             "--backbone-json", json.dumps({"model": "tiny", "seed": 0}), "--encoding-json",
             json.dumps({"device": "cpu", "precision": "fp32", "text_batch_size": 8}),
             "--store", str(store), "--out", str(tmp_path / out)]
        )  # fmt: skip

    assert encode("first.parquet") == 0
    assert "3 negatives' text features (3 encoded now)" in capsys.readouterr().out
    with closing(sqlite3.connect(store)) as conn:
        key, template, text, blob = conn.execute(
            "SELECT key, template, text, feature FROM features ORDER BY key LIMIT 1"
        ).fetchone()
    checkpoint(store)
    overwrite(store, blob, blob[::-1])
    assert encode("second.parquet") == 2
    err = capsys.readouterr().err
    assert err == (
        f"ants encode-negatives: error: text feature store {str(store)!r}: the entry of "
        f"{text!r} (template {template!r}, key {key}) is damaged (its bytes do not match the "
        f"digest stored with it){WAY_OUT}\n"
    )
    assert not (tmp_path / "second.parquet").exists()
    # the way out: delete it; the job re-creates it and writes what it wrote before
    for suffix in ("", "-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)
    assert encode("third.parquet") == 0
    assert "(3 encoded now)" in capsys.readouterr().out
    assert (tmp_path / "third.parquet").read_bytes() == (tmp_path / "first.parquet").read_bytes()


# -- a store made before the digests ------------------------------------------------------------


def test_a_store_made_before_the_digests_gets_them_once(tmp_path, caplog):
    path = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(path)) as conn, conn:  # the schema of the previous version
        conn.execute(
            "CREATE TABLE features (key TEXT PRIMARY KEY, template TEXT NOT NULL, text TEXT NOT "
            "NULL, dim INTEGER NOT NULL, feature BLOB NOT NULL)"
        )
        for name in ("koi", "carp"):
            feat = feature_of(name, DIM)
            conn.execute(
                "INSERT INTO features VALUES (?,?,?,?,?)",
                (text_key(IDENTITY, "", name), "", name, DIM, feat.tobytes()),
            )
    with caplog.at_level("WARNING"), TextFeatureStore(path, IDENTITY) as store:
        got = store.get_many([("", "koi"), ("", "carp")])
        assert store.damaged_keys() == []
    assert (
        f"text feature store {path} was made before per-entry digests: the digests of its 2 "
        "entries were computed once, now"
    ) in caplog.text
    np.testing.assert_array_equal(got[("", "koi")], feature_of("koi", DIM))
    caplog.clear()
    with caplog.at_level("WARNING"), TextFeatureStore(path, IDENTITY) as store:
        assert len(store) == 2
    assert "digests" not in caplog.text  # once only


# -- a store this user cannot write -------------------------------------------------------------


def _open_and_put(path):
    with TextFeatureStore(path, IDENTITY) as store:
        store.put_many([("", "koi")], feature_of("koi", DIM)[None])
        return len(store)


def test_a_read_only_store_fails_at_open_naming_the_file():
    user = user_name()
    with shared_folder() as folder:
        path = folder / "tiny.sqlite"
        TextFeatureStore(path, IDENTITY).close()
        os.chmod(path, 0o444)
        kind, message = unprivileged(_open_and_put, path)
        if kind == "skip":
            pytest.skip(message)
        assert (kind, message) == (
            "TextFeatureStoreError",
            f"text feature store {str(path)!r} cannot be written: {str(path)!r} is read-only "
            f"for this user ({user}); make it writable (it is checked before any work, so "
            "nothing was lost)",
        )
        os.chmod(path, 0o666)
        assert unprivileged(_open_and_put, path) == ("ok", "1")


# -- a writer killed at any instant (issue 19 item 2) -------------------------------------------


@pytest.mark.faults
def test_sigkill_mid_transaction_leaves_only_complete_features(tmp_path):
    path = str(tmp_path / "k.sqlite")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(
        target=features_writer_hanging_mid_transaction, args=(path, IDENTITY, 5, DIM, ready)
    )
    child.start()
    kill_when(child, ready)
    assert Path(path + "-wal").stat().st_size > 4_000_000  # the uncommitted rows reached disk
    with TextFeatureStore(path, IDENTITY) as store:
        assert len(store) == 5 and store.damaged_keys() == []
        names = [f"committed/{i}" for i in range(5)]
        got = store.get_many([("", n) for n in names])
        for n in names:
            np.testing.assert_array_equal(got[("", n)], feature_of(n, DIM))
    size = 100
    for round_ in range(3):
        started = ctx.Event()
        child = ctx.Process(
            target=features_batch_writer, args=(path, IDENTITY, f"r{round_}", size, DIM, started)
        )
        child.start()
        assert started.wait(120)
        kill_after(child, 0.05 + 0.13 * round_)
    with TextFeatureStore(path, IDENTITY) as store:
        assert store.damaged_keys() == []
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        texts = [r[0] for r in conn.execute("SELECT text FROM features")]
    batches = {}
    for t in texts:
        if t.startswith("r"):
            batch = "/".join(t.split("/")[:2])
            batches[batch] = batches.get(batch, 0) + 1
    assert len({b.split("/")[0] for b in batches}) == 3 and set(batches.values()) == {size}
