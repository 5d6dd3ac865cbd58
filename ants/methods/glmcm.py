"""GL-MCM: global and local maximum concept matching (a training-free baseline of paper Table 1).

Miyai et al., "GL-MCM: Global and Local Maximum Concept Matching for Zero-Shot
Out-of-Distribution Detection", IJCV 2025, https://arxiv.org/abs/2304.04521; reference code
https://github.com/AtsuMiyai/GL-MCM (``utils/detection_util.py:get_ood_scores_clip``).

For an image with global feature ``g`` and patch features ``l_p`` (``p = 1..P``; the value path
of CLIP's last block, :mod:`ants.local_features`), all L2-normalised, and the ID text features
``t_k`` of "a photo of a {c}" (no period, as their code)::

    MCM(g)   = max_k softmax_k(cos(g, t_k) / T)
    L-MCM(l) = max_p max_k softmax_k(cos(l_p, t_k) / T)       (one softmax per patch)
    S        = MCM(g) + lambda_local * L-MCM(l)

Higher = more in-distribution. Their code: ``T = 1`` (argparse default; the ImageNet script
passes none) and ``lambda_local`` 1.0 by default (arXiv v1: GL-MCM = MCM + L-MCM) but 0.5 in
``scripts/eval_imagenet.sh``; both are settings here (``temperature``, ``lambda_local``), and
which of them produced the published ImageNet numbers is not known (docs/METHOD.md section 11).

The local term depends on the image and the ID labels only, so the workflow computes it once
per (image, label set, T) in its own job (``ants local-features``) and the score job reads it
(``local`` in :class:`ants.stages._StreamInputs`); :func:`run_glmcm` takes it precomputed
(``local_scores``) or the patch features (``local_features``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ants.methods.base import MethodResult

__all__ = ["GLMCM_PROMPT", "glmcm_local_temperature", "local_mcm", "run_glmcm", "score_glmcm"]

#: The ID prompt of their code ("a photo of a {c}", no final period): ``ants.stages.ID_PROMPTS``.
GLMCM_PROMPT = "photo_bare"


def local_mcm(local_features: Any, id_text_features: Any, *, temperature: float = 1.0):
    """L-MCM of each image: ``max_p max_k softmax_k(cos(l_p, t_k) / T)``, shape ``(B,)`` float32.

    ``local_features``: ``(B, P, d)`` patch features (normalised here, per patch);
    ``id_text_features``: ``(K, d)`` unit rows. Also returns the ID class of the best patch
    (``(scores, predictions)``). Computed with log-sum-exp (``exp(max logit - lse)`` per patch).
    """
    import torch

    local = torch.as_tensor(
        np.asarray(local_features) if not torch.is_tensor(local_features) else local_features
    ).float()
    if local.ndim != 3:
        raise ValueError(f"local_features must be (images, patches, d), got {tuple(local.shape)}")
    idt = torch.as_tensor(np.asarray(id_text_features)).float()
    if idt.ndim != 2 or idt.shape[1] != local.shape[2]:
        raise ValueError(f"id_text_features must be (K, {local.shape[2]}), got {tuple(idt.shape)}")
    if not (temperature > 0):
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    local = torch.nn.functional.normalize(local, dim=-1)
    logits = local @ idt.T / float(temperature)  # (B, P, K)
    top, cls = logits.max(dim=-1)
    prob = torch.exp(top - torch.logsumexp(logits, dim=-1))  # (B, P) max softmax per patch
    best, patch = prob.max(dim=1)
    pred = cls.gather(1, patch[:, None])[:, 0]
    return best.numpy().astype(np.float32), pred.numpy().astype(np.int64)


def run_glmcm(
    *,
    image_features: Any,
    id_text_features: Any,
    local_scores: Any = None,
    local_features: Any = None,
    temperature: float = 1.0,
    lambda_local: float = 1.0,
) -> MethodResult:
    """GL-MCM scores (module docstring): ``MCM(g) + lambda_local * L-MCM(l)``.

    Give the local term either precomputed (``local_scores``, ``(n,)``: :func:`local_mcm` of
    each image at the same ``temperature``) or as patch features (``local_features``,
    ``(n, P, d)``). Predictions: argmax of the global ID cosines. ``variants`` holds ``mcm``
    (the global term) and ``l_mcm`` (the local one).
    """
    from ants.scores import as_features, mcm, predict

    if (local_scores is None) == (local_features is None):
        raise ValueError("give exactly one of local_scores or local_features")
    if lambda_local < 0:
        raise ValueError(f"lambda_local must be >= 0, got {lambda_local!r}")
    img = as_features(image_features, "image_features")
    idt = as_features(id_text_features, "id_text_features", dim=img.shape[1])
    glob = np.asarray(mcm(img.numpy(), idt.numpy(), temperature=temperature), np.float32)
    if local_features is not None:
        local_scores, _ = local_mcm(local_features, idt.numpy(), temperature=temperature)
    local = np.asarray(local_scores, dtype=np.float32)
    if local.shape != glob.shape:
        raise ValueError(
            f"local_scores must have one value per image ({glob.shape[0]}), got {local.shape}"
        )
    scores = (glob + np.float32(lambda_local) * local).astype(np.float32)
    return MethodResult(
        method="glmcm",
        scores=scores,
        predictions=np.asarray(predict(img.numpy(), idt.numpy()), dtype=np.int64),
        variants={"mcm": glob, "l_mcm": local},
    )


def glmcm_local_temperature(section: Mapping[str, Any]) -> float:
    """The temperature of the local term a GL-MCM method reads (its file name holds it)."""
    return float(section["temperature"])


def score_glmcm(section: Mapping[str, Any], inputs: Any) -> MethodResult:
    """GL-MCM on one stream: the global features against "a photo of a {}" and the local term
    of each image (``inputs.local``, computed once per image by ``ants local-features``)."""
    idt, _ = inputs.id_text(GLMCM_PROMPT)
    return run_glmcm(
        image_features=inputs.features,
        id_text_features=idt,
        local_scores=inputs.local,
        temperature=float(section["temperature"]),
        lambda_local=float(section["lambda_local"]),
    )
