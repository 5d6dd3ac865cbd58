"""ID label sets: the built-in ImageNet-1k names and class-name files."""

from __future__ import annotations

import pytest

from ants.labels import imagenet_classnames, load_label_set, read_classnames


def test_imagenet_classnames():
    names = imagenet_classnames()
    assert isinstance(names, list) and len(names) == 1000
    assert names[:3] == ["tench", "goldfish", "great white shark"]
    assert names[999] == "toilet paper"
    # open_clip's list holds two exact duplicates; the built-in set keeps them (index = class id)
    assert names[657] == names[744] == "missile"
    assert names[836] == names[837] == "sunglasses"
    names.append("x")
    assert len(imagenet_classnames()) == 1000  # a fresh list each call


def test_load_label_set_builtin_and_path(tmp_path):
    assert load_label_set("imagenet1k") == imagenet_classnames()
    f = tmp_path / "classes.txt"
    f.write_text("cat\ndog\n")
    assert load_label_set(str(f)) == ["cat", "dog"]
    assert load_label_set(f) == ["cat", "dog"]


def test_load_label_set_unknown():
    with pytest.raises(ValueError, match=r"unknown label set 'imagenet': not a built-in label set "
                       r"\(cub200, food101, imagenet1k, oxford_pets, stanford_cars\)"):
        load_label_set("imagenet")


@pytest.mark.parametrize(("name", "count", "first", "last", "probe"), [
    ("cub200", 200, "Black footed Albatross", "Common Yellowthroat", (21, "Chuck will Widow")),
    ("stanford_cars", 196, "AM General Hummer SUV 2000", "smart fortwo Convertible 2012",
     (38, "Bentley Continental Supersports Conv. Convertible 2012")),
    ("food101", 101, "apple pie", "waffles", (55, "hot dog")),
    ("oxford_pets", 37, "Abyssinian", "yorkshire terrier", (12, "american bulldog")),
])
def test_fine_grained_label_sets(name, count, first, last, probe):
    names = load_label_set(name)
    assert len(names) == count == len({n.casefold() for n in names})
    assert names[0] == first and names[-1] == last
    assert names[probe[0]] == probe[1]
    assert not any(n.startswith("#") for n in names)  # the source headers are comments


def test_fine_grained_orders_match_sorted_folder_names():
    """A class_folders layout indexes classes by sorted folder name: the shipped orders agree."""
    # Food-101 folders are the names with '_' for ' '; CUB folders are 'NNN.Name'
    food = load_label_set("food101")
    folders = sorted(n.replace(" ", "_") for n in food)
    assert [f.replace("_", " ") for f in folders] == food
    pets = load_label_set("oxford_pets")
    assert sorted(n.replace(" ", "_") for n in pets) == [n.replace(" ", "_") for n in pets]


def test_read_classnames_strips_and_skips_comments(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\ufeff# my classes\n  golden retriever \n\n   \n  # indented comment\nhot dog\r\nsea lion\n")
    assert read_classnames(f) == ["golden retriever", "hot dog", "sea lion"]


def test_read_classnames_duplicates_name_lines(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("cat\n# comment\ndog\n\nCat \n")
    with pytest.raises(ValueError, match=r"c\.txt: duplicate class name 'Cat' on lines 1 and 5"):
        read_classnames(f)


def test_read_classnames_empty_file(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match=r"empty\.txt: no class names found"):
        read_classnames(f)
    f.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt: no class names found"):
        read_classnames(f)


def test_read_classnames_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"class-name file not found: .*nope\.txt"):
        read_classnames(tmp_path / "nope.txt")
