"""Static zero-shot detectors: MCM and NegLabel (docs/METHOD.md section 2).

* MCM: Ming et al., "Delving into Out-of-Distribution Detection with Vision-Language
  Representations", NeurIPS 2022, https://arxiv.org/abs/2211.13445; reference code
  https://github.com/deeplearning-wisc/MCM.
* NegLabel: Jiang et al., "Negative Label Guided OOD Detection with Pretrained Vision-Language
  Models", ICLR 2024, https://arxiv.org/abs/2403.20078; reference code
  https://github.com/XueJiang16/NegLabel (the grouping follows it exactly: :mod:`ants.scores`).

Neither keeps state across samples, so a sample's score does not depend on the stream order:
these run on all features at once (chunked inside :mod:`ants.scores`). Scores: higher = more
in-distribution; predictions: argmax over the K ID cosines.

Beside each detector, its adapter for the workflow's score job (``score_*``, see
:class:`ants.methods.MethodSpec`) and, for NegLabel, the settings of the shared static pass it
reads (:func:`neglabel_static_scoring`). The workflow reads those settings when it plans the
jobs, so this module imports :mod:`ants.scores` (torch) only when a detector runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ants.methods.base import MethodResult

__all__ = [
    "NEGLABEL_GROUPS",
    "neglabel_static_scoring",
    "run_mcm",
    "run_neglabel",
    "score_mcm",
    "score_neglabel",
]

#: NegLabel's ImageNet setting: 100 groups of the mined negatives.
NEGLABEL_GROUPS = 100


def run_mcm(
    *, image_features: Any, id_text_features: Any, temperature: float = 1.0
) -> MethodResult:
    """MCM: ``max_i softmax_i(cos(v, t_i) / T)`` (T = 1 in the MCM paper; OpenOOD-VLM uses 0.01)."""
    from ants.scores import as_features, mcm, predict

    img = as_features(image_features, "image_features")
    idt = as_features(id_text_features, "id_text_features", dim=img.shape[1])
    scores = mcm(img.numpy(), idt.numpy(), temperature=temperature)
    return MethodResult(
        method="mcm",
        scores=np.asarray(scores, dtype=np.float32),
        predictions=np.asarray(predict(img.numpy(), idt.numpy()), dtype=np.int64),
    )


def run_neglabel(
    *,
    image_features: Any,
    id_text_features: Any,
    negative_features: Any,
    n_groups: int | None = None,
    group_size: int | None = None,
    tau: float | None = None,
    seed: int = 0,
) -> MethodResult:
    """NegLabel: the grouped negative-label score.

    Grouping by count (``n_groups``; NegLabel's default G = 100 when neither is given) or by
    size (``group_size``; ANTS's s = 100), with the fixed seed-0 permutation of
    :func:`ants.scores.group_layout`. ``n_groups=1`` is the plain score. ``tau``: the
    temperature (None: :data:`ants.scores.DEFAULT_TAU`, 0.01).
    """
    from ants.scores import DEFAULT_TAU, as_features, negative_label, predict

    if n_groups is not None and group_size is not None:
        raise ValueError("give at most one of n_groups or group_size")
    if n_groups is None and group_size is None:
        n_groups = NEGLABEL_GROUPS
    img = as_features(image_features, "image_features")
    idt = as_features(id_text_features, "id_text_features", dim=img.shape[1])
    neg = as_features(negative_features, "negative_features", dim=img.shape[1])
    if n_groups is not None and n_groups > neg.shape[0]:
        raise ValueError(
            f"n_groups={n_groups} exceeds the {neg.shape[0]} negatives; use fewer groups or a larger bank"
        )
    scores = negative_label(
        img.numpy(),
        idt.numpy(),
        neg.numpy(),
        tau=DEFAULT_TAU if tau is None else tau,
        n_groups=n_groups,
        group_size=group_size,
        seed=seed,
    )
    return MethodResult(
        method="neglabel",
        scores=np.asarray(scores, dtype=np.float32),
        predictions=np.asarray(predict(img.numpy(), idt.numpy()), dtype=np.int64),
    )


# --------------------------------------------------------------------------------------------
# the workflow's adapters (ants.methods.METHODS)


def score_mcm(section: Mapping[str, Any], inputs: Any) -> MethodResult:
    """MCM on one stream: its features against the "a photo of a {}." ID text features, with
    the section's ``temperature``."""
    idt, _ = inputs.id_text("photo")
    return run_mcm(
        image_features=inputs.features,
        id_text_features=idt,
        temperature=float(section["temperature"]),
    )


def neglabel_static_scoring(section: Mapping[str, Any]) -> dict:
    """The static pass NegLabel reads: the section's ``n_groups`` and ``tau``, seed-0 layout."""
    return {"tau": float(section["tau"]), "n_groups": int(section["n_groups"]), "seed": 0}


def score_neglabel(section: Mapping[str, Any], inputs: Any) -> MethodResult:
    """NegLabel on one stream: the grouped score of each image, computed once per dataset by
    the shared static pass (:func:`neglabel_static_scoring`), in stream order."""
    static = inputs.static
    return MethodResult(
        method="neglabel",
        scores=np.asarray(static.scores, np.float32),
        predictions=np.asarray(static.predictions, np.int64),
    )
