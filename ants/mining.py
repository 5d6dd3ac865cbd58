"""NegMining: choose the negative labels farthest from every ID class (docs/METHOD.md section 3).

NegMining is NegLabel's (ICLR 2024, https://arxiv.org/abs/2403.20078; code
https://github.com/XueJiang16/NegLabel); the CSP phrases are from "Conjugated Semantic Pool"
(NeurIPS 2024, https://arxiv.org/abs/2410.08611; code
https://github.com/MengyuanChen21/NeurIPS2024-CSP).

Steps (NegLabel's NegMining, with the switches the paper, NegLabel's code and CSP need):

1. **Candidates** (:func:`candidate_pools`): WordNet 3.0 nouns and adjectives from the shipped
   lemma table (:mod:`ants.wordnet`; underscores already spaces, case-insensitively unique).
   Removed: candidates equal to an ID class name (case-insensitive, surrounding whitespace
   ignored); adjectives that are also nouns when ``drop_adjectives_that_are_nouns`` (the ANTS
   authors' re-implementation; default on); candidates ALL of whose lexicographer categories are
   in ``exclude_lexnames`` (default none). The last rule mirrors CSP's code, which reads one word
   list per lexicographer file and skips the excluded files, so a word survives if it also
   occurs in a kept file. CSP's default exclusion is ``noun.person``, ``noun.quantity``,
   ``noun.group`` and ``adj.pert``; pass :data:`CSP_EXCLUDED_LEXNAMES` to reproduce it.
2. **Encode** with the caller's ``encode_text(texts, template)``: ID classes and nouns with
   "The nice {}.", adjectives with "This is a {} photo." (CSP phrases too, by default). It must
   return a float32 ``(len(texts), d)`` array of L2-normalised rows.
3. **Statistic** (:func:`id_similarity_stats`): for each candidate the ``percentile``-th
   percentile of its cosines to the K ID text features; lower = farther from every ID class.
   The default ``percentile_method='inverted_cdf'`` (numpy) is the ``ceil(p K / 100)``-th smallest
   cosine, an actual order statistic: for K = 1000 and p = 95 the 950th of the 1000
   ascending-sorted values (0-based index 949), as docs/METHOD.md specifies. (numpy's
   ``'lower'`` gives the same element for K = 1000; ``'linear'`` reproduces ``torch.quantile`` as used in the
   NegLabel and CSP code: 0.05 of the way from the 950th to the 951st value.)
4. **Selection** (``selection``):

   * ``'proportional'`` (docs/METHOD.md, the paper): ``M = n_negatives`` split between the pools in
     proportion to their sizes, ``M_noun = round(M * n_noun / (n_noun + n_adj))`` with halves
     rounded UP (exact integer arithmetic: ``(2 M n_noun + n) // (2 n)``), ``M_adj = M - M_noun``;
     the lowest ``M_noun`` nouns and lowest ``M_adj`` adjectives are kept.
   * ``'lowest_fraction'`` (NegLabel's code): the lowest ``floor(fraction * pool size)`` of each
     pool (``fraction=0.15``); ``n_negatives`` is ignored.
   * ``'csp'`` (CSP, an extension): adjectives are replaced by adjective + superclass phrases
     (:func:`csp_candidates`, seed ``csp_seed``), kind ``'csp'``; the lowest
     ``floor(fraction * pool size)`` nouns and phrases are kept; candidates whose maximum cosine
     to an ID feature exceeds ``max_id_similarity`` (0.95 in this mode) are never selected.

   The pool sizes that fix the counts are the sizes after step 1 and before the
   ``max_id_similarity`` rejection (as in CSP's code, where rejected candidates stay in the pool
   but sort last). Ties are broken by the candidate's position in its pool (stable sort on
   ``(stat, original order)``), so the result is deterministic.
5. **Output** (:class:`MinedNegatives`): nouns in ascending ``stat`` order, then the adjectives
   (or CSP phrases) in ascending ``stat`` order -- the order NegLabel stores its bank in, which
   matters for the grouped score (it drops the LAST ``|N| mod G`` rows). Each row carries its
   text feature; ``save``/``load`` keep everything in one Parquet file
   (:mod:`ants.embeddings` format).

Memory: all candidate features are held until selection (about 140k x d float32; 280 MB for
d = 512). Encoding and the statistic run in chunks of ``batch_size`` texts, with progress
(:mod:`ants.progress`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from ants.artifacts import artifact_error
from ants.embeddings import read_embeddings, write_embeddings
from ants.progress import progress as progress_bar
from ants.wordnet import LEXNAMES, candidate_rule, load_corpus

__all__ = [
    "ADJ_TEMPLATE",
    "CSP_EXCLUDED_LEXNAMES",
    "CSP_MAX_ID_SIMILARITY",
    "CSP_SUPERCLASSES",
    "ID_TEMPLATE",
    "NOUN_TEMPLATE",
    "SELECTIONS",
    "CandidatePools",
    "MinedNegatives",
    "candidate_pools",
    "csp_candidates",
    "id_similarity_stats",
    "mine_negative_labels",
    "proportional_split",
]

NOUN_TEMPLATE = "The nice {}."
ID_TEMPLATE = NOUN_TEMPLATE
ADJ_TEMPLATE = "This is a {} photo."
#: CSP's superclass words, in the order the seeded draw indexes them.
CSP_SUPERCLASSES: tuple[str, ...] = (
    "environment", "space", "object", "scene", "place", "item", "area", "view", "thing",
    "pattern", "structure", "landscape", "vista", "creature",
)  # fmt: skip
CSP_MAX_ID_SIMILARITY = 0.95
#: The lexicographer files CSP's code leaves out by default.
CSP_EXCLUDED_LEXNAMES: tuple[str, ...] = ("noun.person", "noun.quantity", "noun.group", "adj.pert")
SELECTIONS = ("proportional", "lowest_fraction", "csp")
KINDS = ("noun", "adj", "csp")
PERCENTILE_METHODS = (
    "inverted_cdf", "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf",
    "hazen", "weibull", "linear", "median_unbiased", "normal_unbiased", "lower", "higher",
    "midpoint", "nearest",
)  # fmt: skip
UNIT_NORM_TOLERANCE = 1e-3
_ARTIFACT = "mined_negatives"

EncodeText = Callable[[list[str], str], np.ndarray]


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class CandidatePools:
    """Candidate nouns and adjectives in corpus order, with how many each rule removed."""

    nouns: list[str]
    adjectives: list[str]
    removed: dict[str, int] = field(default_factory=dict)


def _check_corpus_frame(corpus: pd.DataFrame) -> None:
    need = ("lemma", "pos", "lexnames", "is_also_noun")
    missing = [c for c in need if c not in corpus.columns]
    if missing:
        raise ValueError(
            f"corpus lacks columns {missing}; expected {list(need)} (see ants.wordnet)"
        )
    bad = sorted(set(corpus["pos"]) - {"noun", "adj"})
    if bad:
        raise ValueError(f"corpus has pos values {bad}; valid: 'noun', 'adj'")


def candidate_pools(
    corpus: pd.DataFrame,
    id_classnames: Sequence[str],
    *,
    drop_adjectives_that_are_nouns: bool = True,
    exclude_lexnames: Iterable[str] = (),
) -> CandidatePools:
    """Apply step 1 of the module docstring to ``corpus`` (a :func:`ants.wordnet.load_corpus` table).

    Also de-duplicates case-insensitively within each part of speech (first occurrence kept), so
    a hand-made corpus behaves like the shipped one. ``removed`` counts, per rule, the rows
    dropped: ``'duplicate'``, ``'id_name'``, ``'lexname'``, ``'adjective_is_noun'``.
    """
    _check_corpus_frame(corpus)
    excluded = set(exclude_lexnames)
    unknown = sorted(excluded - set(LEXNAMES))
    if unknown:
        raise ValueError(
            f"unknown lexnames in exclude_lexnames: {unknown}; valid: {sorted(LEXNAMES)}"
        )
    id_keys = {str(n).strip().casefold() for n in id_classnames}
    removed = {"duplicate": 0, "id_name": 0, "lexname": 0, "adjective_is_noun": 0}
    pools: dict[str, list[str]] = {"noun": [], "adj": []}
    seen: dict[str, set[str]] = {"noun": set(), "adj": set()}
    for lemma, pos, lexnames, also_noun in corpus.loc[
        :, ["lemma", "pos", "lexnames", "is_also_noun"]
    ].itertuples(index=False):
        key = str(lemma).strip().casefold()
        if key in seen[pos]:
            removed["duplicate"] += 1
            continue
        seen[pos].add(key)
        rule = (
            "id_name"
            if key in id_keys
            else candidate_rule(
                pos,
                str(lexnames),
                bool(also_noun),
                exclude_lexnames=excluded,
                drop_adjectives_that_are_nouns=drop_adjectives_that_are_nouns,
            )
        )
        if rule is None:
            pools[pos].append(str(lemma).strip())
        else:
            removed[rule] += 1
    return CandidatePools(pools["noun"], pools["adj"], removed)


def csp_candidates(
    adjectives: Sequence[str], seed: int = 0, superclasses: Sequence[str] = CSP_SUPERCLASSES
) -> list[str]:
    """CSP phrases: each adjective followed by a superclass word drawn with ``seed``.

    The draws are sequential, ``random.Random(seed).choice(superclasses)`` once per adjective in
    the given order (CSP's code: ``random.seed(0)`` then ``random.choice`` per adjective), so an
    adjective's superclass depends on its position:

    >>> csp_candidates(["wooden", "red", "quiet"])
    ['wooden creature', 'red area', 'quiet vista']
    >>> csp_candidates(["red"])
    ['red creature']
    """
    if not superclasses:
        raise ValueError("superclasses must not be empty")
    rng = random.Random(seed)
    return [f"{adj} {rng.choice(superclasses)}" for adj in adjectives]


# --------------------------------------------------------------------------- the statistic


def id_similarity_stats(
    candidate_features: np.ndarray,
    id_features: np.ndarray,
    percentile: float = 95.0,
    method: str = "inverted_cdf",
    chunk_size: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: the ``percentile`` of its cosines to the ID features, and their maximum.

    ``candidate_features`` ``(n, d)`` and ``id_features`` ``(K, d)`` are L2-normalised rows, so
    cosines are dot products, computed in float32 by torch (MKL: under :mod:`ants.numerics`'s
    pin the same bits for any thread count, which numpy's OpenBLAS product does not give).
    ``method`` is numpy's percentile method; the
    default ``'inverted_cdf'`` returns the ``ceil(percentile * K / 100)``-th smallest cosine
    (K = 1000, 95 -> the 950th). Returns two float64 arrays of length ``n``.
    """
    cand = np.asarray(candidate_features, dtype=np.float32)
    ids = np.asarray(id_features, dtype=np.float32)
    if cand.ndim != 2 or ids.ndim != 2 or cand.shape[1] != ids.shape[1]:
        raise ValueError(
            f"expected candidate features (n, d) and ID features (K, d), got {cand.shape} and {ids.shape}"
        )
    if ids.shape[0] == 0:
        raise ValueError("id_features is empty: at least one ID class is needed")
    _check_percentile(percentile, method)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    stat = np.empty(cand.shape[0], dtype=np.float64)
    mx = np.empty(cand.shape[0], dtype=np.float64)
    ids_t = torch.tensor(ids).T  # (copies: the inputs may be read-only arrays)
    for start in range(0, cand.shape[0], chunk_size):
        cos = (torch.tensor(cand[start : start + chunk_size]) @ ids_t).numpy()
        stat[start : start + len(cos)] = np.percentile(cos, percentile, axis=1, method=method)
        mx[start : start + len(cos)] = cos.max(axis=1)
    return stat, mx


def _check_percentile(percentile: float, method: str) -> None:
    if not (isinstance(percentile, (int, float)) and 0 <= percentile <= 100):
        raise ValueError(f"percentile must be a number in [0, 100], got {percentile!r}")
    if method not in PERCENTILE_METHODS:
        raise ValueError(f"unknown percentile_method {method!r}; valid: {list(PERCENTILE_METHODS)}")


def proportional_split(n_negatives: int, n_noun: int, n_adj: int) -> tuple[int, int]:
    """``(M_noun, M_adj)``: ``M_noun = round(M n_noun / (n_noun + n_adj))`` with halves rounded up.

    Exact integer arithmetic; ``M_adj = M - M_noun``. Both never exceed their pool when
    ``M <= n_noun + n_adj``. ImageNet-1k's pools with the shipped WordNet table:

    >>> proportional_split(10_000, 116_950, 18_340)
    (8644, 1356)
    """
    total = n_noun + n_adj
    if total <= 0:
        raise ValueError("both candidate pools are empty")
    m_noun = (2 * n_negatives * n_noun + total) // (2 * total)
    return m_noun, n_negatives - m_noun


def _lowest(stat: np.ndarray, eligible: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` lowest eligible values, ties by index (stable sort)."""
    order = np.argsort(stat, kind="stable")
    order = order[eligible[order]]
    return order[:count]


# --------------------------------------------------------------------------- encoding


def _encode_checked(
    encode_text: EncodeText, texts: list[str], template: str, dim: int | None, what: str
) -> np.ndarray:
    out = encode_text(list(texts), template)
    arr = np.asarray(out)
    expected = f"({len(texts)}, {dim if dim is not None else 'd'})"
    if arr.ndim != 2 or arr.shape[0] != len(texts) or (dim is not None and arr.shape[1] != dim):
        raise ValueError(
            f"encode_text returned shape {arr.shape} for {len(texts)} {what} texts "
            f"(template {template!r}); expected {expected}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"encode_text must return floating-point features, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(
            f"encode_text returned NaN or infinite values for {what} texts (template {template!r})"
        )
    norms = np.linalg.norm(arr, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"encode_text must return L2-normalised rows: {bad.size} of {len(texts)} {what} rows "
            f"are not unit length, e.g. row {i} ({texts[i]!r}) has norm {norms[i]:.6g} "
            f"(template {template!r}; tolerance {UNIT_NORM_TOLERANCE})"
        )
    return arr


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class MinedNegatives:
    """Mined negative labels with their text features.

    ``table`` columns: ``label`` (str), ``kind`` ('noun' / 'adj' / 'csp'), ``stat`` (the
    percentile statistic, float64), ``max_id_cos`` (maximum cosine to an ID feature).
    ``embeddings`` is ``(len(table), d)`` float32, row ``i`` the feature of ``table`` row ``i``
    (encoded with the kind's template). ``meta`` records how they were mined (settings, pool
    sizes, a sha256 of the ID class names); callers may add keys (e.g. the backbone) before
    saving, as long as they are JSON-serialisable.
    """

    table: pd.DataFrame
    embeddings: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cols = ["label", "kind", "stat", "max_id_cos"]
        if list(self.table.columns) != cols:
            raise ValueError(f"table columns must be {cols}, got {list(self.table.columns)}")
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != len(self.table):
            raise ValueError(
                f"embeddings shape {self.embeddings.shape} does not match {len(self.table)} table rows"
            )
        bad = sorted(set(self.table["kind"]) - set(KINDS))
        if bad:
            raise ValueError(f"unknown kinds {bad}; valid: {list(KINDS)}")

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> list[str]:
        return self.table["label"].tolist()

    @property
    def kinds(self) -> list[str]:
        return self.table["kind"].tolist()

    def save(self, path: str | Path) -> Path:
        """Write one Parquet file with :func:`ants.embeddings.write_embeddings` (atomic).

        Row columns are those of ``table``; ``embedding`` holds the features; the schema
        metadata is ``{"artifact": "mined_negatives", "mining": meta}``.
        """
        return write_embeddings(
            path,
            self.embeddings,
            self.table,
            {"artifact": _ARTIFACT, "mining": self.meta},
            kind="negatives",
        )

    @classmethod
    def load(cls, path: str | Path) -> MinedNegatives:
        """Read a file written by :meth:`save` (checked as every artifact,
        :func:`ants.embeddings.read_embeddings`); errors are one line naming the file, what is
        wrong and how to rebuild it (:class:`ants.artifacts.ArtifactError`)."""
        features, rows, meta = read_embeddings(path, "negatives")
        cols = ["label", "kind", "stat", "max_id_cos"]
        if meta.get("artifact") != _ARTIFACT or list(rows.columns) != cols:
            raise artifact_error(
                path,
                f"not a mined-negatives file (artifact {meta.get('artifact')!r}, columns "
                f"{', '.join(rows.columns)}; expected artifact {_ARTIFACT!r} and columns "
                f"{', '.join(cols)})",
                "negatives",
            )
        rows = rows.astype(
            {"label": str, "kind": str, "stat": np.float64, "max_id_cos": np.float64}
        )
        return cls(rows, features, dict(meta.get("mining", {})))


# --------------------------------------------------------------------------- mining


def _sha256_names(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


def mine_negative_labels(
    id_classnames: Sequence[str],
    encode_text: EncodeText,
    *,
    corpus: pd.DataFrame | None = None,
    n_negatives: int = 10_000,
    percentile: float = 95.0,
    percentile_method: str = "inverted_cdf",
    selection: Literal["proportional", "lowest_fraction", "csp"] = "proportional",
    fraction: float = 0.15,
    drop_adjectives_that_are_nouns: bool = True,
    exclude_lexnames: Iterable[str] = (),
    csp_seed: int = 0,
    max_id_similarity: float | None | Literal["auto"] = "auto",
    id_template: str = ID_TEMPLATE,
    noun_template: str = NOUN_TEMPLATE,
    adj_template: str = ADJ_TEMPLATE,
    csp_template: str = ADJ_TEMPLATE,
    batch_size: int = 4096,
    progress: bool = True,
) -> MinedNegatives:
    """Mine negative labels for an ID label set (see the module docstring for every step).

    ``encode_text(texts, template)`` returns an ``(len(texts), d)`` float32 array of
    L2-normalised text features of ``template.format(t)`` for each text (e.g. a bound method of
    the CLIP encoder); it is called on the ID names once and on the candidates in chunks of
    ``batch_size``. ``corpus`` defaults to the shipped WordNet table. ``max_id_similarity``:
    candidates whose maximum cosine to an ID feature exceeds it are never selected; ``'auto'``
    means 0.95 for ``selection='csp'`` and no rejection otherwise. ``n_negatives`` is used only
    by ``'proportional'``; ``fraction`` only by the other two modes.

    ``progress`` (default on) follows the encoding of the candidates (135,290 for ImageNet-1k
    with the shipped WordNet table: minutes with a ViT-B/16 on a CPU): a bar on a terminal or
    in Jupyter, else a line every 10 % -- to the ``ants.progress`` logger when logging is
    configured (a workflow job's log), otherwise to stderr (:mod:`ants.progress`).

    Errors (``ValueError`` unless noted): empty ``id_classnames``; an unknown ``selection``,
    lexname or percentile method; ``n_negatives`` larger than the candidate pool (the message
    gives the pool sizes); ``encode_text`` returning the wrong shape, non-finite values or
    non-unit rows; fewer eligible candidates than the count to keep after the
    ``max_id_similarity`` rejection.
    """
    id_classnames = [str(n) for n in id_classnames]
    if not id_classnames:
        raise ValueError("id_classnames is empty: at least one ID class name is needed")
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; valid: {list(SELECTIONS)}")
    _check_percentile(percentile, percentile_method)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if selection == "proportional":
        if not (isinstance(n_negatives, (int, np.integer)) and n_negatives >= 1):
            raise ValueError(f"n_negatives must be a positive integer, got {n_negatives!r}")
    elif not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if max_id_similarity == "auto":
        max_id_similarity = CSP_MAX_ID_SIMILARITY if selection == "csp" else None
    if max_id_similarity is not None and not isinstance(max_id_similarity, (int, float)):
        raise ValueError(
            f"max_id_similarity must be a number, None or 'auto', got {max_id_similarity!r}"
        )
    excluded = sorted(set(exclude_lexnames))

    if corpus is None:
        corpus = load_corpus()
    pools = candidate_pools(
        corpus,
        id_classnames,
        drop_adjectives_that_are_nouns=drop_adjectives_that_are_nouns,
        exclude_lexnames=excluded,
    )
    second_kind = "csp" if selection == "csp" else "adj"
    if selection == "csp":
        second = csp_candidates(pools.adjectives, seed=csp_seed)
        id_keys = {n.strip().casefold() for n in id_classnames}
        kept = [p for p in second if p.casefold() not in id_keys]
        pools.removed["id_name"] += len(second) - len(kept)
        second = kept
        second_template = csp_template
    else:
        second, second_template = pools.adjectives, adj_template
    sizes = {"noun": len(pools.nouns), second_kind: len(second)}

    # counts to keep, fixed before any encoding so bad settings fail fast
    if selection == "proportional":
        available = sizes["noun"] + sizes[second_kind]
        if n_negatives > available:
            raise ValueError(
                f"n_negatives={n_negatives} exceeds the candidate pool: only {available} "
                f"candidates are available ({sizes['noun']} nouns, {sizes[second_kind]} "
                f"adjectives after removing ID names and excluded words)"
            )
        m_noun, m_second = proportional_split(n_negatives, sizes["noun"], sizes[second_kind])
        counts = {"noun": m_noun, second_kind: m_second}
    else:  # int() truncates, as NegLabel's and CSP's int(len(pool) * fraction)
        counts = {k: int(n * fraction) for k, n in sizes.items()}

    total = sizes["noun"] + sizes[second_kind]
    bar = progress_bar(total=total, desc="NegMining", unit="label", enabled=progress)
    try:
        id_feats = _encode_checked(encode_text, id_classnames, id_template, None, "ID class")
        d = id_feats.shape[1]
        parts = []
        for kind, texts, template in (
            ("noun", pools.nouns, noun_template),
            (second_kind, second, second_template),
        ):
            feats = np.empty((len(texts), d), dtype=np.float32)
            stat = np.empty(len(texts), dtype=np.float64)
            mx = np.empty(len(texts), dtype=np.float64)
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                f = _encode_checked(encode_text, chunk, template, d, kind)
                end = start + len(chunk)
                feats[start:end] = f
                stat[start:end], mx[start:end] = id_similarity_stats(
                    f, id_feats, percentile, percentile_method
                )
                bar.update(len(chunk))
            eligible = np.isfinite(stat)
            if max_id_similarity is not None:
                eligible &= mx <= max_id_similarity
            n_eligible = int(eligible.sum())
            if counts[kind] > n_eligible:
                raise ValueError(
                    f"cannot keep {counts[kind]} {kind} candidates: only {n_eligible} of "
                    f"{len(texts)} have max cosine to an ID class <= {max_id_similarity}"
                )
            idx = _lowest(stat, eligible, counts[kind])
            parts.append(
                (
                    pd.DataFrame(
                        {
                            "label": [texts[i] for i in idx],
                            "kind": kind,
                            "stat": stat[idx],
                            "max_id_cos": mx[idx],
                        }
                    ),
                    feats[idx],
                )
            )
    finally:
        bar.close()

    table = pd.concat([p[0] for p in parts], ignore_index=True)
    table["kind"] = table["kind"].astype(str)
    embeddings = np.concatenate([p[1] for p in parts], axis=0)
    meta: dict[str, Any] = {
        "selection": selection,
        "n_negatives": int(n_negatives) if selection == "proportional" else None,
        "fraction": float(fraction) if selection != "proportional" else None,
        "percentile": float(percentile),
        "percentile_method": percentile_method,
        "max_id_similarity": max_id_similarity,
        "drop_adjectives_that_are_nouns": bool(drop_adjectives_that_are_nouns),
        "exclude_lexnames": excluded,
        "csp_seed": int(csp_seed) if selection == "csp" else None,
        "templates": {
            "id": id_template,
            "noun": noun_template,
            second_kind: second_template,
        },
        "pool_sizes": sizes,
        "selected": {k: int(v) for k, v in counts.items()},
        "removed": dict(pools.removed),
        "n_id_classes": len(id_classnames),
        "id_classnames_sha256": _sha256_names(id_classnames),
        "embedding_dim": int(embeddings.shape[1]),
    }
    return MinedNegatives(table, embeddings, meta)
