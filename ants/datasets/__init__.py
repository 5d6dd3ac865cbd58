"""Datasets: where a dataset's images are, what they are, and how they are obtained.

* :mod:`ants.datasets.location` -- THE resolver of a params ``datasets.<name>`` entry: the
  image root and the image list (relative to what), used by the config check, the manifest
  stage and the workflow's manifest rule alike;
* :mod:`ants.datasets.manifests` -- image lists, class folders and flat folders -> manifests
  (one Parquet row per image: path, label, sha256, readable);
* :mod:`ants.datasets.download` -- resumable, checksummed downloads (and mirrors, already
  extracted copies): :func:`~ants.datasets.download.obtain_dataset`;
* :mod:`ants.datasets.extract` -- safe archive extraction;
* :mod:`ants.datasets.registry` -- the benchmark datasets as data (``KNOWN_DATASETS``).

This package module itself imports nothing heavy: :class:`DatasetError` and the resolver are
read when the workflow is planned.
"""

from __future__ import annotations

__all__ = ["DatasetError", "dataset_prefix"]


class DatasetError(ValueError):
    """A dataset cannot be listed, fetched or extracted (missing folder, bad list line, failed
    download, unsafe archive, ...); the message names the file or setting."""


def dataset_prefix(dataset: str) -> str:
    """The head of an error message about ``dataset`` (empty when none is named)."""
    return f"dataset {dataset!r}: " if dataset else ""
