"""ANTS's switches: :class:`AntsConfig`, its presets and what the workflow plans from it.

Torch-free: the workflow reads these when it plans the jobs (which static pass an ANTS method
reads, which switches decide its MLLM queries, which answer parser it uses), long before
:mod:`ants.methods.ants_tta` runs the detector (which re-exports everything here).

Every switch's range and allowed values are declared ONCE, in the params schema
(``ants/schemas/params.schema.yaml``, ``$defs/ants_switches``; ``in_score``: ``$defs/ants_output``):
params.yaml is validated against it before any job, and :class:`AntsConfig` validates its
fields against the same definitions (:func:`switch_problems`), so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

from ants.config import definition_checker, load_schema
from ants.methods import METHODS

__all__ = [
    "ANTS_PLAN_KEYS",
    "DEFAULT_PRESET",
    "INITIAL_DETECTORS",
    "IN_SCORES",
    "LAMBDA_STATS",
    "NEAR_SUBSETS",
    "PRESETS",
    "THRESHOLD_RULES",
    "AntsConfig",
    "ants_config",
    "ants_static_scoring",
    "switch_problems",
]

_SCHEMA_DEFS = load_schema()["$defs"]
#: The params schema's definition of each switch (``methods.<name>.config`` of an ANTS method).
_SWITCHES: dict[str, Any] = _SCHEMA_DEFS["ants_switches"]["properties"]

THRESHOLD_RULES = tuple(_SWITCHES["threshold_rule"]["enum"])
NEAR_SUBSETS = tuple(_SWITCHES["near_subset"]["enum"])
LAMBDA_STATS = tuple(_SWITCHES["lambda_stats"]["enum"])
#: The static scores ANTS can start from (``initial_detector``; paper Fig. 7a).
INITIAL_DETECTORS = tuple(_SWITCHES["initial_detector"]["enum"])
#: ANTS's outputs, any of which can be a method's score (``methods.<name>.in_score``).
IN_SCORES = tuple(_SCHEMA_DEFS["ants_output"]["enum"])

#: ANTS switches that decide which MLLM queries a stream asks (docs/METHOD.md section 6: queries
#: depend only on S_nl, predictions and the stream order). Everything else (lambda
#: statistics, output score, bank cap, templates, balanced scores, activation-aware ENS) only
#: changes the scores, so it is left out of the plan's params (:func:`ants.views.plan_config`).
ANTS_PLAN_KEYS = (
    "initial_threshold",
    "threshold_rule",
    "eta",
    "near_subset",
    "near_top_k",
    "near_delta",
    "ens_max_updates",
    "ens_trigger_size",
    "vsnl_start",
    "vsnl_interval",
    "group_size",
    "tau",
    "grouping_seed",
    "nim",
    "sim",
    "initial_detector",
)


@dataclass(frozen=True)
class AntsConfig:
    """Every switch of docs/METHOD.md section 7 (the MLLM family is the backend's business).

    The defaults are the ``authors_code`` preset; :meth:`preset` gives ``paper``.
    """

    initial_threshold: float = 0.8  # NIM gamma0: paper 0.9, code 0.8
    threshold_rule: str = "code"  # 'code' (histogram jump + percentile) | 'paper'
    eta: float = 0.5
    near_subset: str = "top_k"  # 'top_k' (code, 40) | 'top_fraction' (paper, delta 0.08)
    near_top_k: int = 40
    near_delta: float = 0.08
    lambda_stats: str = "code"  # 'code' (balanced, all samples) | 'paper' (mined images)
    in_score: str = "far_only"  # main output: 'ada' | 'far_only' | 'near_only'
    ens_max_updates: int = 10  # E (10 in the released ImageNet script, 20 in the config default)
    ens_trigger_size: int = 200  # update when the cache holds MORE than this
    ens_bank_cap: int = 10_000
    vsnl_start: int = 10  # first VSNL batch (the near-only script uses 1)
    vsnl_interval: int = 40
    vsnl_labels_per_class: int = 5
    group_size: int = 100  # s, for S_nl, S_ens and S_vsnl
    balanced_group_size: int | None = None  # None = K (the authors' class_num)
    balanced_tiling: int = 10  # VSNL bank tiled this many times for its balanced score
    tau: float = 0.01
    grouping_seed: int = 0
    ens_template: str = "{}"
    vsnl_template: str = "The nice {}."
    activation_aware_ens: bool = False  # TANL extension (end of section 6)
    activation_top: int = 500
    activation_step: int = 2
    activation_gap: float = 0.5
    activation_queue: int = 20_000
    fixed_lambda: float | None = None  # a fixed weight instead of the adaptive one (ablation)
    nim: bool = True  # NIM: the threshold adapts at each ENS update (False: ablation row A)
    sim: bool = True  # SIM: VSNL for the most predicted classes (False: every class, row C)
    initial_detector: str = "neglabel"  # the static score S_nl: 'neglabel' | 'mcm' | 'csp'

    answer_parser: str = (
        "authors"  # ants.mllm.parsing style: 'authors' (their labels.py) | 'lenient'
    )

    def __post_init__(self) -> None:
        problems = switch_problems(asdict(self))
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AntsConfig:
        """The ``paper`` or ``authors_code`` preset, with optional switch overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown ANTS preset {name!r}; valid presets: {', '.join(PRESETS)}")
        return ants_config({**PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The preset of a config that names none (the :class:`AntsConfig` defaults; the registry's
#: :attr:`ants.methods.base.MethodSpec.default_preset` of ``ants``).
DEFAULT_PRESET = METHODS["ants"].default_preset
#: Switch values of the two presets (section 7); everything not listed is shared.
PRESETS: dict[str, dict[str, Any]] = {
    "authors_code": {},
    "paper": {
        "initial_threshold": 0.9,
        "threshold_rule": "paper",
        "near_subset": "top_fraction",
        "lambda_stats": "paper",
        "in_score": "ada",
        "answer_parser": "lenient",
    },
}


def ants_config(config: AntsConfig | str | Mapping[str, Any] | None = None) -> AntsConfig:
    """An :class:`AntsConfig` from a config, a preset name, or a mapping of switches.

    A mapping may name a ``preset`` (default :data:`DEFAULT_PRESET`) and override any switch; an
    unknown key is an error that lists the valid ones.
    """
    if config is None:
        return AntsConfig()
    if isinstance(config, AntsConfig):
        return config
    if isinstance(config, str):
        return AntsConfig.preset(config)
    if not isinstance(config, Mapping):
        raise TypeError(
            f"an ANTS config must be an AntsConfig, a preset name or a mapping, got {type(config).__name__}"
        )
    values = dict(config)
    preset = values.pop("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        raise ValueError(f"unknown ANTS preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    valid = [f.name for f in fields(AntsConfig)]
    unknown = sorted(k for k in values if k not in valid)
    if unknown:
        raise ValueError(
            f"unknown ANTS switch(es) {', '.join(map(repr, unknown))}; valid switches: preset, {', '.join(valid)}"
        )
    return AntsConfig(**{**PRESETS[preset], **values})


@lru_cache(maxsize=1)
def _switch_checker():
    """The schema check of every :class:`AntsConfig` field: the params schema's definition of
    each switch, ``in_score`` as one of :data:`IN_SCORES` (params give it per OOD split)."""
    names = [f.name for f in fields(AntsConfig)]
    definition = {
        "type": "object",
        "additionalProperties": False,
        "required": names,
        "properties": {
            n: {"$ref": "#/$defs/ants_output"} if n == "in_score" else _SWITCHES[n] for n in names
        },
    }
    return definition_checker(definition, "AntsConfig")


def switch_problems(values: Mapping[str, Any]) -> list[str]:
    """Problems of a complete set of switch values (every :class:`AntsConfig` field), one line
    each, checked against the params schema (``AntsConfig.eta: 1.5 is out of range; ...``).

    A schema check takes about a millisecond and planning a workflow builds the same configs
    many times, so the answer is remembered per set of values (and their types: ``True`` is
    not ``1`` here)."""
    key = tuple((k, type(v), v) for k, v in sorted(values.items()))
    try:
        return list(_remembered_problems(key))
    except TypeError:  # an unhashable value (a list, a mapping): never valid, checked as is
        return _switch_checker()(dict(values))


@lru_cache(maxsize=4096)
def _remembered_problems(key: tuple) -> tuple[str, ...]:
    return tuple(_switch_checker()({k: v for k, _, v in key}))


def ants_static_scoring(section: Mapping[str, Any]) -> dict:
    """The shared static pass an ANTS method reads (``S_nl``, predictions): ``tau``,
    ``group_size`` and ``grouping_seed`` of its ``config`` (its preset's where not set).

    With ``initial_detector: mcm`` the pass is MCM at ``tau`` (``{"detector": "mcm", "tau"}``:
    no negatives, no grouping); with ``csp`` the grouped score over the CSP-mined negatives
    (``"detector": "csp"`` added). The default NegLabel pass has no ``detector`` key, so its
    file name is the one NegLabel's pass of the same grouping has."""
    cfg = ants_config(section["config"])
    if cfg.initial_detector == "mcm":
        return {"detector": "mcm", "tau": float(cfg.tau)}
    out = {
        "tau": float(cfg.tau),
        "group_size": int(cfg.group_size),
        "seed": int(cfg.grouping_seed),
    }
    if cfg.initial_detector == "csp":
        out = {"detector": "csp", **out}
    return out
