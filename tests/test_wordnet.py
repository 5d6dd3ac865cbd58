"""The WordNet parser (on hand-written files in WordNet's format) and the shipped lemma table."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from ants import wordnet
from ants.wordnet import (
    COLUMNS,
    CorpusError,
    WordNetEntry,
    WordNetFormatError,
    build_lemma_table,
    check_corpus,
    load_corpus,
    parse_data_file,
    write_lemma_table,
)

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"

# offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [ptrs] | gloss
NOUN_LINES = [
    "00001740 03 n 01 entity 0 000 | that which exists  ",
    "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 000 | a member of the genus Canis  ",
    "07676602 13 n 02 hot_dog 0 dog 1 000 | a smooth-textured sausage  ",
    "03000001 06 n 01 china 0 000 | porcelain  ",
    "08000002 15 n 01 China 0 000 | a country  ",
    "04000003 07 n 01 red 0 000 | the colour  ",
    # eleven words: w_cnt is hexadecimal '0b'
    "05000004 18 n 0b "
    + " ".join(f"w{i} 0" for i in range(11))
    + " 000 | eleven people  ",
]
ADJ_LINES = [
    "00001740 00 a 01 able 0 000 | having the means  ",
    "00014358 00 s 02 abounding 0 galore(ip) 0 000 | existing in abundance  ",
    "00020103 00 s 02 outback(a) 0 remote 0 000 | inaccessible  ",
    "00020410 00 s 02 out_of_reach(p) 0 Red 0 000 | inaccessibly located  ",
    "02900001 01 a 01 canine 0 000 | of dogs  ",
    "01500002 44 a 01 remote 0 000 | participial reading  ",
]


def write_dict(tmp: Path, nouns=NOUN_LINES, adjs=ADJ_LINES) -> Path:
    d = tmp / "dict"
    d.mkdir()
    (d / "data.noun").write_text(HEADER + "".join(line + "\n" for line in nouns), encoding="utf-8")
    (d / "data.adj").write_text(HEADER + "".join(line + "\n" for line in adjs), encoding="utf-8")
    return d


def test_parse_noun_file_lemmas_lexnames_and_underscores(tmp_path):
    d = write_dict(tmp_path)
    entries = list(parse_data_file(d / "data.noun"))
    assert entries[:6] == [
        WordNetEntry("entity", "noun", "noun.Tops", 1740),
        WordNetEntry("dog", "noun", "noun.animal", 2084071),
        WordNetEntry("domestic dog", "noun", "noun.animal", 2084071),
        WordNetEntry("Canis familiaris", "noun", "noun.animal", 2084071),
        WordNetEntry("hot dog", "noun", "noun.food", 7676602),
        WordNetEntry("dog", "noun", "noun.food", 7676602),
    ]
    eleven = [e.lemma for e in entries if e.offset == 5000004]
    assert eleven == [f"w{i}" for i in range(11)]
    assert {e.lexname for e in entries if e.offset == 5000004} == {"noun.person"}


def test_parse_adj_file_strips_markers_and_maps_satellites(tmp_path):
    d = write_dict(tmp_path)
    got = [(e.lemma, e.pos, e.lexname) for e in parse_data_file(d / "data.adj")]
    assert got == [
        ("able", "adj", "adj.all"),
        ("abounding", "adj", "adj.all"),
        ("galore", "adj", "adj.all"),
        ("outback", "adj", "adj.all"),
        ("remote", "adj", "adj.all"),
        ("out of reach", "adj", "adj.all"),
        ("Red", "adj", "adj.all"),
        ("canine", "adj", "adj.pert"),
        ("remote", "adj", "adj.ppl"),
    ]


def test_build_lemma_table_exact(tmp_path):
    table = build_lemma_table(write_dict(tmp_path))
    expected = pd.DataFrame(
        [
            ("Canis familiaris", "noun", "noun.animal", False),
            ("china", "noun", "noun.artifact;noun.location", False),  # China + china merged
            ("dog", "noun", "noun.animal;noun.food", False),
            ("domestic dog", "noun", "noun.animal", False),
            ("entity", "noun", "noun.Tops", False),
            ("hot dog", "noun", "noun.food", False),
            ("red", "noun", "noun.attribute", False),
            *[(f"w{i}", "noun", "noun.person", False) for i in (0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9)],
            ("able", "adj", "adj.all", False),
            ("abounding", "adj", "adj.all", False),
            ("canine", "adj", "adj.pert", False),
            ("galore", "adj", "adj.all", False),
            ("out of reach", "adj", "adj.all", False),
            ("outback", "adj", "adj.all", False),
            ("Red", "adj", "adj.all", True),  # only an upper-case variant; 'red' is a noun
            ("remote", "adj", "adj.all;adj.ppl", False),
        ],
        columns=list(COLUMNS),
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert table["is_also_noun"].dtype == bool


def test_write_is_reproducible_and_round_trips(tmp_path):
    table = build_lemma_table(write_dict(tmp_path))
    a = write_lemma_table(table, tmp_path / "a")
    b = write_lemma_table(table, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).decode().splitlines()[0] == "lemma\tpos\tlexnames\tis_also_noun"
    back = load_corpus(a)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back["is_also_noun"].tolist() == table["is_also_noun"].tolist()


def test_cli_build(tmp_path, capsys):
    d = write_dict(tmp_path)
    assert wordnet._main(["build", "--from", str(d), "--out", str(tmp_path / "out")]) == 0
    assert "18 nouns, 8 adjectives" in capsys.readouterr().out
    assert len(load_corpus(tmp_path / "out" / "lemmas.tsv.gz")) == 26


@pytest.mark.parametrize(
    "line, message",
    [
        ("00001740 03 x 01 entity 0 000 | bad type", r"line 2: synset type 'x' is not a noun type"),
        ("00001740 29 n 01 run 0 000 | a verb file", r"line 2: lex_filenum 29 is not a noun lexicographer file"),
        ("00001740 03 n 03 entity 0 000 | too few", r"line 2: w_cnt=3 but the line has too few words"),
        ("garbage", r"line 2: expected 'offset lex_filenum ss_type w_cnt"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path, line, message):
    d = write_dict(tmp_path, nouns=[line])
    with pytest.raises(WordNetFormatError, match=message) as info:
        list(parse_data_file(d / "data.noun"))
    assert str(d / "data.noun") in str(info.value)


def test_missing_data_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"WordNet data file not found: .*data\.noun"):
        build_lemma_table(tmp_path)


# ----------------------------------------------------------------- the shipped table


def test_shipped_table_columns_counts_and_known_words():
    table = load_corpus()
    assert list(table.columns) == list(COLUMNS)
    counts = table["pos"].value_counts().to_dict()
    # equal to the line counts of WordNet 3.0's index.noun / index.adj (minus the licence header)
    assert counts == {"noun": 117_798, "adj": 21_479}
    assert counts["noun"] > 80_000 and counts["adj"] > 15_000
    dog = table[(table["lemma"] == "dog") & (table["pos"] == "noun")]
    assert len(dog) == 1
    assert "noun.animal" in dog["lexnames"].iloc[0].split(";")
    assert (table["lemma"] == "hot dog").any() and not table["lemma"].str.contains("_").any()
    assert not table["lemma"].str.contains(r"\((?:a|p|ip)\)$").any()
    red_adj = table[(table["lemma"] == "red") & (table["pos"] == "adj")]
    assert red_adj["is_also_noun"].tolist() == [True]
    assert not table.loc[table["pos"] == "noun", "is_also_noun"].any()
    assert not (table["pos"] + table["lemma"].str.casefold()).duplicated().any()


def test_load_corpus_returns_independent_copies():
    a = load_corpus()
    a.loc[0, "lemma"] = "changed"
    assert load_corpus().loc[0, "lemma"] != "changed"


def test_check_corpus_shipped_and_licence():
    assert check_corpus() == {"noun": 117_798, "adj": 21_479}
    licence = (wordnet.corpus_path().parent / "LICENSE").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University." in licence


def test_check_corpus_rejects_a_small_table(tmp_path):
    table = build_lemma_table(write_dict(tmp_path))
    path = write_lemma_table(table, tmp_path / "small")
    (tmp_path / "small" / "LICENSE").write_text("licence")
    with pytest.raises(CorpusError, match=r"only 18 nouns and 8 adjectives .*python -m ants.wordnet build"):
        check_corpus(path)


def test_check_corpus_missing_file(tmp_path):
    with pytest.raises(CorpusError, match=r"WordNet lemma table not found: .*nothing\.tsv\.gz"):
        check_corpus(tmp_path / "nothing.tsv.gz")


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.noun").is_file(), reason="WordNet database files not installed (bash tests/setup/wordnet.sh)"
)
def test_shipped_table_is_the_build_of_the_installed_wordnet(tmp_path):
    out = write_lemma_table(build_lemma_table("/usr/share/wordnet"), tmp_path)
    assert out.read_bytes() == wordnet.corpus_path().read_bytes()


@pytest.mark.parametrize(("excluded", "drop"), [((), True), ((), False), (("noun.person", "adj.pert"), True),
                                                (("noun.shape",), False)])
def test_candidate_pool_sizes_without_pandas_equal_negminings_pools(excluded, drop):
    """The config check's pool sizes (read without pandas) are NegMining's step 1 before the ID
    names: the pools of ants.mining.candidate_pools for a name that is no lemma."""
    from ants.mining import candidate_pools
    from ants.wordnet import candidate_pool_sizes, load_corpus

    pools = candidate_pools(load_corpus(), ["no such lemma"], exclude_lexnames=excluded,
                            drop_adjectives_that_are_nouns=drop)
    assert candidate_pool_sizes(exclude_lexnames=excluded, drop_adjectives_that_are_nouns=drop) == {
        "noun": len(pools.nouns), "adj": len(pools.adjectives)}
