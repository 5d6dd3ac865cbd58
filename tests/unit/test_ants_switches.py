"""ANTS's switches are declared once, in the params schema: the config check of params.yaml and
AntsConfig accept and refuse exactly the same values (ants.methods.ants_switches)."""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path

import pytest

from ants.config import ConfigError, definition_checker, load_schema, read_yaml, validate_params
from ants.methods.ants_switches import (
    IN_SCORES,
    PRESETS,
    AntsConfig,
    ants_config,
    ants_static_scoring,
)
from ants.mllm.parsing import PARSE_STYLES

ROOT = Path(__file__).resolve().parents[2]
DEFS = load_schema()["$defs"]
SWITCHES = DEFS["ants_switches"]["properties"]
FIELDS = [f.name for f in fields(AntsConfig)]

#: Values of every kind and edge: bools, None, out-of-range and whole-valued floats, NaN,
#: strings that are and are not allowed somewhere, a list.
PROBES = [
    -1,
    0,
    1,
    2,
    40,
    10**6,
    0.0,
    0.08,
    0.5,
    1.0,
    1.5,
    -0.1,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "x",
    "code",
    "paper",
    "top_k",
    "top_fraction",
    "authors",
    "lenient",
    "ada",
    "far_only",
    "{}",
    "The nice {}.",
    "{} and {}",
    "no placeholder",
    [1],
]


def test_every_switch_is_declared_in_the_schema_and_nowhere_else():
    assert set(SWITCHES) - {"preset", "in_score"} == set(FIELDS) - {"in_score"}
    assert sorted(SWITCHES["preset"]["enum"]) == sorted(PRESETS)
    assert SWITCHES["answer_parser"]["enum"] == list(PARSE_STYLES)  # the parser's own list
    assert list(IN_SCORES) == DEFS["ants_output"]["enum"]
    check = definition_checker(DEFS["ants_switches"], "config")
    for preset, values in PRESETS.items():  # each preset's switches are valid settings
        assert (
            check({"preset": preset, **{k: v for k, v in values.items() if k != "in_score"}}) == []
        )
        assert AntsConfig.preset(preset).to_dict() == {**AntsConfig().to_dict(), **values}


def _section(switch, value):
    return {
        "method": "ants",
        "config": {"preset": "authors_code", switch: value},
        "in_score": {"far": "far_only", "near": "near_only"},
    }


@pytest.mark.parametrize("switch", sorted(set(FIELDS) - {"in_score"}))
def test_the_config_check_and_AntsConfig_refuse_the_same_values(switch):
    """Through the params schema's ``method`` definition (as params.yaml is checked) and
    through :class:`AntsConfig` (as a job builds it): every probe is refused by both or by
    neither, and a refusal names the switch in both."""
    check = definition_checker(DEFS["method"], "methods.ants_x")
    for value in PROBES:
        by_schema = check(_section(switch, value))
        try:
            ants_config({switch: value})
            by_config = None
        except ValueError as exc:
            by_config = str(exc)
        assert bool(by_schema) == (by_config is not None), (switch, value, by_schema, by_config)
        if by_schema:
            assert all(f"methods.ants_x.config.{switch}:" in p for p in by_schema), by_schema
            # the same sentences after the key path: one declaration, one wording
            key = f"methods.ants_x.config.{switch}:"
            assert by_config == "; ".join(
                p.replace(key, f"AntsConfig.{switch}:") for p in by_schema
            )


def test_in_score_is_one_of_the_outputs_in_both():
    check = definition_checker(DEFS["method"], "m")
    for value in ["ada", "far_only", "near_only", "sum", None, 1]:
        section = {"method": "ants", "config": {}, "in_score": {"far": value, "near": "ada"}}
        assert bool(check(section)) == (value not in IN_SCORES)
        if value in IN_SCORES:
            assert ants_config({"in_score": value}).in_score == value
        else:
            with pytest.raises(ValueError, match="AntsConfig.in_score: .* is not allowed"):
                ants_config({"in_score": value})


def test_a_template_with_two_placeholders_fails_the_config_check_naming_the_key():
    """Before one declaration, the schema let ``"{} and {}"`` through (it only asked for a
    ``{}``) and the job then failed building its AntsConfig: now params.yaml is refused."""
    params = read_yaml(ROOT / "params.yaml")
    ants = next(m for m, c in params["methods"].items() if c["method"] == "ants")
    bad = copy.deepcopy(params)
    bad["methods"][ants]["config"]["vsnl_template"] = "{} and {}"
    with pytest.raises(ConfigError) as err:
        validate_params(bad, check_files=False)
    assert (
        f"methods.{ants}.config.vsnl_template: '{{}} and {{}}' is not allowed; expected a format "
        f"string with exactly one '{{}}'"
    ) in str(err.value)
    ok = copy.deepcopy(params)
    ok["methods"][ants]["config"]["vsnl_template"] = "a photo of a {}, a kind of thing"
    validate_params(ok, check_files=False)


def test_numpy_values_are_checked_as_numbers():
    np = pytest.importorskip("numpy")
    cfg = ants_config({"near_top_k": np.int64(3), "eta": np.float32(0.25)})
    assert cfg.near_top_k == 3 and cfg.eta == pytest.approx(0.25)
    with pytest.raises(ValueError, match="AntsConfig.near_top_k: 0 is out of range"):
        ants_config({"near_top_k": np.int64(0)})


def test_the_static_pass_of_an_ants_method_follows_its_preset():
    assert ants_static_scoring({"config": {"preset": "paper"}}) == {
        "tau": 0.01,
        "group_size": 100,
        "seed": 0,
    }
    assert ants_static_scoring({"config": {"group_size": 7, "tau": 0.02, "grouping_seed": 3}}) == {
        "tau": 0.02,
        "group_size": 7,
        "seed": 3,
    }
