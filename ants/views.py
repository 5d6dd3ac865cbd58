"""The views of ``params.yaml`` that the workflow's rules use.

Each view selects the exact subset of the (validated) params that determines one stage's
output. The Snakemake rules pass these as ``params`` (canonical JSON, :func:`dumps`), so
Snakemake's params trigger re-runs a stage only when a setting that matters to it changes
(e.g. an ANTS scoring switch re-runs scoring, not the MLLM plan or answers). Every view of the
workflow lives here: the stages' configs, :func:`metrics_view`, :func:`tables_view`,
:func:`report_view` and :func:`sweep_view`.
Loading and validation live in :mod:`ants.config`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ants._io import canonical_json
from ants.config import merge_config, sweep_value
from ants.methods import method_spec  # the registry: torch-free, like everything here
from ants.methods.ants_switches import ANTS_PLAN_KEYS, ants_config

__all__ = [
    "ANTS_PLAN_KEYS",
    "MLLM_ANSWERING_KEYS",
    "MLLM_WORKFLOW_KEYS",
    "SWEEP_SEP",
    "answer_config",
    "answers_owner",
    "envisioned_owner",
    "eoe_answer_config",
    "same_as_base",
    "text_config",
    "ants_methods",
    "backend_config",
    "get_dotted",
    "inputs_config",
    "point_params",
    "set_dotted",
    "static_scoring",
    "stream_key",
    "sweep_point_name",
    "sweep_points",
    "dumps",
    "metrics_view",
    "method_config",
    "ood_sets",
    "parse_scoring_name",
    "plan_config",
    "report_view",
    "scoring_name",
    "sweep_view",
    "tables_view",
    "uses_random_weights",
]

#: Keys of the ``mllm`` section that belong to the workflow, not to the backend.
#: ``mllm`` keys of the workflow around the answers (the cache file, GPU claims, how much of an
#: answer listings show): they never decide an answer, so they are in no answer job's params.
MLLM_WORKFLOW_KEYS = ("cache", "gpu", "max_answer_chars")


def dumps(obj: Any) -> str:
    """The form in which rules pass config subsets to ``ants``: :func:`ants._io.canonical_json`."""
    return canonical_json(obj)


def ood_sets(params: Mapping, benchmark: str) -> list[tuple[str, str]]:
    """``[(split, dataset), ...]`` of a benchmark, far before near, in the listed order."""
    ood = params["benchmarks"][benchmark]["ood"]
    return [(split, ds) for split in ("far", "near") for ds in ood.get(split, [])]


def ants_methods(params: Mapping) -> list[str]:
    """The active methods (run.methods) that ask the MLLM (plans and answers: ANTS variants;
    :attr:`ants.methods.MethodSpec.uses_answers`)."""
    return [
        m
        for m in params["run"]["methods"]
        if method_spec(params["methods"][m]["method"]).uses_answers
    ]


#: Separates a method from its sweep point in a virtual method name: ``ants_code~eta~1`` is
#: method ``ants_code`` with the setting of sweep ``eta`` at its value number 1.
SWEEP_SEP = "~"


def sweep_point_name(method: str, sweep: str, index: int) -> str:
    """The virtual method name of one sweep point (a wildcard value like any method name)."""
    return f"{method}{SWEEP_SEP}{sweep}{SWEEP_SEP}{int(index)}"


def set_dotted(obj: dict, path: str, value: Any) -> None:
    """Set ``obj[a][b][c] = value`` for ``path = "a.b.c"`` (missing mappings are created)."""
    parts = path.split(".")
    for key in parts[:-1]:
        obj = obj.setdefault(key, {})
    obj[parts[-1]] = value


def get_dotted(obj: Mapping, path: str, default: Any = None) -> Any:
    for key in path.split("."):
        if not isinstance(obj, Mapping) or key not in obj:
            return default
        obj = obj[key]
    return obj


def point_params(params: Mapping, method: str) -> tuple[Mapping, str]:
    """``(params, base method)`` of a method name: for a sweep point (:data:`SWEEP_SEP`), the
    params with the sweep's setting set to that point's value; else the params unchanged."""
    if SWEEP_SEP not in method:
        return params, method
    base, sweep, index = method.split(SWEEP_SEP)
    spec = params["sweeps"][sweep]
    out = copy.deepcopy(dict(params))
    path = spec["setting"].replace("{method}", base)
    value = sweep_value(get_dotted(out, path), spec["values"][int(index)], bool(spec.get("merge")))
    set_dotted(out, path, value)
    return out, base


def sweep_points(params: Mapping, sweep: str) -> list[tuple[str, str, int]]:
    """``(virtual method, base method, value index)`` of every point of ``sweep``."""
    spec = params["sweeps"][sweep]
    return [
        (sweep_point_name(m, sweep, i), m, i)
        for m in spec["methods"]
        for i in range(len(spec["values"]))
    ]


def stream_key(params: Mapping, method: str) -> str:
    """The stream a method's jobs read: ``{order}-bs{batch size}`` (e.g. ``shuffled-bs256``)."""
    p, _ = point_params(params, method)
    return f"{p['stream'].get('order', 'shuffled')}-bs{int(p['stream']['batch_size'])}"


def method_config(params: Mapping, method: str, split: str | None = None) -> dict:
    """What the score job of ``method`` needs: its section, with ANTS's ``in_score`` resolved
    for ``split`` (far / near) and the stream batch size."""
    p, base = point_params(params, method)
    cfg = copy.deepcopy(dict(p["methods"][base]))
    if cfg["method"] == "ants" and split is not None:
        cfg["in_score"] = cfg["in_score"][split]
    cfg["batch_size"] = p["stream"]["batch_size"]
    return cfg


def static_scoring(params: Mapping, method: str) -> dict | None:
    """The settings of the shared per-image static pass ``method`` reads (None: it reads none)."""
    p, base = point_params(params, method)
    section = p["methods"][base]
    return method_spec(section["method"]).static_scoring(section)


def scoring_name(scoring: Mapping) -> str:
    """The file name of a static pass (:func:`static_scoring`): ``size100-tau0.01-seed0`` or
    ``groups5-tau0.01-seed0`` (NegLabel's grouped score over the mined negatives),
    ``csp-size100-tau0.01-seed0`` (over the CSP-mined negatives) or ``mcm-tau0.01`` (MCM at
    tau: ANTS's ``initial_detector`` switch)."""
    detector = scoring.get("detector", "neglabel")
    if detector == "mcm":
        return f"mcm-tau{float(scoring['tau']):g}"
    kind = "size" if "group_size" in scoring else "groups"
    count = scoring.get("group_size", scoring.get("n_groups"))
    name = f"{kind}{int(count)}-tau{float(scoring['tau']):g}-seed{int(scoring['seed'])}"
    return f"{detector}-{name}" if detector != "neglabel" else name


def parse_scoring_name(name: str) -> dict:
    """Inverse of :func:`scoring_name`; ValueError for a name it never gives."""
    m = re.fullmatch(r"mcm-tau([0-9.eE+-]+)", name)
    if m:
        return {"detector": "mcm", "tau": float(m[1])}
    m = re.fullmatch(r"(csp-)?(size|groups)(\d+)-tau([0-9.eE+-]+)-seed(\d+)", name)
    if not m:
        raise ValueError(
            f"{name!r} is not a static-pass name (expected e.g. size100-tau0.01-seed0, "
            "csp-size100-tau0.01-seed0 or mcm-tau0.01)"
        )
    key = "group_size" if m[2] == "size" else "n_groups"
    out = {key: int(m[3]), "tau": float(m[4]), "seed": int(m[5])}
    return {"detector": "csp", **out} if m[1] else out


def plan_config(params: Mapping, method: str) -> dict:
    """The ANTS switches that decide the queries (:data:`ANTS_PLAN_KEYS`), plus the preset
    (which fills in the switches not given), plus the stream batch size."""
    p, base = point_params(params, method)
    cfg = p["methods"][base]
    if cfg["method"] != "ants":
        raise ValueError(
            f"methods.{base}: plans exist only for ANTS methods, not {cfg['method']!r}"
        )
    from ants.methods.ants_switches import DEFAULT_PRESET

    switches = cfg["config"]
    return {
        "config": {
            "preset": switches.get("preset", DEFAULT_PRESET),
            **{k: switches[k] for k in ANTS_PLAN_KEYS if k in switches},
        },
        "batch_size": p["stream"]["batch_size"],
    }


#: ``mllm`` keys of the answering layer (:class:`ants.mllm.answering.CachedAnswerer`), not
#: of the backend: when an answer job fails, and which parsed negatives are kept.
MLLM_ANSWERING_KEYS = ("max_failed_fraction", "max_negative_chars")


def backend_config(params: Mapping, method: str | None = None) -> dict:
    """What ``ants.mllm.build_backend`` takes: the shared ``mllm`` keys (backend, family,
    prompts, generation, batch_size) and the selected backend's settings
    (``mllm.backends.<backend>``; the other backends' settings never leak in). Of a sweep
    point's params when ``method`` is one."""
    p = point_params(params, method)[0] if method else params
    mllm = p["mllm"]
    out = {
        k: copy.deepcopy(v)
        for k, v in mllm.items()
        if k not in MLLM_WORKFLOW_KEYS and k not in MLLM_ANSWERING_KEYS and k != "backends"
    }
    out.update(copy.deepcopy(dict((mllm.get("backends") or {}).get(mllm["backend"]) or {})))
    return out


def answer_config(params: Mapping, method: str) -> dict:
    """What decides one ANTS stream's answers: the backend config and the method's answer
    parser (its preset's, unless set). The ANTS score jobs take it as a param too, so a changed
    prompt, model or setting re-runs them even when the answers file is missing.

    ``mllm.max_negative_chars`` applies to the ``lenient`` parser only: with the ``authors``
    parser it is ``None`` here (no limit, as the authors' code), so that setting never re-runs
    those jobs and the answer job's log says it does not apply."""
    p, base = point_params(params, method)
    parser = ants_config(p["methods"][base]["config"]).answer_parser
    answering = {k: p["mllm"][k] for k in MLLM_ANSWERING_KEYS if k in p["mllm"]}
    if parser == "authors" and "max_negative_chars" in answering:
        answering["max_negative_chars"] = None
    return {"mllm": backend_config(p), "answering": answering, "parser": parser}


def eoe_answer_config(params: Mapping, method: str) -> dict:
    """What decides an EOE method's LLM answers (``ants envision``): the backend config (its
    text-only questions go to the same backends as ANTS's), the parser, the task, the number of
    names and the class type."""
    p, base = point_params(params, method)
    cfg = p["methods"][base]
    if cfg["method"] != "eoe":
        raise ValueError(
            f"methods.{base}: envisioned labels exist only for EOE, not {cfg['method']!r}"
        )
    mllm = merge_config(p["mllm"], cfg.get("llm") or {})
    answering = {k: mllm[k] for k in MLLM_ANSWERING_KEYS if k in mllm}
    if cfg["parser"] == "authors":
        answering["max_negative_chars"] = None
    return {
        "mllm": backend_config({**p, "mllm": mllm}),
        "answering": answering,
        "eoe": {k: cfg.get(k) for k in ("task", "n_envisioned", "class_type", "parser")},
    }


def envisioned_owner(params: Mapping, method: str) -> str:
    """The method name whose envisioned labels (and their text features) an EOE method reads:
    its base method when a sweep point changes nothing that decides them, else the point."""
    if SWEEP_SEP not in method:
        return method
    base = method.split(SWEEP_SEP)[0]
    same = all(f(params, method) == f(params, base) for f in (eoe_answer_config, inputs_config))
    return base if same else method


def text_config(params: Mapping, method: str) -> dict:
    """What decides the text features of an ANTS stream's negatives (``encode_negatives``):
    the templates, the answer parser and the VSNL labels kept per class."""
    p, base = point_params(params, method)
    cfg = ants_config(p["methods"][base]["config"])
    return {
        "ens_template": cfg.ens_template,
        "vsnl_template": cfg.vsnl_template,
        "answer_parser": cfg.answer_parser,
        "vsnl_labels_per_class": cfg.vsnl_labels_per_class,
    }


def inputs_config(params: Mapping, method: str) -> dict:
    """What a method's jobs read upstream of its own settings: the benchmarks (a sweep point
    may change a benchmark's backbone), backbones, label sets and the mining."""
    p, _ = point_params(params, method)
    return {k: p[k] for k in ("benchmarks", "backbones", "label_sets", "mining")}


def answers_owner(params: Mapping, method: str) -> str:
    """The method name whose plan, answers and negatives' text features ``method`` reads: its
    base method when a sweep point changes nothing that decides them (a scoring-only point
    costs a replay alone), else the point itself."""
    if SWEEP_SEP not in method:
        return method
    base = method.split(SWEEP_SEP)[0]
    same = all(
        f(params, method) == f(params, base)
        for f in (plan_config, answer_config, text_config, stream_key, inputs_config)
    )
    return base if same else method


def _resolved(params: Mapping, method: str) -> dict:
    """A method's score-job config with an ANTS / AdaNeg preset filled in (so a sweep value
    equal to what the preset gives compares equal)."""
    cfg = method_config(params, method)
    if cfg["method"] == "ants":
        cfg["config"] = ants_config(cfg["config"]).to_dict()
    return cfg


def same_as_base(params: Mapping, method: str) -> bool:
    """Whether a sweep point computes exactly what its base method computes (then its scores
    are the base's: the workflow reads those instead of recomputing them)."""
    if SWEEP_SEP not in method:
        return True
    base = method.split(SWEEP_SEP)[0]
    views = [_resolved, stream_key, inputs_config]
    kind = params["methods"][base]["method"]
    if method_spec(kind).uses_answers:
        views.append(answer_config)
    if method_spec(kind).uses_envisioned:
        views.append(eoe_answer_config)
    return all(f(params, method) == f(params, base) for f in views)


def uses_random_weights(params: Mapping) -> bool:
    """Whether a run's numbers carry no meaning: the demo MLLM, or a CLIP backbone of an active
    benchmark with neither ``pretrained`` weights nor a ``weights_path`` (random weights)."""
    if (params.get("mllm") or {}).get("backend") == "demo":
        return True
    backbones = [
        params["backbones"][params["benchmarks"][b]["backbone"]]
        for b in params["run"]["benchmarks"]
    ]
    return any(not (bb.get("pretrained") or bb.get("weights_path")) for bb in backbones)


def _benchmarks_view(params: Mapping) -> dict:
    """The active benchmarks' OOD splits and backbone."""
    return {
        b: {
            "ood": copy.deepcopy(params["benchmarks"][b]["ood"]),
            "backbone": params["benchmarks"][b]["backbone"],
        }
        for b in params["run"]["benchmarks"]
    }


def metrics_view(params: Mapping) -> dict:
    """What the metrics stage needs: active methods and their labels, the benchmarks' OOD
    splits, and the ``metrics`` section."""
    methods = params["run"]["methods"]
    return {
        "run": {"methods": list(methods), "benchmarks": list(params["run"]["benchmarks"])},
        "methods": {
            m: {
                "label": params["methods"][m].get("label", m),
                "method": params["methods"][m]["method"],
            }
            for m in methods
        },
        "benchmarks": _benchmarks_view(params),
        "metrics": dict(params["metrics"]),
    }


def tables_view(params: Mapping) -> dict:
    """What the tables (and the report) need from validated params: :func:`metrics_view`, the
    stream seeds, each active method's preset (``config.preset`` of ANTS and AdaNeg, their
    default preset when unset; None otherwise) and ANTS's ``in_score`` per split, and the
    ``report`` section. A NegLabel method named or labelled ``csp`` is of kind ``csp`` (the
    published CSP rows).

    Keys the schema requires (``run.seeds``, ``metrics``, ``report``, a method's ``config``
    and ANTS's ``in_score``) are read directly: a params dict without them is a KeyError, never
    a silent default. Only ``label`` (optional: the method's name) and ``config.preset``
    (optional: the method's default preset) fall back."""
    from ants.methods import METHODS

    defaults = {k: s.default_preset for k, s in METHODS.items() if s.default_preset is not None}
    view = metrics_view(params)
    view["run"]["seeds"] = list(params["run"]["seeds"])
    for m, info in view["methods"].items():
        cfg = params["methods"][m]
        kind = cfg["method"]
        preset = cfg["config"].get("preset") if kind in defaults else None
        if kind in defaults and preset is None:
            preset = defaults[kind]
        if kind == "neglabel" and "csp" in (m.lower() + str(cfg.get("label", "")).lower()):
            info["method"] = "csp"
        info["preset"] = preset
        info["in_score"] = copy.deepcopy(cfg["in_score"]) if kind == "ants" else None
    view["report"] = dict(params["report"])
    return view


def report_view(params: Mapping) -> dict:
    """What the report needs: :func:`tables_view`, with ``mllm.max_answer_chars`` in its
    ``report`` section (how much of an answer the page shows)."""
    view = tables_view(params)
    view["report"]["max_answer_chars"] = params["mllm"]["max_answer_chars"]
    return view


def sweep_view(params: Mapping, sweep: str) -> dict:
    """What one sweep's metrics need (:func:`ants.stages.sweep_metrics`): :func:`metrics_view`
    with every method's label, the sweep's ``setting`` and ``title``, its benchmarks' OOD sets,
    and each point (:func:`sweep_points`) with its ``value``, x-axis ``label``, whether it is
    the default, and its score files ``[benchmark, ood, seed, path]``. A point whose settings
    compute what its base method computes (:func:`same_as_base`) reads the main run's files,
    so it costs nothing."""
    from ants.artifacts import path

    spec = params["sweeps"][sweep]
    seeds = spec.get("seeds") or params["run"]["seeds"]
    labels = spec.get("labels") or [None] * len(spec["values"])
    points = []
    for point, base, i in sweep_points(params, sweep):
        value = spec["values"][i]
        current = get_dotted(params, spec["setting"].replace("{method}", base), object())
        name = base if same_as_base(params, point) else point
        default = spec["default"] if "default" in spec else current
        files = [
            [b, ood, int(s), path("scores", benchmark=b, method=name, ood=ood, seed=s)]
            for b in spec["benchmarks"]
            for _, ood in ood_sets(params, b)
            for s in seeds
        ]
        points.append(
            {
                "method": base,
                "index": i,
                "value": value,
                "label": labels[i] if labels[i] is not None else value,
                "is_default": value == default,
                "files": files,
            }
        )
    return {
        **metrics_view(params),
        "methods": {m: {"label": s.get("label", m)} for m, s in params["methods"].items()},
        "benchmarks": {b: {"ood": params["benchmarks"][b]["ood"]} for b in spec["benchmarks"]},
        "sweep": sweep,
        "setting": spec["setting"],
        "title": spec.get("title", sweep),
        "points": points,
    }
