"""Every artifact reader (ants.artifacts) against damaged files: one exact line naming the file,
what is wrong and how to rebuild it; the results layout, its one home; the CLI's exit status."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _artifact_fixtures import PARQUET, _stream

from ants import artifacts
from ants._io import METADATA_KEY
from ants.artifacts import ARTIFACTS, ArtifactError, MissingArtifactError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workflow(tmp_path, monkeypatch):
    """A workflow folder as the current directory: files at their ``results/`` paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _made(kind) -> Path:
    write, _, wildcards, _, _ = PARQUET[kind]
    rel = Path(artifacts.path(kind, **wildcards))
    write(rel)
    return rel


def _message(kind, rel, problem) -> str:
    target = "" if ARTIFACTS[kind].target == "all" else f" {ARTIFACTS[kind].target}"
    return (
        f"{rel} ({ARTIFACTS[kind].what}): {problem}. "
        f"Rebuild it: snakemake --cores all{target} --forcerun {rel.as_posix()}"
    )


def _fails(kind, rel, problem, error=ArtifactError):
    read = PARQUET[kind][1]
    with pytest.raises(error) as err:
        read(rel)
    assert str(err.value) == _message(kind, rel, problem)
    assert err.value.path == str(rel) and err.value.kind == kind
    assert err.value.rebuild == f"snakemake --cores all --forcerun {rel.as_posix()}"


def _rewrite(rel, edit_table=None, edit_meta=None):
    """Rewrite a Parquet file (pyarrow, no pandas metadata) after changing its table or its metadata."""
    table = pq.read_table(rel)
    meta = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    if edit_table is not None:
        table = edit_table(table)
    if edit_meta is not None:
        edit_meta(meta)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    pq.write_table(table, rel)


@pytest.mark.parametrize("kind", sorted(PARQUET))
def test_a_valid_file_reads(workflow, kind):
    PARQUET[kind][1](_made(kind))


@pytest.mark.parametrize("kind", sorted(PARQUET))
@pytest.mark.faults
def test_a_truncated_file(workflow, kind):
    rel = _made(kind)
    data = rel.read_bytes()
    rel.write_bytes(data[: len(data) // 2])
    _fails(kind, rel, "not a Parquet file, or cut short (no Parquet footer)")


@pytest.mark.parametrize("kind", sorted(PARQUET))
@pytest.mark.faults
def test_garbage_bytes(workflow, kind):
    rel = _made(kind)
    rel.write_bytes(bytes(range(256)) * 8)
    _fails(kind, rel, "not a Parquet file, or cut short (no Parquet footer)")


@pytest.mark.parametrize("kind", sorted(PARQUET))
@pytest.mark.faults
def test_an_empty_file(workflow, kind):
    rel = _made(kind)
    rel.write_bytes(b"")
    _fails(kind, rel, "empty file (0 bytes)")


@pytest.mark.parametrize("kind", sorted(PARQUET))
def test_a_missing_file(workflow, kind):
    rel = Path(artifacts.path(kind, **PARQUET[kind][2]))
    _fails(kind, rel, "does not exist", MissingArtifactError)
    with pytest.raises(FileNotFoundError):  # a missing artifact is also a FileNotFoundError
        PARQUET[kind][1](rel)


@pytest.mark.parametrize("kind", sorted(PARQUET))
@pytest.mark.faults
def test_a_missing_column(workflow, kind):
    rel = _made(kind)
    drop = PARQUET[kind][3][0]
    _rewrite(rel, lambda t: t.drop_columns([drop]))
    left = ", ".join(c for c in pq.read_schema(rel).names)
    _fails(kind, rel, f"no column {drop!r} (columns: {left})")


@pytest.mark.parametrize("kind", sorted(PARQUET))
@pytest.mark.faults
def test_a_wrong_column_type(workflow, kind):
    rel = _made(kind)
    _, column, new_type = PARQUET[kind][3]
    want = dict(ARTIFACTS[kind].columns)[column]

    def retype(t):
        i = t.schema.get_field_index(column)
        values = [
            None if v is None else (str(v) if new_type == pa.string() else float(len(str(v))))
            for v in t.column(column).to_pylist()
        ]
        return t.set_column(i, column, pa.array(values, new_type))

    _rewrite(rel, retype)
    _fails(kind, rel, f"column {column!r} has type {new_type}, expected {want}")


@pytest.mark.parametrize("kind", sorted(k for k, v in PARQUET.items() if v[4] is not None))
@pytest.mark.faults
def test_a_row_count_other_than_the_metadata_says(workflow, kind):
    rel = _made(kind)
    key, what = PARQUET[kind][4]
    n = pq.ParquetFile(rel).metadata.num_rows

    def bump(meta):
        *parents, last = key.split(".")
        if parents == ["mining", "selected"]:
            meta = meta["mining"]["selected"]
        elif parents:
            meta = meta[parents[0]]
        meta[last] += 1

    _rewrite(rel, edit_meta=bump)
    want = n + (
        len(artifacts.ID_PROMPTS) if kind == "id_text" else 1
    )  # one row per class and prompt
    _fails(kind, rel, f"{n} rows, but its metadata says {want} ({what})")


def test_the_answers_log_and_manifest_have_no_row_count_in_their_metadata():
    """What the row-count check cannot cover: these two record no count (their bytes are kept)."""
    assert [k for k, v in PARQUET.items() if v[4] is None] == ["manifest", "answers"]
    assert ARTIFACTS["answers"].rows is None and ARTIFACTS["manifest"].rows is None


def test_the_rebuild_hint_outside_the_current_folder_and_outside_any_workflow(
    tmp_path, monkeypatch
):
    rel = Path(artifacts.path("stream", benchmark="b", ood="o", stream_key="shuffled-bs2", seed=0))
    (tmp_path / "w" / rel).parent.mkdir(parents=True)
    _stream(tmp_path / "w" / rel)
    (tmp_path / "w" / rel).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArtifactError) as err:
        artifacts.read_stream(Path("w") / rel)
    assert err.value.rebuild == f"cd w && snakemake --cores all --forcerun {rel.as_posix()}"
    loose = tmp_path / "stream.parquet"
    loose.write_bytes(b"")
    with pytest.raises(ArtifactError) as err:
        artifacts.read_stream(loose)
    assert (
        str(err.value)
        == f"{loose} (stream table): empty file (0 bytes). Rebuild it: write it again with `ants stream`"
    )


def test_no_answers_log_where_the_inspection_commands_look(tmp_path, capsys):
    from ants.cli import main

    assert main(["answers", "list", "--log", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ants answers: error: {tmp_path / 'nowhere'} (answers logs): does not exist. "
        "Rebuild it: snakemake --cores all (its answer jobs write them)"
    ]
    (tmp_path / "empty").mkdir()
    assert main(["answers", "streams", "--log", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ants answers: error: {tmp_path / 'empty'} (answers logs): a folder holding no answers log (*.parquet). "
        "Rebuild it: snakemake --cores all (its answer jobs write them)"
    ]


def test_writers_refuse_a_table_that_disagrees_with_its_declaration(tmp_path):
    frame = pd.DataFrame({"id": ["a"], "s_nl": [0.1], "pred": [0], "lse_id": [1.0]})
    with pytest.raises(
        ValueError, match=r"^a static scores of 1 rows with metadata saying 2 \(n_images\)$"
    ):
        artifacts.write_static(tmp_path / "s.parquet", frame, {"n_images": 2})
    with pytest.raises(
        ValueError, match="a static scores needs the columns id, s_nl, pred, lse_id; missing lse_id"
    ):
        artifacts.write_static(
            tmp_path / "s.parquet", frame.drop(columns=["lse_id"]), {"n_images": 1}
        )
    assert not (tmp_path / "s.parquet").exists()


# -- CSV and JSON ---------------------------------------------------------------------------------


def _metrics_frame(variant: bool) -> pd.DataFrame:
    stats = {
        k: v
        for key in ("auroc", "fpr95_id", "fpr95_ood", "aupr_in", "aupr_out", "acc")
        for k, v in ((key, 50.0), (f"{key}_std", 1.0))
    }
    rows = [
        {
            "benchmark": "b",
            "method": "m",
            "label": "M",
            **({"variant": "ada"} if variant else {}),
            "dataset": ds,
            "split": "far",
            **stats,
            "n_seeds": 2,
        }
        for ds in ("o", "far_average")
    ]
    return pd.DataFrame(rows)


def _sweep_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sweep": ["eta"] * 2,
            "setting": ["x"] * 2,
            "value": [0.1, 0.5],
            "is_default": [False, True],
            "benchmark": ["b"] * 2,
            "method": ["m"] * 2,
            "label": ["M"] * 2,
            "dataset": ["far_average"] * 2,
            "split": ["far"] * 2,
            "auroc": [70.0, 71.0],
            "fpr95_ood": [40.0, 39.0],
        }
    )


#: kind -> (a valid frame, the reader, wildcards)
CSV = {
    "metrics_csv": (
        lambda: _metrics_frame(False),
        lambda p: artifacts.read_metrics_csv(p.parent, "b"),
        {"benchmark": "b"},
    ),
    "variants_csv": (
        lambda: _metrics_frame(True),
        lambda p: artifacts.read_metrics_csv(p.parent, "b", variants=True),
        {"benchmark": "b"},
    ),
    "sweep_csv": (_sweep_frame, lambda p: artifacts.read_csv(p, "sweep_csv"), {"sweep": "eta"}),
}


def _csv(kind) -> Path:
    frame, _, wildcards = CSV[kind]
    rel = Path(artifacts.path(kind, **wildcards))
    artifacts.write_csv(rel, frame())
    return rel


def _csv_fails(kind, rel, problem):
    with pytest.raises(ArtifactError) as err:
        CSV[kind][1](rel)
    assert str(err.value) == _message(kind, rel, problem)


@pytest.mark.parametrize("kind", sorted(CSV))
def test_csv_tables(workflow, kind):
    rel = _csv(kind)
    assert len(CSV[kind][1](rel)) == 2
    text = rel.read_text()
    head, first, last = text.splitlines()
    # cut off in the middle of its last line: the numbers of that line are gone
    cut = ",".join(last.split(",")[: 6 if kind == "variants_csv" else 5]) + ","
    rel.write_text(f"{head}\n{first}\n{cut}")
    numeric = [c for c, t in ARTIFACTS[kind].columns if t in ("int", "float")]
    _csv_fails(kind, rel, f"column {numeric[0]!r} has 1 empty value(s), first on line 3")
    rel.write_bytes(bytes(range(256)) * 8)
    _csv_fails(
        kind,
        rel,
        "not a readable CSV table (Error tokenizing data. C error: Expected 1 fields in line 3, "
        "saw 2)",
    )
    rel.write_bytes(b"")
    _csv_fails(kind, rel, "empty file (0 bytes)")
    frame = CSV[kind][0]()
    frame.drop(columns=["auroc"]).to_csv(rel, index=False)
    cols = ", ".join([c for c in frame.columns if c != "auroc"][:12])
    _csv_fails(kind, rel, f"no column 'auroc' (columns: {cols})")
    frame.assign(auroc=["high", "low"]).to_csv(rel, index=False)
    _csv_fails(kind, rel, "column 'auroc' is not numeric")


def test_metrics_json(workflow):
    rel = Path(artifacts.template("metrics_json"))
    nested = {"b": {"m": {"far": {"auroc": 50.0, "fpr95": 90}, "near": {"auroc": 1, "fpr95": 2}}}}
    artifacts.write_metrics_json(rel, nested)
    assert artifacts.read_metrics_json(rel) == nested

    def fails(problem):
        with pytest.raises(ArtifactError) as err:
            artifacts.read_metrics_json(rel)
        assert str(err.value) == _message("metrics_json", rel, problem)

    text = rel.read_text()
    rel.write_text(text[: len(text) // 2])
    try:
        json.loads(text[: len(text) // 2])
    except ValueError as exc:
        fails(f"not valid JSON ({exc})")
    rel.write_bytes(bytes(range(256)) * 8)
    fails(
        "not valid JSON ('utf-8' codec can't decode byte 0x80 in position 128: invalid start byte)"
    )
    rel.write_bytes(b"")
    fails("empty file (0 bytes)")
    rel.write_text(json.dumps({"b": {"m": {"far": {"auroc": "high", "fpr95": 1}}}}))
    fails("b/m/far is not a mapping of auroc, fpr95 to numbers")
    rel.write_text(json.dumps({"b": {"m": {"far": {"auroc": 1, "fpr95": 1, "auroc_std": 0}}}}))
    fails("b/m/far is not a mapping of auroc, fpr95 to numbers")
    rel.write_text(json.dumps({"b": {"m": [1]}}))
    fails("b/m is not a mapping of auroc, fpr95 to numbers")
    # the layout before the headline file (every dataset, every metric): named, not read
    rel.write_text(json.dumps({"b": {"m": {"far_average": {"auroc": 1, "fpr95": 1}}}}))
    fails("b/m/far_average: not a split average (expected far or near)")
    rel.write_text("[1, 2]")
    fails("not a JSON object (benchmark -> method -> split)")


# -- the layout: one home ---------------------------------------------------------------------------


def test_every_template_is_documented_once_in_the_layout():
    doc = artifacts.__doc__
    for spec in ARTIFACTS.values():
        assert spec.template in doc, spec.name
    arch = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for kind in (
        "manifest",
        "embeddings",
        "id_text",
        "negatives",
        "static",
        "stream",
        "plan",
        "answers",
        "negative_text",
        "scores",
        "metrics_csv",
        "variants_csv",
        "sweep_csv",
        "trace_csv",
    ):
        assert ARTIFACTS[kind].template in arch, kind


def test_the_rules_name_no_results_path_of_their_own():
    """Every results/ and reports/ path of the workflow comes from ants.artifacts."""
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        code = "\n".join(
            line for line in smk.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        assert not re.search(r"""["'](results|reports)/""", code), smk.name


def test_paths_parse_back_and_the_most_specific_template_wins():
    path = artifacts.path(
        "scores", benchmark="demo", method="ants_code~eta~1", ood="demo_far", seed=3
    )
    assert path == "results/scores/demo/ants_code~eta~1/demo_far/seed3.parquet"
    assert artifacts.parse_path("scores", "/x/y/" + path) == {
        "benchmark": "demo",
        "method": "ants_code~eta~1",
        "ood": "demo_far",
        "seed": "3",
    }
    assert artifacts.parse_path("scores", "results/plans/a/b/c/seed1.parquet") is None
    spec, rel, root = artifacts.match_path("/w/results/metrics/demo_variants.csv")
    assert (spec.name, rel, root) == ("variants_csv", "results/metrics/demo_variants.csv", "/w")
    assert artifacts.match_path("results/metrics/demo.csv")[0].name == "metrics_csv"
    assert artifacts.stream_id("b", "m", "o", 2) == "b/m/o/seed2"
    assert artifacts.parse_stream_id("b/m/o/seed2") == {
        "benchmark": "b",
        "method": "m",
        "ood": "o",
        "seed": "2",
    }
    assert (
        artifacts.log_path("plan", "plan")
        == "results/logs/plan/{benchmark}/{method}/{ood}/seed{seed}.log"
    )
    assert artifacts.benchmark_path("metrics") == "results/benchmarks/metrics.tsv"
    assert (
        artifacts.template("timings")
        == "results/logs/answer/{benchmark}/{method}/{ood}/seed{seed}.timing.json"
    )
    assert (
        artifacts.rebuild_hint("results/sweeps/eta.csv")
        == "snakemake --cores all sweeps --forcerun results/sweeps/eta.csv"
    )


# -- through the `ants` command ---------------------------------------------------------------------


@pytest.mark.faults
def test_a_damaged_stream_file_is_one_line_on_stderr_exit_2(tmp_path):
    """The fault the trial found: a stream Parquet cut to half its size, then the plan job. Before any
    work: one line naming the file, the problem and the command that rebuilds it; no traceback."""
    rel = Path(
        artifacts.path(
            "stream", benchmark="demo", ood="demo_far", stream_key="shuffled-bs16", seed=0
        )
    )
    (tmp_path / rel).parent.mkdir(parents=True)
    _stream(tmp_path / rel)
    data = (tmp_path / rel).read_bytes()
    (tmp_path / rel).write_bytes(data[: len(data) // 2])
    args = [
        "plan",
        "--stream",
        str(rel),
        "--id-embeddings",
        "id.parquet",
        "--ood-embeddings",
        "ood.parquet",
        "--text",
        "text.parquet",
        "--static-id",
        "sid.parquet",
        "--static-ood",
        "sood.parquet",
        "--plan-json",
        "{}",
        "--stream-id",
        "demo/ants_code/demo_far/seed0",
        "--out",
        "plan.parquet",
    ]
    env = {k: v for k, v in os.environ.items() if k != artifacts.SET_ASIDE_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "ants.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"ants plan: error: {rel} (stream table): not a Parquet file, or cut short (no Parquet footer). "
        f"Rebuild it: snakemake --cores all --forcerun {rel}"
    ]
    assert "Traceback" not in proc.stderr + proc.stdout and not (tmp_path / "plan.parquet").exists()
    # run by hand, the command leaves the damaged file where it is
    assert (tmp_path / rel).read_bytes() == data[: len(data) // 2]

    # as a workflow job (common.smk sets ANTS_SET_ASIDE_DAMAGED=1): the file is moved aside, so
    # that a plain re-run rebuilds it, and the one line says so
    proc = subprocess.run(
        [sys.executable, "-m", "ants.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT), artifacts.SET_ASIDE_ENV: "1"},
    )
    aside = Path("results/damaged") / rel.relative_to("results")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"ants plan: error: {rel} (stream table): not a Parquet file, or cut short (no Parquet footer). "
        f"Moved it aside to {aside}: a plain re-run of the workflow rebuilds it"
    ]
    assert not (tmp_path / rel).exists()
    assert (tmp_path / aside).read_bytes() == data[: len(data) // 2]


def test_a_damaged_timing_sidecar_is_ignored_with_a_warning_and_the_log_still_reads(
    workflow, caplog
):
    """The sidecar holds run-dependent timings only: never needed, so a damaged one is skipped, said so."""
    from ants.answers_log import answer_records, read_answer_log, sidecar_path, write_answer_log
    from ants.mllm.base import Answer, Query

    rel = Path(artifacts.path("answers", benchmark="b", method="m", ood="o", seed=0))
    side = Path(artifacts.path("timings", benchmark="b", method="m", ood="o", seed=0))
    frame = answer_records(
        [Query("vsnl", "dog")], [Answer("1. wolf", ("wolf",))], stream_id="s", batch_index=1
    )
    write_answer_log(rel, frame.assign(from_cache=True), timings=side)
    assert sidecar_path(rel) == side and read_answer_log(rel)["from_cache"].tolist() == [True]
    for damage in (b"", b'{"rows": 1, "seconds"', bytes(range(256))):
        side.write_bytes(damage)
        with caplog.at_level("WARNING"):
            back = read_answer_log(rel)
        assert back["from_cache"].tolist() == [None] and back["negatives"].tolist() == [["wolf"]]
        assert f"ignoring the timing sidecar {side} of {rel}" in caplog.text
        caplog.clear()
