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

**A damaged file is an error, never a silent fresh cache**: an empty, truncated or non-SQLite
file, or an SQLite file that is not an answer cache, raises :class:`CacheError` (one line
naming the file and the way out) when the cache is opened. The answers logs hold everything a
cache entry needs, so :func:`rebuild_cache` rebuilds a lost cache from them (``ants cache
rebuild``). Opening runs SQLite's ``quick_check`` (about 0.1-0.2 s per 100,000 answers,
``benchmarks/bench_cache_open.py``), since a truncated file would otherwise open fine and fail
mid-run. A new cache file is created complete (schema written in a temporary file, then
hard-linked into place), so a concurrent job never sees a half-made file. :func:`cache_stats`
counts the stored answers per kind and status.

The raw text is what the cache is for; the parsed negatives are stored too (for inspection),
but :class:`ants.mllm.answering.CachedAnswerer` re-parses the raw text on every read, so an
improved parser never meets stale parsed values.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ants._io import canonical_json
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
    settings TEXT NOT NULL
)
"""


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
)
_SQLITE_MAGIC = b"SQLite format 3\x00"
WAY_OUT = "move it aside; `ants cache rebuild` rebuilds it from the answers logs"


class CacheError(ValueError):
    """The answer cache file cannot be used: empty, truncated, not SQLite, or not an answer cache.

    The message is one line naming the file, what is wrong and the way out.
    """


def _damaged(path: Path, what: str) -> CacheError:
    return CacheError(f"answer cache {str(path)!r} {what}; {WAY_OUT}")


def _check_file(path: Path) -> None:
    """Raise :class:`CacheError` if an EXISTING ``path`` cannot be an SQLite database.

    Only looks at what never changes while other processes write (size 0, the header's magic
    string and page size), so it is safe while another job commits.
    """
    if path.is_dir():
        raise CacheError(f"answer cache path {str(path)!r} is a directory; give a file path")
    size = path.stat().st_size
    if size == 0:
        raise _damaged(path, "is empty (0 bytes: an interrupted copy or download?)")
    with open(path, "rb") as fh:
        head = fh.read(100)
    if not head.startswith(_SQLITE_MAGIC[: len(head)]) or len(head) < len(_SQLITE_MAGIC):
        raise _damaged(path, "is not an SQLite database (no SQLite header)")
    if len(head) < 100:
        raise _damaged(path, f"is truncated ({size} bytes, less than an SQLite header)")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        raise _damaged(path, "is not an SQLite database (invalid page size in its header)")
    if size % page:
        raise _damaged(
            path, f"is truncated ({size} bytes, not a whole number of {page}-byte pages)"
        )


def _check_database(conn: sqlite3.Connection, path: Path, create: bool) -> None:
    """Integrity and schema of an open database (:class:`CacheError` when unusable)."""
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(answers)")]
    except sqlite3.DatabaseError as err:
        raise _damaged(path, f"is damaged ({err})") from err
    if problems != ["ok"]:
        raise _damaged(path, f"is damaged (SQLite integrity check: {problems[0]})")
    if "answers" not in tables:
        if tables:
            raise CacheError(
                f"{str(path)!r} is an SQLite database but not an answer cache (it has the tables "
                f"{', '.join(sorted(tables))}, not 'answers'); give another cache path"
            )
        if not create:
            raise _damaged(path, "holds no answers table")
        return
    if tuple(columns) != COLUMNS:
        raise _damaged(
            path,
            f"has an 'answers' table with the columns {', '.join(columns)}, "
            f"not {', '.join(COLUMNS)} (another program's, or another version's, cache)",
        )


def _create(path: Path) -> None:
    """Create a complete empty cache at ``path`` unless one appears there meanwhile."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:
            # no hard links on this file system: let SQLite create it in place
            pass
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)


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
        if self.path.is_dir():
            raise CacheError(
                f"answer cache path {str(self.path)!r} is a directory; give a file path"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = float(timeout_s)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        if not self.path.exists():
            _create(self.path)
        self._connect()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self.path.exists():
            _check_file(self.path)
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=self.timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.DatabaseError as err:
            raise _damaged(self.path, f"cannot be opened ({err})") from err
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            _check_database(conn, self.path, create=True)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CacheError(
                    f"answer cache {str(self.path)!r}: journal_mode is {mode!r}, WAL could not be "
                    "enabled (keep the cache on a local disk, not NFS)"
                )
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as err:
            conn.close()
            raise _damaged(self.path, f"cannot be used ({err})") from err
        except BaseException:
            conn.close()
            raise
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

    @contextlib.contextmanager
    def _guard(self):
        """A file damaged while in use: :class:`CacheError` (a busy database stays an OperationalError)."""
        try:
            yield
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as err:
            raise _damaged(self.path, f"is damaged ({err})") from err

    # -- reading ------------------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The stored answers among ``keys`` (absent keys are simply missing from the dict)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, CachedAnswer] = {}
        with self._lock, self._guard():
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
        with self._lock, self._guard():
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


# -- statistics and rebuilding ----------------------------------------------------------------


def cache_stats(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Stored answers per kind and status: ``{kind: {status: count}}`` (read-only; sorted).

    ``FileNotFoundError`` when there is no such file; :class:`CacheError` when it is damaged.
    Failed answers are never stored, so ``"failed"`` never appears.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"answer cache {str(path)!r} does not exist")
    _check_file(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as err:
        raise _damaged(path, f"cannot be opened ({err})") from err
    try:
        _check_database(conn, path, create=False)
        rows = conn.execute(
            "SELECT kind, status, COUNT(*) FROM answers GROUP BY kind, status ORDER BY kind, status"
        ).fetchall()
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as err:
        raise _damaged(path, f"is damaged ({err})") from err
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
    is added to; a damaged one raises :class:`CacheError` -- move it aside first). Rows whose
    key no longer matches what they record (another key version) are skipped with a warning.
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
        values = list(entries.values())
        for start in range(0, len(values), 1000):
            cache.put_many(values[start : start + 1000])
    return len(entries)
