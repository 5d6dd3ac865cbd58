"""Safe extraction of dataset archives (``.tar(.gz|.bz2|.xz)``, ``.zip``).

:func:`extract_archive` refuses members that would land outside the target folder, links
pointing outside, special files, and archives that would expand beyond a size or
compression-ratio limit; it extracts into a temporary folder renamed into place.
"""

from __future__ import annotations

import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from ants._io import atomic_dir
from ants.datasets import DatasetError
from ants.datasets import dataset_prefix as _who

__all__ = [
    "DEFAULT_MAX_EXTRACT_BYTES",
    "DEFAULT_MAX_RATIO",
    "extract_archive",
]


# --------------------------------------------------------------------------------------------
# extraction

#: Extraction limits of :func:`extract_archive` (params: ``datasets.<name>.extract.*``).
DEFAULT_MAX_EXTRACT_BYTES = 64 * 1024**3
DEFAULT_MAX_RATIO = 200.0
EXPECTED_SIZE_FACTOR = 4
#: Members (and archives) smaller than this are exempt from the compression-ratio check:
#: tiny files of zeros compress absurdly well without being a bomb.
RATIO_MIN_BYTES = 1 << 20


def _escapes(base: Path, relative: str) -> bool:
    if relative.startswith(("/", "\\")) or (len(relative) > 1 and relative[1] == ":"):
        return True
    resolved = os.path.normpath(os.path.join(base, relative))
    return resolved != str(base) and not resolved.startswith(str(base) + os.sep)


def _safe_members(names: Iterable[str], target: Path, archive: Path) -> None:
    base = Path(os.path.abspath(target))
    for name in names:
        if _escapes(base, name):
            raise DatasetError(
                f"{archive}: member {name!r} would be extracted outside {target}; refusing"
            )


def _check_tar_links(members: Sequence[tarfile.TarInfo], target: Path, archive: Path) -> None:
    """Symlink targets resolve from the link's folder, hardlink targets from the archive root."""
    base = Path(os.path.abspath(target))
    for m in members:
        if m.issym():
            where = os.path.join(os.path.dirname(m.name), m.linkname)
            if os.path.isabs(m.linkname) or _escapes(base, where):
                raise DatasetError(
                    f"{archive}: symlink {m.name!r} -> {m.linkname!r} points outside the "
                    f"extracted folder; refusing"
                )
        elif m.islnk():
            if os.path.isabs(m.linkname) or _escapes(base, m.linkname):
                raise DatasetError(
                    f"{archive}: hardlink {m.name!r} -> {m.linkname!r} points outside the "
                    f"extracted folder (hardlink targets are relative to the archive root); "
                    f"refusing"
                )
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = "character device" if m.ischr() else "block device" if m.isblk() else "FIFO"
            raise DatasetError(
                f"{archive}: member {m.name!r} is a {kind}; a dataset archive holds only "
                f"files, folders and links; refusing"
            )


def _extract_setting(dataset: str, key: str) -> str:
    """Where an extraction limit is set: ``datasets.<dataset>.extract.<key>`` in params.yaml,
    or the keyword ``<key>`` of :func:`extract_archive` when no dataset is named."""
    return f"datasets.{dataset}.extract.{key}" if dataset else key


def _check_sizes(
    archive: Path,
    total: int,
    limit: int,
    max_ratio: float,
    members: Iterable[tuple[str, int, int | None]],
    dataset: str = "",
) -> None:
    """``members``: (name, uncompressed size, compressed size or None)."""
    if total > limit:
        raise DatasetError(
            f"{archive}: extracting it would write {total:,} bytes, above the limit of "
            f"{limit:,} bytes ({_extract_setting(dataset, 'max_bytes')}); refusing (raise the "
            f"limit if the archive is genuine)"
        )
    ratio_setting = _extract_setting(dataset, "max_ratio")
    size = archive.stat().st_size
    if total >= RATIO_MIN_BYTES and size > 0 and total / size > max_ratio:
        raise DatasetError(
            f"{archive}: {total:,} bytes from a {size:,}-byte archive is a compression ratio of "
            f"{total / size:.0f}:1, above the limit of {max_ratio:g}:1 ({ratio_setting}); "
            f"refusing a likely decompression bomb"
        )
    for name, usize, csize in members:
        if csize is not None and usize >= RATIO_MIN_BYTES and usize / max(csize, 1) > max_ratio:
            raise DatasetError(
                f"{archive}: member {name!r} expands {csize:,} -> {usize:,} bytes "
                f"({usize / max(csize, 1):.0f}:1, above the limit of {max_ratio:g}:1, "
                f"{ratio_setting}); refusing a likely decompression bomb"
            )


def extract_archive(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    dataset: str = "",
    max_bytes: int | None = None,
    expected_bytes: int | None = None,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> Path:
    """Extract a ``.tar(.gz|.bz2|.xz)`` or ``.zip`` archive into ``target`` (created).

    Extraction goes to a temporary folder beside ``target`` that is renamed into place, so an
    interrupted extraction leaves nothing that looks complete; the folder gets the usual
    permissions (``0o777 & ~umask``). Refused, before anything is written, with a
    :class:`DatasetError` naming the archive:

    * members with absolute paths or ``..`` escaping ``target``; symlinks whose target
      (relative to the link's folder) or hardlinks whose target (relative to the archive
      root, as tar stores them) lies outside; device files and FIFOs;
    * a total uncompressed size above ``max_bytes`` (default: ``4 * expected_bytes`` when the
      expected extracted size is known, else :data:`DEFAULT_MAX_EXTRACT_BYTES`, 64 GiB);
    * a compression ratio above ``max_ratio`` (default 200:1) overall (uncompressed total /
      archive size) or, for zip files, per member (tar streams are compressed as a whole, so
      only the overall ratio exists); sizes under 1 MiB are exempt. These two messages name
      the setting to raise: ``datasets.<dataset>.extract.max_bytes`` / ``.max_ratio`` when
      ``dataset`` is given, else the keyword.

    Tar files are extracted with tarfile's ``data`` filter as a second line of defence; its
    errors and those of a damaged archive are reported with the archive's name.
    """
    archive, target = Path(archive), Path(target)
    who = _who(dataset)
    if not archive.is_file():
        raise DatasetError(f"{who}archive not found: {archive}")
    if max_bytes is None:
        max_bytes = (
            EXPECTED_SIZE_FACTOR * expected_bytes if expected_bytes else DEFAULT_MAX_EXTRACT_BYTES
        )
    damaged = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                with atomic_dir(target) as tmp:
                    _safe_members([i.filename for i in infos], tmp, archive)
                    _check_sizes(
                        archive,
                        sum(i.file_size for i in infos),
                        max_bytes,
                        max_ratio,
                        [(i.filename, i.file_size, i.compress_size) for i in infos],
                        dataset,
                    )
                    zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                with atomic_dir(target) as tmp:
                    _safe_members([m.name for m in members], tmp, archive)
                    _check_tar_links(members, tmp, archive)
                    _check_sizes(
                        archive,
                        sum(m.size for m in members if m.isreg()),
                        max_bytes,
                        max_ratio,
                        [],
                        dataset,
                    )
                    tf.extractall(tmp, members=members, filter="data")
        else:
            raise DatasetError(f"{who}{archive}: not a tar or zip archive")
    except DatasetError as exc:
        if who and not str(exc).startswith(who):
            raise DatasetError(f"{who}{exc}") from None
        raise
    except tarfile.FilterError as exc:
        raise DatasetError(f"{who}{archive}: refused by tarfile's data filter: {exc}") from None
    except damaged as exc:
        raise DatasetError(
            f"{who}{archive}: the archive is damaged or truncated ({type(exc).__name__}: {exc}); "
            f"delete it and run again"
        ) from None
    return target
