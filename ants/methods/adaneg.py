"""AdaNeg (NeurIPS 2024), the test-time baseline of METHOD.md section 5.

Labels are the K ID classes followed by the M negatives (``C = K + M``). Each label owns a
memory of ``1 + L`` slots: slot 0 is its text feature, slots 1..L hold test image features.

Per batch (batches of the stream, numbered from 1), in the order of the authors' code:

1. vanilla logits ``cos(v, label)/tau`` against all C labels; ``S_nl`` = grouped score with
   ``G`` groups (ImageNet: G = 5);
2. caching, ID pass then negative pass, each over the batch in stream order:
   * ``S_nl > gamma + g (1 - gamma)``: cache ``v`` under its argmax ID class, priority = the
     entropy of the softmax over the K ID logits;
   * ``S_nl < gamma - g gamma``: cache ``v`` under its argmax negative label, priority = the
     entropy of the softmax over the M negative logits;
   * a label with a free image slot takes the next one; a full label replaces its
     highest-entropy entry (the first one on ties) when the new entropy is lower;
   entropy is ``-sum p log(p + 1e-8)`` as in the authors' code;
3. proxies from the memory AFTER this batch's caching (the authors' convention: a batch is
   scored with the memory that already holds its own confident samples):
   * ``task``: ``p_c = normalise(sum of the label's filled slots)``;
   * ``sample`` (default, AdaNeg's): ``p_c(v) = normalise(sum_l exp(-beta (1 - cos(v, m_cl))) m_cl)``;
4. ``S_ada`` = grouped score (G groups, same layout) with logits ``cos(v, p_c)/tau``;
   ``S = S_ada + lambda S_nl`` (higher = more in-distribution).

Predictions follow the authors: argmax over the ID labels of
``softmax(vanilla logits) + lambda softmax(adaptive logits)`` (softmax over all C labels).

Differences from the authors' code, on purpose: all L image slots are used (their code treats a
label as full after L - 1 images), and ``beta`` stays 5.5 (their code truncates it to int).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ants.methods import MethodResult, as_features, batch_slices
from ants.scores import group_layout, id_mass_from_logits

__all__ = [
    "PROXIES",
    "AdaNegConfig",
    "AdaNegMemory",
    "adaneg_config",
    "adaptive_cosines",
    "entropy",
    "run_adaneg",
]

PROXIES = ("sample", "task")
_CLASS_CHUNK = 2048


@dataclass(frozen=True)
class AdaNegConfig:
    """AdaNeg's settings (ImageNet defaults of METHOD.md section 5)."""

    n_groups: int = 5
    memory_length: int = 10  # L image slots per label
    threshold: float = 0.5  # gamma
    gap: float = 0.5  # g
    beta: float = 5.5
    lam: float = 0.1
    proxy: str = "sample"  # 'sample' | 'task'
    tau: float = 0.01
    grouping_seed: int = 0

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

    @property
    def high_cut(self) -> float:
        """Cache under the ID class above this ``S_nl``: ``gamma + g (1 - gamma)``."""
        return self.threshold + self.gap * (1.0 - self.threshold)

    @property
    def low_cut(self) -> float:
        """Cache under a negative label below this ``S_nl``: ``gamma - g gamma``."""
        return self.threshold - self.gap * self.threshold


def adaneg_config(config: AdaNegConfig | Mapping[str, Any] | None = None) -> AdaNegConfig:
    """An :class:`AdaNegConfig` from a config or a mapping of settings (unknown keys: error)."""
    if config is None:
        return AdaNegConfig()
    if isinstance(config, AdaNegConfig):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(
            f"an AdaNeg config must be an AdaNegConfig or a mapping, got {type(config).__name__}"
        )
    valid = [f.name for f in fields(AdaNegConfig)]
    unknown = sorted(k for k in config if k not in valid)
    if unknown:
        raise ValueError(
            f"unknown AdaNeg setting(s) {', '.join(map(repr, unknown))}; valid settings: {', '.join(valid)}"
        )
    return replace(AdaNegConfig(), **dict(config))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Row entropy ``-sum p log(p + 1e-8)`` of ``softmax(logits)`` (the authors' form)."""
    p = torch.softmax(logits, dim=-1)
    return -(p * torch.log(p + 1e-8)).sum(dim=-1)


class AdaNegMemory:
    """Per-label image memory: ``L`` slots with their features and entropies.

    Only labels that ever received an image are stored (rows, in first-touch order); every
    other label's memory is just its text feature.
    """

    def __init__(self, text_features: torch.Tensor, length: int) -> None:
        self.text = text_features  # (C, d)
        self.length = int(length)
        d = text_features.shape[1]
        self.row_of: dict[int, int] = {}
        self.labels = np.empty(0, dtype=np.int64)  # label of each row
        self.feats = np.zeros((0, self.length, d), dtype=np.float32)
        self.entropy = np.zeros((0, self.length), dtype=np.float64)
        self.count = np.zeros(0, dtype=np.int64)
        self.gram = np.zeros((0, self.length + 1, self.length + 1), dtype=np.float64)

    def _row(self, label: int) -> int:
        row = self.row_of.get(label)
        if row is None:
            row = len(self.row_of)
            self.row_of[label] = row
            if row == self.labels.size:  # grow by doubling
                cap = max(16, 2 * row)
                d = self.feats.shape[2]
                self.labels = np.resize(self.labels, cap)
                self.feats = np.concatenate(
                    [self.feats, np.zeros((cap - row, self.length, d), np.float32)]
                )
                self.entropy = np.concatenate([self.entropy, np.zeros((cap - row, self.length))])
                self.count = np.concatenate([self.count, np.zeros(cap - row, np.int64)])
                self.gram = np.concatenate(
                    [self.gram, np.zeros((cap - row, self.length + 1, self.length + 1))]
                )
            self.labels[row] = label
        return row

    def insert(self, label: int, feature: np.ndarray, ent: float) -> str:
        """Offer ``feature`` with priority ``ent`` to ``label``: 'insert', 'replace' or 'skip'."""
        row = self._row(int(label))
        n = int(self.count[row])
        if n < self.length:
            slot, action = n, "insert"
            self.count[row] = n + 1
        else:
            worst = int(np.argmax(self.entropy[row]))
            if not ent < self.entropy[row, worst]:
                return "skip"
            slot, action = worst, "replace"
        self.feats[row, slot] = feature
        self.entropy[row, slot] = ent
        full = np.concatenate(
            [self.text[label].numpy()[None].astype(np.float64), self.feats[row].astype(np.float64)]
        )
        self.gram[row] = full @ full.T
        return action

    @property
    def n_rows(self) -> int:
        return len(self.row_of)

    def slots(self, label: int) -> np.ndarray:
        """The filled image slots of ``label``, ``(count, d)`` (for inspection and tests)."""
        row = self.row_of.get(int(label))
        if row is None:
            return np.zeros((0, self.text.shape[1]), np.float32)
        return self.feats[row, : self.count[row]].copy()


def adaptive_cosines(
    x: torch.Tensor, text_cos: torch.Tensor, memory: AdaNegMemory, *, beta: float, proxy: str
) -> torch.Tensor:
    """``cos(v, p_c)`` for every image ``v`` (rows of ``x``) and label ``c``, ``(n, C)`` float32.

    ``text_cos`` = ``cos(v, t_c)``. A label without images has ``p_c = t_c``. For the others,
    with slot cosines ``s_l`` (slot 0 = text) and weights ``w_l`` (``exp(-beta(1 - s_l))`` for
    ``sample``, 1 for ``task``; 0 for empty slots), ``cos(v, p_c) = sum_l w_l s_l / ||sum_l w_l m_l||``
    where the norm comes from the slots' Gram matrix. Computed in float64.
    """
    out = text_cos.clone()
    rows = memory.n_rows
    if rows == 0:
        return out
    length = memory.length
    filled_all = np.arange(length)[None, :] < memory.count[:rows, None]
    for start in range(0, rows, _CLASS_CHUNK):
        stop = min(rows, start + _CLASS_CHUNK)
        labels = torch.from_numpy(memory.labels[start:stop])
        feats = torch.from_numpy(memory.feats[start:stop])  # (a, L, d)
        a = stop - start
        s_img = (x @ feats.reshape(a * length, -1).T).reshape(x.shape[0], a, length).double()
        s = torch.cat([text_cos[:, labels].double().unsqueeze(-1), s_img], dim=-1)  # (n, a, 1+L)
        mask = torch.cat(
            [
                torch.ones(a, 1, dtype=torch.float64),
                torch.from_numpy(filled_all[start:stop]).double(),
            ],
            1,
        )
        w = torch.exp(-beta * (1.0 - s)) * mask if proxy == "sample" else mask.expand_as(s)
        num = (w * s).sum(-1)
        gram = torch.from_numpy(memory.gram[start:stop])
        den2 = (torch.einsum("nal,alk->nak", w, gram) * w).sum(-1)
        out[:, labels] = (num / den2.clamp_min(1e-300).sqrt()).float()
    return out


def run_adaneg(
    *,
    image_features: Any,
    id_text_features: Any,
    negative_features: Any,
    batch_size: int = 256,
    config: AdaNegConfig | Mapping[str, Any] | None = None,
    progress: bool = False,
) -> MethodResult:
    """AdaNeg over one stream (features in stream order; state reset at the start).

    ``variants``: ``adaneg`` (= the score), ``s_ada``, ``s_nl``. ``trace``: per batch, the
    numbers of inserts / replacements / skips (dict of ``(n_batches,)`` arrays).
    """
    cfg = adaneg_config(config)
    img = as_features(image_features, "image_features")
    n, d = img.shape
    idt = as_features(id_text_features, "id_text_features", dim=d)
    neg = as_features(negative_features, "negative_features", dim=d)
    k, m = idt.shape[0], neg.shape[0]
    if cfg.n_groups > m:
        raise ValueError(f"n_groups={cfg.n_groups} exceeds the {m} negatives")
    text = torch.cat([idt, neg])
    text_t = text.T.contiguous()
    # the negatives' grouped layout, as column indices among the C = K + M labels
    layout = group_layout(m, n_groups=cfg.n_groups, seed=cfg.grouping_seed) + k
    memory = AdaNegMemory(text, cfg.memory_length)
    high, low = cfg.high_cut, cfg.low_cut

    s_all = np.empty(n, np.float32)
    s_ada_all = np.empty(n, np.float32)
    s_nl_all = np.empty(n, np.float32)
    pred_all = np.empty(n, np.int64)
    trace: dict[str, list[int]] = {"insert": [], "replace": [], "skip": []}

    def grouped(logit: torch.Tensor) -> torch.Tensor:
        return id_mass_from_logits(logit[:, :k], logit[:, layout]).mean(dim=1)

    slices = list(batch_slices(n, batch_size))
    with torch.no_grad():
        for _, sl in tqdm(slices, desc="AdaNeg stream", unit="batch", disable=not progress):
            x = img[sl]
            cos = x @ text_t
            logit = cos / cfg.tau
            s_nl = grouped(logit)
            # caching: ID pass, then negative pass, each in stream order
            counts = dict.fromkeys(trace, 0)
            s_nl64 = s_nl.double()
            for sel, part, offset in (
                (s_nl64 > high, logit[:, :k], 0),
                (s_nl64 < low, logit[:, k:], k),
            ):
                idx = torch.nonzero(sel).flatten()
                if idx.numel() == 0:
                    continue
                labels = (part[idx].argmax(dim=1) + offset).tolist()
                ents = entropy(part[idx]).double().tolist()
                feats = x[idx].numpy()
                for j, (lab, ent) in enumerate(zip(labels, ents, strict=True)):
                    counts[memory.insert(lab, feats[j], ent)] += 1
            for key, value in counts.items():
                trace[key].append(value)
            # adaptive score with the memory after this batch's caching
            ada_logit = adaptive_cosines(x, cos, memory, beta=cfg.beta, proxy=cfg.proxy) / cfg.tau
            s_ada = grouped(ada_logit)
            s_all[sl] = (s_ada + cfg.lam * s_nl).numpy()
            s_ada_all[sl] = s_ada.numpy()
            s_nl_all[sl] = s_nl.numpy()
            p_van = torch.exp(logit[:, :k] - torch.logsumexp(logit, dim=1, keepdim=True))
            p_ada = torch.exp(ada_logit[:, :k] - torch.logsumexp(ada_logit, dim=1, keepdim=True))
            pred_all[sl] = (p_van + cfg.lam * p_ada).argmax(dim=1).numpy()
    return MethodResult(
        method="adaneg",
        scores=s_all,
        predictions=pred_all,
        variants={"adaneg": s_all.copy(), "s_ada": s_ada_all, "s_nl": s_nl_all},
        trace={key: np.asarray(v, dtype=np.int64) for key, v in trace.items()},
    )
