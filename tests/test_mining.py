"""NegMining on synthetic text features whose selected set is known by construction."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pytest
import torch

from ants.artifacts import ArtifactError
from ants.embeddings import write_embeddings
from ants.mining import (
    ADJ_TEMPLATE,
    CSP_SUPERCLASSES,
    NOUN_TEMPLATE,
    MinedNegatives,
    candidate_pools,
    csp_candidates,
    id_similarity_stats,
    mine_negative_labels,
    proportional_split,
)

D = 64


def unit(i: int) -> np.ndarray:
    v = np.zeros(D, dtype=np.float32)
    v[i] = 1.0
    return v


def mix(c: float, i: int, j: int) -> np.ndarray:
    """Unit vector with cosine ``c`` to e_i and the rest along e_j (orthogonal to all else)."""
    return (c * unit(i) + np.sqrt(1 - c * c) * unit(j)).astype(np.float32)


class FakeEncoder:
    """encode_text(texts, template) from a dict text -> vector; records every call.

    A text missing from the dict whose last word is a CSP superclass gets its adjective's vector.
    """

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, texts, template):
        self.calls.append((list(texts), template))
        rows = []
        for t in texts:
            if t not in self.vectors and t.rsplit(" ", 1)[-1] in CSP_SUPERCLASSES:
                t = t.rsplit(" ", 1)[0]
            rows.append(self.vectors[t])
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, D), np.float32)


def corpus(nouns, adjs=(), lexnames=None, also_noun=()) -> pd.DataFrame:
    lexnames = lexnames or {}
    rows = [(n, "noun", lexnames.get(n, "noun.artifact"), False) for n in nouns]
    rows += [(a, "adj", lexnames.get(a, "adj.all"), a in also_noun) for a in adjs]
    return pd.DataFrame(rows, columns=["lemma", "pos", "lexnames", "is_also_noun"])


def ranked_case():
    """One ID class (e0): every candidate's statistic is its cosine to e0, set by hand."""
    noun_stats = {"n0": 0.30, "n1": 0.10, "n2": 0.50, "n3": 0.20, "n4": 0.05, "n5": 0.40, "n6": 0.15}
    adj_stats = {"a0": 0.25, "a1": 0.02, "a2": 0.35}
    vectors = {"cls": unit(0)}
    for j, (name, c) in enumerate({**noun_stats, **adj_stats}.items(), start=1):
        vectors[name] = mix(c, 0, j)
    return ["cls"], corpus(list(noun_stats), list(adj_stats)), FakeEncoder(vectors), noun_stats, adj_stats


# ----------------------------------------------------------------- selection


def test_orthogonal_candidates_are_chosen_near_ones_rejected():
    ids = ["tench", "goldfish", "shark"]
    vectors = {n: unit(i) for i, n in enumerate(ids)}
    far = [f"far{i}" for i in range(4)]
    near = [f"near{i}" for i in range(4)]
    for i, n in enumerate(far):
        vectors[n] = unit(10 + i)
    for i, n in enumerate(near):
        vectors[n] = mix(0.8, i % 3, 20 + i)
    vectors["far_adj"], vectors["near_adj"] = unit(30), mix(0.9, 1, 31)
    nouns = [near[0], far[0], near[1], far[1], near[2], far[2], near[3], far[3]]
    enc = FakeEncoder(vectors)
    mined = mine_negative_labels(
        ids, enc, corpus=corpus(nouns, ["near_adj", "far_adj"]), n_negatives=5, progress=False
    )
    # 10 candidates, M = 5: M_noun = round(5 * 8 / 10) = 4, M_adj = 1
    assert mined.labels == ["far0", "far1", "far2", "far3", "far_adj"]
    assert mined.kinds == ["noun"] * 4 + ["adj"]
    np.testing.assert_array_equal(mined.table["stat"].to_numpy(), np.zeros(5))
    np.testing.assert_array_equal(mined.embeddings, np.stack([vectors[n] for n in mined.labels]))
    # templates: ID classes and nouns "The nice {}.", adjectives "This is a {} photo."
    assert enc.calls[0] == (ids, NOUN_TEMPLATE)
    assert enc.calls[1] == (nouns, NOUN_TEMPLATE)
    assert enc.calls[2] == (["near_adj", "far_adj"], ADJ_TEMPLATE)


def test_proportional_split_rounds_half_up():
    assert proportional_split(5, 7, 3) == (4, 1)  # 3.5 -> 4
    assert proportional_split(5, 3, 7) == (2, 3)  # 1.5 -> 2
    assert proportional_split(10, 7, 3) == (7, 3)
    assert proportional_split(10_000, 100_000, 20_000) == (8333, 1667)  # 8333.33
    assert proportional_split(10_000, 70_000, 20_000) == (7778, 2222)  # 7777.78
    for m, a, b in [(7, 1, 1), (1, 1, 1), (3, 2, 5), (9, 9, 1)]:
        if m <= a + b:
            mn, ma = proportional_split(m, a, b)
            assert mn + ma == m and 0 <= mn <= a and 0 <= ma <= b


def test_proportional_keeps_lowest_per_pool_in_ascending_order():
    ids, corp, enc, noun_stats, adj_stats = ranked_case()
    mined = mine_negative_labels(ids, enc, corpus=corp, n_negatives=5, progress=False)
    assert mined.labels == ["n4", "n1", "n6", "n3", "a1"]  # 4 nouns (3.5 rounds up), 1 adjective
    np.testing.assert_allclose(mined.table["stat"], [0.05, 0.10, 0.15, 0.20, 0.02], atol=1e-6)
    np.testing.assert_allclose(mined.table["max_id_cos"], mined.table["stat"], atol=0)
    assert mined.meta["pool_sizes"] == {"noun": 7, "adj": 3}
    assert mined.meta["selected"] == {"noun": 4, "adj": 1}


def test_lowest_fraction_counts_truncate():
    ids, _, _, _, _ = ranked_case()
    vectors = {"cls": unit(0)}
    nouns = [f"n{i}" for i in range(20)]
    adjs = [f"a{i}" for i in range(7)]
    for j, name in enumerate(nouns + adjs, start=1):
        vectors[name] = mix(((j * 7) % 27) / 30.0, 0, j)  # distinct statistics
    mined = mine_negative_labels(
        ids, FakeEncoder(vectors), corpus=corpus(nouns, adjs), selection="lowest_fraction",
        fraction=0.15, progress=False,
    )
    # int(20 * 0.15) = 3 nouns, int(7 * 0.15) = int(1.05) = 1 adjective
    assert mined.kinds == ["noun"] * 3 + ["adj"]
    noun_stat = {n: ((j * 7) % 27) / 30.0 for j, n in enumerate(nouns + adjs, start=1)}
    expect_nouns = sorted(nouns, key=lambda n: noun_stat[n])[:3]
    expect_adj = sorted(adjs, key=lambda n: noun_stat[n])[:1]
    assert mined.labels == expect_nouns + expect_adj
    assert mined.meta["selected"] == {"noun": 3, "adj": 1} and mined.meta["n_negatives"] is None


def test_ties_break_by_corpus_order_and_runs_are_deterministic():
    vectors = {"cls": unit(0)}
    nouns = ["e", "b", "d", "a", "c"]  # all orthogonal to the ID class: every statistic is 0
    for j, n in enumerate(nouns, start=1):
        vectors[n] = unit(j)
    kw = dict(corpus=corpus(nouns), n_negatives=3, progress=False)
    first = mine_negative_labels(["cls"], FakeEncoder(vectors), **kw)
    second = mine_negative_labels(["cls"], FakeEncoder(vectors), **kw)
    assert first.labels == ["e", "b", "d"]
    pd.testing.assert_frame_equal(first.table, second.table)
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert first.meta == second.meta


def test_chunked_encoding_gives_the_same_result():
    ids, corp, enc, _, _ = ranked_case()
    whole = mine_negative_labels(ids, enc, corpus=corp, n_negatives=6, progress=False)
    enc2 = FakeEncoder(enc.vectors)
    chunked = mine_negative_labels(ids, enc2, corpus=corp, n_negatives=6, batch_size=2, progress=False)
    pd.testing.assert_frame_equal(whole.table, chunked.table)
    assert max(len(texts) for texts, _ in enc2.calls[1:]) == 2


# ----------------------------------------------------------------- candidate pools


def test_id_names_removed_case_insensitively():
    ids, corp, enc, _, _ = ranked_case()
    corp = pd.concat([corp, corpus(["Cls"], ["CLS "])], ignore_index=True)
    pools = candidate_pools(corp, [" cls"])
    assert "Cls" not in pools.nouns and "CLS" not in pools.adjectives
    assert pools.removed["id_name"] == 2
    mined = mine_negative_labels(ids, enc, corpus=corp, n_negatives=10, progress=False)
    assert sorted(mined.labels) == sorted([f"n{i}" for i in range(7)] + ["a0", "a1", "a2"])
    assert mined.meta["removed"]["id_name"] == 2


def test_adjectives_that_are_nouns_and_duplicates():
    corp = corpus(["red", "car", "Car"], ["red", "shiny", "shiny"], also_noun={"red"})
    pools = candidate_pools(corp, ["x"])
    assert pools.nouns == ["red", "car"] and pools.adjectives == ["shiny"]
    assert pools.removed == {"duplicate": 2, "id_name": 0, "lexname": 0, "adjective_is_noun": 1}
    kept = candidate_pools(corp, ["x"], drop_adjectives_that_are_nouns=False)
    assert kept.adjectives == ["red", "shiny"]


def test_exclude_lexnames_drops_only_words_wholly_in_excluded_files():
    lex = {"man": "noun.person", "dog": "noun.animal;noun.person", "ten": "noun.quantity", "x": "noun.artifact"}
    corp = corpus(["man", "dog", "ten", "x"], lexnames=lex)
    assert candidate_pools(corp, ["q"]).nouns == ["man", "dog", "ten", "x"]  # default: none
    pools = candidate_pools(corp, ["q"], exclude_lexnames=["noun.person", "noun.quantity"])
    assert pools.nouns == ["dog", "x"] and pools.removed["lexname"] == 2
    with pytest.raises(ValueError, match=r"unknown lexnames in exclude_lexnames: \['noun.people'\]"):
        candidate_pools(corp, ["q"], exclude_lexnames=["noun.people"])


# ----------------------------------------------------------------- the statistic


def random_unit(rng, n, d=32):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_percentile_is_the_950th_of_1000_sorted_cosines():
    # ID features = the 1000 basis vectors, so a candidate's cosines are exactly its own
    # coordinates (no rounding in the matrix product) and the order statistic can be pinned.
    rng = np.random.default_rng(0)
    id_feats, cand = np.eye(1000, dtype=np.float32), random_unit(rng, 50, d=1000)
    stat, mx = id_similarity_stats(cand, id_feats, 95, chunk_size=7)
    srt = np.sort(cand, axis=1)
    np.testing.assert_array_equal(stat, srt[:, 949])  # the 950th value, 1-based
    assert np.all(srt[:, 949] < srt[:, 950])  # and not its neighbour
    np.testing.assert_array_equal(mx, srt[:, -1])
    # numpy's 'lower' picks the same element for K = 1000; 'higher' the 951st
    np.testing.assert_array_equal(id_similarity_stats(cand, id_feats, 95, method="lower")[0], srt[:, 949])
    np.testing.assert_array_equal(id_similarity_stats(cand, id_feats, 95, method="higher")[0], srt[:, 950])
    # 'linear' is torch.quantile as in the NegLabel / CSP code
    lin, _ = id_similarity_stats(cand, id_feats, 95, method="linear")
    ref = torch.quantile(torch.from_numpy(cand), 0.95, dim=1).numpy()
    np.testing.assert_allclose(lin, ref, rtol=0, atol=1e-7)
    assert np.all(lin > srt[:, 949]) and np.all(lin < srt[:, 950])


def test_percentile_for_other_k_is_the_ceil_order_statistic():
    rng = np.random.default_rng(3)
    for k, p in [(20, 95), (3, 95), (7, 50), (10, 10), (1000, 90)]:
        cand = random_unit(rng, 5, d=k)
        stat, _ = id_similarity_stats(cand, np.eye(k, dtype=np.float32), p)
        rank = int(np.ceil(p * k / 100))  # 1-based
        np.testing.assert_array_equal(stat, np.sort(cand, axis=1)[:, rank - 1])


def test_mined_statistics_pinned_for_k_1000():
    rng = np.random.default_rng(1)
    ids = [f"class{i}" for i in range(1000)]
    nouns = [f"noun{i}" for i in range(30)]
    cand = random_unit(rng, 30, d=1000)
    vectors = dict(zip(ids, np.eye(1000, dtype=np.float32), strict=True))
    vectors.update(zip(nouns, cand, strict=True))
    mined = mine_negative_labels(ids, FakeEncoder(vectors), corpus=corpus(nouns), n_negatives=30, progress=False)
    direct = np.sort(cand, axis=1)[:, 949]
    order = np.argsort(direct, kind="stable")
    assert mined.labels == [nouns[i] for i in order]
    np.testing.assert_array_equal(mined.table["stat"].to_numpy(), direct[order])


# ----------------------------------------------------------------- CSP


def test_csp_candidates_seeded_draw():
    adjs = ["wooden", "red", "shiny", "old", "tiny", "soft"]
    random.seed(0)  # CSP's own way: the global generator, one choice per adjective
    expected = [f"{a} {random.choice(list(CSP_SUPERCLASSES))}" for a in adjs]
    assert csp_candidates(adjs) == expected == csp_candidates(adjs, seed=0)
    assert csp_candidates(adjs, seed=1) != expected
    assert expected[:3] == ["wooden creature", "red area", "shiny vista"]  # pinned: seed 0
    assert len(CSP_SUPERCLASSES) == 14 and CSP_SUPERCLASSES[2] == "object"


def two(c: float, p: int, q: int, j: int) -> np.ndarray:
    """Unit vector with cosine ``c`` to both e_p and e_q, the rest along e_j."""
    return (c * unit(p) + c * unit(q) + np.sqrt(1 - 2 * c * c) * unit(j)).astype(np.float32)


def test_csp_selection_rejects_high_max_similarity():
    ids = [f"c{i}" for i in range(20)]  # K = 20: the 95th percentile is the 19th of 20 (2nd largest)
    vectors = {n: unit(i) for i, n in enumerate(ids)}
    nouns = [f"n{i}" for i in range(20)]
    for i, n in enumerate(nouns):  # statistic 0.01 i, plus 0.5 from n3 on
        vectors[n] = two(0.01 * i + 0.5 * (i >= 3), i % 20, (i + 1) % 20, 20 + i)
    # n0 instead: one ID at cosine 0.97 -> statistic 0 (2nd largest) but max 0.97 > 0.95
    vectors["n0"] = mix(0.97, 5, 40)
    adjs = [f"adj{i}" for i in range(14)]
    for i, a in enumerate(adjs):  # statistic 0.05 i
        vectors[a] = two(0.05 * i, 2, 3, 44 + i)
    vectors["adj0"] = mix(0.96, 1, 62)  # statistic 0, max 0.96
    mined = mine_negative_labels(
        ids, FakeEncoder(vectors), corpus=corpus(nouns, adjs), selection="csp", progress=False
    )
    phrases = csp_candidates(adjs, seed=0)
    # int(20 * 0.15) = 3 nouns, int(14 * 0.15) = 2 phrases; n0 and adj0's phrase rejected
    assert mined.labels == ["n1", "n2", "n3", phrases[1], phrases[2]]
    assert mined.kinds == ["noun"] * 3 + ["csp"] * 2
    assert mined.meta["max_id_similarity"] == 0.95 and mined.meta["csp_seed"] == 0
    assert (mined.table["max_id_cos"] <= 0.95).all()
    # the same features without rejection pick n0 and adj0's phrase (statistic 0)
    plain = mine_negative_labels(
        ids, FakeEncoder(vectors), corpus=corpus(nouns, adjs), selection="csp",
        max_id_similarity=None, progress=False,
    )
    assert plain.labels[0] == "n0" and phrases[0] in plain.labels


# ----------------------------------------------------------------- errors


def test_empty_id_list():
    _, corp, enc, _, _ = ranked_case()
    with pytest.raises(ValueError, match="id_classnames is empty"):
        mine_negative_labels([], enc, corpus=corp, progress=False)


def test_n_negatives_larger_than_pool():
    ids, corp, enc, _, _ = ranked_case()
    with pytest.raises(ValueError, match=r"n_negatives=11 exceeds .*only 10 candidates are available \(7 nouns, 3 adjectives"):
        mine_negative_labels(ids, enc, corpus=corp, n_negatives=11, progress=False)
    assert enc.calls == []  # fails before encoding anything


def test_encoder_wrong_shape():
    ids, corp, _, _, _ = ranked_case()

    def bad(texts, template):
        return np.ones((len(texts) + 1, 4), np.float32) / 2.0

    with pytest.raises(ValueError, match=r"encode_text returned shape \(2, 4\) for 1 ID class texts .*expected \(1, d\)"):
        mine_negative_labels(ids, bad, corpus=corp, n_negatives=2, progress=False)


def test_encoder_dimension_mismatch_between_calls():
    ids, corp, _, _, _ = ranked_case()

    def bad(texts, template):
        d = 4 if texts == ids else 8
        x = np.zeros((len(texts), d), np.float32)
        x[:, 0] = 1
        return x

    with pytest.raises(ValueError, match=r"shape \(7, 8\) for 7 noun texts .*expected \(7, 4\)"):
        mine_negative_labels(ids, bad, corpus=corp, n_negatives=2, progress=False)


def test_encoder_non_unit_rows():
    ids, corp, enc, _, _ = ranked_case()

    def unnormalised(texts, template):
        out = enc(texts, template)
        if template == ADJ_TEMPLATE:
            out[1] *= 2
        return out

    with pytest.raises(ValueError, match=r"L2-normalised rows: 1 of 3 adj rows .*row 1 \('a1'\) has norm 2"):
        mine_negative_labels(ids, unnormalised, corpus=corp, n_negatives=2, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"selection": "best"}, r"unknown selection 'best'; valid: \['proportional', 'lowest_fraction', 'csp'\]"),
        ({"selection": "lowest_fraction", "fraction": 0}, r"fraction must be in \(0, 1\], got 0"),
        ({"percentile": 120}, r"percentile must be a number in \[0, 100\], got 120"),
        ({"percentile_method": "median"}, r"unknown percentile_method 'median'"),
        ({"n_negatives": 0}, r"n_negatives must be a positive integer, got 0"),
    ],
)
def test_bad_settings(kwargs, message):
    ids, corp, enc, _, _ = ranked_case()
    with pytest.raises(ValueError, match=message):
        mine_negative_labels(ids, enc, corpus=corp, progress=False, **kwargs)


# ----------------------------------------------------------------- persistence, real corpus


def test_save_load_round_trip(tmp_path):
    ids, corp, enc, _, _ = ranked_case()
    mined = mine_negative_labels(ids, enc, corpus=corp, n_negatives=5, progress=False)
    mined.meta["backbone"] = "ViT-B-16/openai"
    path = mined.save(tmp_path / "sub" / "negatives.parquet")
    back = MinedNegatives.load(path)
    pd.testing.assert_frame_equal(back.table, mined.table)
    np.testing.assert_array_equal(back.embeddings, mined.embeddings)
    assert back.embeddings.dtype == np.float32
    assert back.meta == mined.meta and back.meta["backbone"] == "ViT-B-16/openai"
    assert [p.name for p in path.parent.iterdir()] == ["negatives.parquet"]  # no temp file left
    assert back.table["kind"].tolist() == ["noun"] * 4 + ["adj"]


def test_with_the_tiny_clip_encoder(tiny_clip):
    """The real encoder satisfies the encode_text contract (unit float32 rows)."""

    def encode_text(texts, template):
        return tiny_clip.encode_texts(texts, template=template)

    nouns = ["car", "tree", "cloud", "lamp", "river", "chair"]
    mined = mine_negative_labels(
        ["dog", "cat"], encode_text, corpus=corpus(nouns, ["shiny", "wooden"]), n_negatives=4, progress=False
    )
    ids = tiny_clip.encode_texts(["dog", "cat"], template=NOUN_TEMPLATE)
    feats = tiny_clip.encode_texts(nouns, template=NOUN_TEMPLATE)
    stat = np.percentile(feats @ ids.T, 95, axis=1, method="inverted_cdf")
    expect = [nouns[i] for i in np.argsort(stat, kind="stable")[:3]]  # round(4 * 6 / 8) = 3 nouns
    assert mined.labels[:3] == expect and mined.kinds == ["noun"] * 3 + ["adj"]
    np.testing.assert_allclose(mined.embeddings[:3], feats[np.argsort(stat, kind="stable")[:3]], atol=1e-6)


def test_load_rejects_other_files(tmp_path):
    def error(path, problem):
        rebuild = "Rebuild it: write it again with `ants embed-labels`"
        return "^" + re.escape(f"{path} (mined negatives): {problem}. {rebuild}") + "$"

    other = write_embeddings(
        tmp_path / "images.parquet", np.eye(2, dtype=np.float32), pd.DataFrame({"id": [1, 2]}), {"backbone": "x"}
    )
    with pytest.raises(ArtifactError, match=error(other, "no column 'label' (columns: id, embedding)")):
        MinedNegatives.load(other)
    labelled = write_embeddings(
        tmp_path / "labelled.parquet", np.eye(2, dtype=np.float32),
        pd.DataFrame({"label": ["a", "b"], "kind": ["noun"] * 2, "stat": [0.1, 0.2], "max_id_cos": [0.3, 0.4]}), {},
    )
    problem = ("not a mined-negatives file (artifact None, columns label, kind, stat, max_id_cos; expected artifact "
               "'mined_negatives' and columns label, kind, stat, max_id_cos)")
    with pytest.raises(ArtifactError, match=error(labelled, problem)):
        MinedNegatives.load(labelled)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(plain)
    with pytest.raises(ArtifactError, match=error(plain, "no 'ants' schema metadata (not written by ants)")):
        MinedNegatives.load(plain)
    missing = tmp_path / "missing.parquet"
    with pytest.raises(FileNotFoundError, match=error(missing, "does not exist")):
        MinedNegatives.load(missing)


def char_encoder(texts, template):
    """A deterministic stand-in text encoder: normalised character-code histograms."""
    x = np.ones((len(texts), 16), np.float32)
    for i, t in enumerate(texts):
        for ch in template.format(t):
            x[i, ord(ch) % 16] += 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_shipped_corpus_end_to_end(monkeypatch, caplog):
    import functools
    import logging

    import ants.mining
    from ants.progress import progress

    monkeypatch.setenv("ANTS_PROGRESS", "log")  # as under Snakemake: progress lines in the log
    # a fast machine mines in under the default 1 s quiet period; log from the start
    monkeypatch.setattr(ants.mining, "progress_bar", functools.partial(progress, min_seconds=0.0))
    ids = ["tench", "goldfish", "great white shark", "dog", "sea lion"]
    with caplog.at_level(logging.INFO, logger="ants.progress"):
        mined = mine_negative_labels(ids, char_encoder, n_negatives=1000, batch_size=50_000)
    sizes = mined.meta["pool_sizes"]
    # all five ID names are WordNet nouns; 3,138 WordNet adjectives are also nouns
    assert sizes == {"noun": 117_798 - 5, "adj": 21_479 - 3_138}
    assert mined.meta["removed"] == {"duplicate": 0, "id_name": 5, "lexname": 0, "adjective_is_noun": 3_138}
    assert mined.meta["selected"]["noun"] == proportional_split(1000, sizes["noun"], sizes["adj"])[0]
    assert len(mined) == 1000 and not set(ids) & set(mined.labels)
    assert any(r.getMessage().startswith("NegMining: ") for r in caplog.records if r.name == "ants.progress")


def test_mining_called_from_python_shows_progress_without_any_logging_setup(tmp_path):
    """A plain Python script whose stderr is a file (not a terminal) and that configures no
    logging: the progress lines still appear on stderr (they used to go to an unconfigured
    logger, i.e. nowhere: paper-scale mining ran minutes without a word)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "mine.py"
    script.write_text(
        "import time\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "from ants.mining import mine_negative_labels\n"
        "def encode(texts, template):\n"
        "    time.sleep(0.25)  # a slow text encoder: 10 chunks, about 2.5 s in all\n"
        "    x = np.ones((len(texts), 8), np.float32)\n"
        "    x[:, 0] += np.arange(len(texts))\n"
        "    return x / np.linalg.norm(x, axis=1, keepdims=True)\n"
        "words = [f'word{i}' for i in range(90)]\n"
        "corpus = pd.DataFrame({'lemma': words, 'pos': 'noun', 'lexnames': 'noun.artifact',\n"
        "                       'is_also_noun': False})\n"
        "mined = mine_negative_labels(['cls'], encode, corpus=corpus, n_negatives=10, batch_size=10)\n"
        "print(len(mined))\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "ANTS_PROGRESS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    with open(tmp_path / "stderr.txt", "w+", encoding="utf-8") as err:
        done = subprocess.run(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=err, env=env,
            text=True, timeout=300, check=True,
        )
        err.seek(0)
        lines = err.read().splitlines()
    assert done.stdout.strip() == "10"
    mining = [x for x in lines if x.startswith("NegMining: ")]
    assert mining and all("\r" not in x for x in mining), lines
    assert any(x.startswith("NegMining: ") and "% (" in x for x in mining[:-1]), mining
    assert mining[-1].startswith("NegMining: done, 90 label in "), mining
