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

**A damaged or unusable file is an error, never a silent fresh cache, never a wrong answer**
(the checks are :mod:`ants._sqlite`'s, shared with the text-feature store). When the cache is
opened -- before any query is asked -- a file or folder this user cannot write, an empty,
truncated or non-SQLite file, a failed SQLite ``quick_check`` (about 0.1-0.2 s per 100,000
answers, ``benchmarks/bench_cache_open.py``) or an SQLite file that is not an answer cache
raises :class:`CacheError` (one line naming the file and the way out). Every entry carries the
SHA-256 of its columns (:func:`ants._sqlite.entry_digest` over the key, the raw text, the
status, the prompt, the identity and the rest), verified on every read: an entry whose bytes
were changed inside a structurally valid file raises :class:`CacheError` naming the entry. A
cache made before the digests existed gets them once, at its first writable open (logged). The
answers logs hold everything a cache entry needs, so :func:`rebuild_cache` (``ants cache
rebuild``) rebuilds a lost cache from them and replaces damaged entries (dropping those no log
holds, so a re-run asks them again). A new cache file is created complete (schema written in a
temporary file, then hard-linked into place), so a concurrent job never sees a half-made file.
:func:`cache_stats` counts the stored answers per kind and status.

The raw text is what the cache is for; the parsed negatives are stored too (for inspection),
but :class:`ants.mllm.answering.CachedAnswerer` re-parses the raw text on every read, so an
improved parser never meets stale parsed values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ants._io import canonical_json
from ants._sqlite import (
    DIGEST,
    StoreKind,
    entry_digest,
    guard,
    open_read_only,
    open_store,
    transaction,
)
from ants.mllm.base import Query

log = logging.getLogger(__name__)

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
    settings TEXT NOT NULL,
    digest TEXT NOT NULL DEFAULT ''
)
"""


#: the columns of the ``answers`` table: an entry, then its digest (:func:`entry_digest`)
COLUMNS = (
    "key",
    "kind",
    "raw_text",
    "negatives",
    "status",
    "reason",
    "answered_at",
    "seconds",
    "identity",
    "prompt",
    "settings",
    DIGEST,
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM answers"
WAY_OUT = "move it aside; `ants cache rebuild` rebuilds it from the answers logs"
#: what to do about one damaged entry
ENTRY_WAY_OUT = (
    "`ants cache rebuild` puts the answers logs' answers back and drops the damaged entries no "
    "log holds (a re-run asks those again)"
)


class CacheError(ValueError):
    """The answer cache cannot be used: empty, truncated, not SQLite, not an answer cache,
    not writable, or an entry whose bytes do not match its digest.

    The message is one line naming the file (and the entry), what is wrong and the way out.
    """


KIND = StoreKind(
    noun="answer cache",
    table="answers",
    columns=COLUMNS,
    schema=_SCHEMA,
    error=CacheError,
    digest=entry_digest,  # over every column as stored: key, raw text, status, prompt, ...
    way_out=WAY_OUT,
    entry_way_out=ENTRY_WAY_OUT,
    elsewhere=", or point mllm.cache (`--cache`) at a writable path",
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

    Opening checks the file (:func:`ants._sqlite.open_store`: writable, SQLite, integrity,
    schema) and raises :class:`CacheError` before any work; every entry read is verified
    against its digest.

    >>> cache = AnswerCache("answers.sqlite")            # doctest: +SKIP
    >>> cache.put_many([CachedAnswer(key, "ens", "a red car")])   # doctest: +SKIP
    >>> cache.get_many([key])[key].raw_text              # doctest: +SKIP
    'a red car'
    """

    def __init__(self, path: str | os.PathLike, timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.timeout_s = float(timeout_s)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._connect()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn, self._pid = open_store(self.path, KIND, self.timeout_s), os.getpid()
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def _rows(self, keys: Sequence[str]) -> list[tuple]:
        """The stored rows (every column) of ``keys``, checked against their digests."""
        rows: list[tuple] = []
        with self._lock, guard(self.path, KIND):
            conn = self._connect()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows.extend(conn.execute(f"{_SELECT} WHERE key IN ({marks})", chunk).fetchall())
        for row in rows:
            KIND.verify(self.path, row)
        return rows

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The stored answers among ``keys`` (absent keys are simply missing from the dict).

        An entry whose bytes do not match its digest raises :class:`CacheError` naming it.
        """
        out: dict[str, CachedAnswer] = {}
        for row in self._rows(list(dict.fromkeys(keys))):
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
        with self._lock, guard(self.path, KIND):
            return int(self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def keys(self) -> list[str]:
        with self._lock, guard(self.path, KIND):
            return [r[0] for r in self._connect().execute("SELECT key FROM answers ORDER BY key")]

    def damaged_keys(self) -> list[str]:
        """The keys of every entry whose bytes do not match its digest (a full scan)."""
        bad: list[str] = []
        with self._lock, guard(self.path, KIND):
            for row in self._connect().execute(_SELECT):
                if KIND.digest(row[:-1]) != row[-1]:
                    bad.append(row[0])
        return bad

    # -- writing ------------------------------------------------------------------------------
    def put_many(self, entries: Iterable[CachedAnswer]) -> int:
        """Store answers in ONE committed transaction; ``"failed"`` ones are skipped.

        Returns the number stored. An existing key is replaced (same key = same question).
        Each row gets its digest; a non-finite ``seconds`` is stored as 0.0 (SQLite has no NaN).
        """
        rows = []
        for e in entries:
            if e.status == "failed":
                continue
            seconds = float(e.seconds)
            row = (
                e.key,
                e.kind,
                e.raw_text,
                canonical_json(list(e.negatives)),
                e.status,
                e.reason,
                e.answered_at,
                seconds if math.isfinite(seconds) else 0.0,
                canonical_json(e.identity),
                e.prompt,
                canonical_json(e.settings),
            )
            rows.append((*row, KIND.digest(row)))
        if not rows:
            return 0
        with self._lock, guard(self.path, KIND):
            with transaction(self._connect()) as conn:
                conn.executemany(
                    f"INSERT OR REPLACE INTO answers ({', '.join(COLUMNS)}) "
                    f"VALUES ({','.join('?' * len(COLUMNS))})",
                    rows,
                )
        return len(rows)

    def drop(self, keys: Sequence[str]) -> int:
        """Delete the entries of ``keys`` (one transaction); returns how many were there."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return 0
        with self._lock, guard(self.path, KIND):
            n = 0
            with transaction(self._connect()) as conn:
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    n += conn.execute(
                        f"DELETE FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk
                    ).rowcount
        return n

    def drop_damaged(self) -> list[str]:
        """Delete every entry whose bytes do not match its digest; returns their keys (logged)."""
        bad = self.damaged_keys()
        if bad:
            self.drop(bad)
            log.warning(
                "answer cache %s: dropped %d damaged entr%s (%s)",
                self.path,
                len(bad),
                "y" if len(bad) == 1 else "ies",
                ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else ""),
            )
        return bad


# -- statistics and rebuilding ----------------------------------------------------------------


def cache_stats(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Stored answers per kind and status: ``{kind: {status: count}}`` (read-only; sorted).

    ``FileNotFoundError`` when there is no such file; :class:`CacheError` when it is damaged.
    Failed answers are never stored, so ``"failed"`` never appears. Entries are counted, not
    verified (``ants cache rebuild`` verifies every one).
    """
    path = Path(path)
    conn = open_read_only(path, KIND)
    try:
        with guard(path, KIND):
            rows = conn.execute(
                "SELECT kind, status, COUNT(*) FROM answers GROUP BY kind, status "
                "ORDER BY kind, status"
            ).fetchall()
    finally:
        conn.close()
    out: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        out.setdefault(kind, {})[status] = int(n)
    return out


def _none(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def entries_from_log(frame, source: str = "the answers log") -> tuple[list[CachedAnswer], int]:
    """Cache entries from a negatives log frame: (entries, rows skipped for a stale key).

    Failed answers and rows without a cache key are left out (failed answers are never cached).
    Each row's key is recomputed from its identity fields, prompt, query and generation settings;
    a row whose stored key differs (written by another key version) is skipped. Timings come
    from the timing columns when the log was read with its sidecar, else ``""`` and ``0.0``.
    Two rows with one key but different raw texts are an error (the log is inconsistent).
    """
    entries: dict[str, CachedAnswer] = {}
    stale = 0
    has_timing = "answered_at" in frame.columns and "seconds" in frame.columns
    for row in frame.to_dict("records"):
        key = _none(row.get("cache_key"))
        if not key or row.get("status") == "failed":
            continue
        try:
            settings = json.loads(row["settings"] or "{}")
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{source}: the settings of cache key {key} are not JSON: {row['settings']!r}"
            ) from err
        identity = {
            "backend": row["backend"],
            "model_id": row["model_id"],
            "revision": row["revision"],
            "settings": dict(settings.get("backend") or {}),
        }
        generation = dict(settings.get("generation") or {})
        query = Query(
            kind=row["kind"],
            class_name=str(row["class_name"]),
            image=_none(row.get("image")),
            image_sha256=_none(row.get("image_sha256")),
        )
        if cache_key(identity, row["prompt"], query, generation) != key:
            stale += 1
            continue
        raw = row["raw_text"] or ""
        if key in entries:
            if entries[key].raw_text != raw:
                raise ValueError(
                    f"{source}: cache key {key} has two different raw texts; the log is inconsistent"
                )
            continue
        seconds = row.get("seconds") if has_timing else None
        entries[key] = CachedAnswer(
            key=key,
            kind=row["kind"],
            raw_text=raw,
            negatives=tuple(row.get("negatives") or ()),
            status=row["status"],
            reason=row.get("reason") or "",
            answered_at=(_none(row.get("answered_at")) or "") if has_timing else "",
            seconds=0.0 if seconds is None or seconds != seconds else float(seconds),
            identity=identity,
            prompt=row["prompt"],
            settings=generation,
        )
    return list(entries.values()), stale


def rebuild_cache(cache_path: str | os.PathLike, log_paths: Iterable[str | os.PathLike]) -> int:
    """(Re)build the answer cache at ``cache_path`` from negatives logs; returns the entries stored.

    Every non-failed answer of every log is stored under its cache key (an existing valid cache
    is added to; a damaged file raises :class:`CacheError` -- move it aside first). Entries
    whose bytes do not match their digest are dropped first; the logs put back those they hold.
    Rows whose key no longer matches what they record (another key version) are skipped with a
    warning.
    The timings (``answered_at``, ``seconds``) come from each log's timing sidecar when there is
    one, else they are ``""`` and ``0.0``.
    """
    from ants.answers_log import read_answer_log

    paths = [Path(p) for p in log_paths]
    if not paths:
        raise ValueError("rebuild_cache: no answers log given")
    entries: dict[str, CachedAnswer] = {}
    stale = 0
    for path in paths:
        got, n_stale = entries_from_log(read_answer_log(path), source=str(path))
        stale += n_stale
        for e in got:
            if e.key in entries and entries[e.key].raw_text != e.raw_text:
                raise ValueError(
                    f"{str(path)!r}: cache key {e.key} has another raw text than in an earlier log"
                )
            entries.setdefault(e.key, e)
    if stale:
        log.warning(
            "rebuild_cache: %d log rows skipped: their cache key does not match what they record "
            "(written by another key version)",
            stale,
        )
    with AnswerCache(cache_path) as cache:
        cache.drop_damaged()  # the logs put back those they hold
        values = list(entries.values())
        for start in range(0, len(values), 1000):
            cache.put_many(values[start : start + 1000])
    return len(entries)
