"""The views of ``params.yaml`` that the workflow's rules use.

Each view selects the exact subset of the (validated) params that determines one stage's
output. The Snakemake rules pass these as ``params`` (canonical JSON, :func:`dumps`), so
Snakemake's params trigger re-runs a stage only when a setting that matters to it changes
(e.g. an ANTS scoring switch re-runs scoring, not the MLLM plan or answers).
Loading and validation live in :mod:`ants.config`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANTS_PLAN_KEYS",
    "MLLM_WORKFLOW_KEYS",
    "ants_methods",
    "backend_config",
    "dumps",
    "metrics_view",
    "method_config",
    "ood_sets",
    "plan_config",
    "report_view",
]

#: ANTS switches that decide which MLLM queries a stream asks (METHOD.md section 6: queries
#: depend only on S_nl, predictions and the stream order). Everything else (lambda
#: statistics, output score, bank cap, templates, balanced scores, activation-aware ENS) only
#: changes the scores, so it is left out of the plan's params.
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
)

#: Keys of the ``mllm`` section that belong to the workflow, not to the backend.
MLLM_WORKFLOW_KEYS = ("cache", "gpu")


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys): the form in which rules pass config subsets to ``ants``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def ood_sets(params: Mapping, benchmark: str) -> list[tuple[str, str]]:
    """``[(split, dataset), ...]`` of a benchmark, far before near, in the listed order."""
    ood = params["benchmarks"][benchmark]["ood"]
    return [(split, ds) for split in ("far", "near") for ds in ood.get(split, [])]


def ants_methods(params: Mapping) -> list[str]:
    """The active methods (run.methods) that are ANTS variants (they need plans and answers)."""
    return [m for m in params["run"]["methods"] if params["methods"][m]["method"] == "ants"]


def method_config(params: Mapping, method: str, split: str | None = None) -> dict:
    """What the score job of ``method`` needs: its section, with ANTS's ``in_score`` resolved
    for ``split`` (far / near) and the stream batch size."""
    cfg = copy.deepcopy(dict(params["methods"][method]))
    if cfg["method"] == "ants" and split is not None:
        cfg["in_score"] = cfg["in_score"][split]
    cfg["batch_size"] = params["stream"]["batch_size"]
    return cfg


def plan_config(params: Mapping, method: str) -> dict:
    """The ANTS switches that decide the queries (:data:`ANTS_PLAN_KEYS`), plus the preset
    (which fills in the switches not given), plus the stream batch size."""
    cfg = params["methods"][method]
    if cfg["method"] != "ants":
        raise ValueError(f"methods.{method}: plans exist only for ANTS methods, not {cfg['method']!r}")
    switches = cfg["config"]
    return {
        "config": {"preset": switches.get("preset", "authors_code"),
                   **{k: switches[k] for k in ANTS_PLAN_KEYS if k in switches}},
        "batch_size": params["stream"]["batch_size"],
    }


def backend_config(params: Mapping) -> dict:
    """The ``mllm`` section without the workflow's own keys: what ``build_backend`` takes."""
    return {k: copy.deepcopy(v) for k, v in params["mllm"].items() if k not in MLLM_WORKFLOW_KEYS}


def metrics_view(params: Mapping) -> dict:
    """What the metrics stage needs: active methods and their labels, the benchmarks' OOD
    splits, and the ``metrics`` section."""
    methods = params["run"]["methods"]
    return {
        "run": {"methods": list(methods), "benchmarks": list(params["run"]["benchmarks"])},
        "methods": {m: {"label": params["methods"][m].get("label", m), "method": params["methods"][m]["method"]}
                    for m in methods},
        "benchmarks": {b: {"ood": copy.deepcopy(params["benchmarks"][b]["ood"]),
                           "backbone": params["benchmarks"][b]["backbone"]}
                       for b in params["run"]["benchmarks"]},
        "metrics": dict(params["metrics"]),
    }


def report_view(params: Mapping) -> dict:
    """What the report needs: :func:`metrics_view` plus the ``report`` section."""
    return {**metrics_view(params), "report": dict(params["report"])}
