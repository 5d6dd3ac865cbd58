"""Prompts per model family and the parsing of MLLM answers (expected values written by hand)."""

import pytest

from ants.mllm.base import Query
from ants.mllm.parsing import (
    MAX_NEGATIVE_CHARS,
    PARSE_STYLES,
    ens_update_sentences,
    negative_chars_limit,
    normalise_sentences,
    parse_answer,
    parse_ens_answer,
    parse_numbered_list,
    parse_vsnl_answer,
    vsnl_bank_labels,
    vsnl_class_labels,
)
from ants.mllm.prompts import Prompting, generation_settings, prompt_for, validate_prompting

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
            r"mllm.prompts.ensx: unknown query kind 'ensx'; valid kinds: ens, vsnl",
        ),
        (
            lambda: generation_settings("ens", "llava", {"ens": {"top_p": 0.7}}),
            r"mllm.generation.ens.top_p: unknown setting 'top_p'; "
            r"valid settings: max_new_tokens, image_size, temperature",
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


# -- parsing styles: the authors' labels.py (docs/METHOD.md section 6) next to the lenient parser --


def test_parse_styles_and_unknown_style():
    assert PARSE_STYLES == ("lenient", "authors")
    for call in (
        lambda: normalise_sentences(["a"], style="strict"),
        lambda: parse_answer("vsnl", "1. a", "x", style="strict"),
    ):
        with pytest.raises(
            ValueError,
            match=r"unknown answer parsing style 'strict'; valid styles: lenient, authors",
        ):
            call()


def test_normalise_authors_strips_every_trailing_dot():
    texts = ["Blue sky..", "  blue  sky . ", "Ellipsis...", "...", "", None, "A\ncar."]
    assert normalise_sentences(texts, style="authors") == ["Blue sky", "Ellipsis", "A car"]
    # the lenient style drops one dot only, so "Blue sky." and "blue sky" differ
    assert normalise_sentences(texts) == ["Blue sky.", "blue sky", "Ellipsis..", "..", "A car"]


@pytest.mark.parametrize(
    ("raw", "authors", "lenient"),
    [
        # the examples of docs/METHOD.md, both styles
        ("3 - Jaguar", [], ["Jaguar"]),
        ("1. Snow leopard: spotted", ["Snow leopard: spotted"], ["Snow leopard"]),
        ("1. a 2. b 3. c", ["a 2. b 3. c"], ["a", "b", "c"]),
        ("- 1. lynx", [], ["lynx"]),
        ("1. Blue sky..", ["Blue sky"], ["Blue sky."]),
        # a number immediately followed by . ) : or - ; the whole rest is the label
        (
            "1) goldfish\n2: carp\n3-koi\n4 . pike\n**5.** perch",
            ["goldfish", "carp", "koi"],
            ["goldfish", "carp", "koi", "pike", "perch"],
        ),
        # no de-duplication of the queried class in the authors' style; at most 5 after de-dup
        (
            "1. Tench\n2. carp\n3. CARP.\n4. koi\n5. pike\n6. perch\n7. bream",
            ["Tench", "carp", "koi", "pike", "perch"],
            ["carp", "koi", "pike", "perch", "bream"],
        ),
        ("  12.   wooden   spoon  ", ["wooden spoon"], ["wooden spoon"]),
    ],
)
def test_vsnl_authors_vs_lenient(raw, authors, lenient):
    assert parse_numbered_list(raw, class_name="tench", style="authors") == authors
    assert parse_numbered_list(raw, class_name="tench") == lenient
    a = parse_answer("vsnl", raw, "tench", style="authors")
    assert list(a.negatives) == authors
    assert a.status == ("ok" if authors else "unparsable")


def test_authors_style_statuses():
    assert parse_vsnl_answer("Leopard, lynx.", "cat", style="authors").reason == (
        "no numbered line (a number followed directly by . ) : or -, like '1. name') in the answer"
    )
    a = parse_vsnl_answer("1. ...\n2. .", "cat", style="authors")
    assert (a.status, a.negatives, a.reason) == (
        "empty",
        (),
        "no class name left after removing blanks",
    )
    # the queried class is kept (their code does not drop it), also as a whole ENS answer
    assert parse_vsnl_answer("1. cat\n2. Cat", "cat", style="authors").negatives == ("cat",)
    assert parse_ens_answer("Tench..", "tench", style="authors").negatives == ("Tench",)
    assert parse_ens_answer("Tench.", "tench").status == "empty"
    assert parse_ens_answer("  ..  ", "tench", style="authors").reason == "the answer is empty"


# -- length limit on parsed negatives -----------------------------------------------------------


def test_long_vsnl_class_name_is_rejected_with_a_reason():
    assert MAX_NEGATIVE_CHARS == 200
    monster = "x" * 5000
    raw = f"1. {monster}\n2. lynx\n3. puma"
    a = parse_vsnl_answer(raw, "cat")
    assert a.status == "ok" and a.negatives == ("lynx", "puma")
    assert a.reason == (
        "dropped 1 class name longer than 200 characters (max_negative_chars; the longest has 5000)"
    )
    assert a.raw_text == raw  # the raw text is kept intact
    only = parse_vsnl_answer(f"1. {monster}\n2. {monster}y", "cat")
    assert only.status == "empty" and only.negatives == ()
    assert only.reason == (
        "no class name left: dropped 2 class names longer than 200 characters "
        "(max_negative_chars; the longest has 5001)"
    )
    # the limit is applied before the max_items cut, so the 6th name comes in
    six = "\n".join([f"1. {monster}"] + [f"{i}. n{i}" for i in range(2, 8)])
    assert parse_numbered_list(six, class_name="cat") == ["n2", "n3", "n4", "n5", "n6"]
    # a limit exactly at the length keeps it; None disables the limit
    assert parse_numbered_list("1. abcde", max_negative_chars=5) == ["abcde"]
    assert parse_numbered_list("1. abcdef", max_negative_chars=5) == []
    assert parse_numbered_list(f"1. {monster}", max_negative_chars=None) == [monster]
    with pytest.raises(ValueError, match="max_negative_chars: expected a positive int or None"):
        parse_answer("ens", "a", "b", max_negative_chars=0)


def test_long_ens_sentence_is_rejected():
    a = parse_ens_answer("word " * 100, "tench")
    assert a.status == "empty" and a.negatives == ()
    assert a.reason == (
        "dropped 1 sentence longer than 200 characters (max_negative_chars; the longest has 499)"
    )
    assert parse_ens_answer("word " * 100, "tench", max_negative_chars=499).status == "ok"


# a long ENS sentence (issue 14 saw one of 229 characters): the authors' code keeps it, lenient
# drops it
LONG_SENTENCE = (
    "A sprawling mountain landscape at dawn with a frozen lake in the foreground, pine forests "
    "climbing the slopes, a small wooden cabin with smoke rising from its chimney and a flock "
    "of small birds crossing the pale pink sky above."
)


def test_authors_style_has_no_length_limit():
    assert len(LONG_SENTENCE) == 227
    authors = parse_ens_answer(LONG_SENTENCE, "tench", style="authors")
    assert (authors.status, authors.negatives, authors.reason) == (
        "ok",
        (LONG_SENTENCE[:-1],),  # every trailing dot stripped, nothing else
        "",
    )
    assert parse_ens_answer(LONG_SENTENCE, "tench").status == "empty"  # lenient: 200
    monster = "x" * 5000
    raw = f"1. {monster}\n2. lynx\n3. puma"
    vsnl = parse_vsnl_answer(raw, "cat", style="authors")
    assert (vsnl.negatives, vsnl.reason) == ((monster, "lynx", "puma"), "")
    assert parse_numbered_list(raw, style="authors") == [monster, "lynx", "puma"]
    # None (no limit) is accepted; a number is refused, by name, before any parsing
    assert (
        parse_answer("ens", LONG_SENTENCE, "t", style="authors", max_negative_chars=None).status
        == "ok"
    )
    for call in (
        lambda: parse_answer("ens", "a", "t", style="authors", max_negative_chars=200),
        lambda: parse_numbered_list("1. a", style="authors", max_negative_chars=50),
    ):
        with pytest.raises(
            ValueError,
            match=r"max_negative_chars=\d+ does not apply to the 'authors' answer parser: the "
            r"authors' code keeps negatives of every length; leave it unset or None",
        ):
            call()
    assert negative_chars_limit("lenient") == 200 and negative_chars_limit("authors") is None
    assert (
        negative_chars_limit("lenient", 30) == 30 and negative_chars_limit("lenient", None) is None
    )


# -- what the method does with parsed negatives: normalised ONCE for ENS, as the authors ----


@pytest.mark.parametrize(
    ("raw", "authors"),
    [
        # issue 14's examples: the authors normalise an ENS answer once
        ("A snowy mountain peak. .", "A snowy mountain peak."),
        (" . . . ", ". ."),
        ("Blue sky..", "Blue sky"),
        ("  A  red\ncar. ", "A red car"),
    ],
)
def test_ens_sentences_are_normalised_once(raw, authors):
    got = parse_ens_answer(raw, "tench", style="authors")
    assert got.negatives == (authors,)
    assert ens_update_sentences(got.negatives) == [authors]  # the update does not clean again
    # the authors' normalize_labels, applied once to the raw answer (METHOD.md section 6)
    assert authors == " ".join(raw.strip().rstrip(".").split())


def test_ens_update_deduplicates_without_cleaning():
    # normalising the parsed sentences again would merge the first two (45 vs 44 in issue 14)
    answers = ["A snowy mountain peak. .", "A snowy mountain peak", "a SNOWY mountain peak.  ."]
    parsed = [s for raw in answers for s in parse_ens_answer(raw, "x", style="authors").negatives]
    assert parsed == ["A snowy mountain peak.", "A snowy mountain peak", "a SNOWY mountain peak."]
    assert ens_update_sentences(parsed) == ["A snowy mountain peak.", "A snowy mountain peak"]
    assert normalise_sentences(parsed, style="authors") == ["A snowy mountain peak"]  # the old way
    assert ens_update_sentences(["", "b", "B"]) == ["b"]


def test_vsnl_labels_are_normalised_per_class_and_over_the_bank_as_the_authors():
    raw = "1. Snow leopard. . .\n2. snow leopard. .\n3. Lynx"
    parsed = parse_vsnl_answer(raw, "cat", style="authors").negatives
    assert parsed == ("Snow leopard. .", "snow leopard.", "Lynx")  # parse_numbered_labels
    per_class = vsnl_class_labels(parsed, "authors", 5)  # the cache update normalises again
    assert per_class == ["Snow leopard.", "snow leopard", "Lynx"]
    assert vsnl_class_labels(parsed, "authors", 2) == ["Snow leopard.", "snow leopard"]
    assert vsnl_bank_labels(per_class, "authors") == ["Snow leopard", "Lynx"]  # and the bank


# -- validate_prompting: every problem, one line each, naming its key -------------------------


def test_validate_prompting_accepts_the_defaults_and_valid_overrides():
    assert validate_prompting("llava", {}, {}) == []
    assert validate_prompting("qwen2vl", None, None) == []
    ok = validate_prompting(
        "llava",
        {"ens": "Describe it without {c}.", "vsnl": "Like {c}?"},
        {
            "ens": {"max_new_tokens": 8, "temperature": 0, "image_size": [56, 56]},
            "vsnl": {"blank_image_size": None},
        },
    )
    assert ok == []
    # temperature 0 is accepted and dropped: it changes no cache key
    assert generation_settings("ens", "llava", {"ens": {"temperature": 0.0}}) == {
        "max_new_tokens": 30,
        "image_size": None,
    }


@pytest.mark.parametrize(
    ("family", "prompts", "generation", "expected"),
    [
        (
            "llava",
            {"ens": "Describe {x}"},
            {},
            "mllm.prompts.ens: unknown placeholder {x} in 'Describe {x}'; "
            "valid placeholders: {c} (the class name)",
        ),
        (
            "llava",
            {"vsnl": "Five classes."},
            {},
            "mllm.prompts.vsnl: the template must contain {c} (the class name), got 'Five classes.'",
        ),
        (
            "llava",
            {"ens": 3},
            {},
            "mllm.prompts.ens: a prompt template must be a non-empty string, got 3",
        ),
        (
            "llava",
            {"nes": "a"},
            {},
            "mllm.prompts.nes: unknown query kind 'nes'; valid kinds: ens, vsnl",
        ),
        (
            "llava",
            {},
            {"ens": {"max_tokens": 5}},
            "mllm.generation.ens.max_tokens: unknown setting 'max_tokens'; "
            "valid settings: max_new_tokens, image_size, temperature",
        ),
        (
            "llava",
            {},
            {"vsnl": {"image_size": [56, 56]}},
            "mllm.generation.vsnl.image_size: unknown setting 'image_size'; "
            "valid settings: max_new_tokens, blank_image_size, temperature",
        ),
        (
            "llava",
            {},
            {"ens": {"max_new_tokens": 32.0}},
            "mllm.generation.ens.max_new_tokens: expected a positive int, got 32.0 "
            "(32.0 is not a whole number; write 32)",
        ),
        (
            "llava",
            {},
            {"ens": {"max_new_tokens": 2.5}},
            "mllm.generation.ens.max_new_tokens: expected a positive int, got 2.5 (not a whole number)",
        ),
        (
            "llava",
            {},
            {"vsnl": {"max_new_tokens": -3}},
            "mllm.generation.vsnl.max_new_tokens: expected a positive int, got -3 (not positive)",
        ),
        (
            "llava",
            {},
            {"ens": {"max_new_tokens": True}},
            "mllm.generation.ens.max_new_tokens: expected a positive int, got True",
        ),
        (
            "llava",
            {},
            {"ens": {"temperature": float("nan")}},
            "mllm.generation.ens.temperature: expected a finite number, got nan; "
            "generation is greedy: use 0 or leave it out",
        ),
        (
            "llava",
            {},
            {"vsnl": {"temperature": float("inf")}},
            "mllm.generation.vsnl.temperature: expected a finite number, got inf; "
            "generation is greedy: use 0 or leave it out",
        ),
        (
            "llava",
            {},
            {"ens": {"temperature": 0.7}},
            "mllm.generation.ens.temperature: generation is always greedy (answers are cached as "
            "deterministic); only 0 is allowed (or leave it out), got 0.7",
        ),
        (
            "llava",
            {},
            {"ens": {"image_size": [56, 0]}},
            "mllm.generation.ens.image_size: expected null or [width, height] of positive ints, "
            "got [56, 0]",
        ),
        (
            "llava",
            {},
            {"ens": 5},
            "mllm.generation.ens: expected a mapping of settings, got 5",
        ),
        (
            "gpt",
            {},
            {},
            "mllm.family: unknown MLLM prompt family 'gpt'; valid families: llava, qwen2vl",
        ),
        (
            "llava",
            "Describe it",
            {},
            "mllm.prompts: expected a mapping of query kind -> template, got 'Describe it'",
        ),
    ],
)
def test_validate_prompting_one_line_per_problem(family, prompts, generation, expected):
    assert validate_prompting(family, prompts, generation) == [expected]
    with pytest.raises(ValueError) as err:
        Prompting.from_config({"family": family, "prompts": prompts, "generation": generation})
    assert str(err.value) == expected


def test_validate_prompting_reports_every_problem():
    problems = validate_prompting(
        "qwen2vl",
        {"ens": "Describe {x} and {y}", "vsnl": "Five."},
        {"ens": {"max_new_tokens": 0, "top_k": 1}, "vsnl": {"temperature": float("nan")}},
    )
    assert [p.split(":")[0] for p in problems] == [
        "mllm.prompts.ens",
        "mllm.prompts.ens",
        "mllm.generation.ens.top_k",
        "mllm.generation.ens.max_new_tokens",
        "mllm.prompts.vsnl",
        "mllm.generation.vsnl.temperature",
    ]
    with pytest.raises(ValueError, match=r"unknown placeholder \{x\}.* \(and 5 more problems\)$"):
        Prompting(
            "qwen2vl",
            {"ens": "Describe {x} and {y}", "vsnl": "Five."},
            {"ens": {"max_new_tokens": 0, "top_k": 1}, "vsnl": {"temperature": float("nan")}},
        )
    # an unknown family still gets its overrides checked (no defaults to merge with)
    assert validate_prompting("gpt", {}, {"ens": {"max_new_tokens": "8"}})[1] == (
        "mllm.generation.ens.max_new_tokens: expected a positive int, got '8'"
    )
