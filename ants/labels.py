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

The fine-grained ID sets the paper reports (``cub200``, ``stanford_cars``, ``food101``,
``oxford_pets``) are class-name files shipped in ``ants/data/labels/`` (their sources are named
in each file's header and in that folder's ``README.md``) and read with :func:`read_classnames`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

__all__ = [
    "BUILTIN_LABEL_SETS",
    "LABEL_DIR",
    "imagenet_classnames",
    "load_label_set",
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
