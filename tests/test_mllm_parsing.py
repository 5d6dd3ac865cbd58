"""Prompts per model family and the parsing of MLLM answers (expected values written by hand)."""

import pytest

from ants.mllm.base import Query
from ants.mllm.parsing import (
    normalise_sentences,
    parse_answer,
    parse_ens_answer,
    parse_numbered_list,
    parse_vsnl_answer,
)
from ants.mllm.prompts import Prompting, generation_settings, prompt_for

# -- prompts ----------------------------------------------------------------------------------


def test_prompts_are_the_method_table():
    ens = Query("ens", "great white shark", image="x.png")
    vsnl = Query("vsnl", "tench")
    assert prompt_for(ens, "llava") == (
        "Describe this image in fewer than eight words. Do not include the class name great white shark."
    )
    assert prompt_for(ens, "qwen2vl") == "Describe this image in fewer than eight words. Answer:"
    assert prompt_for(vsnl, "llava") == (
        "Give five different class names that share visual features with tench, excluding tench. "
        "Put each numbered class on a separate line."
    )
    assert prompt_for(vsnl, "qwen2vl") == (
        "Suggest five different class names that share visual features with tench. "
        "Put each numbered class on a separate line."
    )


def test_generation_settings_per_family():
    assert generation_settings("ens", "llava") == {"max_new_tokens": 30, "image_size": None}
    assert generation_settings("ens", "qwen2vl") == {"max_new_tokens": 10, "image_size": [56, 56]}
    assert generation_settings("vsnl", "llava") == {
        "max_new_tokens": 100,
        "blank_image_size": [28, 28],
    }
    assert generation_settings("vsnl", "qwen2vl") == {
        "max_new_tokens": 50,
        "blank_image_size": [28, 28],
    }
    # overrides apply to a copy: the family defaults stay untouched
    assert (
        generation_settings("ens", "llava", {"ens": {"max_new_tokens": 8}})["max_new_tokens"] == 8
    )
    assert generation_settings("ens", "llava")["max_new_tokens"] == 30
    assert (
        generation_settings("vsnl", "llava", {"vsnl": {"blank_image_size": None}})[
            "blank_image_size"
        ]
        is None
    )


def test_prompt_overrides_and_braces_in_class_names():
    q = Query("vsnl", "a {weird} name")
    assert prompt_for(q, "llava", {"vsnl": "Similar to {c}?"}) == "Similar to a {weird} name?"
    p = Prompting.from_config({"family": "qwen2vl", "prompts": {"ens": "Say what {c} is not."}})
    assert p.prompt(Query("ens", "tench", image="i.png")) == "Say what tench is not."
    assert p.settings("ens")["image_size"] == [56, 56]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: prompt_for(Query("vsnl", "x"), "gpt"),
            r"unknown MLLM prompt family 'gpt'; valid families: llava, qwen2vl",
        ),
        (
            lambda: prompt_for(Query("vsnl", "x"), "llava", {"vsnl": "Like {class}"}),
            r"unknown placeholder \{class\}",
        ),
        (
            lambda: prompt_for(Query("vsnl", "x"), "llava", {"vsnl": "Name five."}),
            r"prompts.vsnl: the template must contain \{c\}",
        ),
        (
            lambda: prompt_for(Query("vsnl", "x"), "llava", {"ensx": "a"}),
            r"prompts: unknown query kind 'ensx'",
        ),
        (
            lambda: generation_settings("ens", "llava", {"ens": {"temperature": 0.7}}),
            r"generation.ens: unknown setting 'temperature'; valid settings: max_new_tokens, image_size",
        ),
        (
            lambda: generation_settings("ens", "llava", {"ens": {"max_new_tokens": 0}}),
            r"generation.ens.max_new_tokens: expected a positive int, got 0",
        ),
        (
            lambda: generation_settings("ens", "llava", {"ens": {"image_size": [56]}}),
            r"generation.ens.image_size: expected null or \[width, height\]",
        ),
        (
            lambda: Prompting(family="llava", prompts={"ens": ""}),
            r"prompts.ens: a prompt template must be a non-empty string",
        ),
    ],
)
def test_prompt_errors_name_the_bad_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- normalisation ----------------------------------------------------------------------------


def test_normalise_sentences_by_hand():
    texts = [
        "  A red car parked on the street. ",
        "a red car parked on the street",  # duplicate up to case and the dot
        "A  dog\n running\tfast.",
        "",
        "   ",
        None,
        ".",
        "Ellipsis...",
        "No dot",
    ]
    assert normalise_sentences(texts) == [
        "A red car parked on the street",
        "A dog running fast",
        "Ellipsis..",  # only ONE trailing dot is dropped
        "No dot",
    ]


def test_normalise_keeps_first_spelling():
    assert normalise_sentences(["Blue Sky", "blue sky.", "BLUE SKY"]) == ["Blue Sky"]


# -- ENS answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A small boat on a calm lake.", ("A small boat on a calm lake",)),
        ("  Snowy mountain peak at sunset  ", ("Snowy mountain peak at sunset",)),
        ("Colorful fabric\nwith stripes.", ("Colorful fabric with stripes",)),  # one sentence
        ("A close-up of a textured surface.", ("A close-up of a textured surface",)),
    ],
)
def test_parse_ens_ok(raw, expected):
    a = parse_ens_answer(raw, "tench")
    assert a.status == "ok" and a.negatives == expected and a.raw_text == raw and a.reason == ""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "the answer is empty"),
        ("   \n ", "the answer is empty"),
        (None, "the answer is empty"),
        (" . ", "the answer is empty"),
    ],
)
def test_parse_ens_empty(raw, reason):
    a = parse_ens_answer(raw, "tench")
    assert (a.status, a.negatives, a.reason) == ("empty", (), reason)


def test_parse_ens_only_the_class_name_is_empty():
    a = parse_ens_answer("Tench.", "tench")
    assert a.status == "empty" and a.negatives == ()
    assert a.reason == "the answer is only the ID class name 'tench'"
    # a sentence that merely mentions the class is kept (as the authors do)
    assert parse_ens_answer("A tench in a net.", "tench").negatives == ("A tench in a net",)


# -- VSNL answers -----------------------------------------------------------------------------

LLAVA_STYLE = "1. Leopard\n2. Cheetah\n3. Jaguar\n4. Lynx\n5. Ocelot"
QWEN_STYLE = "1. Leopard\n2. Cheetah\n3. Jaguar\n4. Lynx\n5."  # cut by the 50-token budget
CHATTY = (
    "Sure! Here are five classes that look like a snow leopard:\n\n"
    "1. **Leopard**: similar rosettes on the coat\n"
    "2. **Cheetah** - spotted fur\n"
    "3. Clouded leopard (Neofelis nebulosa)\n"
    "4. Lynx\n"
    "5. Snow leopard\n"
    "6. Ocelot\n\n"
    "These animals share spotted coats."
)


@pytest.mark.parametrize(
    ("raw", "class_name", "expected"),
    [
        (LLAVA_STYLE, "snow leopard", ["Leopard", "Cheetah", "Jaguar", "Lynx", "Ocelot"]),
        (QWEN_STYLE, "snow leopard", ["Leopard", "Cheetah", "Jaguar", "Lynx"]),
        # the queried class is dropped, so the 6th item comes in; explanations are cut
        (CHATTY, "Snow Leopard", ["Leopard", "Cheetah", "Clouded leopard", "Lynx", "Ocelot"]),
        ("1) goldfish\n2) carp\n3) koi", "tench", ["goldfish", "carp", "koi"]),
        ("1 - goldfish\n2 - carp\n3 – koi", "tench", ["goldfish", "carp", "koi"]),
        (
            "- 1. goldfish\n* 2. carp\n**3.** koi\n4: pike",
            "tench",
            ["goldfish", "carp", "koi", "pike"],
        ),
        ("1. Goldfish\n2. goldfish.\n3. GOLDFISH\n4. carp,", "tench", ["Goldfish", "carp"]),
        ("1. goldfish 2. carp 3. koi", "tench", ["goldfish", "carp", "koi"]),  # on one line
        ("   1.   wooden   spoon  \n\n  2.ladle", "tench", ["wooden spoon", "ladle"]),
        ("1. Tench\n2. tench\n3. bream", "tench", ["bream"]),
    ],
)
def test_parse_numbered_list(raw, class_name, expected):
    assert parse_numbered_list(raw, class_name=class_name) == expected
    a = parse_vsnl_answer(raw, class_name)
    assert a.status == "ok" and list(a.negatives) == expected


def test_parse_numbered_list_keeps_at_most_max_items():
    raw = "\n".join(f"{i}. name{i}" for i in range(1, 9))
    assert parse_numbered_list(raw) == ["name1", "name2", "name3", "name4", "name5"]
    assert parse_numbered_list(raw, max_items=2) == ["name1", "name2"]
    with pytest.raises(ValueError, match="max_items must be >= 1, got 0"):
        parse_numbered_list(raw, max_items=0)


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        ("", "empty", "the answer is empty"),
        (
            "Leopard, cheetah and jaguar.",
            "unparsable",
            "no numbered line like '1. name' in the answer",
        ),
        ("I cannot help with that.", "unparsable", "no numbered line like '1. name' in the answer"),
        (
            "1. tench\n2. Tench.",
            "empty",
            "no class name left after removing the queried class 'tench' and blanks",
        ),
    ],
)
def test_parse_vsnl_statuses(raw, status, reason):
    a = parse_vsnl_answer(raw, "tench")
    assert (a.status, a.negatives, a.reason) == (status, (), reason)


def test_parse_answer_dispatch():
    assert parse_answer("ens", "A boat.", "tench").negatives == ("A boat",)
    assert parse_answer("vsnl", "1. carp", "tench").negatives == ("carp",)
    with pytest.raises(ValueError, match="unknown query kind 'x'; valid kinds: ens, vsnl"):
        parse_answer("x", "", "tench")
