"""Published negative lists as input (mining.source: file) and `ants negatives compare`."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ants.negative_lists import (
    NegativeListError,
    compare_negative_sets,
    negative_labels_of,
    negatives_from_list,
    read_negative_list,
)

ROOT = Path(__file__).resolve().parents[2]

#: a file in NegLabel's published format (selected_neg_labels_in1k_10k.txt): nouns as
#: "the nice X", then adjectives as "This is a X photo", no index, no score
NEGLABEL_LINES = [
    "the nice tectonic plate",
    "the nice sanskrit",
    "the nice tench",  # equal to an ID class name: reported, kept
    "the nice gill net",
    "the nice sanskrit",  # a duplicate: reported, kept
    "This is a ungrammatical photo",
    "This is a spacious photo",
]
ID_NAMES = ["tench", "goldfish", "great white shark"]


def _encode(texts, template):
    rows = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(template.format(t).encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(16)
        rows.append(v / np.linalg.norm(v))
    return np.asarray(rows, np.float32)


def test_neglabels_published_format_is_read_with_each_entrys_template(tmp_path):
    path = tmp_path / "selected_neg_labels.txt"
    path.write_text("\n".join(NEGLABEL_LINES) + "\n\n")
    lst = read_negative_list(path)
    assert lst.format == "neglabel" and len(lst) == 7
    assert lst.labels[:2] == ["tectonic plate", "sanskrit"] and lst.labels[-1] == "spacious"
    assert lst.kinds == ["noun"] * 5 + ["adj"] * 2
    assert [t.format(x) for t, x in zip(lst.templates, lst.labels, strict=True)] == NEGLABEL_LINES
    report = lst.report(ID_NAMES)
    assert report["counts"] == {"noun": 5, "adj": 2}
    assert report["n_duplicates"] == 1 and report["duplicate_examples"][0]["lines"] == [2, 5]
    assert report["n_id_overlap"] == 1 and report["id_overlap_examples"] == ["tench"]
    assert report["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    mined = negatives_from_list(lst, ID_NAMES, _encode)
    # every entry encoded with the text of its line, in file order (the grouping depends on it)
    np.testing.assert_array_equal(
        mined.embeddings[0], _encode(["tectonic plate"], "the nice {}")[0]
    )
    np.testing.assert_array_equal(
        mined.embeddings[5], _encode(["ungrammatical"], "This is a {} photo")[0]
    )
    assert mined.labels == lst.labels and mined.kinds == lst.kinds
    ids = _encode(ID_NAMES, "the nice {}")  # the ID labels with the nouns' template
    cos = mined.embeddings @ ids.T
    np.testing.assert_allclose(mined.table["max_id_cos"], cos.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(
        mined.table["stat"], np.percentile(cos, 95, axis=1, method="inverted_cdf"), rtol=1e-6
    )
    assert mined.meta["source"] == "file" and mined.meta["templates"] == {
        "id": "the nice {}",
        "noun": "the nice {}",
        "adj": "This is a {} photo",
    }


def test_a_plain_list_is_nouns_with_the_papers_prompt(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("tectonic plate\n  sanskrit  \n\nspacious\n")
    lst = read_negative_list(path)
    assert lst.format == "plain" and lst.labels == ["tectonic plate", "sanskrit", "spacious"]
    assert set(lst.templates) == {"The nice {}."} and set(lst.kinds) == {"noun"}
    assert lst.lines == [1, 2, 4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no negative label in the file"),
        (
            "the nice cat\nplain label\n",
            r"1 line\(s\) are NegLabel prompts .* 1 are not \(lines 2\)",
        ),
        ("the nice cat\nThe nice dog.\n", "the nouns are written with 2 templates"),
    ],
)
def test_bad_lists_are_refused_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(NegativeListError, match=message) as err:
        read_negative_list(path)
    assert str(path) in str(err.value)
    with pytest.raises(FileNotFoundError, match="mining.file"):
        read_negative_list(tmp_path / "missing.txt")


def test_compare_two_sets(tmp_path, capsys):
    from ants.cli import main
    from ants.mining import MinedNegatives

    a = tmp_path / "a.txt"
    a.write_text("\n".join(NEGLABEL_LINES) + "\n")
    table = pd.DataFrame(
        {
            "label": ["Tectonic  Plate", "gill net", "cloud", "spacious", "sunny"],
            "kind": ["noun", "noun", "noun", "adj", "adj"],
            "stat": 0.0,
            "max_id_cos": 0.0,
        }
    )
    b = MinedNegatives(table, np.eye(5, 4, dtype=np.float32), {}).save(tmp_path / "b.parquet")
    result = compare_negative_sets(negative_labels_of(a), negative_labels_of(b))
    # A: 6 distinct (sanskrit twice); B: 5; common: tectonic plate (case, spaces), gill net, spacious
    assert (result["n_a"], result["n_b"], result["common"]) == (6, 5, 3)
    assert (result["only_a"], result["only_b"]) == (3, 2)
    assert result["jaccard"] == pytest.approx(3 / 8)
    assert result["per_kind"]["noun"] == {"n_a": 4, "n_b": 3, "common": 2}
    assert result["examples_only_a"] == ["sanskrit", "tench", "ungrammatical"]
    assert result["examples_only_b"] == ["cloud", "sunny"]
    assert main(["negatives", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "common: 3 (50.0% of A, 60.0% of B); Jaccard 0.375" in out
    assert "only in B (first): cloud, sunny" in out
    # a bad file: one line on stderr, exit 2
    bad = tmp_path / "bad.txt"
    bad.write_text("the nice cat\nplain\n")
    assert main(["negatives", "compare", str(bad), str(b)]) == 2
    assert "give one format for the whole file" in capsys.readouterr().err
    # the banks command still asks for its options
    assert main(["negatives"]) == 2
    assert "give --stream and --batch" in capsys.readouterr().err


def test_mining_source_file_through_the_config_and_the_stage(tmp_path):
    from ants import stages
    from ants.config import ConfigError, read_yaml, validate_params

    params = read_yaml(ROOT / "params.yaml")
    bad = copy.deepcopy(params)
    bad["mining"]["source"] = "file"
    with pytest.raises(ConfigError, match=r"mining\.file: required"):
        validate_params(bad, check_files=False)
    bad["mining"]["file"] = str(tmp_path / "nowhere.txt")
    with pytest.raises(
        ConfigError, match=r"mining\.file: '.*nowhere\.txt' not found, but mining\.source is 'file'"
    ):
        validate_params(bad, check_files=True)

    path = tmp_path / "neg.txt"
    path.write_text("\n".join(NEGLABEL_LINES) + "\n")
    names = tmp_path / "names.txt"
    names.write_text("\n".join(ID_NAMES) + "\n")
    mining = {**params["mining"], "source": "file", "file": str(path)}
    backbone = {"model": "tiny", "seed": 0, "overrides": {"text_cfg": {"context_length": 16}}}
    encoding = {
        "device": "cpu",
        "precision": "fp32",
        "image_batch_size": 4,
        "text_batch_size": 64,
        "num_workers": 0,
    }
    info = stages.embed_label_set(
        {"file": str(names)},
        backbone,
        encoding,
        mining,
        tmp_path / "t.parquet",
        tmp_path / "n.parquet",
        progress=False,
    )
    assert info["n_negatives"] == 7
    from ants.mining import MinedNegatives

    mined = MinedNegatives.load(tmp_path / "n.parquet")
    assert mined.labels == read_negative_list(path).labels
    assert mined.meta["source"] == "file" and mined.meta["file"] == str(path)
    assert mined.meta["n_duplicates"] == 1 and mined.meta["n_id_overlap"] == 1
