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

The file format (these columns, the metadata, the validating reader) lives in
:mod:`ants.artifacts` (:func:`~ants.artifacts.write_manifest`, :func:`~ants.artifacts.read_manifest`).

Bad images are never dropped here: they are recorded (``readable`` / ``error``) and the
embedding job decides, per ``data.on_bad_image``, to fail naming them or to skip them.

Layouts (``params.yaml``, ``datasets.<name>.layout``; where ``root`` and ``list`` are:
:func:`ants.datasets.location.dataset_location`):

* ``list``: an image list file, one ``relative/path label`` per line (OpenOOD's format; a
  missing label means -1); paths are relative to ``root``;
* ``class_folders``: one sub-folder of ``root`` per class; class index = position of the
  folder in sorted order (ImageNet val by wnid gives the standard class indices);
* ``flat``: every image file below ``root`` (recursively), label -1.

Images are decoded by :func:`ants.images.open_rgb` (the same code the encoder uses): huge
images are refused before decoding and 16-bit / float images are scaled to 8 bits (see
:mod:`ants.images`). A count that differs from the dataset's expected image count (the
published size, :data:`ants.datasets.registry.KNOWN_DATASETS`) is logged as a warning with
the difference.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ants._io import file_digest
from ants.artifacts import MANIFEST_COLUMNS
from ants.datasets import DatasetError
from ants.datasets.location import class_folder_names
from ants.images import DEFAULT_MAX_PIXELS
from ants.images import check_image as _check_image
from ants.progress import progress as _progress

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EXTENSIONS",
    "MANIFEST_COLUMNS",
    "build_manifest",
    "check_count",
    "check_image",
    "list_class_folders",
    "list_flat",
    "read_image_list",
]
DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


# --------------------------------------------------------------------------------------------
# hashing and image checks


def check_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str:
    """``""`` if :func:`ants.images.open_rgb` accepts the file, else why not.

    Decoding failures read ``"<ExceptionType>: <message>"``; refusals by ants (too many
    pixels, an unusable 16-bit / float range) say what and which limit.
    """
    return _check_image(path, max_pixels=max_pixels)


def check_count(dataset: str, n_images: int, expected: int | None) -> str | None:
    """Warn (log) when ``n_images`` differs from ``expected``; returns the message or None."""
    if expected is None or n_images == expected:
        return None
    diff = n_images - expected
    message = (
        f"dataset {dataset!r}: {n_images:,} images listed, expected {expected:,} "
        f"({abs(diff):,} {'more' if diff > 0 else 'fewer'}); check the extraction, the image list "
        f"or the extensions (datasets.{dataset}.expected_images is the published count)"
    )
    log.warning("%s", message)
    return message


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
                raise DatasetError(
                    f"{list_path}:{lineno}: the label {fields[1]!r} is not an integer"
                ) from None
            out.append((fields[0], label))
    if not out:
        raise DatasetError(f"{list_path}: the image list is empty")
    return out


def list_class_folders(
    root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS, dataset: str = ""
) -> list[tuple[str, int]]:
    """``[(relative path, class index), ...]``: class index = sorted position of the folder
    (:func:`ants.datasets.location.class_folder_names`); sorted by class, then by path.

    A class folder without any image file is an error naming it (a class with no test image
    is a mistake: an unfinished extraction, a misplaced folder)."""
    root = Path(root)
    _require_dir(root, dataset)
    classes = class_folder_names(root)
    if not classes:
        raise DatasetError(f"dataset {dataset!r}: {root} has no class sub-folders")
    out = []
    empty = []
    for index, name in enumerate(classes):
        found = len(out)
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames.sort()
            for f in sorted(filenames):
                if _has_ext(f, extensions):
                    out.append((Path(dirpath, f).relative_to(root).as_posix(), index))
        if len(out) == found:
            empty.append(name)
    if not out:
        raise DatasetError(
            f"dataset {dataset!r}: no image files ({', '.join(extensions)}) below {root}"
        )
    if empty:
        raise DatasetError(
            f"dataset {dataset!r}: class folder {empty[0]!r} of {root} holds no image file "
            f"({', '.join(extensions)})"
            + (
                f" (nor do {len(empty) - 1} more: {', '.join(empty[1:6])})"
                if len(empty) > 1
                else ""
            )
            + "; put its images there, or remove the folder and its line of the class names"
        )
    return sorted(out, key=lambda e: (e[1], e[0]))


def list_flat(
    root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS, dataset: str = ""
) -> list[tuple[str, int]]:
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
        raise DatasetError(
            f"dataset {dataset!r}: no image files ({', '.join(extensions)}) below {root}"
        )
    return sorted(out)


def build_manifest(
    dataset: str,
    entries: Sequence[tuple[str, int]],
    root: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    check_images: bool = True,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    expected_images: int | None = None,
) -> pd.DataFrame:
    """The manifest table (see the module docstring) of ``entries`` (relative path, label).

    A missing file is an error naming it; an undecodable one, or one :mod:`ants.images`
    refuses (more than ``max_pixels`` pixels, ...), is recorded (``readable`` False,
    ``error``). Labels outside ``class_names`` are an error naming the first such file.
    ``expected_images``: the published image count; a different count is logged as a
    warning (:func:`check_count`), not an error.
    """
    root = Path(root)
    rows = []
    n_classes = len(class_names) if class_names is not None else None
    check_count(dataset, len(entries), expected_images)
    for rel, label in _progress(entries, desc=f"manifest {dataset}", unit="img", enabled=progress):
        path = root / rel
        if not path.is_file():
            raise DatasetError(f"dataset {dataset!r}: image file not found: {path}")
        if label >= 0 and n_classes is not None and label >= n_classes:
            raise DatasetError(
                f"dataset {dataset!r}: {path} has label {label}, but the label set has {n_classes} classes"
            )
        error = check_image(path, max_pixels=max_pixels) if check_images else ""
        rows.append(
            {
                "id": f"{dataset}/{rel}",
                "path": path.as_posix(),
                "label": int(label),
                "class_name": class_names[label]
                if (label >= 0 and class_names is not None)
                else "",
                "sha256": file_digest(path),
                "readable": not error,
                "error": error,
            }
        )
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    frame["label"] = frame["label"].astype("int64")
    frame["readable"] = frame["readable"].astype(bool)
    dup = frame["id"].duplicated()
    if dup.any():
        raise DatasetError(
            f"dataset {dataset!r}: image {frame['id'][dup].iloc[0]!r} is listed twice"
        )
    return frame
