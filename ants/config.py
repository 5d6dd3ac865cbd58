"""The workflow's parameters (``params.yaml`` and the ready configs): load, merge, validate.

``params.yaml`` is the single source of truth: Snakemake's configfile and DVC's params. A ready
config (``configs/*.yaml``) is merged over it the way Snakemake merges ``--configfile`` files
(:func:`merge_config`: mappings merge key by key, any other value, lists included, replaces).
Everything is validated before any job runs, in these steps:

1. reading: a YAML syntax error or a **duplicate key** (YAML would silently keep the last one)
   is an error naming the file and line (:func:`read_yaml`);
2. the JSON schema ``ants/schemas/params.schema.yaml`` (package data; types, ranges, allowed
   values; every key required; unknown keys rejected). Stricter than plain JSON Schema: a whole
   number must be written as one (``32.0`` is not an integer here), and NaN / inf are rejected
   everywhere. :class:`~ants.methods.ants_switches.AntsConfig` checks its fields against the
   same definitions (:func:`definition_checker`);
3. cross-references (:func:`check_references`): a benchmark names datasets, a label set and a
   backbone that exist; group counts fit the mined negatives; the selected MLLM backend has its
   required settings; prompt templates and generation settings are valid
   (``ants.mllm.prompts.validate_prompting``); sweeps name existing methods, benchmarks and
   settings, and each of their values is valid for its setting;
4. data on disk (:func:`check_data`, skipped with ``check_files=False``): every dataset an
   active benchmark needs (``run.benchmarks`` and the benchmarks of the selected sweeps) has its
   root folder, image list and a readable label file (no duplicate names); class folders match
   the label set (as many, none without images, none named like the class of another line);
   the settings fit the data (``near_top_k`` <= the classes, ``mining.n_negatives`` <= the
   candidate pool); ``mllm.cache`` can be created or written. Downloaded datasets are fetched
   by a job and not checked.

Every problem is reported on one line that starts with the key path (``run.seeds[1]``,
``methods.adaneg.config.lam``) and says what the bad value is and what would be valid;
:class:`ConfigError` carries them all. When several files were merged
(:func:`load_config_files`), each line also names the file that set the key.

The views the rules pass as ``params`` (the subset of the params each stage depends on) live
in :mod:`ants.views`.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ants.datasets.location import dataset_location  # where the manifest stage looks
from ants.datasets.registry import KNOWN_DATASETS
from ants.mllm import BACKEND_REQUIRED_SETTINGS, BACKEND_SETTINGS

__all__ = [
    "SCHEMA_PATH",
    "ConfigError",
    "active_benchmarks",
    "check_data",
    "check_references",
    "check_paper",
    "check_sweeps",
    "paper_sweeps",
    "sweep_value",
    "definition_checker",
    "dvc_restore_hint",
    "format_path",
    "load_config_files",
    "load_params",
    "load_schema",
    "merge_config",
    "read_yaml",
    "selected_sweeps",
    "sweep_targets",
    "validate_params",
]

#: The params JSON schema, shipped in the package (so an installed ``ants`` validates too).
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "params.schema.yaml"


class ConfigError(ValueError):
    """The params are not valid. ``problems`` holds one line per problem, each starting with
    the key path (or ``file:line`` for a reading problem); the message lists them all."""

    def __init__(self, problems: Iterable[str], source: str = "params.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        head = f"{source} is not valid ({n} problem{'s' if n != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


# --------------------------------------------------------------------------------------------
# reading and merging


@lru_cache(maxsize=4)
def _schema_at(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_schema(path: str | Path | None = None) -> dict:
    """The params JSON schema (a dict), read from ``path`` or :data:`SCHEMA_PATH`."""
    path = Path(path) if path is not None else SCHEMA_PATH
    if not path.is_file():
        raise FileNotFoundError(f"params schema not found: {path}")
    return copy.deepcopy(_schema_at(str(path.resolve())))


def _duplicate_keys(node: yaml.Node, parts: list, source: str, out: list[str]) -> None:
    """Walk a composed YAML node tree; one line per key that occurs twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' may override on purpose
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                out.append(
                    f"{format_path([*parts, key])}: duplicate key in {source} (line {seen[key]} and "
                    f"line {line}); YAML would silently keep only the last one: remove one of them"
                )
            else:
                seen[key] = line
            _duplicate_keys(value_node, [*parts, key], source, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, [*parts, i], source, out)


def read_yaml(path: str | os.PathLike) -> Any:
    """The content of a YAML (or JSON) file, with **duplicate keys rejected**.

    Raises ``FileNotFoundError`` for a missing file and :class:`ConfigError` (source = the
    file) for a syntax error or for keys that occur twice in one mapping, naming the key path
    and both lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    text = path.read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: faster
    try:
        root = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ConfigError([f"(file): not valid YAML: {exc}"], source=str(path)) from exc
    problems: list[str] = []
    if root is not None:
        _duplicate_keys(root, [], str(path), problems)
    if problems:
        raise ConfigError(problems, source=str(path))
    return data


def merge_config(
    base: Any,
    override: Any,
    *,
    source: str | None = None,
    provenance: dict[str, str] | None = None,
    _parts: tuple = (),
) -> Any:
    """``override`` merged over ``base`` as Snakemake merges config files (returns a new object).

    A mapping merges key by key (recursively); any other value, a list included, replaces
    what was there. So an empty mapping in ``override`` changes nothing, and a list replaces
    the whole list. ``provenance`` (key path -> file), when given, records for every key that
    ``override`` sets that ``source`` set it.
    """
    if provenance is not None and source is not None and _parts:
        provenance[format_path(_parts)] = source
    if not isinstance(override, Mapping):
        return copy.deepcopy(override)
    out = dict(base) if isinstance(base, Mapping) else {}
    for key, value in override.items():
        out[key] = merge_config(
            out.get(key), value, source=source, provenance=provenance, _parts=(*_parts, key)
        )
    return out


def _plain(obj: Any) -> Any:
    """Mappings (e.g. Snakemake's immutable ``--config`` map) as dicts, recursively."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _annotate(problems: Sequence[str], provenance: Mapping[str, str]) -> list[str]:
    """Append to each problem line the file that set its key (longest known key-path prefix)."""
    out = []
    for line in problems:
        path = line.split(": ", 1)[0]
        where = None
        while path:
            if path in provenance:
                where = provenance[path]
                break
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        if where == "--config" and "has the wrong type" in line and ": '" in line:
            where += (
                "; Snakemake passes values nested in a --config mapping as strings: set them in a "
                "--configfile instead"
            )
        out.append(f"{line} (set in {where})" if where else line)
    return out


def load_params(
    path: str | os.PathLike = "params.yaml",
    *,
    schema: Mapping | None = None,
    check_files: bool = True,
) -> dict:
    """Read and validate one params file; raises :class:`ConfigError` naming every bad key."""
    return validate_params(
        read_yaml(path), schema=schema, source=str(path), check_files=check_files
    )


def load_config_files(
    paths: Sequence[str | os.PathLike],
    *,
    overrides: Mapping | None = None,
    schema: Mapping | None = None,
    check_files: bool = True,
) -> dict:
    """Read ``paths`` (e.g. ``params.yaml`` then every ``--configfile``), merge them in that
    order as Snakemake does (:func:`merge_config`), apply ``overrides`` (Snakemake's
    ``--config KEY=VALUE`` settings) and validate the result (:func:`validate_params`).

    Each file is read with duplicate keys rejected (:func:`read_yaml`). A problem in the merged
    result names its key path and the file that set that key, e.g.
    ``mllm.backends.openai.base_url: ... (set in configs/mos4.yaml)``; the error's source lists
    every file. Returns the validated params.
    """
    if not paths and not overrides:
        raise ConfigError(["(top level): no config file was given"], source="(no config files)")
    provenance: dict[str, str] = {}
    merged: Any = {}
    reading: list[str] = []
    for path in paths:
        try:
            data = read_yaml(path)
        except FileNotFoundError:
            reading.append(f"{path}: config file not found")
            continue
        except ConfigError as err:
            reading += [
                p.replace("(file)", str(path), 1) if p.startswith("(file)") else p
                for p in err.problems
            ]
            continue
        if data is None:
            continue
        if not isinstance(data, Mapping):
            reading.append(
                f"{path}: (top level): expected a mapping of sections, got {_show(data)}"
            )
            continue
        merged = merge_config(merged, data, source=str(path), provenance=provenance)
    sources = [str(p) for p in paths]
    if overrides:
        merged = merge_config(merged, _plain(overrides), source="--config", provenance=provenance)
        sources.append("--config")
    source = " + ".join(sources)
    if reading:
        raise ConfigError(reading, source=source)
    try:
        return validate_params(merged, schema=schema, source=source, check_files=check_files)
    except ConfigError as err:
        raise ConfigError(_annotate(err.problems, provenance), source=source) from None


def dvc_restore_hint(paths: Sequence[str | os.PathLike], env: Mapping | None = None) -> str | None:
    """What to tell a user whose params failed inside a DVC stage (``DVC_STAGE`` is set: ``dvc
    repro``, ``dvc exp run``): ``dvc exp run -S key=value`` writes the value into params.yaml
    before the run and leaves it there when the run fails, so every later run fails too. When
    params.yaml (one of ``paths``) differs from git's last commit, the line says so and how to
    restore it; None outside DVC or when params.yaml is as committed."""
    env = os.environ if env is None else env
    if not env.get("DVC_STAGE"):
        return None
    params = next((Path(p) for p in paths if Path(p).name == "params.yaml"), None)
    if params is None or not params.is_file():
        return None
    import subprocess

    try:
        diff = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", params.name],
            cwd=params.parent,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if diff.returncode != 1:  # 0: as committed; other: no git repository, no commit
        return None
    return (
        f"{params} differs from the last commit (git diff {params.name}): a value given to "
        f"`dvc exp run -S` is written into it before the run and stays there when the run "
        f"fails. Restore the committed file with `git checkout HEAD -- {params.name}` (this "
        f"drops every uncommitted edit of it), then run again with a valid value."
    )


# --------------------------------------------------------------------------------------------
# schema validation


def format_path(parts: Iterable[Any]) -> str:
    """``['run', 'seeds', 1]`` -> ``'run.seeds[1]'``; the empty path is ``'(top level)'``."""
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "(top level)"


def _join(path: str, key: str) -> str:
    return key if path == "(top level)" else f"{path}.{key}"


def _show(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):  # numpy scalars too
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
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
        return [
            f"{path}: {inst!r} is not a valid name (use letters, digits, '_', '.', '-'; start with a letter or digit)"
        ]
    if v == "not" and isinstance(schema, Mapping) and "x-not-here" in schema:
        parts = list(error.absolute_path)
        method = parts[1] if len(parts) > 1 and parts[0] == "methods" else "<name>"
        return [
            f"{path}: not allowed here; {schema['x-not-here'].replace('{method}', str(method))}"
        ]
    if v == "additionalProperties" and isinstance(inst, Mapping):
        allowed = sorted((schema.get("properties") or {}).keys())
        extra = [k for k in inst if k not in allowed]
        lines = []
        for key in extra:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            owners = (
                [b for b, keys in BACKEND_SETTINGS.items() if key in keys] if path == "mllm" else []
            )
            if owners:
                did = (
                    f" (a setting of backend {' / '.join(owners)}: put it under "
                    f"{' or '.join(f'mllm.backends.{b}' for b in owners)})"
                )
            lines.append(
                f"{_join(path, str(key))}: unknown key{did}; allowed keys here: {', '.join(allowed)}"
            )
        return lines
    if v == "required":
        missing = [
            k for k in schema.get("required", []) if isinstance(inst, Mapping) and k not in inst
        ]
        return [f"{_join(path, k)}: required key is missing" for k in missing]
    if v == "type":
        types = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        hint = ""
        if (
            "integer" in types
            and isinstance(inst, float)
            and math.isfinite(inst)
            and inst.is_integer()
        ):
            hint = f" (a whole number: write {int(inst)}, without the decimal point)"
        return [f"{path}: {_show(inst)} has the wrong type; expected {expected}{hint}"]
    if v in ("enum", "const"):
        allowed = error.validator_value if v == "enum" else [error.validator_value]
        return [
            f"{path}: {_show(inst)} is not allowed; allowed values: {', '.join(_show(a) for a in allowed)}"
        ]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [f"{path}: {_show(inst)} is out of range; expected a value {_range_text(schema)}"]
    if v == "pattern":
        if "x-expected" in schema:
            return [f"{path}: {_show(inst)} is not allowed; expected {schema['x-expected']}"]
        desc = schema.get("description")
        extra = f" ({desc})" if desc else ""
        return [
            f"{path}: {_show(inst)} does not match the pattern {error.validator_value!r}{extra}"
        ]
    if v in ("minItems", "maxItems"):
        return [
            f"{path}: the list has {len(inst)} item(s); expected {'at least' if v == 'minItems' else 'at most'} "
            f"{error.validator_value}"
        ]
    if v == "uniqueItems":
        return [f"{path}: the list {_show(inst)} has duplicate items"]
    if v in ("minProperties", "maxProperties"):
        n = error.validator_value
        if "label_set" in error.absolute_schema_path or (
            "maxProperties" in schema and schema["maxProperties"] == 1
        ):
            return [
                f"{path}: give exactly one of {', '.join(sorted(schema.get('properties', {})))}"
            ]
        return [
            f"{path}: expected {'at least' if v == 'minProperties' else 'at most'} {n} entr{'y' if n == 1 else 'ies'}"
        ]
    if v == "minLength":
        return [
            f"{path}: {_show(inst)} is too short; expected at least {error.validator_value} character(s)"
        ]
    return [f"{path}: {error.message}"]


@lru_cache(maxsize=1)
def _validator_class():
    """Draft 2020-12 with stricter types: an integer is an integral number (``int``, a numpy
    integer; not ``32.0``, not a bool) and a number is a finite real (not a bool, not NaN or
    inf)."""
    from jsonschema import Draft202012Validator, validators

    def is_integer(checker, instance):
        return isinstance(instance, numbers.Integral) and not isinstance(instance, bool)

    def is_number(checker, instance):
        if isinstance(instance, bool) or not isinstance(instance, numbers.Real):
            return False
        return isinstance(instance, numbers.Integral) or math.isfinite(instance)

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": is_integer, "number": is_number}
    )
    return validators.extend(Draft202012Validator, type_checker=checker)


def _validator(schema: Mapping):
    return _validator_class()(schema)


def _inline_refs(node: Any, defs: Mapping) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/x"}`` replaced by that definition (a sibling
    keyword the definition also has is kept beside it, in an ``allOf``)."""
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if ref is None:
        return out
    if not str(ref).startswith("#/$defs/"):
        raise ValueError(f"only references into $defs can be inlined, got {ref!r}")
    target = _inline_refs(defs[ref[len("#/$defs/") :]], defs)
    return {**target, **out} if not set(target) & set(out) else {"allOf": [target, out]}


def definition_checker(definition: Mapping, name: str) -> Callable[[Any], list[str]]:
    """A check of one value against ``definition`` (a schema whose ``$ref``s point into the
    params schema's ``$defs``): it returns the problem lines, formatted as params problems
    are, with ``name`` as the key path's head (``AntsConfig.eta: 1.5 is out of range; ...``).
    For objects that validate their fields with the params schema's own definitions; the
    references are resolved once, here, which makes each check several times faster."""
    defs = _schema_at(str(SCHEMA_PATH))["$defs"]
    schema = {"type": "object", "properties": {name: _inline_refs(definition, defs)}}
    validator = _validator(schema)
    return lambda value: _schema_problems({name: value}, validator)


def _nonfinite_paths(obj: Any, parts: tuple = ()) -> list[tuple]:
    if isinstance(obj, float) and not math.isfinite(obj):
        return [parts]
    if isinstance(obj, Mapping):
        return [p for k, v in obj.items() for p in _nonfinite_paths(v, (*parts, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _nonfinite_paths(v, (*parts, i))]
    return []


def _schema_problems(params: Any, validator) -> list[str]:
    errors = sorted(
        validator.iter_errors(params), key=lambda e: (list(map(str, e.absolute_path)), e.validator)
    )
    lines: set[str] = set()
    nonfinite = {format_path(p) for p in _nonfinite_paths(params)}
    for error in errors:
        path = format_path(error.absolute_path)
        if path in nonfinite and error.validator == "type":
            inst, schema = error.instance, error.schema
            rng = _range_text(schema)
            allowed = "a finite number" + (f" {rng}" if rng != "in range" else "")
            if isinstance(error.validator_value, list) and "null" in error.validator_value:
                allowed += " or null"
            lines.add(f"{path}: {_show(inst)} is not allowed; expected {allowed}")
            nonfinite.discard(path)
            continue
        lines.update(_schema_error_lines(error))
    for path in nonfinite:  # NaN / inf where the schema has no number type (free-form mappings)
        lines.add(f"{path}: NaN and infinite values are not allowed; expected a finite number")
    return sorted(lines)  # each line starts with its key path: sorted by key


def validate_params(
    params: Any,
    *,
    schema: Mapping | None = None,
    source: str = "params.yaml",
    check_files: bool = True,
) -> dict:
    """Validate ``params`` (schema, then cross-references and sweeps, then data on disk unless
    ``check_files`` is false); return a deep copy.

    Raises :class:`ConfigError` listing every problem, each line naming its key path.
    Cross-references are checked only once the schema is satisfied.
    """
    schema = schema if schema is not None else load_schema()
    if not isinstance(params, Mapping):
        raise ConfigError(
            [f"(top level): expected a mapping of sections, got {_show(params)}"], source
        )
    params = dict(params)
    validator = _validator(schema)
    problems = _schema_problems(params, validator)
    if problems:
        raise ConfigError(problems, source)
    problems = check_references(params)
    if not problems:
        problems = check_sweeps(params, validator) + check_paper(params)
    if check_files:
        problems += check_data(params)
    if problems:
        raise ConfigError(problems, source)
    return copy.deepcopy(params)


# --------------------------------------------------------------------------------------------
# cross-references


def _defined(kind: str, names: Iterable[str]) -> str:
    names = sorted(names)
    return f"defined {kind}: {', '.join(names)}" if names else f"no {kind} are defined"


def _prompting_problems(mllm: Mapping) -> list[str]:
    """Prompt templates and generation settings, checked by ``ants.mllm.prompts``."""
    from ants.mllm import prompts as prompts_module

    validate = getattr(prompts_module, "validate_prompting", None)
    if validate is not None:
        lines = list(
            validate(mllm["family"], mllm.get("prompts") or {}, mllm.get("generation") or {})
        )
    else:  # older ants.mllm.prompts: the first problem, from constructing the Prompting
        try:
            prompts_module.Prompting(
                family=mllm["family"],
                prompts=dict(mllm.get("prompts") or {}),
                generation={k: dict(v or {}) for k, v in (mllm.get("generation") or {}).items()},
            )
            lines = []
        except ValueError as exc:
            lines = [str(exc)]
    return [line if line.startswith("mllm.") else f"mllm.{line}" for line in lines]


def check_references(params: Mapping) -> list[str]:
    """Problems with cross-references in schema-valid params (empty list: all good)."""
    out: list[str] = []
    benchmarks, datasets, methods = params["benchmarks"], params["datasets"], params["methods"]
    active = list(params["run"]["benchmarks"])
    for i, b in enumerate(active):
        if b not in benchmarks:
            out.append(
                f"run.benchmarks[{i}]: unknown benchmark {b!r}; {_defined('benchmarks', benchmarks)}"
            )
    for i, m in enumerate(params["run"]["methods"]):
        if m not in methods:
            out.append(f"run.methods[{i}]: unknown method {m!r}; {_defined('methods', methods)}")

    for name, bench in benchmarks.items():
        where = f"benchmarks.{name}"
        if bench["backbone"] not in params["backbones"]:
            out.append(
                f"{where}.backbone: unknown backbone {bench['backbone']!r}; {_defined('backbones', params['backbones'])}"
            )
        if bench["label_set"] not in params["label_sets"]:
            out.append(
                f"{where}.label_set: unknown label set {bench['label_set']!r}; "
                f"{_defined('label sets', params['label_sets'])}"
            )
        if bench["id"] not in datasets:
            out.append(
                f"{where}.id: unknown dataset {bench['id']!r}; {_defined('datasets', datasets)}"
            )
        seen: dict[str, str] = {}
        for split, names in bench["ood"].items():
            for j, ds in enumerate(names):
                key = f"{where}.ood.{split}[{j}]"
                if ds not in datasets:
                    out.append(f"{key}: unknown dataset {ds!r}; {_defined('datasets', datasets)}")
                if ds == bench["id"]:
                    out.append(
                        f"{key}: {ds!r} is the benchmark's ID set; it cannot also be an OOD set"
                    )
                if ds in seen:
                    out.append(f"{key}: {ds!r} is listed twice (also in {seen[ds]})")
                seen.setdefault(ds, key)

    # what an active benchmark needs, beyond files on disk (check_data)
    for b in active_benchmarks(params):
        bench = benchmarks[b]
        cfg = datasets.get(bench["id"])
        if cfg is None:
            continue
        ds = bench["id"]
        why = f"{_why(params, b)}, which uses dataset {ds!r} (ID)"
        if cfg.get("layout") == "flat":
            out.append(
                f"datasets.{ds}.layout: 'flat' gives no class labels, but {why}; "
                f"use 'class_folders' or 'list'"
            )
        if cfg["source"] == "demo" and cfg.get("split") != "id":
            out.append(
                f"datasets.{ds}.split: {cfg.get('split')!r} has no class labels, but {why}; use 'id'"
            )

    # NegMining's lexicographer files (a typo would fail the mining job)
    mining = params["mining"]
    from ants.wordnet import LEXNAMES

    for i, name in enumerate(mining["exclude_lexnames"]):
        if name not in LEXNAMES:
            hint = difflib.get_close_matches(name, LEXNAMES, n=1)
            out.append(
                f"mining.exclude_lexnames[{i}]: {name!r} is not a WordNet 3.0 lexicographer file"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + "; expected names such as 'noun.person', 'adj.pert' (ants.wordnet.LEXNAMES)"
            )

    # group counts must fit the mined bank
    if mining["selection"] == "proportional":
        m = mining["n_negatives"]
        for name, cfg in methods.items():
            groups = (
                cfg.get("n_groups")
                if cfg["method"] == "neglabel"
                else (
                    (cfg.get("config") or {}).get("n_groups", 5)
                    if cfg["method"] == "adaneg"
                    else None
                )
            )
            key = (
                f"methods.{name}.n_groups"
                if cfg["method"] == "neglabel"
                else f"methods.{name}.config.n_groups"
            )
            if groups is not None and groups > m:
                out.append(
                    f"{key}: {groups} groups exceed the {m} mined negatives (mining.n_negatives); "
                    f"expected a value <= {m}"
                )

    # the MLLM: the selected backend's settings, prompts and generation settings
    mllm = params["mllm"]
    out += _mllm_problems(mllm)
    # an EOE method's own LLM: its overrides merged over mllm must be a valid mllm section
    for name, cfg in methods.items():
        if cfg["method"] == "eoe" and cfg.get("llm"):
            merged = merge_config(mllm, cfg["llm"])
            validator = _section_validator(load_schema(), "mllm")
            lines = _schema_problems(merged, validator) or _mllm_problems(merged)
            out += [f"methods.{name}.llm (merged over mllm): {line}" for line in lines]
    return out


def _mllm_problems(mllm: Mapping) -> list[str]:
    """The selected backend's settings are there, with the required ones; prompts and
    generation settings are valid."""
    out = []
    backend = mllm["backend"]
    settings = mllm["backends"].get(backend)
    if settings is None:
        out.append(
            f"mllm.backends.{backend}: required, since mllm.backend is {backend!r} (its settings: "
            f"{', '.join(BACKEND_SETTINGS[backend])})"
        )
    else:
        for key in BACKEND_REQUIRED_SETTINGS[backend]:
            if key not in settings:
                out.append(f"mllm.backends.{backend}.{key}: required for backend {backend!r}")
    return out + _prompting_problems(mllm)


# --------------------------------------------------------------------------------------------
# sweeps


def selected_sweeps(params: Mapping) -> list[str]:
    """The sweeps the ``sweeps`` target builds: ``run.sweeps``, or every defined sweep."""
    sweeps = params.get("sweeps") or {}
    chosen = params["run"].get("sweeps")
    return [s for s in (chosen if chosen is not None else sweeps) if s in sweeps]


def paper_sweeps(params: Mapping) -> list[str]:
    """The sweeps the ``paper`` target builds: ``paper.panels`` and ``paper.ablation`` (when
    the ablation table is one of ``paper.tables``), defined ones only, in that order."""
    paper = params.get("paper") or {}
    names = list(paper.get("panels") or [])
    if "ablation" in (paper.get("tables") or []) and paper.get("ablation"):
        names.append(paper["ablation"])
    sweeps = params.get("sweeps") or {}
    return [s for i, s in enumerate(names) if s in sweeps and s not in names[:i]]


def active_benchmarks(params: Mapping) -> list[str]:
    """The benchmarks whose data must be present: ``run.benchmarks`` and those of the selected
    sweeps and of the paper's sweeps (defined ones only, in first-seen order)."""
    names = list(params["run"]["benchmarks"])
    for s in selected_sweeps(params) + paper_sweeps(params):
        names += list(params["sweeps"][s]["benchmarks"])
    return [b for i, b in enumerate(names) if b in params["benchmarks"] and b not in names[:i]]


def _why(params: Mapping, benchmark: str) -> str:
    if benchmark in params["run"]["benchmarks"]:
        return f"run.benchmarks includes {benchmark!r}"
    sweeps = [
        s
        for s in selected_sweeps(params) + paper_sweeps(params)
        if benchmark in params["sweeps"][s]["benchmarks"]
    ]
    return f"sweep {sweeps[0]!r} uses benchmark {benchmark!r}"


def check_paper(params: Mapping) -> list[str]:
    """Problems of the ``paper`` section: its panels and ablation name defined sweeps; an
    ablation table names its sweep."""
    paper = params.get("paper")
    if not paper:
        return []
    out: list[str] = []
    sweeps = params.get("sweeps") or {}
    for i, s in enumerate(paper.get("panels") or []):
        if s not in sweeps:
            out.append(f"paper.panels[{i}]: unknown sweep {s!r}; {_defined('sweeps', sweeps)}")
    abl = paper.get("ablation")
    if abl is not None and abl not in sweeps:
        out.append(f"paper.ablation: unknown sweep {abl!r}; {_defined('sweeps', sweeps)}")
    if "ablation" in paper["tables"] and abl is None:
        out.append(
            "paper.ablation: required, since paper.tables lists 'ablation' (the sweep whose "
            "points are the ablation rows)"
        )
    return out


def sweep_targets(params: Mapping, sweep: str) -> list[tuple[str | None, str]]:
    """``[(method or None, dotted setting path), ...]`` of a sweep: one per method when the
    setting contains ``{method}``, else one entry with method None."""
    sw = params["sweeps"][sweep]
    setting = sw["setting"]
    if "{method}" in setting:
        return [(m, setting.replace("{method}", m)) for m in sw["methods"]]
    return [(None, setting)]


def _container(params: Mapping, path: str) -> tuple[Mapping | None, str, str]:
    """Resolve ``a.b.c`` (names may contain dots): (the mapping holding the last key, that key,
    '') or (None, '', why not)."""
    parts = path.split(".")

    def walk(node: Any, i: int, prefix: str) -> tuple[Mapping | None, str, str]:
        if not isinstance(node, Mapping):
            return None, "", f"{prefix} is {_show(node)}, not a mapping"
        deeper = ""
        # the last key may be absent (an optional setting): try the longest existing key first
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if j == len(parts):
                if key in node or j == i + 1:
                    return node, key, ""
                continue
            if key in node:
                found = walk(node[key], j, f"{prefix}.{key}" if prefix else key)
                if found[0] is not None:
                    return found
                deeper = deeper or found[2]
        if deeper:
            return None, "", deeper
        keys = ", ".join(sorted(map(str, node))) or "(none)"
        return None, "", f"{prefix or '(top level)'} has no key {parts[i]!r} (its keys: {keys})"

    return walk(params, 0, "")


def _section_validator(schema: Mapping, section: str):
    """A validator of one top-level section (validating a sweep's trial values section by
    section is much faster than validating the whole params each time)."""
    sub = (schema.get("properties") or {}).get(section)
    if sub is None:
        return None
    return _validator({"$defs": schema.get("$defs", {}), **sub})


def _section_problems(
    trial: Mapping, section: str, section_validator, validator, method: str | None = None
) -> list[str]:
    if section_validator is None or section not in trial:
        return _schema_problems(trial, validator)
    part = trial[section]
    if section == "methods" and method is not None and method in part:
        part = {method: part[method]}  # the other methods are unchanged (and valid)
    lines = _schema_problems(part, section_validator)
    out = []
    for line in lines:  # paths are relative to the section
        head, _, rest = line.partition(": ")
        head = (
            section
            if head == "(top level)"
            else (f"{section}{head}" if head.startswith("[") else f"{section}.{head}")
        )
        out.append(f"{head}: {rest}")
    return out


def sweep_value(current: Any, value: Any, merge: bool = False) -> Any:
    """What a sweep point puts at its setting: ``value`` itself, or, for a sweep with
    ``merge: true``, ``value`` (a mapping) merged over the ``current`` mapping there
    (:func:`merge_config`: key by key, lists replace)."""
    if merge:
        return merge_config(current if isinstance(current, Mapping) else {}, value)
    return copy.deepcopy(value)


def _set(params: Mapping, path: str, value: Any, merge: bool = False) -> dict:
    out = copy.deepcopy(dict(params))
    node, key, _ = _container(out, path)
    node[key] = sweep_value(node.get(key), value, merge)
    return out


def check_sweeps(params: Mapping, validator=None) -> list[str]:
    """Problems of ``sweeps`` and ``run.sweeps`` in otherwise valid params.

    Checked: selected sweeps exist; a sweep's methods and benchmarks exist; ``labels`` has one
    entry per value; ``default`` is one of the values; the setting exists for each method
    (``{method}`` substituted); and every value is valid for that setting: the params with the
    value put in are validated (files are not re-checked), a problem reported as
    ``sweeps.<name>.values[i]: <the problem>``.
    """
    out: list[str] = []
    sweeps = params.get("sweeps") or {}
    chosen = params["run"].get("sweeps")
    for i, s in enumerate(chosen or []):
        if s not in sweeps:
            out.append(f"run.sweeps[{i}]: unknown sweep {s!r}; {_defined('sweeps', sweeps)}")
    validator = validator if validator is not None else _validator(load_schema())
    for name, sw in sweeps.items():
        where = f"sweeps.{name}"
        bad_ref = False
        for i, m in enumerate(sw["methods"]):
            if m not in params["methods"]:
                out.append(
                    f"{where}.methods[{i}]: unknown method {m!r}; {_defined('methods', params['methods'])}"
                )
                bad_ref = True
        for i, b in enumerate(sw["benchmarks"]):
            if b not in params["benchmarks"]:
                out.append(
                    f"{where}.benchmarks[{i}]: unknown benchmark {b!r}; "
                    f"{_defined('benchmarks', params['benchmarks'])}"
                )
        values = sw["values"]
        if "labels" in sw and len(sw["labels"]) != len(values):
            out.append(
                f"{where}.labels: {len(sw['labels'])} label(s) for {len(values)} value(s); "
                f"give one label per value"
            )
        if "default" in sw and sw["default"] not in values:
            out.append(
                f"{where}.default: {_show(sw['default'])} is not one of the values {_show(values)}"
            )
        if bad_ref:
            continue
        for method, path in sweep_targets(params, name):
            for_m = f" for method {method!r}" if method else ""
            in_score = (params["methods"].get(method) or {}).get("in_score") if method else None
            if (
                path.endswith(".config.fixed_lambda")
                and in_score
                and "ada" not in in_score.values()
            ):
                # lambda only weighs the two scores of in_score `ada`: the sweep would be flat
                out.append(
                    f"{where}.methods: {method!r} reports in_score {_show(dict(in_score))}, which never "
                    f"reads lambda, so {path!r} changes nothing; sweep a method with in_score 'ada'"
                )
                continue
            node, key, why = _container(params, path)
            if node is None:
                out.append(f"{where}.setting: {path!r}{for_m} does not exist: {why}")
                continue
            first = True
            section = _section_validator(validator.schema, path.split(".")[0])
            if sw.get("merge"):
                if not isinstance(node.get(key), Mapping):
                    out.append(
                        f"{where}.setting: {path!r}{for_m} is {_show(node.get(key))}, not a mapping; "
                        "merge: true merges each value into a mapping"
                    )
                    continue
                not_maps = [i for i, v in enumerate(values) if not isinstance(v, Mapping)]
                out += [
                    f"{where}.values[{i}]: {_show(values[i])} is not a mapping; with merge: true each "
                    f"value is merged into {path!r}"
                    for i in not_maps
                ]
                if not_maps:
                    continue
            for i, value in enumerate(values):
                trial = _set(params, path, value, bool(sw.get("merge")))
                found = _section_problems(trial, path.split(".")[0], section, validator, method)
                if not found:
                    found = check_references(trial)
                unknown = [p for p in found if p.startswith(f"{path}: unknown key")]
                if unknown:
                    if first:
                        out.append(
                            f"{where}.setting: {path!r}{for_m} is not a setting: {unknown[0]}"
                        )
                    break
                first = False
                out += [f"{where}.values[{i}]: {p}" for p in found]
    return out


# --------------------------------------------------------------------------------------------
# data on disk


class _Instructions:
    """A dataset's ``instructions`` in full the first time, then a pointer to them (several
    datasets of one source share the same text)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, ds: str, cfg: Mapping, default: str) -> str:
        text = cfg.get("instructions")
        if not text:  # the dataset registry's instructions for the benchmark datasets
            text = (KNOWN_DATASETS.get(ds) or {}).get("instructions")
        if not text:
            return default
        if text in self.seen:
            return f"{default} (see datasets.{self.seen[text]}.instructions)"
        self.seen[text] = ds
        return text


#: Sizes of built-in label sets that are slow to load (open_clip's ImageNet names import torch).
_BUILTIN_SIZES = {"imagenet1k": 1000}


class _LabelSets:
    """The class names of the label sets, read once per check: ``names(ls)`` (None when they
    cannot be known yet: a built-in set that is slow to load, a file still to be generated or
    missing), ``count(ls)`` and the problem of a label file that cannot be used."""

    def __init__(self, params: Mapping) -> None:
        self.params = params
        self.read: dict[str, tuple[list[str] | None, str | None]] = {}

    def _load(self, label_set: str) -> tuple[list[str] | None, str | None]:
        if label_set not in self.read:
            from ants.labels import load_label_set, read_classnames

            cfg = self.params["label_sets"].get(label_set) or {}
            names, problem = None, None
            try:
                if "builtin" in cfg and cfg["builtin"] not in _BUILTIN_SIZES:
                    names = load_label_set(cfg["builtin"])
                elif "file" in cfg and Path(cfg["file"]).expanduser().is_file():
                    names = read_classnames(Path(cfg["file"]).expanduser())
            except (OSError, ValueError) as exc:
                problem = str(exc)
            self.read[label_set] = (names, problem)
        return self.read[label_set]

    def names(self, label_set: str) -> list[str] | None:
        return self._load(label_set)[0]

    def problem(self, label_set: str) -> str | None:
        return self._load(label_set)[1]

    def count(self, label_set: str) -> int | None:
        cfg = self.params["label_sets"].get(label_set) or {}
        if cfg.get("builtin") in _BUILTIN_SIZES:
            return _BUILTIN_SIZES[cfg["builtin"]]
        names = self.names(label_set)
        return len(names) if names is not None else None


def check_data(params: Mapping) -> list[str]:
    """Files the active benchmarks need that are not where the params say or not usable, and
    settings that do not fit the data (empty: all good).

    For every dataset of an active benchmark (:func:`active_benchmarks`): a local dataset's
    ``root`` must be set and be a folder (with class sub-folders for ``class_folders``; for an
    ID set as many as its label set has classes, each holding an image, none named like the
    class of another line: :func:`ants.labels.misplaced_class_folders`), its image ``list``
    must be set and exist; a download's ``mirror`` / ``extracted`` folders, when given, must
    exist (downloads themselves are made by a job). A label set given as a file must exist
    (unless the demo generates it) and be readable (no duplicate names). ANTS's
    ``near_top_k`` must not exceed the number of classes; ``mining.n_negatives`` must not
    exceed NegMining's candidate pool; ``mllm.cache`` must be a file this user can create or
    write. Each line names the key, the value and what to do (the dataset's ``instructions``
    when it has them).
    """
    out: list[str] = []
    datasets = params["datasets"]
    done: set[str] = set()
    instructions = _Instructions()
    labels = _LabelSets(params)
    for b in active_benchmarks(params):
        bench = params["benchmarks"][b]
        used = [(bench["id"], "ID")] + [
            (ds, f"{split}-OOD") for split, names in bench["ood"].items() for ds in names
        ]
        for ds, role in used:
            cfg = datasets.get(ds)
            if cfg is None or ds in done:
                continue
            done.add(ds)
            why = f"{_why(params, b)}, which uses dataset {ds!r} ({role})"
            if cfg["source"] == "local":
                out += _local_problems(
                    params,
                    ds,
                    cfg,
                    why,
                    bench["label_set"] if role == "ID" else None,
                    instructions,
                    labels,
                )
            elif cfg["source"] == "download":
                for key in ("mirror", "extracted"):
                    folder = cfg.get(key)
                    if folder is not None and not Path(folder).expanduser().is_dir():
                        out.append(
                            f"datasets.{ds}.{key}: {folder!r} is not a folder, but {why}; "
                            f"give an existing folder or null (then the archive is downloaded from "
                            f"datasets.{ds}.url)"
                        )
                    elif (
                        key == "extracted"
                        and folder is not None
                        and not (Path(folder).expanduser() / cfg["root"]).is_dir()
                    ):
                        out.append(
                            f"datasets.{ds}.extracted: {folder!r} has no {cfg['root']!r} (datasets.{ds}.root), "
                            f"but {why}; point it at the folder the archive extracts into"
                        )
        ls = bench["label_set"]
        cfg = params["label_sets"].get(ls) or {}
        id_cfg = datasets.get(bench["id"]) or {}
        if "file" in cfg and ls not in done and id_cfg.get("source") != "demo":
            done.add(ls)
            if not Path(cfg["file"]).expanduser().is_file():
                out.append(
                    f"label_sets.{ls}.file: {cfg['file']!r} not found, but {_why(params, b)}, whose label "
                    f"set it is; give a text file with one class name per line (line order = class index)"
                )
            elif labels.problem(ls):
                out.append(
                    f"label_sets.{ls}.file: {labels.problem(ls)}; give every class one line "
                    f"(the label set of benchmark {b!r})"
                )
    out += _near_top_k_problems(params, labels)
    out += _mining_problems(params, labels)
    out += _cache_problems(params["mllm"]["cache"])
    return list(dict.fromkeys(out))


def _near_top_k_problems(params: Mapping, labels: _LabelSets) -> list[str]:
    """ANTS methods whose near-OOD subset takes more classes (``near_top_k``, with
    ``near_subset: top_k``) than the label set of a benchmark they run on has; the points of a
    sweep of one of their switches too (``sweeps.<name>.values[i]: ...``)."""
    from ants.methods.ants_switches import ants_config

    runs = [
        (b, m, params["methods"].get(m), None)
        for b in params["run"]["benchmarks"]
        for m in params["run"]["methods"]
    ]
    for s in selected_sweeps(params):
        spec = params["sweeps"][s]
        for m in spec["methods"]:
            head = f"methods.{m}.config."
            setting = spec["setting"].replace("{method}", m)
            cfg = params["methods"].get(m)
            if cfg is None or cfg["method"] != "ants" or not setting.startswith(head):
                continue  # only a switch of an ANTS config changes its near subset
            for i, value in enumerate(spec["values"]):
                point = {**cfg, "config": {**cfg["config"], setting[len(head) :]: value}}
                runs += [(b, m, point, f"sweeps.{s}.values[{i}]") for b in spec["benchmarks"]]
    out = []
    for b, m, cfg, where in runs:
        if cfg is None or cfg["method"] != "ants" or b not in params["benchmarks"]:
            continue
        try:
            switches = ants_config(cfg["config"])
        except (TypeError, ValueError):
            continue  # reported by the schema / sweep checks
        ls = params["benchmarks"][b]["label_set"]
        k = labels.count(ls)
        if switches.near_subset != "top_k" or k is None or switches.near_top_k <= k:
            continue
        given = "near_top_k" in cfg["config"]
        line = (
            f"methods.{m}.config.near_top_k: {switches.near_top_k}"
            + ("" if given else " (its preset's default)")
            + f" is more than the {k} classes of label set {ls!r} of benchmark {b!r} (near_subset "
            f"'top_k' takes the near_top_k most predicted ID classes); expected a value <= {k}"
        )
        out.append(f"{where}: {line}" if where else line)
    return out


def _mining_problems(params: Mapping, labels: _LabelSets) -> list[str]:
    """``mining.file`` missing when ``mining.source`` is ``file`` (the negatives are read, not
    mined: nothing else of ``mining`` applies); else ``mining.n_negatives`` larger than
    NegMining's candidate pool for a label set of an active benchmark (``proportional``
    selection only; the other modes keep a fraction)."""
    mining = params["mining"]
    if mining.get("source") == "file":
        file = mining.get("file")
        if not file or not Path(file).expanduser().is_file():
            return [
                f"mining.file: {file!r} not found, but mining.source is 'file'; give a text file "
                "of negative labels, one per line (e.g. NegLabel's selected_neg_labels_in1k_10k.txt), "
                "or set mining.source: wordnet to mine them"
            ]
        return []
    if mining["selection"] != "proportional":
        return []
    n = mining["n_negatives"]
    excluded = list(mining["exclude_lexnames"])
    from ants.wordnet import LEXNAMES

    if set(excluded) - set(LEXNAMES):
        return []  # an unknown lexicographer file: check_references names it
    if not excluded and n <= 40_000:  # WordNet 3.0 alone has 117,798 nouns: no need to count
        return []
    from ants.wordnet import candidate_pool_sizes

    try:
        sizes = candidate_pool_sizes(
            exclude_lexnames=excluded,
            drop_adjectives_that_are_nouns=mining["drop_adjectives_that_are_nouns"],
        )
    except (OSError, RuntimeError):
        return []  # an unusable corpus: the mining job says so, with the way to rebuild it
    out = []
    for ls in dict.fromkeys(
        params["benchmarks"][b]["label_set"] for b in active_benchmarks(params)
    ):
        names = labels.names(ls)
        found = sizes
        if names is not None and n > sum(sizes.values()) - len(names):
            found = _pool_without(names, excluded, mining)  # class names leave the pool
        pool = sum(found.values())
        if n > pool:
            cut = f" with mining.exclude_lexnames {_show(excluded)}" if excluded else ""
            out.append(
                f"mining.n_negatives: {n} is more than the {pool} WordNet candidates NegMining "
                f"can draw from{cut} for label set {ls!r} ({found['noun']} nouns, {found['adj']} "
                f"adjectives); expected a value <= {pool}"
                + (", or exclude fewer lexnames" if excluded else "")
            )
    return out


def _pool_without(names: Sequence[str], excluded: Sequence[str], mining: Mapping) -> dict:
    """NegMining's candidate pool sizes for ID class ``names`` (which are not candidates), as
    :func:`ants.mining.candidate_pools` finds them (it reads the corpus with pandas: only
    asked when the class names may decide)."""
    from ants.mining import candidate_pools
    from ants.wordnet import load_corpus

    pools = candidate_pools(
        load_corpus(),
        names,
        drop_adjectives_that_are_nouns=mining["drop_adjectives_that_are_nouns"],
        exclude_lexnames=excluded,
    )
    return {"noun": len(pools.nouns), "adj": len(pools.adjectives)}


def _cache_problems(cache: str) -> list[str]:
    """``mllm.cache`` must be a file path this user can create (its nearest existing folder
    writable) or write (the file and its folder: SQLite keeps -wal / -shm files beside it)."""
    path = Path(cache).expanduser()
    valid = "expected the path of the SQLite answer cache file (e.g. results/mllm-cache.sqlite)"
    if path.is_dir():
        return [f"mllm.cache: {cache!r} is a folder; {valid}"]
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return [
            f"mllm.cache: {cache!r} cannot be created: {str(folder)!r} is a file, not a folder; {valid}"
        ]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [
            f"mllm.cache: {cache!r} cannot be written: this user may not write in {str(folder)!r}"
            f"{' (where SQLite keeps its -wal and -shm files)' if folder == path.parent else ''}; "
            f"give a path in a folder you can write"
        ]
    if path.exists() and not os.access(path, os.W_OK):
        return [
            f"mllm.cache: {cache!r} is read-only for this user; make it writable or give "
            f"another path"
        ]
    return []


def _local_problems(
    params: Mapping,
    ds: str,
    cfg: Mapping,
    why: str,
    label_set: str | None,
    instructions: _Instructions,
    labels: _LabelSets,
) -> list[str]:
    out = []
    root = cfg.get("root")
    layout = cfg["layout"]
    todo = {
        "list": "the folder the image list's paths are relative to",
        "class_folders": "a folder with one sub-folder per class",
        "flat": "a folder holding the images",
    }[layout]
    if root is None:
        out.append(
            f"datasets.{ds}.root: not set (null), but {why}; "
            + instructions(ds, cfg, "set it to the folder holding the images")
        )
    else:
        folder = Path(root).expanduser()
        if not folder.is_dir():
            state = "is a file, not a folder" if folder.exists() else "does not exist"
            out.append(
                f"datasets.{ds}.root: {root!r} {state}, but {why}; "
                + instructions(ds, cfg, f"set it to {todo}")
            )
        elif layout == "class_folders":
            out += _class_folder_problems(ds, cfg, folder, label_set, instructions, labels)
    if layout == "list":
        if cfg.get("list") is None:
            out.append(
                f"datasets.{ds}.list: not set (null), but {why}; "
                + instructions(ds, cfg, "set it to the image list file")
            )
        elif (
            root is not None
            and Path(root).expanduser().is_dir()
            and not dataset_location(ds, cfg)[1].is_file()
        ):
            out.append(
                f"datasets.{ds}.list: {cfg['list']!r} not found (neither as given nor relative to "
                f"datasets.{ds}.root), but {why}; "
                + instructions(ds, cfg, "set it to the image list file")
            )
    return out


def _class_folder_problems(
    ds: str,
    cfg: Mapping,
    folder: Path,
    label_set: str | None,
    instructions: _Instructions,
    labels: _LabelSets,
) -> list[str]:
    """A ``class_folders`` root: class sub-folders present, none without images; for an ID set
    as many as its label set has classes, and none named like the class of another line
    (class index = sorted folder order = line order of the names)."""
    from ants.datasets.location import class_folder_names, dataset_extensions, holds_images
    from ants.labels import misplaced_class_folders

    root = cfg["root"]
    folders = class_folder_names(folder)
    if not folders:
        return [
            f"datasets.{ds}.root: {root!r} has no class sub-folders, but layout 'class_folders' "
            f"expects one sub-folder per class; "
            + instructions(ds, cfg, "fix the folder or the layout")
        ]
    out = []
    ext = dataset_extensions(cfg)
    empty = [f for f in folders if not holds_images(folder / f, ext)]
    if empty:
        more = f" (and {len(empty) - 1} more: {', '.join(empty[1:6])})" if len(empty) > 1 else ""
        out.append(
            f"datasets.{ds}.root: class folder {empty[0]!r} of {root!r} holds no image file "
            f"({', '.join(ext)}; datasets.{ds}.extensions){more}; a class without test images is "
            f"a mistake: put its images there, or remove the folder and its class name"
        )
    if label_set is None:
        return out
    k = labels.count(label_set)
    if k is not None and len(folders) != k:
        out.append(
            f"datasets.{ds}.root: {root!r} has {len(folders)} class sub-folders, but its label set "
            f"{label_set!r} has {k} classes (class index = sorted folder order); "
            + instructions(ds, cfg, "give a folder with one sub-folder per class")
        )
        return out
    names = labels.names(label_set)
    wrong = misplaced_class_folders(folders, names) if names is not None else []
    if wrong:
        i, j = wrong[0]
        file = labels.params["label_sets"][label_set].get("file")
        where = f"label set {label_set!r}" + (f" (label_sets.{label_set}.file)" if file else "")
        order = ", ".join(folders[:12]) + (
            f", ... ({len(folders)} in all)" if len(folders) > 12 else ""
        )
        out.append(
            f"datasets.{ds}.root: class folder {folders[i]!r} is class {i} (the {_ordinal(i + 1)} "
            f"folder in sorted order), whose name in {where} is {names[i]!r}, but {names[j]!r} is "
            f"class {j} there"
            + (
                f" ({len(wrong) - 1} more folders are named like another class)"
                if len(wrong) > 1
                else ""
            )
            + f"; the class names must be in the sorted order of the folders ({order}): put them "
            f"in that order, or rename the folders"
        )
    return out


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
