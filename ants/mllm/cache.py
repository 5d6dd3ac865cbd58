"""Content-addressed MLLM answer cache: SQLite in WAL mode, durable and safe for several processes.

**The key** (:func:`cache_key`) is the SHA-256 of a canonical JSON (sorted keys, no spaces) of
everything that determines a greedy answer: the backend name, model id and revision, the
backend's own settings (e.g. dtype), the query kind, the prompt text, the image content (its
SHA-256; the class name for text-only VSNL queries) and the generation settings. Not in the
key: the image path (a moved or copied image keeps its answers), the device and batch size, and
never an API key or a server address.

**The store** (:class:`AnswerCache`) is one SQLite file. WAL journal mode lets readers run
while one writer commits; ``busy_timeout`` makes concurrent writers (several Snakemake jobs, or
processes on one node) wait instead of failing. Every :meth:`AnswerCache.put_many` is one
committed transaction with ``synchronous=FULL``, so a killed process keeps every batch it had
written. Keep the file on a local disk: SQLite's WAL mode needs shared memory, which network
file systems (NFS) do not provide reliably.

**Failed answers are not cached** (``status == "failed"``: a timeout, a server error, an
unreadable image). They are transient, so a re-run asks again. ``"empty"`` and
``"unparsable"`` answers ARE cached: greedy decoding would give the same text again.

The raw text is what the cache is for; the parsed negatives are stored too (for inspection),
but :class:`ants.mllm.answering.CachedAnswerer` re-parses the raw text on every read, so an
improved parser never meets stale parsed values.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ants.mllm.base import Query

KEY_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    raw_text TEXT NOT NULL,
    negatives TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    answered_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    identity TEXT NOT NULL,
    prompt TEXT NOT NULL,
    settings TEXT NOT NULL
)
"""


def canonical_json(obj) -> str:
    """JSON with sorted keys and no insignificant whitespace (stable across runs and machines)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def cache_key(identity: Mapping, prompt: str, query: Query, settings: Mapping) -> str:
    """SHA-256 hex digest naming one answer.

    ``identity`` is a backend's ``identity()``: ``backend``, ``model_id``, ``revision`` and
    ``settings`` (backend-level, e.g. dtype). ``settings`` are the generation settings of the
    query's kind. The image enters through ``query.image_sha256``; a query without one (a
    simulated stream whose "image" is an item id) falls back to that id.
    """
    missing = [k for k in ("backend", "model_id", "revision") if k not in identity]
    if missing:
        raise ValueError(
            f"backend identity lacks {missing[0]!r}; it needs backend, model_id, revision"
        )
    if query.kind == "ens":
        content = (
            {"image_sha256": query.image_sha256}
            if query.image_sha256
            else {"image_id": query.image}
        )
    else:
        content = {"class_name": query.class_name}
    payload = {
        "v": KEY_VERSION,
        "backend": identity["backend"],
        "model_id": identity["model_id"],
        "revision": identity["revision"],
        "backend_settings": dict(identity.get("settings") or {}),
        "kind": query.kind,
        "prompt": prompt,
        "input": content,
        "generation": dict(settings),
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    """One stored answer (``negatives`` as parsed when it was stored)."""

    key: str
    kind: str
    raw_text: str
    negatives: tuple[str, ...] = ()
    status: str = "ok"
    reason: str = ""
    answered_at: str = ""
    seconds: float = 0.0
    identity: dict = field(default_factory=dict, compare=False)
    prompt: str = ""
    settings: dict = field(default_factory=dict, compare=False)


class AnswerCache:
    """A SQLite answer store. One connection per process (re-opened after ``fork``).

    >>> cache = AnswerCache("answers.sqlite")            # doctest: +SKIP
    >>> cache.put_many([CachedAnswer(key, "ens", "a red car")])   # doctest: +SKIP
    >>> cache.get_many([key])[key].raw_text              # doctest: +SKIP
    'a red car'
    """

    def __init__(self, path: str | os.PathLike, timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ValueError(
                f"answer cache path {str(self.path)!r} is a directory; give a file path"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = float(timeout_s)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._connect()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=self.timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(
                    f"journal_mode is {mode!r}, WAL could not be enabled"
                )
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise ValueError(f"cannot open the answer cache {str(self.path)!r}: {err}") from err
        self._conn, self._pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The stored answers among ``keys`` (absent keys are simply missing from the dict)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, CachedAnswer] = {}
        with self._lock:
            conn = self._connect()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT key, kind, raw_text, negatives, status, reason, answered_at, seconds, "
                    f"identity, prompt, settings FROM answers WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for row in rows:
                    out[row[0]] = CachedAnswer(
                        key=row[0],
                        kind=row[1],
                        raw_text=row[2],
                        negatives=tuple(json.loads(row[3])),
                        status=row[4],
                        reason=row[5],
                        answered_at=row[6],
                        seconds=float(row[7]),
                        identity=json.loads(row[8]),
                        prompt=row[9],
                        settings=json.loads(row[10]),
                    )
        return out

    def get(self, key: str) -> CachedAnswer | None:
        return self.get_many([key]).get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def keys(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._connect().execute("SELECT key FROM answers ORDER BY key")]

    # -- writing ------------------------------------------------------------------------------
    def put_many(self, entries: Iterable[CachedAnswer]) -> int:
        """Store answers in ONE committed transaction; ``"failed"`` ones are skipped.

        Returns the number stored. An existing key is replaced (same key = same question).
        """
        rows = [
            (
                e.key,
                e.kind,
                e.raw_text,
                canonical_json(list(e.negatives)),
                e.status,
                e.reason,
                e.answered_at,
                float(e.seconds),
                canonical_json(e.identity),
                e.prompt,
                canonical_json(e.settings),
            )
            for e in entries
            if e.status != "failed"
        ]
        if not rows:
            return 0
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return len(rows)
