"""AdaNeg (NeurIPS 2024), the test-time baseline of docs/METHOD.md section 5.

Zhang and Zhang, "AdaNeg: Adaptive Negative Proxy Guided OOD Detection with Vision-Language
Models", https://arxiv.org/abs/2410.20149; reference code https://github.com/YBZh/OpenOOD-VLM
(the ``authors_code`` preset reproduces it).

Labels are the K ID classes followed by the M negatives (``C = K + M``). Each label owns a
memory: slot 0 is its text feature, the image slots (``AdaNegConfig.image_slots`` of them)
hold test image features.

Per batch (batches of the stream, numbered from 1), in the order of the authors' code:

1. vanilla logits ``cos(v, label)/tau`` against all C labels; ``S_nl`` = grouped score with
   ``G`` groups (ImageNet: G = 5);
2. caching, ID pass then negative pass, each over the batch in stream order:
   * ``S_nl > gamma + g (1 - gamma)``: cache ``v`` under its argmax ID class, priority = the
     entropy of the softmax over the K ID logits;
   * ``S_nl < gamma - g gamma``: cache ``v`` under its argmax negative label, priority = the
     entropy of the softmax over the M negative logits;
   * a label with a free image slot takes the next one; a full label replaces its
     highest-entropy entry when the new entropy is lower (on ties the LAST such slot: the
     authors take the last index of a stable ascending sort);
   entropy is ``-sum p log(p + 1e-8)`` of the float32 softmax, computed as the authors' code
   does (:func:`entropy`; never negative, so the order of replacements is theirs);
3. proxies from the memory AFTER this batch's caching (the authors' convention: a batch is
   scored with the memory that already holds its own confident samples):
   * ``task``: ``p_c = normalise(text + sum of the label's filled image slots)``;
   * ``sample``: ``p_c(v) = normalise(sum_l exp(-beta (1 - cos(v, m_cl))) m_cl)`` over slot 0
     (the text) and the filled image slots;
4. ``S_ada`` = grouped score (G groups, same layout) with logits ``cos(v, p_c)/tau``;
   ``S = S_ada + lambda S_nl`` (higher = more in-distribution).

Both grouped scores are :func:`ants.scores.mean_id_mass` of per-block log-sum-exps
(``group_axis=0``: the blocks are label-major ``(G, n)``, see :class:`_Blocks`).

Predictions follow the authors: argmax over the ID labels of
``softmax(vanilla logits) + lambda softmax(adaptive logits)`` (softmax over all C labels).

Presets (``adaneg_config({"preset": ...})``; no preset = ``paper``), each difference a switch:

============== ========================== ==========================================
switch         ``paper`` (the default)    ``authors_code``
============== ========================== ==========================================
authors_slots  False: ``memory_length``   True: ``memory_length - 1`` image slots (their
               (10) image slots           code treats a label as full after L - 1 images)
truncate_beta  False: beta = 5.5          True: ``int(beta)`` = 5
proxy          ``sample``                 ``task`` (what their ImageNet script reports)
============== ========================== ==========================================

The published AdaNeg numbers come from the authors' code, i.e. the ``authors_code`` preset.

Speed: the memory keeps labels in buckets by their number of filled image slots (only
labels that received images are stored), so each batch multiplies the batch only with the
filled slots; the per-label slot Gram matrices (which give the proxy norms) and the task
proxies are updated when a slot changes, and the per-sample work runs in float32 on small
reused chunk buffers (see ``benchmarks/bench_adaneg.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ants.methods import METHODS
from ants.methods.base import MethodResult, batch_slices
from ants.progress import progress as progress_bar
from ants.scores import as_features, group_layout, mean_id_mass

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "PROXIES",
    "AdaNegConfig",
    "AdaNegMemory",
    "adaneg_config",
    "adaptive_cosines",
    "adaptive_cosines_t",
    "entropy",
    "run_adaneg",
    "score_adaneg",
]

PROXIES = ("sample", "task")

#: Switch values of the two presets (docs/METHOD.md section 5); every other setting is shared.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"authors_slots": False, "truncate_beta": False, "proxy": "sample"},
    "authors_code": {"authors_slots": True, "truncate_beta": True, "proxy": "task"},
}
#: The preset of a config that names none (the registry's
#: :attr:`ants.methods.base.MethodSpec.default_preset` of ``adaneg``).
DEFAULT_PRESET = METHODS["adaneg"].default_preset

#: float32 elements of one chunk buffer of the sample-adaptive pass ((rows, slots, batch)).
_CHUNK_ELEMS = 1 << 19


@dataclass(frozen=True)
class AdaNegConfig:
    """AdaNeg's settings: ImageNet values of docs/METHOD.md section 5, switches of the ``paper``
    preset (the defaults). :meth:`preset` gives ``authors_code``.

    * ``memory_length`` (L): image slots per label; with ``authors_slots`` only ``L - 1`` of
      them are filled (the authors' code); :attr:`image_slots` is the number used;
    * ``beta``: sharpness of the sample-adaptive weights; with ``truncate_beta`` it is used as
      ``int(beta)`` (the authors' code); :attr:`effective_beta` is the value used;
    * ``proxy``: ``sample`` (sample-adaptive, paper) or ``task`` (task-adaptive; the one the
      authors' released ImageNet script reports).

    The published AdaNeg numbers come from the authors' code: the ``authors_code`` preset
    (``authors_slots=True, truncate_beta=True, proxy='task'``).
    """

    n_groups: int = 5
    memory_length: int = 10  # L image slots per label
    threshold: float = 0.5  # gamma
    gap: float = 0.5  # g
    beta: float = 5.5
    lam: float = 0.1
    proxy: str = "sample"  # 'sample' | 'task'
    tau: float = 0.01
    grouping_seed: int = 0
    authors_slots: bool = False  # True: a label is full after memory_length - 1 images
    truncate_beta: bool = False  # True: beta is used as int(beta) (5.5 -> 5)

    def __post_init__(self) -> None:
        for name in ("n_groups", "memory_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"AdaNegConfig.{name} must be an integer >= 1, got {v!r}")
        for name in ("threshold", "gap"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise ValueError(f"AdaNegConfig.{name} must be a number in [0, 1], got {v!r}")
        for name in ("beta", "lam"):
            v = getattr(self, name)
            if (
                not isinstance(v, (int, float))
                or isinstance(v, bool)
                or not math.isfinite(v)
                or v < 0
            ):
                raise ValueError(f"AdaNegConfig.{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"AdaNegConfig.tau must be a positive number, got {self.tau!r}")
        if self.proxy not in PROXIES:
            raise ValueError(
                f"AdaNegConfig.proxy={self.proxy!r} is not valid; valid values: {', '.join(PROXIES)}"
            )
        for name in ("authors_slots", "truncate_beta"):
            v = getattr(self, name)
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"AdaNegConfig.{name} must be true or false, got {v!r}")
        if self.authors_slots and self.memory_length < 2:
            raise ValueError(
                f"AdaNegConfig.memory_length must be >= 2 with authors_slots=True (the authors' "
                f"code fills memory_length - 1 image slots), got {self.memory_length}"
            )

    @property
    def image_slots(self) -> int:
        """Image slots per label: ``memory_length``, or ``memory_length - 1`` with ``authors_slots``."""
        return int(self.memory_length) - (1 if self.authors_slots else 0)

    @property
    def effective_beta(self) -> float:
        """The beta used: ``beta``, or ``int(beta)`` with ``truncate_beta``."""
        return float(int(self.beta)) if self.truncate_beta else float(self.beta)

    @property
    def high_cut(self) -> float:
        """Cache under the ID class above this ``S_nl``: ``gamma + g (1 - gamma)``."""
        return self.threshold + self.gap * (1.0 - self.threshold)

    @property
    def low_cut(self) -> float:
        """Cache under a negative label below this ``S_nl``: ``gamma - g gamma``."""
        return self.threshold - self.gap * self.threshold

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AdaNegConfig:
        """The ``paper`` or ``authors_code`` preset, with optional setting overrides."""
        return adaneg_config({"preset": name, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adaneg_config(config: AdaNegConfig | str | Mapping[str, Any] | None = None) -> AdaNegConfig:
    """An :class:`AdaNegConfig` from a config, a preset name, or a mapping of settings.

    A mapping may name a ``preset`` (``paper`` when absent: :data:`DEFAULT_PRESET`) and
    override any setting; an unknown key or preset is an error that lists the valid ones.
    """
    if config is None:
        return AdaNegConfig()
    if isinstance(config, AdaNegConfig):
        return config
    if isinstance(config, str):
        config = {"preset": config}
    if not isinstance(config, Mapping):
        raise TypeError(
            "an AdaNeg config must be an AdaNegConfig, a preset name or a mapping, "
            f"got {type(config).__name__}"
        )
    values = dict(config)
    preset = values.pop("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"unknown AdaNeg preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    valid = [f.name for f in fields(AdaNegConfig)]
    unknown = sorted(k for k in values if k not in valid)
    if unknown:
        raise ValueError(
            f"unknown AdaNeg setting(s) {', '.join(map(repr, unknown))}; valid settings: "
            f"{', '.join(valid)}, preset"
        )
    return replace(AdaNegConfig(), **{**PRESETS[preset], **values})


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Row entropy ``-sum p log(p + 1e-8)`` of ``p = softmax(logits)``, in the authors' op order.

    float32 logits give float32 entropies computed as the authors' code does (``torch.softmax``,
    then the sum), so the replacement order of a full memory is theirs. It is never negative:
    ``p <= 1`` and ``p + 1e-8`` rounds to at most 1, so every term is ``>= 0`` -- which a
    probability rebuilt as ``exp(logit - lse)`` does not guarantee: for CLIP-confident images
    (``|logit|`` 35-60) it can exceed 1 by a few ulps of the logits, giving entropies off by
    ~2e-6 and often negative, which reorders replacements (issue 14).
    """
    p = torch.softmax(logits, dim=-1)
    return -(p * torch.log(p + 1e-8)).sum(dim=-1)


class _Bucket:
    """The labels holding exactly ``j`` image features, as dense growable arrays.

    Per row: ``labels``; ``feats`` ``(j, d)`` float32 in slot order; ``ent`` ``(j,)``;
    ``gram`` ``(j + 1, j + 1)`` float64 Gram matrix of ``[text; slots]``; ``proxy`` ``(d,)``
    float32 = ``normalise(text + sum of slots)`` (the task-adaptive proxy).
    """

    __slots__ = ("ent", "feats", "gram", "j", "labels", "proxy", "size")
    _ARRAYS = ("labels", "feats", "ent", "gram", "proxy")

    def __init__(self, j: int, d: int) -> None:
        self.j, self.size = j, 0
        self.labels = np.zeros(0, np.int64)
        self.feats = np.zeros((0, j, d), np.float32)
        self.ent = np.zeros((0, j), np.float64)
        self.gram = np.zeros((0, j + 1, j + 1), np.float64)
        self.proxy = np.zeros((0, d), np.float32)

    def new_row(self, label: int) -> int:
        """Append a row for ``label`` (growing by doubling) and return its position."""
        p = self.size
        if p == self.labels.shape[0]:
            cap = max(16, 2 * p)
            for name in self._ARRAYS:
                old = getattr(self, name)
                new = np.zeros((cap, *old.shape[1:]), old.dtype)
                new[:p] = old[:p]
                setattr(self, name, new)
        self.labels[p] = label
        self.size = p + 1
        return p

    def remove(self, pos: int) -> int:
        """Drop row ``pos`` by moving the last row into it; the moved label (-1 if none)."""
        last = self.size - 1
        self.size = last
        if pos == last:
            return -1
        for name in self._ARRAYS:
            a = getattr(self, name)
            a[pos] = a[last]
        return int(self.labels[pos])


class AdaNegMemory:
    """Per-label image memory: up to ``length`` image slots with their features and entropies.

    Only labels that ever received an image are stored, grouped by their number of filled
    slots (a label moves to the next bucket when it gains a slot; a full label's slot is
    replaced in place), so scoring touches filled slots only. Slot order is the order of
    insertion, a replacement keeping the slot's position. The slot Gram matrix (float64) and,
    with ``task_proxy``, the task proxy of a label are updated when one of its slots changes
    (only that row and column of the Gram matrix are computed).
    """

    def __init__(self, text_features: Any, length: int, *, task_proxy: bool = True) -> None:
        text = (
            text_features
            if isinstance(text_features, torch.Tensor)
            else torch.as_tensor(np.asarray(text_features))
        )
        self.text = text.detach().to(torch.float32).contiguous()  # (C, d)
        self._text_np = self.text.numpy()
        if isinstance(length, bool) or int(length) != length or length < 1:
            raise ValueError(f"AdaNegMemory length must be an integer >= 1, got {length!r}")
        self.length = int(length)
        c, d = self.text.shape
        self.count_of = np.zeros(c, np.int64)  # filled image slots per label
        self.pos_of = np.full(c, -1, np.int64)  # row in the bucket of its count
        self.buckets = [_Bucket(j, d) for j in range(1, self.length + 1)]
        self.n_rows = 0  # labels holding at least one image
        self.n_filled = 0  # filled image slots over all labels
        self.task_proxy = bool(task_proxy)  # keep normalise(text + slots) per label
        self._buffers: list[torch.Tensor] = []

    def insert(self, label: int, feature: np.ndarray, ent: float) -> str:
        """Offer ``feature`` with priority ``ent`` to ``label``: 'insert', 'replace' or 'skip'.

        A full label replaces its highest-entropy slot (the last one on ties) when ``ent`` is
        strictly lower; otherwise the feature is skipped.
        """
        label = int(label)
        ent = float(ent)
        j = int(self.count_of[label])
        if j == self.length:  # full: replace the highest-entropy slot if the new one is lower
            b = self.buckets[j - 1]
            p = int(self.pos_of[label])
            worst = j - 1 - int(np.argmax(b.ent[p, ::-1]))  # the last one on ties
            if not ent < b.ent[p, worst]:
                return "skip"
            b.feats[p, worst] = feature
            b.ent[p, worst] = ent
            full = np.empty((j + 1, b.feats.shape[2]))
            full[0] = self._text_np[label]
            full[1:] = b.feats[p]
            g = full @ full[worst + 1]
            b.gram[p, worst + 1, :] = g
            b.gram[p, :, worst + 1] = g
            if self.task_proxy:
                b.proxy[p] = _normalised(full.sum(axis=0))
            return "replace"
        # a free slot: the label moves from bucket j to bucket j + 1
        nb = self.buckets[j]
        q = nb.new_row(label)
        full = np.empty((j + 2, nb.feats.shape[2]))
        full[0] = self._text_np[label]
        gram = nb.gram[q]
        if j:
            ob = self.buckets[j - 1]
            p = int(self.pos_of[label])
            nb.feats[q, :j] = ob.feats[p]
            nb.ent[q, :j] = ob.ent[p]
            gram[: j + 1, : j + 1] = ob.gram[p]
            full[1 : j + 1] = ob.feats[p]
            moved = ob.remove(p)
            if moved >= 0:
                self.pos_of[moved] = p
        else:
            gram[0, 0] = full[0] @ full[0]
            self.n_rows += 1
        nb.feats[q, j] = feature
        nb.ent[q, j] = ent
        full[j + 1] = nb.feats[q, j]
        g = full @ full[j + 1]
        gram[j + 1, :] = g
        gram[:, j + 1] = g
        if self.task_proxy:
            nb.proxy[q] = _normalised(full.sum(axis=0))
        self.pos_of[label] = q
        self.count_of[label] = j + 1
        self.n_filled += 1
        return "insert"

    def count(self, label: int) -> int:
        """Number of filled image slots of ``label``."""
        return int(self.count_of[int(label)])

    def _where(self, label: int) -> tuple[_Bucket | None, int]:
        j = int(self.count_of[int(label)])
        return (None, -1) if j == 0 else (self.buckets[j - 1], int(self.pos_of[int(label)]))

    def slots(self, label: int) -> np.ndarray:
        """The filled image slots of ``label`` in slot order, ``(count, d)`` (a copy)."""
        b, p = self._where(label)
        if b is None:
            return np.zeros((0, self.text.shape[1]), np.float32)
        return b.feats[p].copy()

    def entropies(self, label: int) -> np.ndarray:
        """The priorities (entropies) of the filled slots of ``label``, ``(count,)``."""
        b, p = self._where(label)
        return np.zeros(0) if b is None else b.ent[p].copy()

    def gram_of(self, label: int) -> np.ndarray:
        """Gram matrix of ``[text; filled slots]`` of ``label``, ``(count + 1, count + 1)`` float64."""
        b, p = self._where(label)
        if b is None:
            t = self._text_np[int(label)].astype(np.float64)
            return np.array([[t @ t]])
        return b.gram[p].copy()

    def filled_labels(self) -> torch.Tensor:
        """The labels holding at least one image, sorted (int64 tensor)."""
        return torch.from_numpy(np.sort(np.concatenate([b.labels[: b.size] for b in self.buckets])))

    def filled_buckets(self) -> Iterator[_Bucket]:
        """The non-empty buckets, by increasing slot count."""
        return (b for b in self.buckets if b.size)

    def buffers(self, elems: int) -> list[torch.Tensor]:
        """Three reusable float32 work buffers of at least ``elems`` elements."""
        if not self._buffers or self._buffers[0].numel() < elems:
            self._buffers = [torch.empty(elems, dtype=torch.float32) for _ in range(3)]
        return self._buffers


def _normalised(v: np.ndarray) -> np.ndarray:
    return v / max(math.sqrt(float(v @ v)), 1e-300)


def adaptive_cosines(
    x: torch.Tensor, text_cos: torch.Tensor, memory: AdaNegMemory, *, beta: float, proxy: str
) -> torch.Tensor:
    """``cos(v, p_c)`` for every image ``v`` (rows of ``x``) and label ``c``, ``(n, C)`` float32.

    ``text_cos`` = ``cos(v, t_c)``, ``(n, C)``. A label without images has ``p_c = t_c``. The
    label-major form :func:`adaptive_cosines_t` does the work.
    """
    out = adaptive_cosines_t(
        x, text_cos.T.contiguous(), memory, beta=beta, proxy=proxy, inplace=True
    )
    return out.T.contiguous()


def adaptive_cosines_t(
    x: torch.Tensor,
    text_cos_t: torch.Tensor,
    memory: AdaNegMemory,
    *,
    beta: float,
    proxy: str,
    inplace: bool = False,
) -> torch.Tensor:
    """Label-major ``cos(v, p_c)``: ``(C, n)`` float32 from ``text_cos_t`` = ``cos(v, t_c)`` ``(C, n)``.

    Rows of labels without images keep their text cosine (``p_c = t_c``); the rows of the
    other labels are overwritten (in ``text_cos_t`` itself with ``inplace``).

    * ``task``: ``p_c`` is kept by the memory; one product of its proxies with the batch.
    * ``sample``: with slot cosines ``s_l`` (slot 0 = text) and weights
      ``w_l = exp(-beta (1 - s_l))`` over the filled slots,
      ``cos(v, p_c) = sum_l w_l s_l / sqrt(w^T G w)`` with ``G`` the label's slot Gram matrix.
      Per bucket of labels with ``j`` filled slots, in chunks of rows whose ``(rows, j, n)``
      temporaries live in three reused float32 buffers: the product of the slots with the
      batch, then the weights, numerators and the quadratic form (a batched product with the
      per-label Gram matrices), all in float32.
    """
    if proxy not in PROXIES:
        raise ValueError(f"proxy={proxy!r} is not valid; valid values: {', '.join(PROXIES)}")
    out_t = text_cos_t if inplace else text_cos_t.clone()
    if memory.n_rows == 0:
        return out_t
    n, d = x.shape
    xt = x.T
    if proxy == "task":
        if not memory.task_proxy:
            raise ValueError(
                "proxy='task' needs a memory that keeps task proxies (task_proxy=True)"
            )
        for b in memory.filled_buckets():
            labels = torch.from_numpy(b.labels[: b.size])
            out_t[labels] = torch.from_numpy(b.proxy[: b.size]) @ xt
        return out_t
    beta = float(beta)
    neg_beta = torch.tensor(-beta, dtype=torch.float32)
    sbuf, wbuf, ubuf = memory.buffers(max(_CHUNK_ELEMS, memory.length * n))
    for b in memory.filled_buckets():
        j, r = b.j, b.size
        rows = max(1, _CHUNK_ELEMS // (j * n))
        feats = torch.from_numpy(b.feats[:r])
        grams = torch.from_numpy(b.gram[:r])
        labels = torch.from_numpy(b.labels[:r])
        for a in range(0, r, rows):
            c = min(r, a + rows)
            m, size = c - a, (c - a) * j * n
            s = sbuf[:size].view(m * j, n)
            torch.mm(feats[a:c].reshape(m * j, d), xt, out=s)
            s = s.view(m, j, n)
            lab = labels[a:c]
            t = out_t[lab]  # (m, n) text cosines
            w = wbuf[:size].view(m, j, n)
            torch.add(neg_beta, s, alpha=beta, out=w).exp_()  # exp(-beta (1 - s))
            w0 = torch.add(neg_beta, t, alpha=beta).exp_()
            g = grams[a:c].to(torch.float32)
            u = ubuf[:size].view(m, j, n)
            torch.bmm(g[:, 1:, 1:], w, out=u)
            cross = torch.bmm(g[:, :1, 1:], w)[:, 0]  # (m, n): sum_l G_0l w_l
            den2 = u.mul_(w).sum(dim=1)
            den2 += w0 * (2.0 * cross + g[:, 0, :1] * w0)
            num = s.mul_(w).sum(dim=1)
            num += w0 * t
            out_t[lab] = num / den2.clamp_min_(1e-30).sqrt_()
    return out_t


class _Blocks:
    """Log-sum-exps over the label blocks ``[ID | group 1 .. G | dropped]`` of label-major
    cosines ``(C, n)`` (logits = cos / tau), with one exponential pass shared by the vanilla
    and the adaptive logits.

    Vanilla: per block and sample the max cosine ``m_b``; ``E = exp((cos - m_b)/tau)`` into a
    reused buffer; ``lse_b = m_b/tau + log(sum E)``. Adaptive: only the rows of labels with
    images differ, so their rows of ``E`` are zeroed, the rest summed again (no subtraction,
    no cancellation) and the adaptive rows added with a shift ``max(m_b, their max)``. Where
    that sum would rely on terms that underflowed against ``m_b`` (the adaptive log-sum-exp
    more than 50 below ``m_b/tau``), the block is recomputed exactly.
    """

    def __init__(self, k: int, n_grp: int, per: int, n_labels: int, tau: float) -> None:
        self.k, self.n_grp, self.per, self.n_labels = k, n_grp, per, n_labels
        self.end = k + n_grp * per
        self.tau, self.scale = tau, 1.0 / tau
        bounds = [0, *range(k, self.end + 1, per)]
        if self.end < n_labels:
            bounds.append(n_labels)
        self.bounds = bounds  # block b = rows bounds[b]:bounds[b + 1]
        self._buf = torch.empty(0)

    def exponentials(self, cos_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(maxes (B, n), E (C, n))``; E lives in a buffer reused by the next call."""
        c, n = cos_t.shape
        if self._buf.numel() < c * n:
            self._buf = torch.empty(c * n)
        e = self._buf[: c * n].view(c, n)
        k, end, s = self.k, self.end, self.scale
        m_id = cos_t[:k].amax(dim=0)
        torch.add((-s * m_id)[None], cos_t[:k], alpha=s, out=e[:k])
        groups = cos_t[k:end].view(self.n_grp, self.per, n)
        m_g = groups.amax(dim=1)
        torch.add((-s * m_g)[:, None], groups, alpha=s, out=e[k:end].view(self.n_grp, self.per, n))
        maxes = [m_id[None], m_g]
        if end < c:
            m_d = cos_t[end:].amax(dim=0)
            torch.add((-s * m_d)[None], cos_t[end:], alpha=s, out=e[end:])
            maxes.append(m_d[None])
        e.exp_()
        return torch.cat(maxes), e

    def sums(self, e: torch.Tensor) -> torch.Tensor:
        """Per block and sample sums of ``e`` (B, n)."""
        k, end = self.k, self.end
        parts = [e[:k].sum(dim=0)[None], e[k:end].view(self.n_grp, self.per, -1).sum(dim=1)]
        if end < e.shape[0]:
            parts.append(e[end:].sum(dim=0)[None])
        return torch.cat(parts)

    def lse(self, maxes: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
        return maxes * self.scale + torch.log(sums)

    def adaptive_lse(self, ada_t, e, maxes, rows: torch.Tensor) -> torch.Tensor:
        """Block log-sum-exps of the adaptive logits ``ada_t / tau`` (B, n).

        ``ada_t`` equals the vanilla cosines except on ``rows`` (sorted labels with images);
        ``e`` and ``maxes`` are the vanilla :meth:`exponentials` (``e`` is overwritten).
        """
        s = self.scale
        e.index_fill_(0, rows, 0.0)
        unfilled = self.sums(e)
        cut = torch.searchsorted(rows, torch.tensor(self.bounds)).tolist()
        out = torch.empty_like(maxes)
        for b in range(len(self.bounds) - 1):
            m_b = maxes[b]
            if cut[b] == cut[b + 1]:
                out[b] = m_b * s + torch.log(unfilled[b])
                continue
            a = ada_t.index_select(0, rows[cut[b] : cut[b + 1]])
            shift = torch.maximum(m_b, a.amax(dim=0))
            a = torch.add((-s * shift)[None], a, alpha=s, out=a).exp_().sum(dim=0)
            total = unfilled[b] * torch.exp((m_b - shift) * s) + a
            out[b] = shift * s + torch.log(total)
            bad = torch.nonzero(out[b] < m_b * s - 50.0).flatten()
            if bad.numel():  # rare: recompute these samples' block exactly
                lo, hi = self.bounds[b], self.bounds[b + 1]
                out[b, bad] = torch.logsumexp(ada_t[lo:hi].index_select(1, bad) / self.tau, dim=0)
        return out


def run_adaneg(
    *,
    image_features: Any,
    id_text_features: Any,
    negative_features: Any,
    batch_size: int = 256,
    config: AdaNegConfig | str | Mapping[str, Any] | None = None,
    progress: bool = False,
) -> MethodResult:
    """AdaNeg over one stream (features in stream order; state reset at the start).

    ``config``: an :class:`AdaNegConfig`, a preset name or a mapping (see :func:`adaneg_config`).
    ``variants``: ``adaneg`` (= the score), ``s_ada``, ``s_nl``. ``trace``: per batch, the
    numbers of inserts / replacements / skips (dict of ``(n_batches,)`` arrays).

    Internally the labels are reordered once, ``[ID | group 1 | ... | group G | dropped]``, so
    every group is a contiguous block of the label-major ``(C, n)`` logits (no gathers);
    argmax ties among negatives still go to the first label in stored order.
    """
    cfg = adaneg_config(config)
    img = as_features(image_features, "image_features")
    n, d = img.shape
    idt = as_features(id_text_features, "id_text_features", dim=d)
    neg = as_features(negative_features, "negative_features", dim=d)
    k, m = idt.shape[0], neg.shape[0]
    if cfg.n_groups > m:
        raise ValueError(f"n_groups={cfg.n_groups} exceeds the {m} negatives")
    n_labels = k + m
    layout = group_layout(m, n_groups=cfg.n_groups, seed=cfg.grouping_seed)  # (G, per)
    n_grp, per = layout.shape
    kept = layout.reshape(-1)
    dropped = torch.ones(m, dtype=torch.bool)
    dropped[kept] = False
    order = torch.cat([torch.arange(k), k + kept, k + torch.nonzero(dropped).flatten()])
    inv = torch.empty_like(order)
    inv[order] = torch.arange(n_labels)
    neg_stored = order[k:] - k  # stored index of each reordered negative
    text = torch.cat([idt, neg])[order].contiguous()
    memory = AdaNegMemory(text, cfg.image_slots, task_proxy=cfg.proxy == "task")
    high, low, beta, tau, lam = cfg.high_cut, cfg.low_cut, cfg.effective_beta, cfg.tau, cfg.lam
    blocks = _Blocks(k, n_grp, per, n_labels, tau)

    s_all = np.empty(n, np.float32)
    s_ada_all = np.empty(n, np.float32)
    s_nl_all = np.empty(n, np.float32)
    pred_all = np.empty(n, np.int64)
    trace: dict[str, list[int]] = {"insert": [], "replace": [], "skip": []}

    slices = list(batch_slices(n, batch_size))
    with torch.no_grad():
        for _, sl in progress_bar(slices, desc="AdaNeg stream", unit="batch", enabled=progress):
            x = img[sl]
            cos_t = torch.mm(text, x.T)  # (C, n) label-major
            maxes, e = blocks.exponentials(cos_t)
            lse_v = blocks.lse(maxes, blocks.sums(e))  # (B, n) per block
            s_nl = mean_id_mass(lse_v[0], lse_v[1 : 1 + n_grp], group_axis=0)
            # softmax over all C labels, ID part, from the shared exponentials
            p_van = e[:k] * torch.exp(maxes[0] / tau - torch.logsumexp(lse_v, dim=0))
            # caching: ID pass, then negative pass, each in stream order
            counts = dict.fromkeys(trace, 0)
            s_nl64 = s_nl.double()
            for sel, negative in ((s_nl64 > high, False), (s_nl64 < low, True)):
                idx = torch.nonzero(sel).flatten()
                if idx.numel() == 0:
                    continue
                if negative:
                    part = cos_t[k:].index_select(1, idx) / tau  # (M, n_sel) logits
                    best, arg = part.max(dim=0, keepdim=True)
                    labels = (k + arg[0]).tolist()
                    ties = torch.nonzero((part == best).sum(dim=0) > 1).flatten().tolist()
                    for col in ties:  # the first maximal negative in STORED order
                        stored = neg_stored[part[:, col] == best[0, col]].min()
                        labels[col] = int(inv[k + stored])
                else:
                    part = cos_t[:k].index_select(1, idx) / tau
                    labels = part.argmax(dim=0).tolist()
                ents = entropy(part.T.contiguous()).double().tolist()
                feats = x[idx].numpy()
                for j, (lab, ent) in enumerate(zip(labels, ents, strict=True)):
                    counts[memory.insert(lab, feats[j], ent)] += 1
            for key, value in counts.items():
                trace[key].append(value)
            # adaptive score with the memory after this batch's caching
            ada_t = adaptive_cosines_t(x, cos_t, memory, beta=beta, proxy=cfg.proxy, inplace=True)
            if memory.n_rows:
                lse_a = blocks.adaptive_lse(ada_t, e, maxes, memory.filled_labels())
            else:
                lse_a = lse_v
            s_ada = mean_id_mass(lse_a[0], lse_a[1 : 1 + n_grp], group_axis=0)
            s_all[sl] = (s_ada + lam * s_nl).numpy()
            s_ada_all[sl] = s_ada.numpy()
            s_nl_all[sl] = s_nl.numpy()
            p_ada = torch.exp(ada_t[:k] / tau - torch.logsumexp(lse_a, dim=0))
            pred_all[sl] = (p_van + lam * p_ada).argmax(dim=0).numpy()
    return MethodResult(
        method="adaneg",
        scores=s_all,
        predictions=pred_all,
        variants={"adaneg": s_all.copy(), "s_ada": s_ada_all, "s_nl": s_nl_all},
        trace={key: np.asarray(v, dtype=np.int64) for key, v in trace.items()},
    )


def score_adaneg(section: Mapping[str, Any], inputs: Any) -> MethodResult:
    """AdaNeg on one stream (the workflow's adapter, :data:`ants.methods.METHODS`): its
    features in stream order against the "The nice {}." ID text features and the mined
    negatives, batch by batch, with the section's ``config``."""
    idt, _ = inputs.id_text("nice")
    return run_adaneg(
        image_features=inputs.features,
        id_text_features=idt,
        negative_features=inputs.negatives,
        batch_size=inputs.batch_size,
        config=dict(section["config"]),
        progress=inputs.progress,
    )
