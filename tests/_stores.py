"""Helpers of the SQLite store tests (answer cache, text-feature store): damage a store's bytes
in place, run code as a user who may not write, kill a writer in the middle of a transaction."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import tempfile
import time
from contextlib import closing, contextmanager
from pathlib import Path

#: the uid/gid of "nobody", used to drop root's privileges (root writes read-only files)
NOBODY = 65534


def checkpoint(path) -> None:
    """Move everything from the WAL into the main file (so its bytes can be edited there)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def overwrite(path, old: bytes, new: bytes) -> None:
    """Replace the one occurrence of ``old`` in the file by ``new`` (same length), in place."""
    assert len(old) == len(new)
    data = Path(path).read_bytes()
    assert data.count(old) == 1, f"{old[:40]!r} occurs {data.count(old)} times in {path}"
    with open(path, "r+b") as fh:
        fh.seek(data.index(old))
        fh.write(new)


#: how :func:`damage` can damage a store, and the regex of what the store's error says then
DAMAGES = {
    "empty": r"is empty \(0 bytes: an interrupted copy or download\?\)",
    "text": r"is not an SQLite database \(no SQLite header\)",
    "header-only": r"is truncated \(60 bytes, less than an SQLite header\)",
    "mid-page": r"is truncated \(\d+ bytes, not a whole number of 4096-byte pages\)",
    "whole-pages": r"is damaged \(.+\)",
    "mid-file": r"is damaged \(.+\)",
}


def damage(path, kind: str) -> None:
    """Damage a store file (its WAL checkpointed) the way ``kind`` says, in place."""
    data = bytearray(Path(path).read_bytes())
    if kind == "empty":
        data = b""
    elif kind == "text":
        data = b"key,raw_text\nabc,1. leopard\n"
    elif kind == "header-only":
        data = data[:60]
    elif kind == "mid-page":
        data = data[: len(data) // 2 + 123]
    elif kind == "whole-pages":
        data = data[: 4096 * 3]
    elif kind == "mid-file":  # a page in the middle overwritten: the file keeps its size
        mid = (len(data) // 4096 // 2) * 4096
        data[mid : mid + 4096] = b"\xa5" * 4096
    else:
        raise ValueError(f"unknown damage {kind!r}")
    Path(path).write_bytes(bytes(data))


def user_name() -> str:
    """Who :func:`unprivileged` runs as."""
    import pwd

    return "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@contextmanager
def shared_folder():
    """A fresh folder under /tmp that every user may enter and write (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="ants-store-"))
    os.chmod(folder, 0o777)
    try:
        yield folder
    finally:
        os.chmod(folder, 0o777)
        shutil.rmtree(folder)


def unprivileged(fn, *args) -> tuple[str, str]:
    """Run ``fn(*args)`` in a forked child that, when this process is root, first becomes
    ``nobody`` (permissions do not stop root). Returns ``("ok", repr(result))`` or
    ``(exception class name, message)``; ``("skip", why)`` when privileges cannot be dropped."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            try:
                if os.geteuid() == 0:
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
            except OSError as err:
                result = ("skip", f"cannot drop root's privileges: {err}")
            else:
                try:
                    result = ("ok", repr(fn(*args)))
                except BaseException as err:  # noqa: BLE001 - reported to the parent
                    result = (type(err).__name__, str(err))
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return tuple(json.loads(b"".join(chunks)))


def kill_when(process, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``process`` once the event ``ready`` is set (it is then mid-transaction)."""
    assert ready.wait(timeout), "the writer never got ready"
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout)
    assert process.exitcode == -signal.SIGKILL


def kill_after(process, seconds: float, timeout: float = 120.0) -> None:
    """SIGKILL ``process`` ``seconds`` after now, whatever it is doing then."""
    time.sleep(seconds)
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout)
    assert process.exitcode == -signal.SIGKILL


def hang() -> None:
    """Wait to be killed."""
    time.sleep(600)
    os._exit(3)


# -- writers to kill (module-level and light to import: each runs in a spawned process) ---------

#: rows written but never committed by the hanging writers: more than SQLite's page cache
#: (2 MB by default), so the transaction spills into the WAL before the process is killed
UNCOMMITTED_BYTES = 12_000_000


def answer_entry(name: str, size: int = 0):
    """A cache entry keyed by ``sha256(name)`` whose raw text is ``name`` padded to ``size``."""
    import hashlib

    from ants.mllm.cache import CachedAnswer

    key = hashlib.sha256(name.encode()).hexdigest()
    return CachedAnswer(key=key, kind="vsnl", raw_text=name + " " * max(size - len(name), 0))


def cache_writer_hanging_mid_transaction(path, n_committed, ready) -> None:
    """Commit ``n_committed`` entries ("committed/i") one by one, then write a large batch and
    hang before its commit (``ready`` set)."""
    from ants.mllm.cache import KIND, AnswerCache

    cache = AnswerCache(path)
    for i in range(n_committed):
        cache.put_many([answer_entry(f"committed/{i}")])
    conn = cache._connect()
    conn.execute("BEGIN IMMEDIATE")
    rows = []
    for i in range(UNCOMMITTED_BYTES // 1000):
        e = answer_entry(f"uncommitted/{i}", 1000)
        row = (e.key, e.kind, e.raw_text, "[]", "ok", "", "", 0.0, "{}", "", "{}")
        rows.append((*row, KIND.digest(row)))
    conn.executemany("INSERT INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    ready.set()
    hang()


def cache_batch_writer(path, tag, size, started) -> None:
    """Commit batches of ``size`` entries ("tag/batch/i") until killed; ``started`` is set
    after the first."""
    from ants.mllm.cache import AnswerCache

    cache = AnswerCache(path)
    batch = 0
    while True:
        cache.put_many([answer_entry(f"{tag}/{batch}/{i}", 300) for i in range(size)])
        started.set()
        batch += 1


def _features(names, dim):
    """A deterministic feature per text: its row is the SHA-256 of the text, repeated."""
    import hashlib

    import numpy as np

    rows = []
    for name in names:
        seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
        rows.append(np.random.default_rng(seed).standard_normal(dim).astype(np.float32))
    return np.stack(rows)


def feature_of(name, dim):
    return _features([name], dim)[0]


def features_writer_hanging_mid_transaction(path, identity, n_committed, dim, ready) -> None:
    """Commit ``n_committed`` features (texts "committed/i") one by one, then write a large
    batch and hang before its commit (``ready`` set)."""
    from ants.text_features import KIND, TextFeatureStore, text_key

    store = TextFeatureStore(path, identity)
    for i in range(n_committed):
        name = f"committed/{i}"
        store.put_many([("", name)], _features([name], dim))
    store._conn.execute("BEGIN IMMEDIATE")
    names = [f"uncommitted/{i}" for i in range(UNCOMMITTED_BYTES // (4 * dim))]
    rows = []
    for name, feat in zip(names, _features(names, dim), strict=True):
        row = (text_key(identity, "", name), "", name, dim, feat.tobytes())
        rows.append((*row, KIND.digest(row)))
    store._conn.executemany("INSERT INTO features VALUES (?,?,?,?,?,?)", rows)
    ready.set()
    hang()


def features_batch_writer(path, identity, tag, size, dim, started) -> None:
    """Commit batches of ``size`` features (texts "tag/batch/i") until killed; ``started`` is
    set after the first."""
    from ants.text_features import TextFeatureStore

    store = TextFeatureStore(path, identity)
    batch = 0
    while True:
        names = [f"{tag}/{batch}/{i}" for i in range(size)]
        store.put_many([("", n) for n in names], _features(names, dim))
        started.set()
        batch += 1
