"""The MLLM prompts and generation settings of ANTS, per model family (METHOD.md, "MLLM prompts").

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

These settings are part of every cache key (:func:`ants.mllm.cache.cache_key`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ants.mllm.base import Query

FAMILIES = ("llava", "qwen2vl")
KINDS = ("ens", "vsnl")

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
    },
    "qwen2vl": {
        "ens": {"max_new_tokens": 10, "image_size": [56, 56]},
        "vsnl": {"max_new_tokens": 50, "blank_image_size": [28, 28]},
    },
}

SETTING_KEYS = {
    "ens": ("max_new_tokens", "image_size"),
    "vsnl": ("max_new_tokens", "blank_image_size"),
}

_FIELD = re.compile(r"\{([^{}]*)\}")


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(
            f"unknown MLLM prompt family {family!r}; valid families: {', '.join(FAMILIES)}"
        )


def _check_kind_keys(mapping: Mapping, what: str) -> None:
    bad = [k for k in mapping if k not in KINDS]
    if bad:
        raise ValueError(f"{what}: unknown query kind {bad[0]!r}; valid kinds: {', '.join(KINDS)}")


def check_template(template: str, kind: str) -> str:
    """Validate a prompt template: a non-empty string whose only field is ``{c}``.

    A VSNL template must contain ``{c}`` (the question is about that class).
    """
    if not isinstance(template, str) or not template.strip():
        raise ValueError(
            f"prompts.{kind}: a prompt template must be a non-empty string, got {template!r}"
        )
    fields = set(_FIELD.findall(template))
    if fields - {"c"}:
        bad = sorted(fields - {"c"})[0]
        raise ValueError(
            f"prompts.{kind}: unknown placeholder {{{bad}}} in {template!r}; the only placeholder is {{c}} "
            "(the class name)"
        )
    if kind == "vsnl" and "c" not in fields:
        raise ValueError(
            f"prompts.vsnl: the template must contain {{c}} (the class name), got {template!r}"
        )
    return template


def _check_size(value, key: str, kind: str):
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok:
        raise ValueError(
            f"generation.{kind}.{key}: expected null or [width, height] of positive ints, got {value!r}"
        )
    return [int(value[0]), int(value[1])]


def _check_settings(settings: Mapping, kind: str) -> dict:
    valid = SETTING_KEYS[kind]
    bad = [k for k in settings if k not in valid]
    if bad:
        raise ValueError(
            f"generation.{kind}: unknown setting {bad[0]!r}; valid settings: {', '.join(valid)}"
        )
    out = dict(settings)
    n = out.get("max_new_tokens")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"generation.{kind}.max_new_tokens: expected a positive int, got {n!r}")
    for key in ("image_size", "blank_image_size"):
        if key in out:
            out[key] = _check_size(out[key], key, kind)
    return out


def prompt_template(kind: str, family: str, overrides: Mapping[str, str] | None = None) -> str:
    """The template for ``kind`` ("ens"/"vsnl") of ``family``, or its override."""
    _check_family(family)
    if kind not in KINDS:
        raise ValueError(f"unknown query kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    overrides = overrides or {}
    _check_kind_keys(overrides, "prompts")
    return check_template(overrides.get(kind, PROMPTS[family][kind]), kind)


def prompt_for(query: Query, family: str, overrides: Mapping[str, str] | None = None) -> str:
    """The prompt text for one query: the family's template (or its override) with ``{c}`` filled.

    >>> prompt_for(Query("vsnl", "tench"), "qwen2vl")
    'Suggest five different class names that share visual features with tench. Put each numbered class on a separate line.'
    """
    return prompt_template(query.kind, family, overrides).replace("{c}", query.class_name)


def generation_settings(
    kind: str, family: str, overrides: Mapping[str, Mapping] | None = None
) -> dict:
    """Greedy generation settings for ``kind`` of ``family``, updated by ``overrides[kind]``."""
    _check_family(family)
    if kind not in KINDS:
        raise ValueError(f"unknown query kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    overrides = overrides or {}
    _check_kind_keys(overrides, "generation")
    settings = copy.deepcopy(GENERATION[family][kind])
    extra = overrides.get(kind) or {}
    if not isinstance(extra, Mapping):
        raise ValueError(f"generation.{kind}: expected a mapping of settings, got {extra!r}")
    settings.update(extra)
    return _check_settings(settings, kind)


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
        for kind in KINDS:
            prompt_template(kind, self.family, self.prompts)
            generation_settings(kind, self.family, self.generation)

    @classmethod
    def from_config(cls, config: Mapping | None) -> Prompting:
        config = dict(config or {})
        return cls(
            family=config.get("family", "llava"),
            prompts=dict(config.get("prompts") or {}),
            generation={k: dict(v or {}) for k, v in (config.get("generation") or {}).items()},
        )

    def prompt(self, query: Query) -> str:
        return prompt_for(query, self.family, self.prompts)

    def settings(self, kind: str) -> dict:
        return generation_settings(kind, self.family, self.generation)
