"""In-distribution (ID) label sets: the built-in ImageNet-1k names or a text file of class names.

The order of the names is the class index order (ID prediction = argmax over these labels), so
every function here returns a list in file / registry order.

Text files hold one class name per line (UTF-8; a byte-order mark is accepted). Leading and
trailing whitespace is stripped, blank lines and lines whose first non-blank character is ``#``
are skipped. Two lines whose names are equal case-insensitively are an error (CLIP's tokenizer
lower-cases, so they would encode to the same text feature); so is a file with no names.

The built-in ``imagenet1k`` set is CLIP's cleaned ImageNet class names as shipped by open_clip
(``open_clip.IMAGENET_CLASSNAMES``). It is used as is, so that index ``i`` is ImageNet class
``i``; note that it holds two exact duplicates ("missile" at indices 657 and 744, "sunglasses" at
836 and 837), which the file reader would reject.

A label set read with class folders (layout ``class_folders``) pairs line ``i`` with the
``i``-th class folder in sorted order. :func:`misplaced_class_folders` finds where that pairing
is visibly wrong: a folder whose name is a class name of ANOTHER line (compared by
:func:`class_name_key`: case, ``_`` / ``-`` / runs of spaces and a leading index such as ``001.``
or ``03_`` ignored), e.g. folder ``dog`` paired with the line ``cat``. Folders named otherwise
(ImageNet's wnids ``n01440764`` ...) cannot be checked and are taken in sorted order.

The fine-grained ID sets the paper reports (``cub200``, ``stanford_cars``, ``food101``,
``oxford_pets``) are class-name files shipped in ``ants/data/labels/`` (their sources are named
in each file's header and in that folder's ``README.md``) and read with :func:`read_classnames`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

__all__ = [
    "BUILTIN_LABEL_SETS",
    "LABEL_DIR",
    "class_name_key",
    "imagenet_classnames",
    "load_label_set",
    "misplaced_class_folders",
    "read_classnames",
]

#: Folder of the shipped class-name files.
LABEL_DIR = Path(__file__).resolve().parent / "data" / "labels"

#: Shipped fine-grained label sets: name -> (file in LABEL_DIR, number of classes).
_FILE_SETS = {
    "cub200": ("cub200.txt", 200),
    "stanford_cars": ("stanford_cars.txt", 196),
    "food101": ("food101.txt", 101),
    "oxford_pets": ("oxford_pets.txt", 37),
}


def imagenet_classnames() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order (``open_clip.IMAGENET_CLASSNAMES``)."""
    import open_clip  # imported here: open_clip is slow to import and only this needs it

    names = list(open_clip.IMAGENET_CLASSNAMES)
    if len(names) != 1000:
        raise RuntimeError(
            f"open_clip.IMAGENET_CLASSNAMES holds {len(names)} names, expected 1000 "
            f"(open_clip {getattr(open_clip, '__version__', '?')})"
        )
    return names


def _shipped(name: str) -> list[str]:
    filename, expected = _FILE_SETS[name]
    names = read_classnames(LABEL_DIR / filename)
    if len(names) != expected:  # pragma: no cover - guards the shipped files
        raise RuntimeError(
            f"{LABEL_DIR / filename} holds {len(names)} class names, expected {expected}"
        )
    return names


#: Label sets known by name (``load_label_set`` accepts these or a path).
BUILTIN_LABEL_SETS = {
    "imagenet1k": imagenet_classnames,
    **{name: partial(_shipped, name) for name in _FILE_SETS},
}


def read_classnames(path: str | Path) -> list[str]:
    """Read class names from a text file, one per line (see the module docstring for the rules).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for an
    empty one or for duplicate names (with the line numbers of both occurrences).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class-name file not found: {path}")
    names: list[str] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, start=1):
            name = raw.strip()
            if not name or name.startswith("#"):
                continue
            key = name.casefold()
            if key in first_line:
                raise ValueError(
                    f"{path}: duplicate class name {name!r} on lines {first_line[key]} and {lineno} "
                    f"(names are compared case-insensitively)"
                )
            first_line[key] = lineno
            names.append(name)
    if not names:
        raise ValueError(
            f"{path}: no class names found (the file is empty or holds only blank lines and "
            f"'#' comments; expected one class name per line)"
        )
    return names


def load_label_set(spec: str | Path) -> list[str]:
    """Class names for ``spec``: a built-in name (``'imagenet1k'``, ``'cub200'``,
    ``'stanford_cars'``, ``'food101'``, ``'oxford_pets'``) or the path of a text file."""
    if isinstance(spec, str) and spec in BUILTIN_LABEL_SETS:
        return BUILTIN_LABEL_SETS[spec]()
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"unknown label set {str(spec)!r}: not a built-in label set "
            f"({', '.join(sorted(BUILTIN_LABEL_SETS))}) and no file exists at {path}"
        )
    return read_classnames(path)


_INDEX_PREFIX = re.compile(r"^\d+[\s._-]+(?=\S)")


def class_name_key(name: str) -> str:
    """``name`` as folder and class names are compared: a leading index (``001.``, ``03_``)
    dropped, ``_`` and ``-`` read as spaces, runs of spaces as one, case-folded
    (``'001.Black_footed_Albatross'`` -> ``'black footed albatross'``)."""
    text = _INDEX_PREFIX.sub("", str(name).strip())
    return " ".join(re.sub(r"[_-]", " ", text).split()).casefold()


def misplaced_class_folders(folders: Sequence[str], names: Sequence[str]) -> list[tuple[int, int]]:
    """``[(i, j), ...]``: class folder ``folders[i]`` (sorted order: class ``i``) is named like
    class name ``names[j]`` of another index ``j != i`` -- paired with line ``i`` of the names,
    its images would get the wrong class. Empty when every folder named like a class sits at
    that class's index (folders named otherwise, or like two classes, are not judged)."""
    index: dict[str, int | None] = {}
    for j, n in enumerate(names):
        key = class_name_key(n)
        index[key] = None if key in index else j  # two names with one key: not judged
    return [
        (i, index[key])
        for i, f in enumerate(folders)
        if index.get(key := class_name_key(f)) not in (None, i)
    ]
