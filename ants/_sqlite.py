"""SQLite plumbing of the two content-addressed stores: the MLLM answer cache
(:mod:`ants.mllm.cache`) and the negatives' text features (:mod:`ants.text_features`).

Each store is one SQLite file in WAL mode (readers run while one writer commits;
``busy_timeout`` makes concurrent writers wait instead of failing), described by a
:class:`StoreKind`. Both make the same promises, kept here in one place:

* **Opened means usable** (:func:`open_store`). Before any work, an unusable store raises the
  store's error: one line naming the file, what is wrong and the way out. Checked, in order: a
  folder given for the file; a file, or a folder, this user cannot write (SQLite keeps the
  ``-wal`` and ``-shm`` files beside the store, so its folder must be writable too); an empty,
  truncated or non-SQLite file (:func:`check_header`); SQLite's ``quick_check`` (it reads every
  page: about 0.1 s per 50 MB, ``benchmarks/bench_cache_open.py``); another program's tables or
  columns; and a write probe (a transaction that changes a header field and is rolled back),
  which catches what permissions do not show (a read-only mount).
* **Created complete** (:func:`create_store`): a new store is made in a temporary file (schema
  and WAL mode) that is then hard-linked into place, so a concurrent job never sees a half-made
  file.
* **Every entry carries a digest** (:func:`entry_digest`): the SHA-256 of the entry's columns
  as stored, computed when it is written and verified on every read. Bytes damaged inside a
  structurally valid file (which ``quick_check`` cannot see) are then an error naming the
  store, the entry and the way out, never a value served. A store made before the digests
  existed (the same table without the ``digest`` column) gets them once, when it is first
  opened for writing; that is logged. Its entries are trusted as they are then.
* **Writes are transactions** with ``synchronous=FULL``: a process killed at any instant leaves
  every entry it had committed and none of the ones it had not.

Keep the stores on a local disk: WAL mode needs shared memory, which network file systems (NFS)
do not provide reliably.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "DIGEST",
    "StoreKind",
    "check_header",
    "create_store",
    "entry_digest",
    "guard",
    "open_read_only",
    "open_store",
    "transaction",
]

#: the name of the per-entry digest column, the last column of every store's table
DIGEST = "digest"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def entry_digest(fields: Sequence, blob: bytes = b"") -> str:
    """SHA-256 hex digest of one entry: its ``fields`` (str, int, float or None, in column
    order, as stored), then ``blob`` (a feature's bytes).

    Hashed: the list of the fields' lengths, a NUL, the fields joined by NULs (a str as it is;
    a number or None as a NUL then its ``repr``, which is stable across Python versions), a
    NUL, the blob. The lengths make the joined text unambiguous whatever the fields hold; the
    leading NUL tells a number from the str of its digits. (Plain, not JSON: reading 100,000
    answers verifies 100,000 digests, ``benchmarks/bench_cache_open.py``.)
    """
    parts = [v if isinstance(v, str) else "\x00" + repr(v) for v in fields]
    text = f"{list(map(len, parts))}\x00{chr(0).join(parts)}"
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(blob)
    return h.hexdigest()


@dataclass(frozen=True)
class StoreKind:
    """What one kind of store is: its table, its errors and the ways out of them.

    ``columns`` end with :data:`DIGEST`; ``schema`` creates the table with them (``IF NOT
    EXISTS``). ``digest(row)`` is the digest of a row of every column but the last. ``way_out``
    ends the message of a damaged or foreign file, ``entry_way_out`` the one of a damaged
    entry, ``elsewhere`` (may be empty) the one of a store that cannot be written.
    """

    noun: str
    table: str
    columns: tuple[str, ...]
    schema: str
    error: type[Exception]
    digest: Callable[[Sequence], str]
    way_out: str
    entry_way_out: str
    elsewhere: str = ""

    def damaged(self, path: Path, what: str) -> Exception:
        """The store's error: ``<noun> '<path>' <what>; <way_out>``."""
        return self.error(f"{self.noun} {str(path)!r} {what}; {self.way_out}")

    def damaged_entry(self, path: Path, entry: str, what: str) -> Exception:
        """The store's error for one entry whose bytes do not match its digest."""
        return self.error(
            f"{self.noun} {str(path)!r}: the entry {entry} is damaged ({what}); "
            f"{self.entry_way_out}"
        )

    def unwritable(self, path: Path, what: str, at_open: bool = True) -> Exception:
        """The store's error for a store this user cannot write (found when it is opened, or
        while in use when ``at_open`` is false)."""
        when = " (it is checked before any work, so nothing was lost)" if at_open else ""
        return self.error(
            f"{self.noun} {str(path)!r} cannot be written: {what}; make it writable"
            f"{self.elsewhere}{when}"
        )

    @property
    def legacy_columns(self) -> tuple[str, ...]:
        """The columns of a store made before the digests existed."""
        return self.columns[:-1]

    def verify(self, path: Path, row: Sequence, entry: str | None = None) -> None:
        """Raise :meth:`damaged_entry` unless ``row`` (every column, the digest last) holds."""
        if self.digest(row[:-1]) != row[-1]:
            what = (
                "it has no digest"
                if not row[-1]
                else "its bytes do not match the digest stored with it"
            )
            raise self.damaged_entry(path, entry or str(row[0]), what)


def _is_not_utf8(err: sqlite3.Error) -> bool:
    """Python's sqlite3 reports a TEXT value that is not UTF-8 as an OperationalError."""
    return isinstance(err, sqlite3.OperationalError) and str(err).startswith(
        "Could not decode to UTF-8"
    )


def as_store_error(err: sqlite3.DatabaseError, path: Path, kind: StoreKind) -> Exception | None:
    """The store error a database error found while reading or writing stands for, or None for
    one that is not about the file's bytes (a busy database: a plain ``OperationalError``)."""
    if _is_not_utf8(err):
        column = str(err).split("'")[1] if str(err).count("'") >= 2 else "a column"
        return kind.damaged(path, f"is damaged (an entry's {column} is not valid UTF-8 text)")
    if _is_readonly(err):
        return kind.unwritable(path, f"SQLite says: {err}", at_open=False)
    if isinstance(err, sqlite3.OperationalError):
        return None
    return kind.damaged(path, f"is damaged ({err})")


@contextlib.contextmanager
def guard(path: Path, kind: StoreKind) -> Iterator[None]:
    """Database errors met while reading or writing a store, as the store's error
    (:func:`as_store_error`); a busy database stays an ``OperationalError``."""
    try:
        yield
    except sqlite3.DatabaseError as err:
        mapped = as_store_error(err, path, kind)
        if mapped is None:
            raise
        raise mapped from err


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit connection; rolled back on any
    exception, so a failed (or killed) writer leaves nothing of the transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_readonly(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == sqlite3.SQLITE_READONLY
    return "readonly database" in str(err)


def check_header(path: Path, kind: StoreKind) -> None:
    """Raise the store's error if an EXISTING ``path`` cannot be an SQLite database.

    Only looks at what never changes while other processes write (size 0, the header's magic
    string and page size), so it is safe while another job commits.
    """
    if path.is_dir():
        raise kind.error(f"{kind.noun} path {str(path)!r} is a directory; give a file path")
    size = path.stat().st_size
    if size == 0:
        raise kind.damaged(path, "is empty (0 bytes: an interrupted copy or download?)")
    with open(path, "rb") as fh:
        head = fh.read(100)
    if not head.startswith(_SQLITE_MAGIC[: len(head)]) or len(head) < len(_SQLITE_MAGIC):
        raise kind.damaged(path, "is not an SQLite database (no SQLite header)")
    if len(head) < 100:
        raise kind.damaged(path, f"is truncated ({size} bytes, less than an SQLite header)")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        raise kind.damaged(path, "is not an SQLite database (invalid page size in its header)")
    if size % page:
        raise kind.damaged(
            path, f"is truncated ({size} bytes, not a whole number of {page}-byte pages)"
        )


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def check_database(conn: sqlite3.Connection, path: Path, kind: StoreKind, create: bool) -> str:
    """Integrity and schema of an open database: ``"current"``, ``"legacy"`` (no digest column
    yet) or ``"empty"`` (no table yet, allowed only when ``create``); else the store's error."""
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = _columns(conn, kind.table)
    except sqlite3.DatabaseError as err:
        if _is_readonly(err):
            raise kind.unwritable(path, f"SQLite says: {err}") from err
        raise kind.damaged(path, f"is damaged ({err})") from err
    if problems != ["ok"]:
        raise kind.damaged(path, f"is damaged (SQLite integrity check: {problems[0]})")
    if kind.table not in tables:
        if tables:
            article = "an" if kind.noun[0] in "aeiou" else "a"
            raise kind.error(
                f"{str(path)!r} is an SQLite database but not {article} {kind.noun} (it has the "
                f"tables {', '.join(sorted(tables))}, not {kind.table!r}); give another path"
            )
        if not create:
            raise kind.damaged(path, f"holds no {kind.table} table")
        return "empty"
    if tuple(columns) == kind.columns:
        return "current"
    if tuple(columns) == kind.legacy_columns:
        return "legacy"
    raise kind.damaged(
        path,
        f"has {'an' if kind.table[0] in 'aeiou' else 'a'} {kind.table!r} table with the columns "
        f"{', '.join(columns)}, not {', '.join(kind.columns)} (another program's, or another "
        f"version's, {kind.noun})",
    )


def create_store(path: Path, kind: StoreKind) -> None:
    """Create a complete empty store at ``path`` unless one appears there meanwhile."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(kind.schema)
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


def _user() -> str:
    """The effective user's name (not $USER, which a changed uid keeps), else its number."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):  # not POSIX, or no name for this uid (containers)
        return getpass.getuser() if not hasattr(os, "geteuid") else f"uid {os.geteuid()}"


def check_writable(path: Path, kind: StoreKind) -> None:
    """The store's error unless this user may write ``path`` (when it exists) and its folder."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise kind.unwritable(
            path,
            f"this user ({_user()}) may not write in its folder {str(folder)!r}, where SQLite "
            "keeps the store's -wal and -shm files",
        )
    for suffix in ("", "-wal", "-shm"):
        file = Path(str(path) + suffix)
        if file.exists() and not os.access(file, os.W_OK):
            raise kind.unwritable(path, f"{str(file)!r} is read-only for this user ({_user()})")


def _probe_write(conn: sqlite3.Connection, path: Path, kind: StoreKind) -> None:
    """A transaction that rewrites a header field, rolled back: fails on a read-only file."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(f"PRAGMA user_version={version}")
    except sqlite3.OperationalError as err:
        if _is_readonly(err):
            raise kind.unwritable(path, f"SQLite says: {err}") from None
        raise
    finally:
        conn.execute("ROLLBACK")


def _add_digests(conn: sqlite3.Connection, path: Path, kind: StoreKind) -> None:
    """Give a store made before the digests existed its digest column (one transaction; a
    concurrent process that did it first leaves nothing to do)."""
    with transaction(conn):
        if tuple(_columns(conn, kind.table)) == kind.legacy_columns:
            names = ", ".join(kind.legacy_columns)
            rows = conn.execute(f"SELECT rowid, {names} FROM {kind.table}").fetchall()
            conn.execute(f"ALTER TABLE {kind.table} ADD COLUMN {DIGEST} TEXT NOT NULL DEFAULT ''")
            conn.executemany(
                f"UPDATE {kind.table} SET {DIGEST}=? WHERE rowid=?",
                ((kind.digest(r[1:]), r[0]) for r in rows),
            )
            log.warning(
                "%s %s was made before per-entry digests: the digests of its %d entries were "
                "computed once, now (its entries are trusted as they are)",
                kind.noun,
                path,
                len(rows),
            )


def open_store(path: Path, kind: StoreKind, timeout_s: float) -> sqlite3.Connection:
    """A checked, writable connection to the store at ``path`` (created when missing); see the
    module docstring for what is checked. Autocommit mode: writers use explicit transactions."""
    if path.is_dir():
        raise kind.error(f"{kind.noun} path {str(path)!r} is a directory; give a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    check_writable(path, kind)
    if not path.exists():
        create_store(path, kind)
    check_header(path, kind)
    try:
        conn = sqlite3.connect(
            str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.DatabaseError as err:
        raise kind.damaged(path, f"cannot be opened ({err})") from err
    try:
        with guard(path, kind):
            conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            state = check_database(conn, path, kind, create=True)
            _probe_write(conn, path, kind)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise kind.error(
                    f"{kind.noun} {str(path)!r}: journal_mode is {mode!r}, WAL could not be "
                    "enabled (keep the store on a local disk, not NFS)"
                )
            conn.execute("PRAGMA synchronous=FULL")
            if state == "empty":
                conn.execute(kind.schema)
            elif state == "legacy":
                _add_digests(conn, path, kind)
    except BaseException:
        conn.close()
        raise
    return conn


def open_read_only(path: Path, kind: StoreKind) -> sqlite3.Connection:
    """A checked read-only connection to an EXISTING store (a legacy one too: nothing is
    written); ``FileNotFoundError`` when there is none."""
    if not path.exists():
        raise FileNotFoundError(f"{kind.noun} {str(path)!r} does not exist")
    check_header(path, kind)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as err:
        raise kind.damaged(path, f"cannot be opened ({err})") from err
    try:
        check_database(conn, path, kind, create=False)
    except BaseException:
        conn.close()
        raise
    return conn
