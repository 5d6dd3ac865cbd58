"""The workflow's parameters (``params.yaml``): load and validate.

``params.yaml`` is the single source of truth: Snakemake's configfile and DVC's params. It is
validated in two steps, both before any job runs:

1. against the JSON schema ``workflow/schemas/params.schema.yaml`` (types, ranges, allowed
   values; every key required; unknown keys rejected);
2. cross-references (:func:`check_references`): a benchmark names datasets, a label set and
   a backbone that exist; datasets that an active benchmark needs have their paths set; group
   counts fit the number of mined negatives; the MLLM backend has its required settings.

Every problem is reported on one line that starts with the key path (``run.seeds[1]``,
``methods.adaneg.config.lam``) and says what the bad value is and what would be valid;
:class:`ConfigError` carries them all.

The views the rules pass as ``params`` (the subset of the params each stage depends on) live
in :mod:`ants.views`.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ants.views import MLLM_WORKFLOW_KEYS

__all__ = [
        "MLLM_BACKEND_KEYS",
    "SCHEMA_PATH",
    "ConfigError",
    "check_references",
    "format_path",
    "load_params",
    "load_schema",
    "validate_params",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "params.schema.yaml"

#: Backend-specific keys of the ``mllm`` section (the backends' ``CONFIG_KEYS``).
MLLM_BACKEND_KEYS: dict[str, tuple[str, ...]] = {
    "demo": ("seed", "model_dir", "device", "architecture"),
    "transformers": ("model", "revision", "model_id", "device", "dtype", "processor_kwargs"),
    "openai": ("base_url", "model", "api_key_env", "revision", "timeout_s", "max_retries", "backoff_s",
               "concurrency", "extra_body"),
}
_MLLM_REQUIRED = {"demo": (), "transformers": ("model",), "openai": ("base_url", "model")}

class ConfigError(ValueError):
    """``params.yaml`` is not valid. ``problems`` holds one line per problem, each starting
    with the key path; the message lists them all."""

    def __init__(self, problems: Iterable[str], source: str = "params.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        head = f"{source} is not valid ({n} problem{'s' if n != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


# --------------------------------------------------------------------------------------------
# loading


@lru_cache(maxsize=4)
def _schema_at(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_schema(path: str | Path | None = None) -> dict:
    """The params JSON schema (a dict), read from ``path`` or :data:`SCHEMA_PATH`."""
    path = Path(path) if path is not None else SCHEMA_PATH
    if not path.is_file():
        raise FileNotFoundError(f"params schema not found: {path}")
    return copy.deepcopy(_schema_at(str(path.resolve())))


def load_params(path: str | Path = "params.yaml", *, schema: Mapping | None = None) -> dict:
    """Read and validate a params file; raises :class:`ConfigError` naming every bad key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError([f"(file): not valid YAML: {exc}"], source=str(path)) from exc
    return validate_params(params, schema=schema, source=str(path))


# --------------------------------------------------------------------------------------------
# validation


def format_path(parts: Iterable[Any]) -> str:
    """``['run', 'seeds', 1]`` -> ``'run.seeds[1]'``; the empty path is ``'(top level)'``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "(top level)"


def _join(path: str, key: str) -> str:
    return key if path == "(top level)" else f"{path}.{key}"


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _range_text(schema: Mapping) -> str:
    lo = schema.get("minimum")
    lo_x = schema.get("exclusiveMinimum")
    hi = schema.get("maximum")
    hi_x = schema.get("exclusiveMaximum")
    low = f"[{lo}" if lo is not None else (f"({lo_x}" if lo_x is not None else None)
    high = f"{hi}]" if hi is not None else (f"{hi_x})" if hi_x is not None else None)
    if low and high:
        return f"in {low}, {high}"
    if low:
        return f"> {lo_x}" if lo is None else f">= {lo}"
    if high:
        return f"< {hi_x}" if hi is None else f"<= {hi}"
    return "in range"


def _schema_error_lines(error) -> list[str]:
    """One or more problem lines for a jsonschema ``ValidationError``."""
    path = format_path(error.absolute_path)
    v, schema, inst = error.validator, error.schema, error.instance
    if "propertyNames" in error.absolute_schema_path:
        return [f"{path}: {inst!r} is not a valid name (use letters, digits, '_', '.', '-'; start with a letter or digit)"]
    if v == "additionalProperties" and isinstance(inst, Mapping):
        allowed = sorted((schema.get("properties") or {}).keys())
        extra = [k for k in inst if k not in allowed]
        lines = []
        for key in extra:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(f"{_join(path, str(key))}: unknown key{did}; allowed keys here: {', '.join(allowed)}")
        return lines
    if v == "required":
        missing = [k for k in schema.get("required", []) if isinstance(inst, Mapping) and k not in inst]
        return [f"{_join(path, k)}: required key is missing" for k in missing]
    if v == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        return [f"{path}: {_show(inst)} has the wrong type; expected {expected}"]
    if v in ("enum", "const"):
        allowed = error.validator_value if v == "enum" else [error.validator_value]
        return [f"{path}: {_show(inst)} is not allowed; allowed values: {', '.join(_show(a) for a in allowed)}"]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [f"{path}: {_show(inst)} is out of range; expected a value {_range_text(schema)}"]
    if v == "pattern":
        desc = schema.get("description")
        extra = f" ({desc})" if desc else ""
        return [f"{path}: {_show(inst)} does not match the pattern {error.validator_value!r}{extra}"]
    if v in ("minItems", "maxItems"):
        return [f"{path}: the list has {len(inst)} item(s); expected {'at least' if v == 'minItems' else 'at most'} "
                f"{error.validator_value}"]
    if v == "uniqueItems":
        return [f"{path}: the list {_show(inst)} has duplicate items"]
    if v in ("minProperties", "maxProperties"):
        n = error.validator_value
        if "label_set" in error.absolute_schema_path or ("maxProperties" in schema and schema["maxProperties"] == 1):
            return [f"{path}: give exactly one of {', '.join(sorted(schema.get('properties', {})))}"]
        return [f"{path}: expected {'at least' if v == 'minProperties' else 'at most'} {n} entr{'y' if n == 1 else 'ies'}"]
    if v == "minLength":
        return [f"{path}: {_show(inst)} is too short; expected at least {error.validator_value} character(s)"]
    return [f"{path}: {error.message}"]


def _schema_problems(params: Any, schema: Mapping) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    lines: set[str] = set()
    for error in errors:
        lines.update(_schema_error_lines(error))
    return sorted(lines)  # each line starts with its key path: sorted by key


def validate_params(params: Any, *, schema: Mapping | None = None, source: str = "params.yaml") -> dict:
    """Validate ``params`` (schema, then cross-references); return a deep copy.

    Raises :class:`ConfigError` listing every problem, each line naming its key path.
    Cross-references are checked only once the schema is satisfied.
    """
    schema = schema if schema is not None else load_schema()
    if not isinstance(params, Mapping):
        raise ConfigError([f"(top level): expected a mapping of sections, got {_show(params)}"], source)
    problems = _schema_problems(dict(params), schema)
    if problems:
        raise ConfigError(problems, source)
    problems = check_references(params)
    if problems:
        raise ConfigError(problems, source)
    return copy.deepcopy(dict(params))


def _defined(kind: str, names: Iterable[str]) -> str:
    names = sorted(names)
    return f"defined {kind}: {', '.join(names)}" if names else f"no {kind} are defined"


def check_references(params: Mapping) -> list[str]:
    """Problems with cross-references in schema-valid params (empty list: all good)."""
    out: list[str] = []
    benchmarks, datasets, methods = params["benchmarks"], params["datasets"], params["methods"]
    active = [b for b in params["run"]["benchmarks"]]
    for i, b in enumerate(active):
        if b not in benchmarks:
            out.append(f"run.benchmarks[{i}]: unknown benchmark {b!r}; {_defined('benchmarks', benchmarks)}")
    for i, m in enumerate(params["run"]["methods"]):
        if m not in methods:
            out.append(f"run.methods[{i}]: unknown method {m!r}; {_defined('methods', methods)}")

    for name, bench in benchmarks.items():
        where = f"benchmarks.{name}"
        if bench["backbone"] not in params["backbones"]:
            out.append(f"{where}.backbone: unknown backbone {bench['backbone']!r}; {_defined('backbones', params['backbones'])}")
        if bench["label_set"] not in params["label_sets"]:
            out.append(f"{where}.label_set: unknown label set {bench['label_set']!r}; "
                       f"{_defined('label sets', params['label_sets'])}")
        if bench["id"] not in datasets:
            out.append(f"{where}.id: unknown dataset {bench['id']!r}; {_defined('datasets', datasets)}")
        seen: dict[str, str] = {}
        for split, names in bench["ood"].items():
            for j, ds in enumerate(names):
                key = f"{where}.ood.{split}[{j}]"
                if ds not in datasets:
                    out.append(f"{key}: unknown dataset {ds!r}; {_defined('datasets', datasets)}")
                if ds == bench["id"]:
                    out.append(f"{key}: {ds!r} is the benchmark's ID set; it cannot also be an OOD set")
                if ds in seen:
                    out.append(f"{key}: {ds!r} is listed twice (also in {seen[ds]})")
                seen.setdefault(ds, key)

    # what an active benchmark needs
    for b in active:
        if b not in benchmarks:
            continue
        bench = benchmarks[b]
        used = [(bench["id"], "ID")] + [(ds, f"{split}-OOD") for split, names in bench["ood"].items() for ds in names]
        for ds, role in used:
            cfg = datasets.get(ds)
            if cfg is None:
                continue
            why = f"run.benchmarks includes {b!r}, which uses dataset {ds!r} ({role})"
            if cfg["source"] == "local":
                if cfg.get("root") is None:
                    out.append(f"datasets.{ds}.root: not set (null), but {why}; set it to the folder holding the images")
                if cfg.get("layout") == "list" and cfg.get("list") is None:
                    out.append(f"datasets.{ds}.list: not set (null), but {why}; set it to the image list file")
            if role == "ID":
                if cfg.get("layout") == "flat":
                    out.append(f"datasets.{ds}.layout: 'flat' gives no class labels, but {why}; "
                               f"use 'class_folders' or 'list'")
                if cfg["source"] == "demo" and cfg.get("split") != "id":
                    out.append(f"datasets.{ds}.split: {cfg.get('split')!r} has no class labels, but {why}; use 'id'")

    # group counts must fit the mined bank
    mining = params["mining"]
    if mining["selection"] == "proportional":
        m = mining["n_negatives"]
        for name, cfg in methods.items():
            groups = cfg.get("n_groups") if cfg["method"] == "neglabel" else (
                (cfg.get("config") or {}).get("n_groups", 5) if cfg["method"] == "adaneg" else None)
            key = f"methods.{name}.n_groups" if cfg["method"] == "neglabel" else f"methods.{name}.config.n_groups"
            if groups is not None and groups > m:
                out.append(f"{key}: {groups} groups exceed the {m} mined negatives (mining.n_negatives); "
                           f"expected a value <= {m}")

    # the MLLM backend's own keys
    mllm = params["mllm"]
    backend = mllm["backend"]
    valid = set(MLLM_BACKEND_KEYS[backend])
    common = {"backend", "family", "prompts", "generation", "batch_size", *MLLM_WORKFLOW_KEYS}
    for key in mllm:
        if key not in valid and key not in common:
            owners = [b for b, keys in MLLM_BACKEND_KEYS.items() if key in keys]
            out.append(f"mllm.{key}: not a setting of backend {backend!r} (it belongs to {', '.join(owners)}); "
                       f"settings of {backend!r}: {', '.join(sorted(valid))}")
    for key in _MLLM_REQUIRED[backend]:
        if key not in mllm:
            out.append(f"mllm.{key}: required for backend {backend!r}")
    return out
