"""Every file the workflow writes: where it lives, what it holds, and the one validating reader.

Layout (``{...}`` are Snakemake wildcards; the rules take these templates from :func:`template`)::

    results/data/demo/{split}.txt, results/data/demo/classnames.txt   generated demo image lists
    results/data/downloads/{dataset}/extracted                         downloaded archive, extracted
    results/manifests/{dataset}.parquet                image files, labels, sha256, readable
    results/embeddings/{backbone}/{dataset}.parquet    image features (ants.embeddings)
    results/text/{backbone}/{label_set}.parquet        ID text features, one row per prompt (ID_PROMPTS)
    results/negatives/{backbone}/{label_set}.parquet   mined negatives (ants.mining)
    results/negatives/{backbone}/{label_set}/csp.parquet   CSP-mined negatives (initial_detector: csp)
    results/static/{backbone}/{label_set}/{dataset}/{scoring}.parquet   per-image S_nl, pred, lse_id
    results/streams/{benchmark}/{ood}/{stream_key}/seed{seed}.parquet   stream order
    results/plans/{benchmark}/{method}/{ood}/seed{seed}.parquet         planned MLLM queries
    results/answers/{benchmark}/{method}/{ood}/seed{seed}.parquet       the answers log (ants.answers_log)
    results/negatives-text/{benchmark}/{method}/{ood}/seed{seed}.parquet   its negatives' text features
    results/scores/{benchmark}/{method}/{ood}/seed{seed}.parquet        per-sample scores (+ ANTS trace)
    results/local/{backbone}/{label_set}/{dataset}/T{temperature}.parquet   GL-MCM's local term per image
    results/envisioned/{label_set}/{method}.parquet    EOE's LLM answers (an answers log: the envisioned labels)
    results/envisioned-text/{backbone}/{label_set}/{method}.parquet   their text features
    results/paper/{stem}.{ext}                         the ablation table (ants.paper_tables; `snakemake paper`)
    results/metrics.json                               DVC metrics: far/near average AUROC, FPR95 per method
    results/metrics/{benchmark}.csv                    every metric per dataset and split average (mean, std)
    results/metrics/{benchmark}_variants.csv           ANTS's score variants side by side
    results/plots/ants_trace.csv                       ANTS threshold, lambda, bank sizes per batch
    results/sweeps/{sweep}.csv                         one sensitivity sweep
    results/tables/{stem}.{ext}                        paper-shaped tables (csv, md, tex)
    results/logs/{rule}/..., results/benchmarks/{rule}/...   job logs, wall time and memory
    results/logs/answer/{benchmark}/{method}/{ood}/seed{seed}.timing.json   answer times, cache hits
    results/logs/envision/{label_set}/{method}.timing.json   EOE's answer times, cache hits
    results/text-features/{backbone}.sqlite            shared store of the negatives' text features
    results/mllm-cache.sqlite                          shared answer cache (params: mllm.cache)
    reports/index.html, reports/figures/{name}.png     the report
    reports/cost.{ext}                                 the cost table (run-dependent: beside the report)

Tables
------
Each Parquet and CSV artifact is declared once in :data:`ARTIFACTS` (:class:`Artifact`): its path
template, the Snakemake rule and ``ants`` command that write it, its required columns with their
types, and the metadata that gives its row count. Parquet files hold their metadata as JSON in
the schema (:func:`ants._io.write_table`, :mod:`ants.embeddings`). Every write is atomic.

Every reader goes through the same checks (:func:`read_parquet`, :func:`read_csv`,
:func:`read_metrics_json`, and :func:`ants.embeddings.read_embeddings` for the feature
tables): the file exists and is not empty, parses, has the required columns with the right
types, and holds as many rows as its metadata says. What fails raises :class:`ArtifactError`:
ONE line naming the file, what is wrong and how to rebuild it (``snakemake --forcerun`` of that
very file when it lies in a workflow's ``results/``, else the ``ants`` command that writes it).
The error carries ``path``, ``problem`` and ``rebuild`` so that the workflow can act on it; the
``ants`` command prints it and exits 2. The two SQLite stores have their own checks
(:mod:`ants.mllm.cache`, :mod:`ants.text_features`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ants._io import METADATA_KEY, atomic_path, write_json, write_table

if TYPE_CHECKING:  # the layout (templates, paths) imports no pandas / pyarrow: the rules parse fast
    import pandas as pd

__all__ = [
    "DAMAGED",
    "SET_ASIDE_ENV",
    "set_aside",
    "ARTIFACTS",
    "ID_PROMPTS",
    "MANIFEST_COLUMNS",
    "PLAN_COLUMNS",
    "REPORT",
    "REPORT_COST",
    "REPORT_FIGURE",
    "RESULTS",
    "Artifact",
    "ArtifactError",
    "MissingArtifactError",
    "artifact_error",
    "benchmark_path",
    "check_frame",
    "folder",
    "log_path",
    "match_path",
    "open_parquet",
    "read_arrow",
    "parse_path",
    "parse_stream_id",
    "path",
    "read_csv",
    "resolve_kind",
    "read_id_text",
    "read_manifest",
    "read_metrics_csv",
    "read_metrics_json",
    "read_negative_text",
    "read_parquet",
    "read_parquet_metadata",
    "read_scores",
    "read_static",
    "read_stream",
    "rebuild_hint",
    "stream_id",
    "template",
    "unwritable_folder",
    "write_csv",
    "write_manifest",
    "write_metrics_json",
    "write_parquet",
    "write_scores",
    "write_static",
    "write_stream",
]

#: the workflow's output folder (the templates' first part)
RESULTS = "results"
#: prompt templates of the ID text features (one row per class and prompt): NegLabel / AdaNeg /
#: ANTS use "The nice {}." (the NegMining prompt), MCM "a photo of a {}.", GL-MCM and EOE
#: "a photo of a {}" (their code's, no final period)
ID_PROMPTS = {"nice": "The nice {}.", "photo": "a photo of a {}.", "photo_bare": "a photo of a {}"}
MANIFEST_COLUMNS = ("id", "path", "label", "class_name", "sha256", "readable", "error")
#: columns of a plan file (one row per planned query, in the order an online run asks them)
PLAN_COLUMNS = ("stream_id", "batch_index", "kind", "class_name", "image", "image_sha256")


# --------------------------------------------------------------------------------------------
# the error


class ArtifactError(ValueError):
    """A stored artifact cannot be used: ``path``, what is wrong (``problem``), and how to
    rebuild it (``rebuild``: a command); ``kind``: its :data:`ARTIFACTS` entry when known (whose
    ``rule`` writes it). ``str()`` is one line holding the path, the problem and the command."""

    def __init__(
        self,
        path: str | os.PathLike,
        problem: str,
        rebuild: str,
        what: str = "",
        kind: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.rebuild = rebuild
        self.what = what
        self.kind = kind
        kind = f" ({what})" if what else ""
        super().__init__(f"{self.path}{kind}: {problem}. Rebuild it: {rebuild}")


class MissingArtifactError(ArtifactError, FileNotFoundError):
    """An artifact that does not exist (also a :class:`FileNotFoundError`)."""


# --------------------------------------------------------------------------------------------
# the declarations

#: column types a declaration can ask for (``str`` also accepts an all-null column)
COLUMN_TYPES = ("int", "float", "bool", "str", "list<str>")


@dataclass(frozen=True)
class Artifact:
    """One kind of stored file.

    * ``relative``: its path template below :data:`RESULTS` (Snakemake wildcards);
    * ``rule`` / ``command``: the Snakemake rule and the ``ants`` command that write it;
      ``target``: the Snakemake target that builds it (``all`` unless only a named target does);
    * ``columns``: required ``(name, type)`` pairs (:data:`COLUMN_TYPES`); ``embedding``: it
      also holds a ``fixed_size_list<float32>`` column ``embedding`` (:mod:`ants.embeddings`);
    * ``rows``: ``(what, function of the metadata)`` giving the row count the file must hold
      (the function returns None when the metadata does not record it);
    * ``metadata``: whether the ``ants`` schema metadata must be present (Parquet).
    """

    name: str
    what: str
    relative: str
    rule: str
    command: str
    columns: tuple[tuple[str, str], ...] = ()
    embedding: bool = False
    rows: tuple[str, Callable[[Mapping], int | None]] | None = None
    metadata: bool = True
    target: str = "all"

    @property
    def template(self) -> str:
        return f"{RESULTS}/{self.relative}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


def _count(*keys: str) -> Callable[[Mapping], int | None]:
    """The sum of integer metadata values at dotted ``keys`` (None if one is not recorded)."""

    def count(meta: Mapping) -> int | None:
        total = 0
        for key in keys:
            value: Any = meta
            for part in key.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            if isinstance(value, bool) or not isinstance(value, int):
                return None
            total += value
        return total

    return count


def _id_text_rows(meta: Mapping) -> int | None:
    n = _count("n_classes")(meta)
    return None if n is None else n * len(ID_PROMPTS)


def _mined_rows(meta: Mapping) -> int | None:
    selected = (meta.get("mining") or {}).get("selected") if isinstance(meta, Mapping) else None
    if not isinstance(selected, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in selected.values()
    ):
        return None
    return sum(selected.values())


_METRIC_COLUMNS = tuple(
    (c, t)
    for key in ("auroc", "fpr95_id", "fpr95_ood", "aupr_in", "aupr_out", "acc")
    for c, t in ((key, "float"), (f"{key}_std", "float"))
) + (("n_seeds", "int"),)
_ROW_KEYS = (("benchmark", "str"), ("method", "str"), ("label", "str"))
_PER_STREAM = "{benchmark}/{method}/{ood}/seed{seed}"

ARTIFACTS: dict[str, Artifact] = {
    a.name: a
    for a in (
        Artifact(
            "manifest",
            "manifest",
            "manifests/{dataset}.parquet",
            "manifest",
            "manifest",
            tuple(
                (c, "bool" if c == "readable" else "int" if c == "label" else "str")
                for c in MANIFEST_COLUMNS
            ),
        ),
        Artifact(
            "embeddings",
            "image embeddings",
            "embeddings/{backbone}/{dataset}.parquet",
            "embed_images",
            "embed-images",
            (("id", "str"), ("path", "str"), ("label", "int"), ("sha256", "str")),
            embedding=True,
            rows=("n_images", _count("n_images")),
        ),
        Artifact(
            "id_text",
            "ID text features",
            "text/{backbone}/{label_set}.parquet",
            "embed_labels",
            "embed-labels",
            (("class_index", "int"), ("class_name", "str"), ("prompt", "str"), ("template", "str")),
            embedding=True,
            rows=(f"n_classes x {len(ID_PROMPTS)} prompts", _id_text_rows),
        ),
        Artifact(
            "negatives",
            "mined negatives",
            "negatives/{backbone}/{label_set}.parquet",
            "embed_labels",
            "embed-labels",
            (("label", "str"), ("kind", "str"), ("stat", "float"), ("max_id_cos", "float")),
            embedding=True,
            rows=("the sum of mining.selected", _mined_rows),
        ),
        Artifact(
            "negatives_csp",
            "CSP-mined negatives (ANTS's initial_detector: csp)",
            "negatives/{backbone}/{label_set}/csp.parquet",
            "mine_csp",
            "mine-negatives",
            (("label", "str"), ("kind", "str"), ("stat", "float"), ("max_id_cos", "float")),
            embedding=True,
            rows=("the sum of mining.selected", _mined_rows),
            target="paper",
        ),
        Artifact(
            "static",
            "static scores",
            "static/{backbone}/{label_set}/{dataset}/{scoring}.parquet",
            "static",
            "static",
            (("id", "str"), ("s_nl", "float"), ("pred", "int"), ("lse_id", "float")),
            rows=("n_images", _count("n_images")),
        ),
        Artifact(
            "stream",
            "stream table",
            "streams/{benchmark}/{ood}/{stream_key}/seed{seed}.parquet",
            "stream",
            "stream",
            (
                ("position", "int"),
                ("batch", "int"),
                ("is_ood", "bool"),
                ("source", "int"),
                ("id", "str"),
                ("path", "str"),
                ("sha256", "str"),
                ("label", "int"),
            ),
            rows=("n_id + n_ood", _count("n_id", "n_ood")),
        ),
        Artifact(
            "plan",
            "plan",
            f"plans/{_PER_STREAM}.parquet",
            "plan",
            "plan",
            tuple((c, "int" if c == "batch_index" else "str") for c in PLAN_COLUMNS),
            rows=("n_queries", _count("n_queries")),
        ),
        Artifact(
            "answers",
            "answers log",
            f"answers/{_PER_STREAM}.parquet",
            "answer",
            "answer",
            (
                ("stream_id", "str"),
                ("batch_index", "int"),
                ("kind", "str"),
                ("raw_text", "str"),
                ("negatives", "list<str>"),
                ("status", "str"),
            ),
            metadata=False,
        ),
        Artifact(
            "negative_text",
            "text features of the negatives",
            f"negatives-text/{_PER_STREAM}.parquet",
            "encode_negatives",
            "encode-negatives",
            (("template", "str"), ("text", "str")),
            embedding=True,
            rows=("n_texts", _count("n_texts")),
        ),
        Artifact(
            "local",
            "GL-MCM local term",
            "local/{backbone}/{label_set}/{dataset}/T{temperature}.parquet",
            "local_features",
            "local-features",
            (("id", "str"), ("l_mcm", "float"), ("local_pred", "int")),
            rows=("n_images", _count("n_images")),
        ),
        Artifact(
            "envisioned",
            "EOE's envisioned labels (an answers log)",
            "envisioned/{label_set}/{method}.parquet",
            "envision",
            "envision",
            (
                ("stream_id", "str"),
                ("batch_index", "int"),
                ("kind", "str"),
                ("raw_text", "str"),
                ("negatives", "list<str>"),
                ("status", "str"),
            ),
            metadata=False,
        ),
        Artifact(
            "envisioned_text",
            "text features of EOE's envisioned labels",
            "envisioned-text/{backbone}/{label_set}/{method}.parquet",
            "encode_envisioned",
            "encode-envisioned",
            (("template", "str"), ("text", "str")),
            embedding=True,
            rows=("n_texts", _count("n_texts")),
        ),
        Artifact(
            "scores",
            "score table",
            f"scores/{_PER_STREAM}.parquet",
            "score",
            "score",
            (
                ("position", "int"),
                ("id", "str"),
                ("batch", "int"),
                ("is_ood", "bool"),
                ("label", "int"),
                ("pred", "int"),
                ("score", "float"),
            ),
            rows=("stream n_id + n_ood", _count("stream.n_id", "stream.n_ood")),
        ),
        Artifact("metrics_json", "metrics", "metrics.json", "metrics", "compute-metrics"),
        Artifact(
            "metrics_csv",
            "metrics table",
            "metrics/{benchmark}.csv",
            "metrics",
            "compute-metrics",
            _ROW_KEYS + (("dataset", "str"), ("split", "str")) + _METRIC_COLUMNS,
        ),
        Artifact(
            "variants_csv",
            "ANTS variants' metrics table",
            "metrics/{benchmark}_variants.csv",
            "metrics",
            "compute-metrics",
            _ROW_KEYS
            + (("variant", "str"), ("dataset", "str"), ("split", "str"))
            + _METRIC_COLUMNS,
        ),
        Artifact(
            "trace_csv",
            "ANTS trace",
            "plots/ants_trace.csv",
            "metrics",
            "compute-metrics",
            (
                ("benchmark", "str"),
                ("method", "str"),
                ("ood", "str"),
                ("seed", "int"),
                ("batch", "int"),
                ("threshold", "float"),
                ("lambda", "float"),
                ("ens_size", "int"),
                ("vsnl_size", "int"),
            ),
        ),
        Artifact(
            "sweep_csv",
            "sweep table",
            "sweeps/{sweep}.csv",
            "sweep_metrics",
            "sweep-metrics",
            (
                ("sweep", "str"),
                ("value", "str"),
                ("is_default", "bool"),
                ("benchmark", "str"),
                ("method", "str"),
                ("dataset", "str"),
                ("auroc", "float"),
                ("fpr95_ood", "float"),
            ),
            target="sweeps",
        ),
        Artifact("tables", "paper-shaped table", "tables/{stem}.{ext}", "tables", "tables"),
        Artifact(
            "ablation_table",
            "ablation table (paper Table 4)",
            "paper/{stem}.{ext}",
            "ablation_table",
            "ablation-table",
            target="paper",
        ),
        Artifact(
            "envision_timings",
            "EOE answer timings",
            "logs/envision/{label_set}/{method}.timing.json",
            "envision",
            "envision",
        ),
        Artifact(
            "timings",
            "answer timings",
            f"logs/answer/{_PER_STREAM}.timing.json",
            "answer",
            "answer",
        ),
        Artifact("demo_list", "demo image list", "data/demo/{split}.txt", "demo_data", "demo-data"),
        Artifact(
            "demo_classnames",
            "demo class names",
            "data/demo/classnames.txt",
            "demo_data",
            "demo-data",
        ),
        Artifact(
            "download",
            "extracted archive",
            "data/downloads/{dataset}/extracted",
            "download",
            "download",
        ),
        Artifact(
            "text_store",
            "text-feature store",
            "text-features/{backbone}.sqlite",
            "encode_negatives",
            "encode-negatives",
        ),
    )
}

#: the report (outside ``results/``)
REPORT = "reports/index.html"
REPORT_FIGURE = "reports/figures/{name}.png"
#: the cost table (run-dependent, so beside the report and never a versioned output)
REPORT_COST = "reports/cost.{ext}"


#: an embedding table outside any workflow, read with no kind given
_EMBEDDING_TABLE = Artifact("embedding_table", "embedding table", "", "", "", embedding=True)


def _spec(kind: str) -> Artifact:
    if kind == _EMBEDDING_TABLE.name:
        return _EMBEDDING_TABLE
    try:
        return ARTIFACTS[kind]
    except KeyError:
        raise ValueError(f"unknown artifact {kind!r}; known: {', '.join(ARTIFACTS)}") from None


def template(kind: str) -> str:
    """The path template of ``kind`` (Snakemake wildcards in braces), e.g. for a rule's output."""
    return _spec(kind).template


def path(kind: str, *, root: str | os.PathLike | None = None, **wildcards: Any) -> str:
    """The path of one ``kind`` file: its template filled with ``wildcards``; below ``root``
    (a folder holding ``results/``) when given."""
    rel = template(kind).format(**wildcards)
    return rel if root is None else os.fspath(Path(root) / rel)


def folder(kind: str) -> str:
    """The folder holding every ``kind`` file (``results/answers`` for ``answers``)."""
    return f"{RESULTS}/{_spec(kind).relative.split('/', 1)[0]}"


def log_path(rule: str, kind: str | None = None, suffix: str = ".log") -> str:
    """A job's log: ``results/logs/{rule}/`` + the wildcard part of ``kind``'s template (the
    template below its folder, without extension) + ``suffix``; ``results/logs/{rule}.log``
    without ``kind``."""
    return _job_file(f"{RESULTS}/logs", rule, kind, suffix)


def benchmark_path(rule: str, kind: str | None = None) -> str:
    """A job's Snakemake ``benchmark:`` file, laid out as :func:`log_path` below
    ``results/benchmarks`` (the report reads the rule from its first folder)."""
    return _job_file(f"{RESULTS}/benchmarks", rule, kind, ".tsv")


def _job_file(base: str, rule: str, kind: str | None, suffix: str) -> str:
    if kind is None:
        return f"{base}/{rule}{suffix}"
    rest = _spec(kind).relative.split("/", 1)[1]
    stem = rest.rsplit(".", 1)[0]
    return f"{base}/{rule}/{stem}{suffix}"


def _regex(relative: str) -> re.Pattern:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", relative):
        out.append(re.escape(relative[pos : m.start()]))
        out.append(rf"(?P<{m[1]}>\d+)" if m[1] == "seed" else rf"(?P<{m[1]}>[^/]+?)")
        pos = m.end()
    out.append(re.escape(relative[pos:]))
    return re.compile(rf"(?:^|(?P<_root>.*)/){re.escape(RESULTS)}/{''.join(out)}$")


#: most literal text first, so ``{benchmark}_variants.csv`` wins over ``{benchmark}.csv``
_MATCHERS = sorted(
    ((a, _regex(a.relative)) for a in ARTIFACTS.values()),
    key=lambda item: -len(re.sub(r"\{\w+\}", "", item[0].relative)),
)


def parse_path(kind: str, file: str | os.PathLike) -> dict[str, str] | None:
    """The wildcards of a ``kind`` path (anywhere below a ``results/`` folder), else None."""
    m = dict(_MATCHERS)[_spec(kind)].search(Path(file).as_posix())
    return None if m is None else {k: v for k, v in m.groupdict().items() if k != "_root"}


def match_path(file: str | os.PathLike) -> tuple[Artifact, str, str] | None:
    """``(artifact, path below the workflow folder, the workflow folder or "")`` of a file in a
    workflow's ``results/``, else None."""
    posix = Path(file).as_posix()
    for spec, regex in _MATCHERS:
        m = regex.search(posix)
        if m:
            root = m["_root"] if m["_root"] is not None else ""
            return spec, posix[len(root) + 1 if root else 0 :], root
    return None


def rebuild_hint(file: str | os.PathLike, kind: str | None = None) -> str:
    """How to rebuild ``file``: in a workflow's ``results/``, the ``snakemake --forcerun`` of
    that file (which re-runs what depends on it too), else the ``ants`` command of ``kind``."""
    found = match_path(file)
    if found is not None:
        spec, rel, root = found
        target = "" if spec.target == "all" else f" {spec.target}"
        cmd = f"snakemake --cores all{target} --forcerun {rel}"
        if root and Path(root).resolve() != Path.cwd().resolve():
            cmd = f"cd {root} && {cmd}"
        return cmd
    if kind is not None and _spec(kind).command:
        return f"write it again with `ants {_spec(kind).command}`"
    return "write it again with the command that made it"


def artifact_error(
    file: str | os.PathLike, problem: str, kind: str | None = None, *, missing: bool = False
) -> ArtifactError:
    """The :class:`ArtifactError` (or :class:`MissingArtifactError`) for ``file``."""
    found = match_path(file)
    spec = _spec(kind) if kind is not None else (found[0] if found else None)
    cls = MissingArtifactError if missing else ArtifactError
    name = spec.name if spec is not None and spec.name in ARTIFACTS else None
    return cls(file, problem, rebuild_hint(file, kind), spec.what if spec else "", name)


#: set (to "1") by the workflow for its jobs: a job that finds a damaged input sets it aside
#: (:func:`set_aside`), so that a plain re-run rebuilds it
SET_ASIDE_ENV = "ANTS_SET_ASIDE_DAMAGED"
#: where damaged files are set aside, below the workflow folder (outside every DVC out)
DAMAGED = f"{RESULTS}/damaged"


def set_aside(err: ArtifactError) -> str | None:
    """Move the damaged file of ``err`` out of the way, so that Snakemake sees it missing and a
    plain re-run rebuilds it (and, being newer, what depends on it); the one-line message that
    says so, or None when nothing was moved.

    Only a file of a workflow's ``results/`` that a rule writes is moved (:func:`match_path`),
    and only when the workflow asked for it (``ANTS_SET_ASIDE_DAMAGED=1``, which
    ``workflow/rules/common.smk`` sets for its jobs): an ``ants`` command a person runs by hand
    never moves their files. The file goes to ``results/damaged/<its path below results/>``
    (replacing an older copy there), where it can be inspected; nothing is deleted.
    """
    if os.environ.get(SET_ASIDE_ENV) != "1" or isinstance(err, MissingArtifactError):
        return None
    found = match_path(err.path)
    source = Path(err.path)
    if found is None or not found[0].rule or not source.is_file():
        return None
    _spec_, rel, root = found
    dest = Path(root or ".") / DAMAGED / Path(rel).relative_to(RESULTS)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, dest)
    except OSError:
        return None
    what = f" ({err.what})" if err.what else ""
    return (
        f"{err.path}{what}: {err.problem}. Moved it aside to {dest}: a plain re-run of the "
        "workflow rebuilds it"
    )


def unwritable_folder(root: str | os.PathLike = RESULTS) -> str | None:
    """The first folder below (and including) ``root`` that this user cannot write (a read-only
    file system, no permission), as one line saying so and what to do; None when all can be
    written (or ``root`` does not exist yet). The workflow checks it before any job: Snakemake
    itself fails on such a folder with a traceback (it removes a job's old outputs before the
    job, and on a read-only file system even removing a missing file fails)."""
    for folder, _dirs, _files in os.walk(root):
        if os.access(folder, os.W_OK):
            continue
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        why = "a read-only file system" if read_only else "no write permission"
        fix = "remount it read-write" if read_only else "make it writable (chmod u+w)"
        return f"{folder}: cannot write there ({why}); {fix}, then run again"
    return None


def stream_id(benchmark: str, method: str, ood: str, seed: int | str) -> str:
    """The name of one method's stream (answers log, plans, the CLI): ``B/M/O/seedN``, the part
    of its per-stream files' paths below their folder."""
    return f"{benchmark}/{method}/{ood}/seed{int(seed)}"


_STREAM_ID = re.compile(r"(?P<benchmark>[^/]+)/(?P<method>[^/]+)/(?P<ood>[^/]+)/seed(?P<seed>\d+)")


def parse_stream_id(name: str) -> dict[str, str] | None:
    """``{benchmark, method, ood, seed}`` of a :func:`stream_id`, else None."""
    m = _STREAM_ID.fullmatch(name)
    return None if m is None else m.groupdict()


# --------------------------------------------------------------------------------------------
# the checks


def _type_ok(t, want: str) -> bool:
    import pyarrow as pa

    if want == "int":
        return pa.types.is_integer(t)
    if want == "float":
        return pa.types.is_floating(t) or pa.types.is_integer(t)
    if want == "bool":
        return pa.types.is_boolean(t)
    if want == "str":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)
    if want == "list<str>":
        return pa.types.is_null(t) or (
            (pa.types.is_list(t) or pa.types.is_large_list(t)) and _type_ok(t.value_type, "str")
        )
    raise ValueError(f"unknown column type {want!r}; valid: {', '.join(COLUMN_TYPES)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parquet_problem(exc: BaseException) -> str:
    text = str(exc)
    if "magic bytes" in text or "footer" in text.lower():
        return "not a Parquet file, or cut short (no Parquet footer)"
    return f"not a readable Parquet file ({_first_line(exc)})"


def _exists(file: Path, kind: str | None) -> None:
    if not file.is_file():
        raise artifact_error(file, "does not exist", kind, missing=True)
    if file.stat().st_size == 0:
        raise artifact_error(file, "empty file (0 bytes)", kind)


def _check_columns(file: Path, kind: str | None, fields: Mapping[str, Any], spec) -> None:
    for name, want in spec.columns:
        if name not in fields:
            raise artifact_error(file, f"no column {name!r} (columns: {', '.join(fields)})", kind)
        if not _type_ok(fields[name], want):
            raise artifact_error(
                file, f"column {name!r} has type {fields[name]}, expected {want}", kind
            )


def _check_rows(file: Path, kind: str | None, spec, meta: Mapping, n: int) -> None:
    if spec.rows is None:
        return
    what, count = spec.rows
    want = count(meta)
    if want is not None and want != n:
        raise artifact_error(file, f"{n} rows, but its metadata says {want} ({what})", kind)


def _metadata(file: Path, kind: str | None, schema, required: bool) -> dict:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    name = METADATA_KEY.decode()
    if raw is None:
        if required:
            raise artifact_error(file, f"no {name!r} schema metadata (not written by ants)", kind)
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        raise artifact_error(
            file, f"its {name!r} schema metadata is not valid JSON", kind
        ) from None
    if not isinstance(meta, dict):
        raise artifact_error(file, f"its {name!r} schema metadata is not a JSON object", kind)
    return meta


def _parquet_spec(file: Path, kind: str | None) -> Artifact:
    if kind is not None:
        return _spec(kind)
    found = match_path(file)
    return found[0] if found is not None else _EMBEDDING_TABLE


def resolve_kind(file: str | os.PathLike, kind: str | None = None) -> str:
    """``kind``, else the kind a workflow path says, else ``"embedding_table"`` (any embedding
    table: the kind a reader given none checks a file as)."""
    return _parquet_spec(Path(file), kind).name


def open_parquet(file: str | os.PathLike, kind: str | None = None):
    """``(pyarrow.parquet.ParquetFile, metadata)`` of a ``kind`` file, its schema checked:
    it exists, is a non-empty Parquet file, has the ``ants`` metadata (a JSON object) and the
    required columns with their types (and, for a feature table, the ``embedding`` column).
    ``kind=None``: an embedding table, of the kind its path says when it lies in a workflow.
    Raises :class:`ArtifactError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = Path(file)
    spec = _parquet_spec(file, kind)
    kind = spec.name
    _exists(file, kind)
    try:
        pfile = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise artifact_error(file, _parquet_problem(exc), kind) from None
    schema = pfile.schema_arrow
    meta = _metadata(file, kind, schema, spec.metadata)
    fields = {f.name: f.type for f in schema}
    _check_columns(file, kind, fields, spec)
    if spec.embedding:
        if "embedding" not in fields:
            raise artifact_error(
                file, f"no 'embedding' column (columns: {', '.join(fields)})", kind
            )
        etype = fields["embedding"]
        empty_ok = pa.types.is_null(etype) and pfile.metadata.num_rows == 0
        if not empty_ok and not (
            pa.types.is_fixed_size_list(etype) and etype.value_type == pa.float32()
        ):
            raise artifact_error(
                file,
                f"column 'embedding' has type {etype}, expected fixed_size_list<float32>[d]",
                kind,
            )
    return pfile, meta


def read_parquet_metadata(file: str | os.PathLike, kind: str | None = None) -> dict:
    """The metadata of a ``kind`` Parquet file, its schema checked (:func:`open_parquet`);
    reads no data pages."""
    return open_parquet(file, kind)[1]


def read_arrow(file: str | os.PathLike, kind: str | None = None, columns=None):
    """``(pyarrow.Table, metadata)`` of a ``kind`` Parquet file, fully checked (schema, data
    pages, row count); ``columns``: read only these."""
    import pyarrow as pa

    file = Path(file)
    pfile, meta = open_parquet(file, kind)
    spec = _parquet_spec(file, kind)
    kind = spec.name
    try:
        table = pfile.read(columns=None if columns is None else list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise artifact_error(file, f"its data cannot be read ({_first_line(exc)})", kind) from None
    _check_rows(file, kind, spec, meta, table.num_rows)
    return table, meta


def read_parquet(
    file: str | os.PathLike, kind: str, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict]:
    """``(frame, metadata)`` of a ``kind`` Parquet file, checked as :func:`read_arrow` says."""
    table, meta = read_arrow(file, kind, columns)
    return table.to_pandas(), meta


def check_frame(kind: str, frame: pd.DataFrame, metadata: Mapping | None = None) -> None:
    """Before writing a ``kind`` table: it has the declared columns and as many rows as its
    metadata says (a ValueError otherwise: a bug in the writer, not bad input)."""
    spec = _spec(kind)
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise ValueError(
            f"a {spec.what} needs the columns {', '.join(spec.column_names)}; missing "
            f"{', '.join(missing)}"
        )
    if spec.rows is not None:
        want = spec.rows[1](dict(metadata or {}))
        if want is not None and want != len(frame):
            raise ValueError(
                f"a {spec.what} of {len(frame)} rows with metadata saying {want} ({spec.rows[0]})"
            )


def write_parquet(
    file: str | os.PathLike,
    kind: str,
    frame: pd.DataFrame,
    metadata: Mapping | None = None,
    *,
    schema=None,
) -> Path:
    """Write a ``kind`` table atomically (:func:`ants._io.write_table`), after
    :func:`check_frame`."""
    check_frame(kind, frame, metadata)
    return write_table(file, frame, metadata, schema=schema)


# -- CSV and JSON --------------------------------------------------------------------------------


def write_csv(file: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """A table as CSV (no index, floats ``%.6g``), written atomically."""
    file = Path(file)
    with atomic_path(file) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return file


def read_csv(file: str | os.PathLike, kind: str) -> pd.DataFrame:
    """A ``kind`` CSV table, checked: it exists, is not empty, parses, has the declared columns;
    numeric ones hold numbers and no gaps (a cut-off line leaves some)."""
    import pandas as pd

    file = Path(file)
    spec = _spec(kind)
    _exists(file, kind)
    try:
        frame = pd.read_csv(file)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise artifact_error(file, f"not a readable CSV table ({_first_line(exc)})", kind) from None
    for name, want in spec.columns:
        if name not in frame.columns:
            cols = ", ".join(map(str, frame.columns[:12]))
            raise artifact_error(file, f"no column {name!r} (columns: {cols})", kind)
        if want in ("int", "float") and len(frame):
            col = frame[name]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                raise artifact_error(file, f"column {name!r} is not numeric", kind)
            gaps = int(col.isna().sum())
            if gaps:
                row = int(col.isna().to_numpy().nonzero()[0][0]) + 2  # 1-based, after the head
                raise artifact_error(
                    file, f"column {name!r} has {gaps} empty value(s), first on line {row}", kind
                )
    return frame


def read_metrics_csv(metrics_dir: str | os.PathLike, benchmark: str, *, variants: bool = False):
    """``{metrics_dir}/{benchmark}.csv`` (``_variants.csv`` with ``variants``), checked."""
    kind = "variants_csv" if variants else "metrics_csv"
    name = Path(_spec(kind).relative).name.format(benchmark=benchmark)
    return read_csv(Path(metrics_dir) / name, kind)


def write_metrics_json(file: str | os.PathLike, headline: Mapping) -> Path:
    """``results/metrics.json`` (DVC metrics): benchmark -> method -> split (``far`` / ``near``)
    -> the split average's :data:`ants.metrics.HEADLINE_METRICS` (pretty, sorted)."""
    return write_json(file, headline)


def read_metrics_json(file: str | os.PathLike) -> dict:
    """``results/metrics.json``, checked: JSON, and benchmark -> method -> split (``far`` /
    ``near``) -> exactly the numbers of :data:`ants.metrics.HEADLINE_METRICS`."""
    from ants.metrics import HEADLINE_METRICS

    file = Path(file)
    kind = "metrics_json"
    _exists(file, kind)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise artifact_error(file, f"not valid JSON ({_first_line(exc)})", kind) from None
    if not isinstance(data, dict):
        raise artifact_error(file, "not a JSON object (benchmark -> method -> split)", kind)
    want = sorted(HEADLINE_METRICS)
    for bench, methods in data.items():
        for method, splits in methods.items() if isinstance(methods, dict) else [(None, 0)]:
            for split, stats in splits.items() if isinstance(splits, dict) else [(None, 0)]:
                where = "/".join(str(x) for x in (bench, method, split) if x is not None)
                if split is not None and split not in ("far", "near"):
                    raise artifact_error(
                        file, f"{where}: not a split average (expected far or near)", kind
                    )
                ok = (
                    split is not None
                    and isinstance(stats, dict)
                    and sorted(stats) == want
                    and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in stats.values()
                    )
                )
                if not ok:
                    raise artifact_error(
                        file, f"{where} is not a mapping of {', '.join(want)} to numbers", kind
                    )
    return data


# --------------------------------------------------------------------------------------------
# writer / reader pairs


def write_manifest(file: str | os.PathLike, frame: pd.DataFrame, metadata: Mapping | None = None):
    """A manifest (:data:`MANIFEST_COLUMNS`, in that order), written atomically."""
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"a manifest needs the columns {list(MANIFEST_COLUMNS)}; missing {missing}"
        )
    return write_parquet(file, "manifest", frame[list(MANIFEST_COLUMNS)], metadata)


def read_manifest(file: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """``(frame, metadata)`` of a manifest written by :func:`write_manifest`."""
    return read_parquet(file, "manifest")


def read_id_text(file: str | os.PathLike, prompt: str = "nice") -> tuple[Any, list[str]]:
    """``(features (K, d), class names)`` of one prompt (:data:`ID_PROMPTS`) from an ID text
    file, in class-index order."""
    import numpy as np

    from ants.embeddings import read_embeddings

    feats, rows, _ = read_embeddings(file, "id_text")
    sel = (rows["prompt"] == prompt).to_numpy()
    if not sel.any():
        raise artifact_error(file, f"no ID text features for prompt {prompt!r}", "id_text")
    order = np.argsort(rows.loc[sel, "class_index"].to_numpy(), kind="stable")
    return feats[sel][order], rows.loc[sel, "class_name"].to_numpy()[order].tolist()


def write_stream(file: str | os.PathLike, frame: pd.DataFrame, metadata: Mapping) -> Path:
    """A stream table (one row per stream position); metadata ``n_id``, ``n_ood``, ``seed``,
    ``batch_size``, ``order``, the datasets and the encoder."""
    return write_parquet(file, "stream", frame, metadata)


def read_stream(file: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    return read_parquet(file, "stream")


def write_static(file: str | os.PathLike, frame: pd.DataFrame, metadata: Mapping) -> Path:
    """A static pass (one row per image: ``id``, ``s_nl``, ``pred``, ``lse_id``); metadata
    ``dataset``, ``encoder``, ``scoring``, ``n_images``."""
    return write_parquet(file, "static", frame, metadata)


def read_static(file: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    return read_parquet(file, "static")


def write_scores(file: str | os.PathLike, frame: pd.DataFrame, metadata: Mapping) -> Path:
    """A score table (one row per stream position; ``v_{variant}`` columns for ANTS); metadata
    ``stream_id``, ``method``, ``stream`` (the stream's), ``trace`` (ANTS) and ``mllm``."""
    return write_parquet(file, "scores", frame, metadata)


def read_scores(file: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    return read_parquet(file, "scores")


def read_negative_text(
    file: str | os.PathLike, kind: str = "negative_text"
) -> tuple[list[tuple[str, str]], Any]:
    """``([(template, text), ...], features)`` of a stream's negatives' text features (or of
    EOE's envisioned labels: ``kind="envisioned_text"``; an empty file: no pairs and a
    ``(0, 1)`` array)."""
    import numpy as np

    from ants.embeddings import read_embeddings

    pfile, meta = open_parquet(file, kind)
    if pfile.metadata.num_rows == 0:
        _check_rows(Path(file), kind, _spec(kind), meta, 0)
        return [], np.zeros((0, 1), np.float32)
    feats, rows, _ = read_embeddings(file, kind)
    return list(zip(rows["template"], rows["text"], strict=True)), feats
