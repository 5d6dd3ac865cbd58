"""The MLLM prompts and generation settings of ANTS, per model family (docs/METHOD.md section 6,
"MLLM prompts").

Two families are built in:

* ``"llava"`` -- LLaVA-1.5 (the paper's MLLM, ``llava-hf/llava-1.5-7b-hf``);
* ``"qwen2vl"`` -- Qwen2-VL-Instruct (the authors' released scripts).

A prompt template holds the placeholder ``{c}`` for the class name (the predicted ID class for
ENS, the queried ID class for VSNL) and no other ``{...}`` field; it is filled by plain string
replacement, so class names with braces are safe. Templates can be overridden per query kind.

Generation is always greedy (no sampling). The settings of one query kind are a small dict:

* ``max_new_tokens`` (int > 0): the generation budget;
* ``image_size`` (``None`` or ``[width, height]``): ENS images are resized to this size
  (bilinear, as the authors do for Qwen2-VL: 56 x 56) before the backend's own processor;
* ``blank_image_size`` (``None`` or ``[width, height]``): VSNL queries are text-only; the
  authors still pass a black image of 28 x 28 pixels, which is the default here. ``None`` sends
  the prompt without any image.

* ``temperature``: accepted only as ``0`` (configs written for other tools say so) and then
  dropped; anything else is an error, since answers are cached as deterministic.

These settings are part of every cache key (:func:`ants.mllm.cache.cache_key`).

Validation is strict and complete: :func:`validate_prompting` returns one line per problem, each
starting with its key path (``mllm.prompts.ens: ...``, ``mllm.generation.ens.max_new_tokens:
...``); the config checker shows them all, and :class:`Prompting` raises the first.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ants.mllm.base import Query

FAMILIES = ("llava", "qwen2vl")
#: the query kinds with a prompt template (``mllm.prompts``)
KINDS = ("ens", "vsnl")
#: every query kind with generation settings: EOE's text-only questions (``eoe``) carry their
#: own prompt text (:attr:`ants.mllm.base.Query.prompt`)
ALL_KINDS = ("ens", "vsnl", "eoe")

PROMPTS: dict[str, dict[str, str]] = {
    "llava": {
        "ens": "Describe this image in fewer than eight words. Do not include the class name {c}.",
        "vsnl": (
            "Give five different class names that share visual features with {c}, excluding {c}. "
            "Put each numbered class on a separate line."
        ),
    },
    "qwen2vl": {
        "ens": "Describe this image in fewer than eight words. Answer:",
        "vsnl": (
            "Suggest five different class names that share visual features with {c}. "
            "Put each numbered class on a separate line."
        ),
    },
}

GENERATION: dict[str, dict[str, dict]] = {
    "llava": {
        "ens": {"max_new_tokens": 30, "image_size": None},
        "vsnl": {"max_new_tokens": 100, "blank_image_size": [28, 28]},
        "eoe": {"max_new_tokens": 1024, "blank_image_size": None},
    },
    "qwen2vl": {
        "ens": {"max_new_tokens": 10, "image_size": [56, 56]},
        "vsnl": {"max_new_tokens": 50, "blank_image_size": [28, 28]},
        "eoe": {"max_new_tokens": 1024, "blank_image_size": None},
    },
}

SETTING_KEYS = {
    "ens": ("max_new_tokens", "image_size", "temperature"),
    "vsnl": ("max_new_tokens", "blank_image_size", "temperature"),
    "eoe": ("max_new_tokens", "blank_image_size", "temperature"),
}
#: the only placeholder of a prompt template
PLACEHOLDERS = {"c": "the class name"}

_FIELD = re.compile(r"\{([^{}]*)\}")
_VALID_PLACEHOLDERS = ", ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items())


def _family_problem(family, prefix: str) -> list[str]:
    if isinstance(family, str) and family in FAMILIES:
        return []
    return [
        f"{prefix}.family: unknown MLLM prompt family {family!r}; valid families: {', '.join(FAMILIES)}"
    ]


def _kind_problems(mapping, key: str, kinds: tuple[str, ...] = KINDS) -> list[str]:
    return [
        f"{key}.{k}: unknown query kind {k!r}; valid kinds: {', '.join(kinds)}"
        for k in mapping
        if k not in kinds
    ]


def template_problems(template, kind: str, prefix: str = "mllm") -> list[str]:
    """Problems of one prompt template (empty list: valid).

    A template is a non-empty string whose only ``{...}`` field is ``{c}``; a VSNL template must
    contain ``{c}`` (the question is about that class).
    """
    key = f"{prefix}.prompts.{kind}"
    if not isinstance(template, str) or not template.strip():
        return [f"{key}: a prompt template must be a non-empty string, got {template!r}"]
    fields = set(_FIELD.findall(template))
    out = [
        f"{key}: unknown placeholder {{{bad}}} in {template!r}; valid placeholders: {_VALID_PLACEHOLDERS}"
        for bad in sorted(fields - set(PLACEHOLDERS))
    ]
    if kind == "vsnl" and "c" not in fields:
        out.append(f"{key}: the template must contain {{c}} (the class name), got {template!r}")
    return out


def check_template(template: str, kind: str) -> str:
    """``template`` if valid (:func:`template_problems`), else ValueError with the first problem."""
    problems = template_problems(template, kind)
    if problems:
        raise ValueError(_joined(problems))
    return template


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size_problems(value, key: str) -> list[str]:
    if value is None:
        return []
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_int(v) and v > 0 for v in value)
    )
    if ok:
        return []
    return [f"{key}: expected null or [width, height] of positive ints, got {value!r}"]


def _max_new_tokens_problems(value, key: str) -> list[str]:
    if _is_int(value):
        return (
            [] if value > 0 else [f"{key}: expected a positive int, got {value!r} (not positive)"]
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            return [f"{key}: expected a positive int, got {value!r} (not a finite number)"]
        if value != int(value):
            return [f"{key}: expected a positive int, got {value!r} (not a whole number)"]
        return [
            f"{key}: expected a positive int, got {value!r} ({value!r} is not a whole number; "
            f"write {int(value)})"
        ]
    return [f"{key}: expected a positive int, got {value!r}"]


def _temperature_problems(value, key: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{key}: expected a number, got {value!r}"]
    if not math.isfinite(value):
        return [
            f"{key}: expected a finite number, got {value!r}; generation is greedy: use 0 or leave it out"
        ]
    if value != 0:
        return [
            f"{key}: generation is always greedy (answers are cached as deterministic); "
            f"only 0 is allowed (or leave it out), got {value!r}"
        ]
    return []


def settings_problems(
    settings, kind: str, prefix: str = "mllm", *, complete: bool = True
) -> list[str]:
    """Problems of the generation settings of one kind (``complete``: ``max_new_tokens`` required)."""
    key = f"{prefix}.generation.{kind}"
    if not isinstance(settings, Mapping):
        return [f"{key}: expected a mapping of settings, got {settings!r}"]
    valid = SETTING_KEYS[kind]
    out = [
        f"{key}.{k}: unknown setting {k!r}; valid settings: {', '.join(valid)}"
        for k in settings
        if k not in valid
    ]
    if "max_new_tokens" in settings:
        out += _max_new_tokens_problems(settings["max_new_tokens"], f"{key}.max_new_tokens")
    elif complete:
        out.append(f"{key}.max_new_tokens: required (a positive int)")
    for size_key in ("image_size", "blank_image_size"):
        if size_key in settings and size_key in valid:
            out += _size_problems(settings[size_key], f"{key}.{size_key}")
    if "temperature" in settings:
        out += _temperature_problems(settings["temperature"], f"{key}.temperature")
    return out


def validate_prompting(
    family, prompts: Mapping | None, generation: Mapping | None, prefix: str = "mllm"
) -> list[str]:
    """Every problem of a prompting configuration, one line each, starting with its key path.

    ``family`` is ``mllm.family``, ``prompts`` the template overrides (``mllm.prompts``: kind ->
    template), ``generation`` the setting overrides (``mllm.generation``: kind -> settings). An
    empty list means :class:`Prompting` accepts them. Checked: the family; query kinds; templates
    (non-empty strings, no placeholder but ``{c}``, ``{c}`` in a VSNL template); setting names;
    ``max_new_tokens`` a positive int (``32.0`` is not one); image sizes ``null`` or ``[w, h]``;
    ``temperature`` only 0 (generation is greedy; NaN and inf are rejected).

    >>> validate_prompting("llava", {"ens": "Describe {x}"}, {"ens": {"max_new_tokens": 32.0}})[1]
    'mllm.generation.ens.max_new_tokens: expected a positive int, got 32.0 (32.0 is not a whole number; write 32)'
    """
    out = _family_problem(family, prefix)
    prompts = {} if prompts is None else prompts
    generation = {} if generation is None else generation
    if not isinstance(prompts, Mapping):
        out.append(
            f"{prefix}.prompts: expected a mapping of query kind -> template, got {prompts!r}"
        )
        prompts = {}
    if not isinstance(generation, Mapping):
        out.append(
            f"{prefix}.generation: expected a mapping of query kind -> settings, got {generation!r}"
        )
        generation = {}
    out += _kind_problems(prompts, f"{prefix}.prompts")
    out += _kind_problems(generation, f"{prefix}.generation", ALL_KINDS)
    known_family = not _family_problem(family, prefix)
    for kind in ALL_KINDS:
        if kind in prompts:
            out += template_problems(prompts[kind], kind, prefix)
        extra = generation.get(kind)
        if extra is None:
            continue
        if not isinstance(extra, Mapping):
            out.append(f"{prefix}.generation.{kind}: expected a mapping of settings, got {extra!r}")
            continue
        merged = {**GENERATION[family][kind], **extra} if known_family else dict(extra)
        out += settings_problems(merged, kind, prefix, complete=known_family)
    return out


def _joined(problems: list[str]) -> str:
    more = len(problems) - 1
    return problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _check_family(family: str) -> None:
    problems = _family_problem(family, "mllm")
    if problems:
        raise ValueError(problems[0])


def _check_kind(kind: str, kinds: tuple[str, ...] = KINDS) -> None:
    if kind not in kinds:
        raise ValueError(f"unknown query kind {kind!r}; valid kinds: {', '.join(kinds)}")


def prompt_template(kind: str, family: str, overrides: Mapping[str, str] | None = None) -> str:
    """The template for ``kind`` ("ens"/"vsnl") of ``family``, or its override."""
    _check_family(family)
    _check_kind(kind)
    overrides = {} if overrides is None else overrides
    problems = validate_prompting(family, overrides, None)
    if problems:
        raise ValueError(_joined(problems))
    return overrides.get(kind, PROMPTS[family][kind])


def prompt_for(query: Query, family: str, overrides: Mapping[str, str] | None = None) -> str:
    """The prompt text for one query: the family's template (or its override) with ``{c}`` filled.

    >>> prompt_for(Query("vsnl", "tench"), "qwen2vl")
    'Suggest five different class names that share visual features with tench. Put each numbered class on a separate line.'

    An ``eoe`` query carries its whole prompt text (no template).
    """
    if query.kind == "eoe":
        return str(query.prompt)
    return prompt_template(query.kind, family, overrides).replace("{c}", query.class_name)


def generation_settings(
    kind: str, family: str, overrides: Mapping[str, Mapping] | None = None
) -> dict:
    """Greedy generation settings for ``kind`` of ``family``, updated by ``overrides[kind]``.

    A ``temperature`` override (only 0 is valid) is dropped: generation is greedy anyway, and the
    settings enter the cache key.
    """
    _check_family(family)
    _check_kind(kind, ALL_KINDS)
    overrides = {} if overrides is None else overrides
    problems = validate_prompting(family, None, overrides)
    if problems:
        raise ValueError(_joined(problems))
    settings = copy.deepcopy(GENERATION[family][kind])
    settings.update(copy.deepcopy(dict(overrides.get(kind) or {})))
    settings.pop("temperature", None)
    for key in ("image_size", "blank_image_size"):
        if settings.get(key) is not None:
            settings[key] = [int(v) for v in settings[key]]
    return settings


@dataclass(frozen=True)
class Prompting:
    """Which prompts and generation settings to use: a family plus optional overrides.

    Built from the ``mllm`` section of the config by :meth:`from_config`::

        family: llava            # or qwen2vl
        prompts: {ens: "..."}    # optional, per kind
        generation: {ens: {max_new_tokens: 8}}   # optional, per kind
    """

    family: str = "llava"
    prompts: Mapping[str, str] = field(default_factory=dict)
    generation: Mapping[str, Mapping] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # validate everything up front, so a bad config fails before any answering
        problems = validate_prompting(self.family, self.prompts, self.generation)
        if problems:
            raise ValueError(_joined(problems))

    @classmethod
    def from_config(cls, config: Mapping | None) -> Prompting:
        config = dict(config or {})
        prompts = config.get("prompts") or {}
        generation = config.get("generation") or {}
        problems = validate_prompting(config.get("family", "llava"), prompts, generation)
        if problems:
            raise ValueError(_joined(problems))
        return cls(
            family=config.get("family", "llava"),
            prompts=dict(prompts),
            generation={k: dict(v or {}) for k, v in generation.items()},
        )

    def prompt(self, query: Query) -> str:
        return prompt_for(query, self.family, self.prompts)

    def settings(self, kind: str) -> dict:
        return generation_settings(kind, self.family, self.generation)
