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

The grouped score follows docs/METHOD.md section 2: drop the LAST ``M mod G`` negatives in stored
order, permute the kept ones with ``torch.randperm(n_kept, generator=manual_seed(seed))`` and
reshape into ``G`` rows; the score is the mean over groups of the ID softmax mass against that
group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_TAU",
    "StaticScores",
    "as_features",
    "group_lse",
    "mean_id_mass",
    "negative_label_parts",
    "group_layout",
    "id_logits",
    "mcm",
    "mcm_parts",
    "negative_label",
    "predict",
]

DEFAULT_TAU = 0.01
DEFAULT_CHUNK = 4096


def as_features(
    x: Any, name: str, *, dim: int | None = None, allow_empty: bool = False
) -> torch.Tensor:
    """A float32 CPU ``(n, d)`` tensor of ``x``, with clear errors for bad shapes and values.

    The one validator of feature matrices in the package (scores and methods). ``dim`` checks
    the feature dimension; ``allow_empty=False`` rejects zero rows.
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (rows = items, columns = features), got shape {tuple(t.shape)}"
        )
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point features, got dtype {t.dtype}")
    if t.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: at least one row is needed")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"feature dimension mismatch: {name} has d={t.shape[1]}, expected d={dim} "
            "(were all features encoded by the same CLIP model?)"
        )
    t = t.detach().to(device="cpu", dtype=torch.float32).contiguous()
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
    img = as_features(image_features, "image_features", allow_empty=True)
    txt = as_features(id_text_features, "id_text_features")
    _check_dims(img, id_text_features=txt)
    return _like_input(img @ txt.T / tau, image_features)


def predict(image_features: Any, id_text_features: Any, *, chunk_size: int = DEFAULT_CHUNK) -> Any:
    """Top-1 ID class index (argmax of the ID cosines) per image; int64."""
    img = as_features(image_features, "image_features", allow_empty=True)
    txt = as_features(id_text_features, "id_text_features")
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
    img = as_features(image_features, "image_features", allow_empty=True)
    txt = as_features(id_text_features, "id_text_features")
    _check_dims(img, id_text_features=txt)
    out = torch.empty(img.shape[0], dtype=torch.float32)
    for sl in _chunks(img.shape[0], chunk_size):
        logits = img[sl] @ txt.T / temperature
        out[sl] = torch.exp(logits.max(dim=1).values - torch.logsumexp(logits, dim=1))
    return _like_input(out, image_features)


def mcm_parts(
    image_features: Any,
    id_text_features: Any,
    *,
    tau: float = DEFAULT_TAU,
    chunk_size: int = DEFAULT_CHUNK,
) -> StaticScores:
    """MCM as a static pass: :class:`StaticScores` whose ``scores`` are
    ``max_i softmax_i(cos(v, t_i) / tau)`` (:func:`mcm` at temperature ``tau``), with the
    prediction and ``lse_id`` (the log-sum-exp of the same ID logits) of that pass.

    ANTS started from MCM instead of NegLabel (``initial_detector: mcm``; the authors'
    commented alternative takes the max of the ID softmax of ``logit_scale * cos``, i.e.
    ``tau = 0.01``). Higher = more in-distribution. The score equals ``exp(max logit - lse_id)``.
    """
    _check_tau(tau)
    img = as_features(image_features, "image_features", allow_empty=True)
    idt = as_features(id_text_features, "id_text_features")
    _check_dims(img, id_text_features=idt)
    n = img.shape[0]
    scores = torch.empty(n, dtype=torch.float32)
    pred = torch.empty(n, dtype=torch.int64)
    lse_ids = torch.empty(n, dtype=torch.float32)
    id_text = (idt / tau).T.contiguous()
    for sl in _chunks(n, chunk_size):
        logit = img[sl] @ id_text
        top, pred[sl] = logit.max(dim=1)
        lse = torch.logsumexp(logit, dim=1)
        lse_ids[sl] = lse
        scores[sl] = torch.exp(top - lse)
    return StaticScores(scores.numpy(), pred.numpy(), lse_ids.numpy())


def mean_id_mass(
    lse_id: torch.Tensor, lse_neg: torch.Tensor, *, group_axis: int = -1
) -> torch.Tensor:
    """THE grouped negative-label primitive: mean over groups of the ID softmax mass.

    ``lse_id``: ``(n,)`` log-sum-exp of each image's ID logits; ``lse_neg``: ``(n, G)``
    log-sum-exp of its logits against each of ``G`` negative groups (``(n,)`` = one group).
    ``group_axis`` is the axis of ``lse_neg`` that holds the groups: ``-1`` (image-major
    ``(n, G)``, the default) or ``0`` (label-major ``(G, n)``, as AdaNeg's blocks are stored).
    Returns ``(n,)``: ``mean_g sigmoid(lse_id - lse_neg_g)``, which equals
    ``mean_g e^lse_id / (e^lse_id + e^lse_neg_g)`` without exponentiating any logit. Every
    negative-label score of the package (NegLabel, the ANTS static pass and banks, the
    activation-aware ENS score, AdaNeg's ``S_nl`` and ``S_ada``) ends here. Higher = more
    in-distribution.
    """
    if lse_neg.ndim == 1:
        return torch.sigmoid(lse_id - lse_neg)
    return torch.sigmoid(lse_id.unsqueeze(group_axis) - lse_neg).mean(dim=group_axis)


def group_lse(
    negative_logit: torch.Tensor,
    layout: torch.Tensor | None = None,
    *,
    log_multiplicity: float = 0.0,
) -> torch.Tensor:
    """Log-sum-exp of ``negative_logit`` ``(n, M)`` per group of ``layout`` ``(G, m)`` -> ``(n, G)``.

    ``layout=None``: one group holding every column, ``(n,)``; ``log_multiplicity`` is added
    to it (a bank whose every entry counts ``T`` times has ``log T``).
    """
    if layout is None:
        return torch.logsumexp(negative_logit, dim=-1) + log_multiplicity
    return torch.logsumexp(negative_logit[:, layout], dim=-1)


@dataclass
class StaticScores:
    """Per-image results of the negative-label score that depend on the image alone.

    ``scores``: ``(n,)`` float32 S_nl (higher = more ID); ``predictions``: ``(n,)`` int64
    argmax of the ID logits; ``lse_id``: ``(n,)`` float32 log-sum-exp of the ID logits
    ``cos / tau`` (what the ANTS banks reuse).
    """

    scores: np.ndarray
    predictions: np.ndarray
    lse_id: np.ndarray

    def take(self, index: Any) -> StaticScores:
        """The rows ``index`` (e.g. a stream's order into the concatenated datasets)."""
        return StaticScores(self.scores[index], self.predictions[index], self.lse_id[index])


def _layout_of(n_neg: int, n_groups, group_size, seed, groups) -> torch.Tensor:
    if groups is not None:
        if n_groups is not None or group_size is not None:
            raise ValueError("pass either groups or n_groups/group_size, not both")
        layout = torch.as_tensor(groups)
        if (
            layout.ndim != 2
            or layout.dtype not in (torch.int32, torch.int64)
            or layout.numel() == 0
        ):
            raise ValueError(
                f"groups must be a non-empty 2-D integer index matrix, got shape {tuple(layout.shape)}"
            )
        if int(layout.min()) < 0 or int(layout.max()) >= n_neg:
            raise ValueError(f"groups indexes outside the negative bank of {n_neg} entries")
        return layout
    if n_groups is None and group_size is None:
        return torch.arange(n_neg).reshape(1, -1)
    return group_layout(n_neg, n_groups=n_groups, group_size=group_size, seed=seed)


def negative_label_parts(
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
) -> StaticScores:
    """:func:`negative_label` with the ID prediction and ``lse_id`` of the same pass.

    Same arguments as :func:`negative_label`. Each image's results depend on that image only;
    the work is chunked in fixed blocks of ``chunk_size`` rows.
    """
    _check_tau(tau)
    img = as_features(image_features, "image_features", allow_empty=True)
    idt = as_features(id_text_features, "id_text_features")
    neg = as_features(negative_features, "negative_features")
    _check_dims(img, id_text_features=idt, negative_features=neg)
    layout = _layout_of(neg.shape[0], n_groups, group_size, seed, groups)
    n_g, m = layout.shape
    k = idt.shape[0]
    # The ID and the negative text features, pre-scaled by 1/tau; the negatives reordered by
    # group, so a chunk's negative logits reshape straight into (chunk, G, m).
    id_text = (idt / tau).T.contiguous()
    neg_text = (neg[layout.reshape(-1)] / tau).T.contiguous()
    n = img.shape[0]
    scores = torch.empty(n, dtype=torch.float32)
    pred = torch.empty(n, dtype=torch.int64)
    lse_ids = torch.empty(n, dtype=torch.float32)
    # one buffer per part for every chunk: a fresh (chunk, K + M) tensor per chunk would cost
    # its page faults again each time
    rows = min(chunk_size, n)
    id_buffer = torch.empty(rows, k, dtype=torch.float32)
    neg_buffer = torch.empty(rows, n_g * m, dtype=torch.float32)
    for sl in _chunks(n, chunk_size):
        chunk = img[sl]
        c = chunk.shape[0]
        id_logit = torch.matmul(chunk, id_text, out=id_buffer[:c])
        pred[sl] = id_logit.argmax(dim=1)
        top = id_logit.amax(dim=1, keepdim=True)  # (c, 1): the shift of both log-sum-exps
        lse_id = top.squeeze(1) + id_logit.sub_(top).exp_().sum(dim=1).log_()
        # exp(negative logit - the ID maximum) straight out of the product (one pass fewer than
        # shifting by the negatives' own maximum); a row whose negatives exceed its ID maximum
        # by more than float32's exp range overflows and is redone with its own maxima
        shifted = torch.addmm(top, chunk, neg_text, beta=-1, out=neg_buffer[:c])
        sums = shifted.exp_().view(c, n_g, m).sum(dim=-1)
        lse_neg = top + sums.log_()
        # (a group that underflows to 0 gives -inf: its ID mass is 1, as with exact maxima, since
        # lse_id >= top and a gap over 87 already rounds sigmoid to 1 in float32)
        over = torch.isposinf(lse_neg).any(dim=1)
        if bool(over.any()):
            exact = (chunk[over] @ neg_text).view(-1, n_g, m)
            lse_neg[over] = _logsumexp_(exact)
        scores[sl] = mean_id_mass(lse_id, lse_neg)
        lse_ids[sl] = lse_id
    return StaticScores(scores.numpy(), pred.numpy(), lse_ids.numpy())


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

    The grouped score is the mean over groups of ``S(v; N_g)`` (:func:`mean_id_mass`).

    An image on its ID label (cosine 1) and orthogonal to the one negative, with ``tau = 1``:
    ``e^1 / (e^1 + e^0)``.

    >>> import numpy as np
    >>> image, id_text, negative = np.eye(2, dtype=np.float32)[[0, 0, 1]][:, None]
    >>> round(float(negative_label(image, id_text, negative, tau=1.0)[0]), 4)
    0.7311
    """
    parts = negative_label_parts(
        image_features,
        id_text_features,
        negative_features,
        tau=tau,
        n_groups=n_groups,
        group_size=group_size,
        seed=seed,
        groups=groups,
        chunk_size=chunk_size,
    )
    out = torch.from_numpy(parts.scores)
    return _like_input(out, image_features)


def _logsumexp_(x: torch.Tensor) -> torch.Tensor:
    """Stable log-sum-exp over the last axis that overwrites ``x`` (saves a full-size copy)."""
    top = x.amax(dim=-1, keepdim=True)
    return top.squeeze(-1) + x.sub_(top).exp_().sum(dim=-1).log_()
