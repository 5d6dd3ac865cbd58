"""ANTS: adaptive negative textual space shaping at test time (docs/METHOD.md sections 6, 7, 10).

Zhu et al., "ANTS: Adaptive Negative Textual Space Shaping for OOD Detection via Test-Time MLLM
Understanding and Reasoning", CVPR 2026, https://arxiv.org/abs/2509.03951; reference code
https://github.com/ZhuWenjie98/ANTS (``openood/postprocessors/ants/``; the ``authors_code``
preset follows it step by step, docs/METHOD.md section 10).

The stream is processed batch by batch (batches numbered from 1), in the order of section 10:

1. logits of the batch against [K ID labels + the mined negatives]; ``S_nl`` = grouped score
   (group size ``s``); predictions = argmax of the ID logits; both appended to the history;
2. NIM: while fewer than E ENS updates have happened, samples with ``S_nl < threshold``
   (strictly) join the candidate cache;
3. ENS (far-OOD): while fewer than E updates have happened and the cache holds MORE than
   ``ens_trigger_size`` candidates: update the threshold (``code`` rule: histogram jump +
   eta-percentile of the whole history; ``paper`` rule: the largest of the lowest eta fraction
   of the cached scores), ask the MLLM to describe every cached image (ONE answerer call),
   normalise and encode the sentences without a template, PREPEND them to the ENS bank and
   keep its LAST ``ens_bank_cap`` rows; clear the cache; count the update;
4. VSNL (near-OOD): at batches ``start, start + interval, ...``: the most predicted ID classes
   so far (``top_k``: ``Counter.most_common``, ties in first-seen order; ``top_fraction``:
   the same with ``k = round(delta * K)``); ask (ONE answerer call) for the classes of that
   subset not yet cached; drop cached classes that left it; the bank = the de-duplicated
   labels in cache order, encoded with "The nice {}.";
5. score THIS batch with the banks as they now are: ``S_ens``, ``S_vsnl`` (plain score for a
   bank of at most ``s`` entries, grouped otherwise; an empty bank falls back to ``S_nl``);
6. ``lambda`` from the statistics so far (current batch included) and
   ``S_ada = lambda * S_ens + (1 - lambda) * S_vsnl``.

Ablation switches (paper Table 4 and Fig. 7a; readings documented in docs/METHOD.md section 11,
the authors' code has none of them): ``nim=False`` keeps the initial NIM threshold for good
(every image below it is described at each update; row A), ``sim=False`` asks VSNL for every ID
class (row C), ``initial_detector`` replaces the NegLabel ``S_nl`` by MCM at ``tau`` or by the
grouped score over CSP-mined negatives. All three decide the queries (plan keys).

Step 1 depends on each sample alone, so it is computed for the whole stream first
(:func:`ants_static_scores`, the shared primitive :func:`ants.scores.negative_label_parts`;
the workflow computes it once per dataset and passes it in as ``static``); the state machine (steps 2-6) then runs batch by batch and
only ever reads the history up to the current batch. Every score is "higher = more
in-distribution". All three outputs (``ada``, ``far_only`` = ``S_ens``, ``near_only`` =
``S_vsnl``) and ``s_nl`` are returned; ``config.in_score`` picks the main one (the released
scripts report ``far_only`` on far-OOD and ``near_only`` on near-OOD; the paper ``ada``).

The optional activation-aware ENS (TANL; ``activation_aware_ens``) replaces ``S_ens`` of a
batch by :func:`activation_selected_score` against the whole ENS bank, with the threshold
:func:`activation_threshold` of the last ``activation_queue`` plain ``S_ens`` scores (current
batch included); the balanced ENS score used for lambda is unchanged, as in the authors' code.
``activation_top`` defaults to 500, the value of docs/METHOD.md section 6 (the authors' config
default is 1000).

Queries never depend on answers: a VSNL class counts as cached once it has been asked,
whatever the answer; an ENS update counts even when every answer was empty. Answers whose
status is not ``"ok"`` contribute nothing. This is what makes plan -> answer -> replay exact
(:mod:`ants.replay`).

Conventions chosen where docs/METHOD.md leaves room (documented, tested):

* ENS sentences are normalised once, by the answer parser, and de-duplicated
  (case-insensitively) within one update, as the authors' code does
  (:func:`ants.mllm.parsing.ens_update_sentences`); the bank may repeat a sentence across
  updates. VSNL labels are normalised again per class and over the bank, as theirs are.
* ``paper`` threshold rule: ``k = max(1, ceil(eta * n))`` lowest cached scores; the new
  threshold is the largest of them.
* ``paper`` lambda statistics: running means of ``S_ens`` and ``S_vsnl`` (the scores
  emitted at their batch) over the samples mined into the NIM cache so far; 0.5 before any.
* ``code`` lambda statistics: running means (float64 sums) of the balanced scores of every
  sample so far; the balanced group size defaults to K (the authors use the number of ID
  classes, 1000 on ImageNet).
* lambda = 0.5 when ``|(1 - a) + (1 - b)|`` is below float32 epsilon.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ants.methods.ants_switches import (  # noqa: F401  (re-exported: the detector's switches)
    ANTS_PLAN_KEYS,
    DEFAULT_PRESET,
    IN_SCORES,
    LAMBDA_STATS,
    NEAR_SUBSETS,
    PRESETS,
    THRESHOLD_RULES,
    AntsConfig,
    ants_config,
)
from ants.methods.base import MethodResult, batch_slices
from ants.mllm.base import Answer, Answerer, Query
from ants.mllm.parsing import (
    ens_update_sentences,
    vsnl_bank_labels,
    vsnl_class_labels,
)
from ants.progress import progress as progress_bar
from ants.scores import (
    StaticScores,
    as_features,
    group_layout,
    group_lse,
    mcm_parts,
    mean_id_mass,
    negative_label_parts,
)

#: The detector's own names; its switches (``AntsConfig``, ``ants_config``, ``PRESETS``,
#: ``ANTS_PLAN_KEYS``, ...) are importable from here too, declared in ants_switches.
__all__ = [
    "AntsResult",
    "AntsTrace",
    "EncodeText",
    "activation_selected_score",
    "activation_threshold",
    "adaptive_weight",
    "ants_static_scores",
    "ens_update_texts",
    "is_vsnl_batch",
    "near_subset_size",
    "prepend_keep_last",
    "run_ants",
    "score_ants",
    "threshold_code_rule",
    "threshold_paper_rule",
    "top_predicted",
    "vsnl_bank_texts",
    "vsnl_answer_labels",
    "vsnl_event",
]

#: encode_text(texts, template) -> (len(texts), d) L2-normalised float array; the template is
#: a format string with one ``{}`` ("{}" = no template).
EncodeText = Callable[[Sequence[str], str], np.ndarray]

_F32_EPS = float(np.finfo(np.float32).eps)
#: rows per chunk of the static pass (S_nl, predictions); fixed so every run chunks alike
STATIC_CHUNK = 4096


# --------------------------------------------------------------------------------------------
# pure pieces of the state machine


def threshold_code_rule(history: Any, eta: float) -> tuple[float, float]:
    """The authors' NIM threshold update from the whole ``S_nl`` history (float32).

    Histogram on the 11 edges ``numpy.arange(0.0, 1.1, 0.1)``; ``upper`` = the right edge of
    the first bin of the adjacent pair with the largest absolute count difference; the new
    threshold = ``numpy.percentile(history[history < upper], 100 * eta)`` (linear; all of the
    history when nothing is below ``upper``). Returns ``(threshold, upper)``.
    """
    values = np.asarray(history, dtype=np.float32).ravel()
    if values.size == 0:
        raise ValueError("cannot update the threshold from an empty S_nl history")
    edges = np.arange(0.0, 1.1, 0.1)
    counts, _ = np.histogram(values, edges)
    upper = float(edges[int(np.argmax(np.abs(np.diff(counts)))) + 1])
    low = values[values < np.float32(upper)]  # compared in float32, as numpy does for the authors
    if low.size == 0:
        low = values
    return float(np.percentile(low, 100.0 * eta)), upper


def threshold_paper_rule(candidate_scores: Any, eta: float) -> float:
    """The paper's NIM threshold: the largest of the lowest ``ceil(eta * n)`` cached scores."""
    s = np.sort(np.asarray(candidate_scores, dtype=np.float64).ravel())
    if s.size == 0:
        raise ValueError("cannot update the threshold without cached candidates")
    k = max(1, math.ceil(eta * s.size))
    return float(s[k - 1])


def prepend_keep_last(bank: torch.Tensor | None, new: torch.Tensor, cap: int) -> torch.Tensor:
    """The authors' ENS queue: ``cat([new, bank])[-cap:]`` (on overflow the NEWEST are dropped).

    The same rule keeps the bank's texts (lists: ``(new + bank)[-cap:]``) beside its features.
    """
    if isinstance(new, list):
        return (new + list(bank or []))[-cap:]
    combined = new if bank is None or bank.shape[0] == 0 else torch.cat([new, bank], dim=0)
    return combined[-cap:]


def top_predicted(counts: Counter, k: int) -> list[int]:
    """The ``k`` most predicted classes; ties in first-seen order (``Counter.most_common``)."""
    return [c for c, _ in counts.most_common(k)]


def near_subset_size(cfg: AntsConfig, n_classes: int) -> int:
    """How many of the most predicted ID classes the VSNL subset holds: ``near_top_k``
    (``top_k``), or ``k = max(1, round(near_delta * K))`` of the ``K`` classes
    (``top_fraction``); every class with ``sim=False`` (no SIM: ablation row C's reading)."""
    if not cfg.sim:
        return n_classes
    if cfg.near_subset == "top_k":
        return cfg.near_top_k
    return max(1, round(cfg.near_delta * n_classes))


def is_vsnl_batch(batch: int, cfg: AntsConfig) -> bool:
    """Whether batch ``batch`` (from 1) has a VSNL event: ``vsnl_start``, then every
    ``vsnl_interval`` batches."""
    return batch >= cfg.vsnl_start and (batch - cfg.vsnl_start) % cfg.vsnl_interval == 0


# -- the bank updates, on texts: the detector runs them, ants.inspection.banks_at replays them


def ens_update_texts(answers: Sequence[Answer], cfg: AntsConfig) -> list[str]:
    """The sentences one ENS update prepends to the bank: the negatives of its ``ok`` answers,
    in query order, as the parser normalised them, de-duplicated (case-insensitively) within
    the update (:func:`ants.mllm.parsing.ens_update_sentences`)."""
    return ens_update_sentences(s for a in answers if a.status == "ok" for s in a.negatives)


def vsnl_answer_labels(answer: Answer, cfg: AntsConfig) -> list[str]:
    """The labels a VSNL answer gives its class: the first ``vsnl_labels_per_class`` of its
    negatives normalised in the ``answer_parser`` style (:func:`ants.mllm.parsing.vsnl_class_labels`);
    none unless it is ``ok``."""
    got = list(answer.negatives) if answer.status == "ok" else []
    return vsnl_class_labels(got, cfg.answer_parser, cfg.vsnl_labels_per_class)


def vsnl_bank_texts(cache: Mapping[Any, Sequence[str]], cfg: AntsConfig) -> list[str]:
    """The VSNL bank of a class cache: every cached class's labels in cache order, normalised
    and de-duplicated in the ``answer_parser`` style (:func:`ants.mllm.parsing.vsnl_bank_labels`)."""
    return vsnl_bank_labels([lab for labs in cache.values() for lab in labs], cfg.answer_parser)


def vsnl_event(
    cache: dict[Any, list[str]],
    frequent: Sequence[Any],
    ask: Callable[[list[Any]], Sequence[Answer]],
    cfg: AntsConfig,
) -> list[str]:
    """One VSNL event on the class cache (changed in place); returns the bank's labels.

    ``frequent``: the classes of the subset now (:func:`top_predicted`); the ones not cached
    yet are asked (ONE ``ask(new classes)`` call, one answer per class) and keep
    :func:`vsnl_answer_labels` -- a class counts as cached once asked, whatever the answer;
    cached classes that left the subset are dropped.
    """
    new = [c for c in frequent if c not in cache]
    if new:
        for c, a in zip(new, ask(new), strict=True):
            cache[c] = vsnl_answer_labels(a, cfg)
    active = set(frequent)
    for c in [c for c in cache if c not in active]:
        del cache[c]
    return vsnl_bank_texts(cache, cfg)


def adaptive_weight(a: float, b: float) -> float:
    """``lambda = (1 - a) / ((1 - a) + (1 - b))``; 0.5 when the denominator is ~0 (< f32 eps)."""
    den = (1.0 - a) + (1.0 - b)
    if abs(den) < _F32_EPS:
        return 0.5
    return float((1.0 - a) / den)


def activation_threshold(scores: Any) -> float:
    """TANL's two-cluster threshold: t in {0, 0.01, ..., 0.99} minimising the count-weighted
    within-group variance of ``scores < t`` and ``scores >= t`` (first minimum; the lower
    median when no t splits the scores)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("cannot estimate an activation threshold without scores")
    best_t = float(np.sort(values)[(values.size - 1) // 2])
    best_var = math.inf
    for t in torch.arange(0.0, 1.0, 0.01).tolist():  # float32 steps, as the authors
        high = values >= t
        n_high = int(high.sum())
        if n_high == 0 or n_high == values.size:
            continue
        lo, hi = values[~high], values[high]
        var = (lo.size * lo.var() + hi.size * hi.var()) / values.size
        if var < best_var:
            best_var, best_t = float(var), float(t)
    return best_t


def activation_selected_score(
    lse_id: torch.Tensor,
    negative_logit: torch.Tensor,
    reference: torch.Tensor,
    threshold: float,
    *,
    gap: float = 0.5,
    top: int = 500,
    step: int = 2,
) -> torch.Tensor | None:
    """Activation-aware ENS score of a batch (TANL); None when the high or low set is empty.

    ``lse_id``: ``(n,)`` log-sum-exp of each image's ID logits; ``negative_logit``: ``(n, N)``
    logits against the whole ENS bank. High set: ``reference > t + gap (1 - t)``; low set:
    ``reference < t - gap t``. Relevance of each negative = mean softmax probability (over ID +
    all negatives) on the low set minus on the high set; the ``top`` most relevant, ranked,
    give the score = mean over prefixes (lengths ``step, 2 step, ..., all``) of the ID mass
    with that prefix as negatives.
    """
    high = reference > threshold + gap * (1.0 - threshold)
    low = reference < threshold - gap * threshold
    if not bool(high.any()) or not bool(low.any()):
        return None
    lse_all = torch.logaddexp(lse_id, torch.logsumexp(negative_logit, dim=1))
    probs = torch.exp(negative_logit - lse_all[:, None])
    relevance = probs[low].mean(dim=0) - probs[high].mean(dim=0)
    k = min(int(top), relevance.numel())
    chosen = torch.topk(relevance, k).indices
    ranked = negative_logit[:, chosen]
    ends = list(range(step - 1, k, step))
    if not ends or ends[-1] != k - 1:
        ends.append(k - 1)
    return mean_id_mass(lse_id, torch.logcumsumexp(ranked, dim=1)[:, ends])


# --------------------------------------------------------------------------------------------
# trace and result


@dataclass
class AntsTrace:
    """What the state machine did, per batch (arrays indexed by ``batch - 1``).

    * ``threshold``: the NIM threshold in force when the batch was mined (before its update);
    * ``n_candidates``: cache size at the end of the batch (after any ENS update cleared it);
    * ``ens_update`` / ``vsnl_update``: whether the batch triggered an update;
    * ``ens_size`` / ``vsnl_size``: bank sizes used to score the batch;
    * ``lam``: the adaptive weight lambda used for the batch's ``ada`` score;
    * ``queries``: every ``(batch, Query)`` asked, in order; ``ens_sentences`` /
      ``vsnl_labels``: the final banks' strings, in bank order.
    """

    batch: np.ndarray
    threshold: np.ndarray
    n_candidates: np.ndarray
    ens_update: np.ndarray
    vsnl_update: np.ndarray
    ens_size: np.ndarray
    vsnl_size: np.ndarray
    lam: np.ndarray
    queries: list[tuple[int, Query]] = field(default_factory=list)
    ens_sentences: list[str] = field(default_factory=list)
    vsnl_labels: list[str] = field(default_factory=list)


@dataclass
class AntsResult(MethodResult):
    """:class:`MethodResult` of ANTS; ``variants`` holds ``ada``, ``far_only``, ``near_only``, ``s_nl``."""

    config: AntsConfig | None = None


# --------------------------------------------------------------------------------------------
# the state machine


class _Bank:
    """Text features of a negative bank with cached group layouts."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.feats: torch.Tensor | None = None
        self.texts: list[str] = []
        self._layouts: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def size(self) -> int:
        return 0 if self.feats is None else int(self.feats.shape[0])

    def layout(self, n: int, group_size: int) -> torch.Tensor:
        key = (n, group_size)
        if key not in self._layouts:
            self._layouts[key] = group_layout(n, group_size=group_size, seed=self.seed)
        return self._layouts[key]

    def score(
        self, lse_id: torch.Tensor, lneg: torch.Tensor, group_size: int, tiling: int = 1
    ) -> torch.Tensor:
        """ID mass against the bank (logits ``lneg``), optionally tiled ``tiling`` times.

        ``lse_id``: ``(n,)`` log-sum-exp of the ID logits. At most ``group_size`` (tiled)
        entries: the plain score (a bank tiled T times adds ``log T`` to its log-sum-exp);
        more: grouped with group size ``group_size`` over the tiled bank (tiled row j is bank
        row j mod n), with the seed-0 layout of :func:`ants.scores.group_layout`.
        """
        n = lneg.shape[1]
        n_tiled = n * tiling
        if n_tiled <= group_size:
            return mean_id_mass(
                lse_id, group_lse(lneg, log_multiplicity=math.log(tiling) if tiling > 1 else 0.0)
            )
        idx = self.layout(n_tiled, group_size)
        if tiling > 1:
            idx = idx % n
        return mean_id_mass(lse_id, group_lse(lneg, idx))


class _AntsRun:
    """One stream's ANTS state (reset per stream)."""

    def __init__(
        self,
        cfg: AntsConfig,
        *,
        n: int,
        idt: torch.Tensor,
        items: Sequence[str],
        sha256: Sequence[str | None] | None,
        class_names: Sequence[str],
        encode_text: EncodeText | None,
        answerer: Answerer,
    ) -> None:
        self.cfg = cfg
        self.k = idt.shape[0]
        self.d = idt.shape[1]
        self.items = items
        self.sha256 = sha256
        self.class_names = class_names
        self.encode_text = encode_text
        self.answerer = answerer
        self.balanced_size = cfg.balanced_group_size or self.k
        self.near_k = near_subset_size(cfg, self.k)

        # static per-sample quantities (S_nl, predictions, lse of the ID logits): given, or
        # computed for the whole stream by :func:`ants.scores.negative_label_parts`
        self.s_nl = np.empty(n, dtype=np.float32)
        self.pred = np.empty(n, dtype=np.int64)
        self.lse_id = torch.empty(n, dtype=torch.float32)
        self.counts: Counter = Counter()
        # NIM / ENS
        self.threshold = float(cfg.initial_threshold)
        self.cache_pos: list[int] = []
        self.ens_updates = 0
        self.ens = _Bank(cfg.grouping_seed)
        # VSNL
        self.vsnl_cache: dict[int, list[str]] = {}
        self.vsnl = _Bank(cfg.grouping_seed)
        self.bank_t: torch.Tensor | None = None  # [ens; vsnl].T, rebuilt when a bank changes
        # lambda statistics (float64 sums)
        self.sum_a = 0.0
        self.sum_b = 0.0
        self.count_ab = 0
        self.activation_queue = np.empty(0, dtype=np.float32)
        self.queries: list[tuple[int, Query]] = []

    # -- MLLM ----------------------------------------------------------------------------------
    def _ask(self, batch: int, queries: list[Query]) -> list[Answer]:
        answers = list(self.answerer(queries))
        if len(answers) != len(queries):
            raise RuntimeError(
                f"the answerer returned {len(answers)} answers for {len(queries)} queries at batch {batch}"
            )
        for a in answers:
            if not isinstance(a, Answer):
                raise TypeError(f"the answerer must return Answer objects, got {type(a).__name__}")
        self.queries.extend((batch, q) for q in queries)
        return answers

    def _encode(self, texts: list[str], template: str) -> torch.Tensor:
        if self.encode_text is None:
            raise ValueError("encode_text is required to encode MLLM negatives (got None)")
        out = as_features(self.encode_text(texts, template), "encode_text(...) output", dim=self.d)
        if out.shape[0] != len(texts):
            raise ValueError(f"encode_text returned {out.shape[0]} rows for {len(texts)} texts")
        norms = out.norm(dim=1)
        if not torch.allclose(norms, torch.ones_like(norms), atol=1e-3):
            raise ValueError("encode_text must return L2-normalised rows (found norms away from 1)")
        return out

    # -- steps ---------------------------------------------------------------------------------
    def _ens_update(self, batch: int, end: int) -> None:
        cfg = self.cfg
        if not cfg.nim:  # no NIM: the initial threshold stays (ablation row A's reading)
            pass
        elif cfg.threshold_rule == "code":
            self.threshold, _ = threshold_code_rule(self.s_nl[:end], cfg.eta)
        else:
            self.threshold = threshold_paper_rule(self.s_nl[self.cache_pos], cfg.eta)
        queries = [
            Query(
                kind="ens",
                class_name=self.class_names[int(self.pred[p])],
                image=str(self.items[p]),
                image_sha256=None if self.sha256 is None else self.sha256[p],
            )
            for p in self.cache_pos
        ]
        sentences = ens_update_texts(self._ask(batch, queries), cfg)
        if sentences:
            feats = self._encode(sentences, cfg.ens_template)
            self.ens.feats = prepend_keep_last(self.ens.feats, feats, cfg.ens_bank_cap)
            self.ens.texts = prepend_keep_last(self.ens.texts, sentences, cfg.ens_bank_cap)
            self.bank_t = None
        self.cache_pos = []
        self.ens_updates += 1

    def _vsnl_update(self, batch: int) -> None:
        cfg = self.cfg
        # no SIM (ablation row C's reading): every ID class, predicted yet or not
        subset = top_predicted(self.counts, self.near_k) if cfg.sim else list(range(self.k))
        labels = vsnl_event(
            self.vsnl_cache,
            subset,
            lambda new: self._ask(
                batch, [Query(kind="vsnl", class_name=self.class_names[c]) for c in new]
            ),
            cfg,
        )
        if labels != self.vsnl.texts:
            self.vsnl.texts = labels
            self.vsnl.feats = self._encode(labels, cfg.vsnl_template) if labels else None
            self.bank_t = None

    def set_static(self, static: StaticScores) -> None:
        """Step 1 for every sample, from the static pass (each value depends on its sample alone)."""
        n = self.s_nl.shape[0]
        for name, values in (
            ("scores", static.scores),
            ("predictions", static.predictions),
            ("lse_id", static.lse_id),
        ):
            if np.shape(values) != (n,):
                raise ValueError(
                    f"static.{name} must have one value per stream sample ({n}), "
                    f"got shape {np.shape(values)}"
                )
        self.s_nl[:] = static.scores
        self.pred[:] = static.predictions
        self.lse_id[:] = torch.from_numpy(np.asarray(static.lse_id, dtype=np.float32))

    def step(self, batch: int, sl: slice, x: torch.Tensor) -> dict[str, Any]:
        cfg = self.cfg
        # 1. S_nl and predictions (from the static pass) join the history
        s_nl = torch.from_numpy(self.s_nl[sl])
        lse_id = self.lse_id[sl]
        self.counts.update(self.pred[sl].tolist())
        # 2. NIM
        threshold_used = self.threshold
        mined = np.zeros(x.shape[0], dtype=bool)
        if self.ens_updates < cfg.ens_max_updates:
            mined = self.s_nl[sl].astype(np.float64) < self.threshold
            self.cache_pos.extend((np.flatnonzero(mined) + sl.start).tolist())
        # 3. ENS
        ens_update = (
            self.ens_updates < cfg.ens_max_updates and len(self.cache_pos) > cfg.ens_trigger_size
        )
        if ens_update:
            self._ens_update(batch, sl.stop)
        # 4. VSNL
        vsnl_update = is_vsnl_batch(batch, cfg)
        if vsnl_update:
            self._vsnl_update(batch)
        # 5. scores with the banks as they now are
        n_e, n_v = self.ens.size, self.vsnl.size
        if n_e + n_v and self.bank_t is None:
            self.bank_t = torch.cat(
                [b.feats for b in (self.ens, self.vsnl) if b.feats is not None]
            ).T.contiguous()
        bank_logit = (x @ self.bank_t) / cfg.tau if n_e + n_v else None
        if n_e:
            le = bank_logit[:, :n_e]
            s_ens = self.ens.score(lse_id, le, cfg.group_size)
            s_ens_bal = self.ens.score(lse_id, le, self.balanced_size)
            if cfg.activation_aware_ens:
                s_ens = self._activation(lse_id, le, s_ens)
        else:
            s_ens = s_ens_bal = s_nl
        if n_v:
            lv = bank_logit[:, n_e:]
            s_vsnl = self.vsnl.score(lse_id, lv, cfg.group_size)
            s_vsnl_bal = self.vsnl.score(lse_id, lv, self.balanced_size, cfg.balanced_tiling)
        else:
            s_vsnl = s_vsnl_bal = s_nl
        # 6. lambda
        if cfg.lambda_stats == "code":
            self.sum_a += float(s_ens_bal.double().sum())
            self.sum_b += float(s_vsnl_bal.double().sum())
            self.count_ab += x.shape[0]
        elif mined.any():
            m = torch.from_numpy(mined)
            self.sum_a += float(s_ens[m].double().sum())
            self.sum_b += float(s_vsnl[m].double().sum())
            self.count_ab += int(mined.sum())
        if cfg.fixed_lambda is not None:
            lam = float(cfg.fixed_lambda)
        elif self.count_ab:
            lam = adaptive_weight(self.sum_a / self.count_ab, self.sum_b / self.count_ab)
        else:
            lam = 0.5
        s_ada = lam * s_ens + (1.0 - lam) * s_vsnl
        return {
            "s_nl": s_nl,
            "far_only": s_ens,
            "near_only": s_vsnl,
            "ada": s_ada,
            "threshold": threshold_used,
            "n_candidates": len(self.cache_pos),
            "ens_update": ens_update,
            "vsnl_update": vsnl_update,
            "ens_size": n_e,
            "vsnl_size": n_v,
            "lam": lam,
        }

    def _activation(
        self, lse_id: torch.Tensor, le: torch.Tensor, reference: torch.Tensor
    ) -> torch.Tensor:
        cfg = self.cfg
        self.activation_queue = np.concatenate([self.activation_queue, reference.numpy()])[
            -cfg.activation_queue :
        ]
        t = activation_threshold(self.activation_queue)
        out = activation_selected_score(
            lse_id,
            le,
            reference,
            t,
            gap=cfg.activation_gap,
            top=cfg.activation_top,
            step=cfg.activation_step,
        )
        return reference if out is None else out


def _check_strings(
    values: Sequence[Any] | None, n: int, name: str, *, optional: bool = False
) -> None:
    if values is None:
        if optional:
            return
        raise ValueError(f"{name} is required")
    if isinstance(values, (str, bytes)) or len(values) != n:
        got = "a string" if isinstance(values, (str, bytes)) else f"{len(values)} entries"
        raise ValueError(f"{name} must be a sequence of {n} strings (one per sample), got {got}")


def ants_static_scores(
    image_features: Any,
    id_text_features: Any,
    negative_features: Any,
    config: AntsConfig | str | Mapping[str, Any] | None = None,
) -> StaticScores:
    """Step 1 of every batch for any set of images: the grouped score ``S_nl`` (group size
    ``s``, seed ``grouping_seed``), predictions and ``lse_id``, by the shared primitive
    :func:`ants.scores.negative_label_parts` in fixed chunks of :data:`STATIC_CHUNK` rows.

    ``initial_detector`` (paper Fig. 7a) picks the score: ``neglabel`` and ``csp`` the grouped
    score over ``negative_features`` (for ``csp``, pass the CSP-mined negatives); ``mcm``
    :func:`ants.scores.mcm_parts` at ``tau`` (``negative_features`` unused)."""
    cfg = ants_config(config)
    if cfg.initial_detector == "mcm":
        return mcm_parts(image_features, id_text_features, tau=cfg.tau, chunk_size=STATIC_CHUNK)
    if negative_features is None:
        raise ValueError(
            f"initial_detector {cfg.initial_detector!r} needs negative_features (the mined "
            "negatives; the CSP-mined ones for 'csp')"
        )
    return negative_label_parts(
        image_features,
        id_text_features,
        negative_features,
        tau=cfg.tau,
        group_size=cfg.group_size,
        seed=cfg.grouping_seed,
        chunk_size=STATIC_CHUNK,
    )


def run_ants(
    *,
    image_features: Any,
    items: Sequence[str],
    id_text_features: Any,
    negative_features: Any,
    class_names: Sequence[str],
    encode_text: EncodeText | None,
    answerer: Answerer,
    config: AntsConfig | str | Mapping[str, Any] | None = None,
    batch_size: int = 256,
    item_sha256: Sequence[str | None] | None = None,
    static: StaticScores | None = None,
    progress: bool = False,
) -> AntsResult:
    """Run ANTS over one stream (features in stream order; batches of ``batch_size`` from 1).

    * ``items``: per sample, the image path (or item id) put in ENS queries; ``item_sha256``
      optionally the image content hash;
    * ``id_text_features`` ``(K, d)`` and ``class_names`` (K): the ID labels;
    * ``negative_features`` ``(M, d)``: the mined negative labels (group size ``s``; the
      CSP-mined ones for ``initial_detector: csp``); only read to compute the static pass, so
      None is fine when ``static`` is given or the initial detector is ``mcm``;
    * ``encode_text(texts, template)``: CLIP text encoder, L2-normalised rows (ENS sentences
      with ``config.ens_template`` = "{}", VSNL labels with "The nice {}.");
    * ``answerer``: list[Query] -> list[Answer], called synchronously once per ENS update (all
      cached images) and once per VSNL event with new classes.

    * ``static``: the per-sample ``S_nl``, predictions and ``lse_id`` in stream order
      (:func:`ants_static_scores`, computed once per dataset by the workflow); computed here
      from the features when None.

    Returns scores (``config.in_score``) and every variant in ``variants``, predictions (argmax
    of the ID logits) and an :class:`AntsTrace`.
    """
    cfg = ants_config(config)
    img = as_features(image_features, "image_features")
    n, d = img.shape
    idt = as_features(id_text_features, "id_text_features", dim=d)
    if negative_features is None and static is None and cfg.initial_detector != "mcm":
        raise ValueError("negative_features are required unless the static scores are given")
    neg = (
        None
        if negative_features is None
        else as_features(negative_features, "negative_features", dim=d)
    )
    _check_strings(items, n, "items")
    _check_strings(item_sha256, n, "item_sha256", optional=True)
    _check_strings(class_names, idt.shape[0], "class_names")
    run = _AntsRun(
        cfg,
        n=n,
        idt=idt,
        items=items,
        sha256=item_sha256,
        class_names=class_names,
        encode_text=encode_text,
        answerer=answerer,
    )
    out = {name: np.empty(n, dtype=np.float32) for name in ("ada", "far_only", "near_only")}
    per_batch: dict[str, list[Any]] = {
        k: []
        for k in (
            "threshold",
            "n_candidates",
            "ens_update",
            "vsnl_update",
            "ens_size",
            "vsnl_size",
            "lam",
        )
    }
    slices = list(batch_slices(n, batch_size))
    with torch.no_grad():
        if static is None:
            static = ants_static_scores(img, idt, neg, cfg)
        run.set_static(static)
        for b, sl in progress_bar(slices, desc="ANTS stream", unit="batch", enabled=progress):
            r = run.step(b, sl, img[sl])
            for name in out:
                out[name][sl] = r[name].numpy()
            for key, values in per_batch.items():
                values.append(r[key])
    out["s_nl"] = run.s_nl
    trace = AntsTrace(
        batch=np.arange(1, len(slices) + 1, dtype=np.int64),
        threshold=np.asarray(per_batch["threshold"], dtype=np.float64),
        n_candidates=np.asarray(per_batch["n_candidates"], dtype=np.int64),
        ens_update=np.asarray(per_batch["ens_update"], dtype=bool),
        vsnl_update=np.asarray(per_batch["vsnl_update"], dtype=bool),
        ens_size=np.asarray(per_batch["ens_size"], dtype=np.int64),
        vsnl_size=np.asarray(per_batch["vsnl_size"], dtype=np.int64),
        lam=np.asarray(per_batch["lam"], dtype=np.float64),
        queries=run.queries,
        ens_sentences=list(run.ens.texts),
        vsnl_labels=list(run.vsnl.texts),
    )
    return AntsResult(
        method="ants",
        scores=out[cfg.in_score].copy(),
        predictions=run.pred,
        variants=out,
        trace=trace,
        config=cfg,
    )


def score_ants(section: Mapping[str, Any], inputs: Any) -> AntsResult:
    """ANTS on one stream (the workflow's adapter, :data:`ants.methods.METHODS`): the stream's
    features against the "The nice {}." ID text features, with the shared static pass
    (``S_nl``, predictions) and the stream's answers replayed (``inputs.answerer``; the
    negatives' text features come precomputed through ``inputs.encode_text``). ``section`` is
    :func:`ants.views.method_config`: its ``config`` and the ``in_score`` of this OOD split."""
    idt, names = inputs.id_text("nice")
    return run_ants(
        image_features=inputs.features,
        items=inputs.items,
        id_text_features=idt,
        negative_features=None,
        class_names=names,
        encode_text=inputs.encode_text,
        answerer=inputs.answerer,
        config={**dict(section["config"]), "in_score": section["in_score"]},
        batch_size=inputs.batch_size,
        item_sha256=inputs.sha256,
        static=inputs.static,
        progress=inputs.progress,
    )
