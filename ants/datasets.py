"""Datasets -> manifests: which image files a dataset holds, their labels and content hashes.

A **manifest** is one Parquet table per dataset (``results/manifests/{dataset}.parquet``),
one row per image, in a deterministic order:

==============  ============================================================================
``id``          ``"{dataset}/{relative path}"``: stable across machines and moves
``path``        the file path used to open the image (as configured: relative paths are
                relative to the working directory)
``label``       ID class index (int64), ``-1`` when the dataset has no labels (OOD sets)
``class_name``  the label's class name, or ``""``
``sha256``      SHA-256 of the file's bytes (the MLLM answer cache keys on it)
``readable``    whether the file decoded as an image (``check_images``; else always True)
``error``       why it did not (exception type and message), or ``""``
==============  ============================================================================

Bad images are never dropped here: they are recorded (``readable`` / ``error``) and the
embedding job decides, per ``data.on_bad_image``, to fail naming them or to skip them.

Layouts (``params.yaml``, ``datasets.<name>.layout``):

* ``list``: an image list file, one ``relative/path label`` per line (OpenOOD's format; a
  missing label means -1); paths are relative to ``root``;
* ``class_folders``: one sub-folder of ``root`` per class; class index = position of the
  folder in sorted order (ImageNet val by wnid gives the standard class indices);
* ``flat``: every image file below ``root`` (recursively), label -1.

Downloads (:func:`fetch_archive`) stream to a temporary file, check the configured checksum
(``sha256:<hex>`` or ``md5:<hex>``), and only then move the archive into place;
:func:`extract_archive` refuses members that would land outside the target folder.
"""

from __future__ import annotations

import os
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ants._io import atomic_dir, atomic_path, file_digest, read_table, write_table

__all__ = [
    "MANIFEST_COLUMNS",
    "ChecksumError",
    "DatasetError",
    "build_manifest",
    "check_image",
    "extract_archive",
    "fetch_archive",
    "list_class_folders",
    "list_flat",
    "read_image_list",
    "read_manifest",
    "write_manifest",
]

MANIFEST_COLUMNS = ("id", "path", "label", "class_name", "sha256", "readable", "error")
DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class DatasetError(ValueError):
    """A dataset cannot be listed (missing folder, bad list line, ...); names the file."""


class ChecksumError(DatasetError):
    """A downloaded file does not have the configured checksum."""


# --------------------------------------------------------------------------------------------
# hashing and image checks


def check_image(path: str | os.PathLike) -> str:
    """``""`` if the file decodes as an image, else ``"<ExceptionType>: <message>"``."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as exc:  # noqa: BLE001 - every decoding failure is recorded, not raised
        return f"{type(exc).__name__}: {exc}"
    return ""


# --------------------------------------------------------------------------------------------
# listing


def _has_ext(name: str, extensions: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(e.lower() for e in extensions))


def _require_dir(root: Path, dataset: str) -> None:
    if not root.is_dir():
        raise DatasetError(f"dataset {dataset!r}: image folder not found: {root}")


def read_image_list(list_path: str | os.PathLike, dataset: str = "") -> list[tuple[str, int]]:
    """``[(relative path, label), ...]`` from an image list (``path [label]`` per line).

    Blank lines and ``#`` comments are skipped; a line with more than two fields or a label
    that is not an integer is an error naming the file and line.
    """
    list_path = Path(list_path)
    if not list_path.is_file():
        raise DatasetError(f"dataset {dataset!r}: image list not found: {list_path}")
    out: list[tuple[str, int]] = []
    with open(list_path, encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) > 2:
                raise DatasetError(f"{list_path}:{lineno}: expected 'path [label]', got {line!r}")
            try:
                label = int(fields[1]) if len(fields) == 2 else -1
            except ValueError:
                raise DatasetError(f"{list_path}:{lineno}: the label {fields[1]!r} is not an integer") from None
            out.append((fields[0], label))
    if not out:
        raise DatasetError(f"{list_path}: the image list is empty")
    return out


def list_class_folders(root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS,
                       dataset: str = "") -> list[tuple[str, int]]:
    """``[(relative path, class index), ...]``: class index = sorted position of the folder;
    sorted by class, then by path."""
    root = Path(root)
    _require_dir(root, dataset)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"dataset {dataset!r}: {root} has no class sub-folders")
    out = []
    for index, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames.sort()
            for f in sorted(filenames):
                if _has_ext(f, extensions):
                    out.append((Path(dirpath, f).relative_to(root).as_posix(), index))
    if not out:
        raise DatasetError(f"dataset {dataset!r}: no image files ({', '.join(extensions)}) below {root}")
    return sorted(out, key=lambda e: (e[1], e[0]))


def list_flat(root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS,
              dataset: str = "") -> list[tuple[str, int]]:
    """``[(relative path, -1), ...]`` for every image file below ``root``, sorted."""
    root = Path(root)
    _require_dir(root, dataset)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if _has_ext(f, extensions):
                out.append((Path(dirpath, f).relative_to(root).as_posix(), -1))
    if not out:
        raise DatasetError(f"dataset {dataset!r}: no image files ({', '.join(extensions)}) below {root}")
    return sorted(out)


def build_manifest(
    dataset: str,
    entries: Sequence[tuple[str, int]],
    root: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    check_images: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """The manifest table (see the module docstring) of ``entries`` (relative path, label).

    A missing file is an error naming it; an undecodable one is recorded (``readable`` False,
    ``error``). Labels outside ``class_names`` are an error naming the first such file.
    """
    root = Path(root)
    rows = []
    n_classes = len(class_names) if class_names is not None else None
    for rel, label in tqdm(entries, desc=f"manifest {dataset}", unit="img", disable=not progress):
        path = root / rel
        if not path.is_file():
            raise DatasetError(f"dataset {dataset!r}: image file not found: {path}")
        if label >= 0 and n_classes is not None and label >= n_classes:
            raise DatasetError(
                f"dataset {dataset!r}: {path} has label {label}, but the label set has {n_classes} classes"
            )
        error = check_image(path) if check_images else ""
        rows.append({
            "id": f"{dataset}/{rel}",
            "path": path.as_posix(),
            "label": int(label),
            "class_name": class_names[label] if (label >= 0 and class_names is not None) else "",
            "sha256": file_digest(path),
            "readable": not error,
            "error": error,
        })
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    frame["label"] = frame["label"].astype("int64")
    frame["readable"] = frame["readable"].astype(bool)
    dup = frame["id"].duplicated()
    if dup.any():
        raise DatasetError(f"dataset {dataset!r}: image {frame['id'][dup].iloc[0]!r} is listed twice")
    return frame


def write_manifest(path: str | os.PathLike, frame: pd.DataFrame, metadata: Mapping | None = None) -> Path:
    """Write a manifest atomically (temporary file, then rename); metadata as JSON in the schema."""
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"a manifest needs the columns {list(MANIFEST_COLUMNS)}; missing {missing}")
    return write_table(path, frame[list(MANIFEST_COLUMNS)], metadata)


def read_manifest(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """``(frame, metadata)`` of a manifest written by :func:`write_manifest`."""
    frame, meta = read_table(path, what="manifest")
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path} is not a manifest: missing columns {missing}")
    return frame, meta


# --------------------------------------------------------------------------------------------
# downloads


Downloader = Callable[[str, Path], None]


def _urllib_download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` with a progress bar (http, https and file URLs)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:  # noqa: S310
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {Path(url).name}") as bar:
            while block := response.read(1 << 20):
                out.write(block)
                bar.update(len(block))


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` -> ``("sha256", "<hex>")`` (also ``md5``)."""
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ("sha256", "md5") or not digest:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algorithm, digest.lower()


def fetch_archive(url: str, dest: str | os.PathLike, checksum: str, *,
                  downloader: Downloader | None = None) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right checksum is already there.

    The download goes to a temporary file beside ``dest``; a checksum mismatch deletes it and
    raises :class:`ChecksumError` naming the URL, the expected and the actual digest.
    """
    algorithm, expected = parse_checksum(checksum)
    dest = Path(dest)
    if dest.is_file() and file_digest(dest, algorithm) == expected:
        return dest
    with atomic_path(dest) as tmp:
        (downloader or _urllib_download)(url, tmp)
        actual = file_digest(tmp, algorithm)
        if actual != expected:
            raise ChecksumError(
                f"{url}: {algorithm} checksum mismatch: expected {expected}, got {actual} "
                f"(a truncated download, or the file changed upstream; check the URL or the checksum "
                f"in params.yaml)"
            )
    return dest


def _safe_members(names: Iterable[str], target: Path, archive: Path) -> None:
    base = target.resolve()
    for name in names:
        resolved = (base / name).resolve()
        if resolved != base and base not in resolved.parents:
            raise DatasetError(f"{archive}: member {name!r} would be extracted outside {target}; refusing")


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a ``.tar(.gz|.bz2|.xz)`` or ``.zip`` archive into ``target`` (created).

    Extraction goes to a temporary folder beside ``target`` that is renamed into place, so an
    interrupted extraction leaves nothing that looks complete. Members with absolute paths or
    ``..`` that would escape ``target``, and links in tar files pointing outside, are refused.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise DatasetError(f"archive not found: {archive}")
    with atomic_dir(target) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _safe_members(zf.namelist(), tmp, archive)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                _safe_members([m.name for m in members], tmp, archive)
                for m in members:
                    if m.issym() or m.islnk():
                        _safe_members([str(Path(m.name).parent / m.linkname)], tmp, archive)
                tf.extractall(tmp, filter="data")
        else:
            raise DatasetError(f"{archive}: not a tar or zip archive")
    return target
