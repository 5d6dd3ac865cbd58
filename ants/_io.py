"""File plumbing shared by every stage: atomic writes, content digests, Parquet with metadata.

Atomic writes go to a temporary file beside the target that is fsynced and renamed over it on
success, so a reader (or a re-run after a killed job) sees either the old file or the complete
new one, never a partial write. The file gets the usual permissions (``0o666 & ~umask``, like
``open``), not ``mkstemp``'s private ``0o600``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "canonical_json",
    "METADATA_KEY",
    "WriteError",
    "atomic_dir",
    "atomic_path",
    "file_digest",
    "json_default",
    "read_table",
    "write_json",
    "write_table",
]

#: Schema-metadata key under which ants stores a Parquet file's JSON metadata.
METADATA_KEY = b"ants"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path, *, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:  # e.g. directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: OS errors that mean the folder cannot take the file (full, over quota, too large, read-only,
#: not permitted): :func:`atomic_path` reports them as a :class:`WriteError`
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)


class WriteError(OSError):
    """A file could not be written (its folder is full, read-only, ...): one line naming the file
    and the OS error; nothing was written (the temporary file is removed)."""

    def __init__(self, path: str | os.PathLike, err_no: int):
        super().__init__(err_no, os.strerror(err_no), os.fspath(path))

    def __str__(self) -> str:
        return (
            f"cannot write {self.filename}: [Errno {self.errno}] {self.strerror}; nothing was "
            "written (free some space or make the folder writable, then run it again)"
        )


def _write_errno(exc: OSError) -> int | None:
    """The errno of a failed write (pyarrow's errors carry it in their text only), or None."""
    number = exc.errno
    if number is None:
        m = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        number = int(m[1]) if m else None
    return number if number in WRITE_ERRNOS else None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``.

    The folder is created if needed. The temporary file is fsynced before the rename and the
    folder after it. On an exception the temporary file is removed and ``path`` is left
    untouched; an OS error that says the folder cannot take the file (:data:`WRITE_ERRNOS`:
    full, read-only, ...) is raised as a :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync(Path(tmp))
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    except OSError as exc:
        number = None if isinstance(exc, WriteError) else _write_errno(exc)
        if number is None:
            raise
        raise WriteError(path, number) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces the folder ``path``.

    Whatever stood at ``path`` before is removed only once the new folder is complete, so an
    interrupted run leaves either the old folder or the new one, never a partial one that looks
    complete. On an exception the temporary folder is removed. The folder gets the usual
    permissions (``0o777 & ~umask``, like ``mkdir``), not ``mkdtemp``'s private ``0o700``.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def file_digest(
    path: str | os.PathLike, algorithm: str = "sha256", chunk_size: int = 1 << 20
) -> str:
    """Hex digest of a file's bytes, read in chunks (``sha256`` or ``md5``)."""
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"unknown checksum algorithm {algorithm!r}; valid: sha256, md5")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays, paths and sets."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Pretty, key-sorted JSON, written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=json_default)
        fh.write("\n")
    return path


def write_table(
    path: str | os.PathLike, frame, metadata: Mapping | None = None, *, schema=None
) -> Path:
    """Write a DataFrame (index dropped) to Parquet with JSON ``metadata`` in its schema; atomic.

    ``schema``: an optional ``pyarrow.Schema`` to cast the columns to.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), schema=schema, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(
        dict(metadata or {}), sort_keys=True, default=json_default
    ).encode("utf-8")
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_table(path: str | os.PathLike, *, what: str = "file"):
    """``(frame, metadata)`` of a file written by :func:`write_table`.

    ``what`` names the kind of file in the error when it is missing (e.g. ``"manifest"``).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY, b"{}")
    return table.to_pandas(), json.loads(raw)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, no insignificant whitespace and no NaN: the one canonical form
    of the package (cache keys, digests, the config subsets the rules pass)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
