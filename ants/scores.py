"""Zero-shot OOD scores of CLIP features: MCM and the (grouped) negative-label score.

Conventions
-----------
* Every score here is "higher = more in-distribution (ID)".
* Features are L2-normalised rows: images ``(n, d)``, ID text ``(K, d)``, negatives ``(M, d)``.
  Cosines are dot products; logits are ``cos / tau``.
* Inputs may be numpy arrays or torch tensors. The result has the type of the image features
  (numpy float32 array for numpy input, a float32 tensor for tensor input).
* Work is done in chunks of images so memory stays bounded, and every softmax is computed with
  log-sum-exp (raw logits are never exponentiated).

The grouped score follows METHOD.md section 2: drop the LAST ``M mod G`` negatives in stored
order, permute the kept ones with ``torch.randperm(n_kept, generator=manual_seed(seed))`` and
reshape into ``G`` rows; the score is the mean over groups of the ID softmax mass against that
group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_TAU",
    "group_layout",
    "id_mass_from_logits",
    "id_logits",
    "mcm",
    "negative_label",
    "predict",
]

DEFAULT_TAU = 0.01
DEFAULT_CHUNK = 4096


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """A float32 2-D tensor view of ``x``; clear errors for the wrong rank or non-finite values."""
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows = items, columns = features), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point features, got dtype {t.dtype}")
    t = t.to(torch.float32)
    if t.numel() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _check_dims(image: torch.Tensor, **texts: torch.Tensor) -> None:
    for name, t in texts.items():
        if t.shape[1] != image.shape[1]:
            raise ValueError(
                f"feature dimension mismatch: image features have d={image.shape[1]}, "
                f"{name} has d={t.shape[1]} (were they encoded by the same CLIP model?)"
            )
        if t.shape[0] == 0:
            raise ValueError(f"{name} is empty: at least one text feature is needed")


def _check_tau(tau: float, name: str = "tau") -> None:
    if not (isinstance(tau, (int, float)) and np.isfinite(tau) and tau > 0):
        raise ValueError(f"{name} must be a positive finite number, got {tau!r}")


def _like_input(result: torch.Tensor, like: Any) -> Any:
    return result if isinstance(like, torch.Tensor) else result.numpy()


def _chunks(n: int, chunk_size: int):
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, n, chunk_size):
        yield slice(start, min(n, start + chunk_size))


def group_layout(
    n_negatives: int,
    *,
    n_groups: int | None = None,
    group_size: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Index matrix ``(G, m)`` of the grouped score, exactly as the authors' code builds it.

    Give exactly one of ``n_groups`` (NegLabel: G = 100) or ``group_size`` (ANTS: s = 100,
    G = max(1, M // s)). The last ``M mod G`` negatives (in stored order) are dropped; the kept
    ``n_kept = G * m`` are permuted with ``torch.randperm(n_kept)`` seeded by ``seed`` and
    reshaped row-major into ``G`` groups. A group may hold more than ``group_size`` entries.
    With ``G = 1`` the layout is a permutation of all negatives, i.e. the plain score.
    """
    if (n_groups is None) == (group_size is None):
        raise ValueError("give exactly one of n_groups or group_size")
    if n_negatives < 1:
        raise ValueError(f"the negative bank is empty (n_negatives={n_negatives})")
    if group_size is not None:
        if int(group_size) != group_size or group_size < 1:
            raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
        n_groups = max(1, n_negatives // int(group_size))
    if int(n_groups) != n_groups or n_groups < 1:
        raise ValueError(f"n_groups must be a positive integer, got {n_groups!r}")
    n_groups = int(n_groups)
    if n_groups > n_negatives:
        raise ValueError(f"n_groups={n_groups} exceeds the number of negatives ({n_negatives})")
    n_kept = n_negatives - n_negatives % n_groups
    perm = torch.randperm(n_kept, generator=torch.Generator().manual_seed(int(seed)))
    return perm.reshape(n_groups, n_kept // n_groups)


def id_logits(image_features: Any, id_text_features: Any, *, tau: float = DEFAULT_TAU) -> Any:
    """Logits ``cos(v, t_i) / tau`` of every image against the ID labels, shape ``(n, K)``."""
    _check_tau(tau)
    img = _as_tensor(image_features, "image_features")
    txt = _as_tensor(id_text_features, "id_text_features")
    _check_dims(img, id_text_features=txt)
    return _like_input(img @ txt.T / tau, image_features)


def predict(image_features: Any, id_text_features: Any, *, chunk_size: int = DEFAULT_CHUNK) -> Any:
    """Top-1 ID class index (argmax of the ID cosines) per image; int64."""
    img = _as_tensor(image_features, "image_features")
    txt = _as_tensor(id_text_features, "id_text_features")
    _check_dims(img, id_text_features=txt)
    out = torch.empty(img.shape[0], dtype=torch.int64)
    for sl in _chunks(img.shape[0], chunk_size):
        out[sl] = (img[sl] @ txt.T).argmax(dim=1)
    return _like_input(out, image_features)


def mcm(
    image_features: Any,
    id_text_features: Any,
    *,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK,
) -> Any:
    """Maximum Concept Matching: ``max_i softmax_i(cos(v, t_i) / T)`` over the ID labels only.

    Higher = more in-distribution. ``temperature`` is T (1 in the MCM paper; OpenOOD-VLM's
    reproduction uses 0.01). Computed as ``exp(max logit - logsumexp(logits))``.
    """
    _check_tau(temperature, "temperature")
    img = _as_tensor(image_features, "image_features")
    txt = _as_tensor(id_text_features, "id_text_features")
    _check_dims(img, id_text_features=txt)
    out = torch.empty(img.shape[0], dtype=torch.float32)
    for sl in _chunks(img.shape[0], chunk_size):
        logits = img[sl] @ txt.T / temperature
        out[sl] = torch.exp(logits.max(dim=1).values - torch.logsumexp(logits, dim=1))
    return _like_input(out, image_features)


def id_mass_from_logits(id_logit: torch.Tensor, negative_logit: torch.Tensor) -> torch.Tensor:
    """ID softmax mass given ID logits ``(n, K)`` and negative logits ``(n, ..., m)``.

    ``negative_logit`` may carry a group axis ``(n, G, m)``: the result then has shape ``(n, G)``.
    Uses ``sigmoid(lse_id - lse_neg)``, which equals ``e^lse_id / (e^lse_id + e^lse_neg)``.
    """
    lse_id = torch.logsumexp(id_logit, dim=-1)
    lse_neg = torch.logsumexp(negative_logit, dim=-1)
    while lse_id.ndim < lse_neg.ndim:
        lse_id = lse_id.unsqueeze(-1)
    return torch.sigmoid(lse_id - lse_neg)


def negative_label(
    image_features: Any,
    id_text_features: Any,
    negative_features: Any,
    *,
    tau: float = DEFAULT_TAU,
    n_groups: int | None = None,
    group_size: int | None = None,
    seed: int = 0,
    groups: Any = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Any:
    """NegLabel score: the ID mass of a softmax over ID labels and negative labels.

    ``S(v; N) = sum_i e^{cos(v,t_i)/tau} / (sum_i e^{cos(v,t_i)/tau} + sum_n e^{cos(v,n)/tau})``.
    Higher = more in-distribution, in ``[0, 1]``.

    Grouping (all optional; at most one way):

    * nothing: the plain score against the whole bank;
    * ``n_groups=G`` or ``group_size=s``: the grouped score with the layout of
      :func:`group_layout` (``seed`` fixes the permutation; seed 0 matches the authors);
    * ``groups``: an explicit ``(G, m)`` integer index matrix into ``negative_features``.

    The grouped score is the mean over groups of ``S(v; N_g)``.
    """
    _check_tau(tau)
    img = _as_tensor(image_features, "image_features")
    idt = _as_tensor(id_text_features, "id_text_features")
    neg = _as_tensor(negative_features, "negative_features")
    _check_dims(img, id_text_features=idt, negative_features=neg)

    if groups is not None:
        if n_groups is not None or group_size is not None:
            raise ValueError("pass either groups or n_groups/group_size, not both")
        layout = torch.as_tensor(groups)
        if layout.ndim != 2 or layout.dtype not in (torch.int32, torch.int64) or layout.numel() == 0:
            raise ValueError(f"groups must be a non-empty 2-D integer index matrix, got shape {tuple(layout.shape)}")
        if int(layout.min()) < 0 or int(layout.max()) >= neg.shape[0]:
            raise ValueError(f"groups indexes outside the negative bank of {neg.shape[0]} entries")
    elif n_groups is None and group_size is None:
        layout = torch.arange(neg.shape[0]).reshape(1, -1)
    else:
        layout = group_layout(neg.shape[0], n_groups=n_groups, group_size=group_size, seed=seed)

    n_g, m = layout.shape
    k = idt.shape[0]
    # One matrix of [ID; negatives reordered by group], pre-scaled by 1/tau, so each chunk is a
    # single product whose columns reshape straight into (chunk, G, m) for the negatives.
    text = torch.cat([idt, neg[layout.reshape(-1)]]) / tau
    out = torch.empty(img.shape[0], dtype=torch.float32)
    for sl in _chunks(img.shape[0], chunk_size):
        logits = img[sl] @ text.T
        lse_id = _logsumexp_(logits[:, :k])
        lse_neg = _logsumexp_(logits[:, k:].reshape(-1, n_g, m))
        out[sl] = torch.sigmoid(lse_id.unsqueeze(1) - lse_neg).mean(dim=1)
    return _like_input(out, image_features)


def _logsumexp_(x: torch.Tensor) -> torch.Tensor:
    """Stable log-sum-exp over the last axis that overwrites ``x`` (saves a full-size copy)."""
    top = x.amax(dim=-1, keepdim=True)
    return (top.squeeze(-1) + x.sub_(top).exp_().sum(dim=-1).log_())
