"""Where a dataset's images are: THE resolver of a params ``datasets.<name>`` entry.

One function decides where a dataset's image root and image list are, and the three places
that need to know ask it: the config check (:func:`ants.config.check_data`: is the list
there?), the manifest stage (:func:`ants.stages.build_dataset_manifest`: which list does it
read?) and the workflow's manifest rule (``manifest_inputs`` in ``workflow/rules/common.smk``:
which files does the manifest depend on, so that editing one re-runs it).

* ``source: demo`` -- the generated image set: root ``{data_dir}/demo``, list
  ``{data_dir}/demo/{split}.txt``;
* ``source: download`` -- root ``{data_dir}/downloads/{dataset}/extracted/{root}`` (``root``
  is the folder inside the archive);
* ``source: local`` -- ``root`` as given (``~`` expanded; relative to the working directory).

An image ``list`` (layout ``list``) is taken as given when it is absolute or exists relative
to the working directory, and relative to the root otherwise (OpenOOD's lists name
``benchmark_imglist/...`` below the data folder).

Layout ``class_folders``: the classes are the sub-folders of the root in sorted order
(:func:`class_folder_names`; class index = position, so ImageNet's wnid folders give the
standard indices); a class folder's images are the files below it with one of the dataset's
``extensions`` (:func:`dataset_extensions`, :func:`holds_images`).

Torch- and pandas-free: the workflow calls it while it plans the jobs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ants.artifacts import folder
from ants.datasets import DatasetError

__all__ = [
    "DATA_DIR",
    "DEFAULT_EXTENSIONS",
    "class_folder_names",
    "dataset_extensions",
    "dataset_location",
    "holds_images",
    "manifest_sources",
]

#: Where the workflow keeps generated and downloaded datasets (:mod:`ants.artifacts`' layout:
#: ``data/demo/{split}.txt``, ``data/downloads/{dataset}/extracted``).
DATA_DIR = folder("demo_list")

#: The image extensions of a dataset whose params give none (``datasets.<name>.extensions``).
DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png")


def dataset_extensions(cfg: Mapping) -> tuple[str, ...]:
    """The image file extensions of a dataset (lower case): its ``extensions``, else
    :data:`DEFAULT_EXTENSIONS`."""
    return tuple(e.lower() for e in (cfg.get("extensions") or DEFAULT_EXTENSIONS))


def class_folder_names(root: str | os.PathLike) -> list[str]:
    """The class sub-folders of a ``class_folders`` root, sorted: class ``i`` is the ``i``-th."""
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir())


def holds_images(folder: str | os.PathLike, extensions: Sequence[str]) -> bool:
    """Whether any file below ``folder`` (recursively) has one of ``extensions``
    (case-insensitive); stops at the first one."""
    ext = tuple(e.lower() for e in extensions)
    for _dirpath, _dirnames, filenames in os.walk(folder):
        if any(f.lower().endswith(ext) for f in filenames):
            return True
    return False


def _list_path(cfg: Mapping, root: Path) -> Path:
    lst = Path(cfg["list"]).expanduser()
    if not lst.is_absolute() and not lst.exists():
        return root / lst
    return lst


def dataset_location(
    dataset: str, cfg: Mapping, *, data_dir: str = DATA_DIR
) -> tuple[Path, Path | None]:
    """``(image root, image list or None)`` of dataset ``dataset`` (its params entry ``cfg``).

    The list is None unless the dataset is a generated demo set or has layout ``list``. A
    local dataset without ``root``, or a ``list`` layout without ``list``, is a
    :class:`~ants.datasets.DatasetError` naming the key."""
    source = cfg["source"]
    if source == "demo":
        root = Path(data_dir) / "demo"
        return root, root / f"{cfg['split']}.txt"
    if source == "download":
        root = Path(data_dir) / "downloads" / dataset / "extracted" / cfg["root"]
    else:
        if cfg.get("root") is None:
            raise DatasetError(
                f"datasets.{dataset}.root is not set: give the folder holding the images"
            )
        root = Path(cfg["root"]).expanduser()
    if cfg.get("layout") != "list":
        return root, None
    if cfg.get("list") is None:
        raise DatasetError(f"datasets.{dataset}.list is not set: give the image list file")
    return root, _list_path(cfg, root)


def manifest_sources(dataset: str, cfg: Mapping, *, data_dir: str = DATA_DIR) -> list[str]:
    """The files a dataset's manifest is built from, as the workflow's manifest rule's inputs:
    a demo set's list (the demo rule writes it), a download's extracted folder (the download
    rule's output; its image list, if any, lies inside), a local dataset's image list when
    it exists (wherever :func:`dataset_location` finds it). A local dataset's image folders
    are not inputs: a folder's time stamp does not follow its images."""
    if cfg["source"] == "download":
        return [(Path(data_dir) / "downloads" / dataset / "extracted").as_posix()]
    try:
        _, lst = dataset_location(dataset, cfg, data_dir=data_dir)
    except DatasetError:
        return []  # root or list not set: the config check reports it
    if lst is None or (cfg["source"] == "local" and not lst.is_file()):
        return []
    return [lst.as_posix()]
