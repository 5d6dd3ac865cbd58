"""The workflow end to end: Snakemake and DVC on a copy of the repository's workflow.

The demo DAG runs with a smaller configuration than the shipped params.yaml (fewer images,
two seeds, a WordNet corpus cut down with ``mining.exclude_lexnames``) so the whole module
stays within a few minutes on two cores; the structure (every rule, every method, both ANTS
presets, the demo MLLM, the SQLite cache, DVC) is the real one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPIED = ("Snakefile", "params.yaml", "dvc.yaml", ".dvcignore", "workflow", "ants", ".dvc/config", ".dvc/.gitignore")
KEEP_LEXNAMES = {"noun.shape", "noun.object", "noun.phenomenon", "noun.feeling", "adj.ppl", "adj.all"}
NOTHING = "Nothing to be done (all requested files are present and up to date)."


def env() -> dict:
    e = dict(os.environ)
    e.update(PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1",
             TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
             GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return e


def test_params() -> dict:
    """The shipped params.yaml, scaled down for the test."""
    from ants.wordnet import LEXNAMES

    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["demo"].update(images_per_class=8, near_per_class=8, n_far=40)
    p["run"]["seeds"] = [0, 1]
    p["mining"].update(n_negatives=200, exclude_lexnames=sorted(set(LEXNAMES) - KEEP_LEXNAMES))
    p["mllm"]["batch_size"] = 4
    return p


test_params.__test__ = False  # a helper, not a test


def make_copy(dest: Path, params: dict | None = None) -> Path:
    dest.mkdir(parents=True)
    for rel in COPIED:
        src = ROOT / rel
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / rel)
    write_params(dest, params if params is not None else test_params())
    return dest


def write_params(workdir: Path, params: dict) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def edit_params(workdir: Path, edit) -> None:
    p = yaml.safe_load((workdir / "params.yaml").read_text())
    edit(p)
    write_params(workdir, p)


def run(args, cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def snakemake(cwd: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
    return run([BIN / "snakemake", "--cores", "2", *args], cwd, check=check)


def planned_jobs(cwd: Path) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` would run (from its own job-stats table)."""
    out = snakemake(cwd, "-n", "all")
    text = out.stdout + out.stderr
    if NOTHING in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        jobs[m[1]] = int(m[2])
    jobs.pop("total", None)
    return jobs


def cache_rows(workdir: Path) -> int:
    with sqlite3.connect(workdir / "results" / "mllm-cache.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


def answer_stats(workdir: Path) -> dict[str, int]:
    text = (workdir / "results" / "logs" / "answer" / "demo.log").read_text()
    m = re.search(r"answered (\d+) queries \((\d+) distinct, (\d+) from the cache, (\d+) generated, (\d+) failed\)",
                  text)
    assert m, text[-2000:]
    return dict(zip(("queries", "distinct", "hits", "generated", "failed"), map(int, m.groups()), strict=True))


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the workflow after `snakemake --cores 2 all` (the demo DAG, from scratch)."""
    workdir = make_copy(tmp_path_factory.mktemp("wf") / "a")
    t0 = time.perf_counter()
    out = snakemake(workdir, "all")
    return {"dir": workdir, "out": out.stdout + out.stderr, "seconds": time.perf_counter() - t0,
            "metrics": (workdir / "results" / "metrics.json").read_text()}


def test_demo_dag_end_to_end_through_snakemake(built):
    w = built["dir"]
    assert "Its numbers carry NO meaning" in built["out"]
    metrics = json.loads(built["metrics"])
    assert set(metrics["demo"]) == {"mcm", "neglabel", "adaneg", "ants_paper", "ants_code"}
    for method, entries in metrics["demo"].items():
        assert {"demo_far", "demo_near", "far_average", "near_average"} <= set(entries), method
        assert entries["demo_far"]["n_seeds"] == 2
        assert 0 <= entries["demo_far"]["auroc"] <= 100
    for m in ("mcm", "neglabel", "adaneg", "ants_paper", "ants_code"):
        for ood in ("demo_far", "demo_near"):
            for s in (0, 1):
                assert (w / f"results/scores/demo/{m}/{ood}/seed{s}.parquet").is_file()
    log = pq.read_table(w / "results/answers/demo.parquet").to_pandas()
    assert set(log["kind"]) == {"ens", "vsnl"} and (log["backend"] == "demo").all()
    assert len(set(log["stream_id"])) == 2 * 2 * 2  # 2 ANTS methods x 2 OOD sets x 2 seeds
    html = (w / "reports/index.html").read_text()
    assert 'id="demo-banner"' in html and "carry no meaning" in html
    assert len(list((w / "reports/figures").glob("*.png"))) == 5 + 2
    csv = (w / "results/metrics/demo.csv").read_text().splitlines()
    assert csv[0].startswith("benchmark,method,label,dataset,split,")
    # a second run has nothing to do
    assert planned_jobs(w) == {}


def test_dvc_repro_after_snakemake_has_nothing_to_do(built):
    w = built["dir"]
    mtimes = {p: p.stat().st_mtime_ns for p in (w / "results/scores").rglob("*.parquet")}
    run(["git", "init", "-q"], w)
    out = run([BIN / "dvc", "repro"], w)
    assert NOTHING in out.stdout + out.stderr  # DVC ran Snakemake, which had nothing to do
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # committing to the cache kept mtimes
    again = run([BIN / "dvc", "repro"], w)
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "up to date" in run([BIN / "dvc", "status"], w).stdout
    assert planned_jobs(w) == {}
    assert (w / "results/metrics.json").read_text() == built["metrics"]


def test_dvc_repro_from_scratch_gives_identical_metrics(built, tmp_path):
    w = make_copy(tmp_path / "b")
    run(["git", "init", "-q"], w)
    out = run([BIN / "dvc", "repro"], w)
    assert "Running stage 'workflow'" in out.stdout + out.stderr
    assert (w / "results/metrics.json").read_text() == built["metrics"]
    assert planned_jobs(w) == {}  # Snakemake agrees: nothing to do after DVC
    again = run([BIN / "dvc", "repro"], w)
    assert "didn't change, skipping" in again.stdout + again.stderr
    metrics = run([BIN / "dvc", "metrics", "show", "--json"], w).stdout
    assert "ants_code" in metrics
    plots = json.loads(run([BIN / "dvc", "plots", "show", "--json"], w).stdout)
    assert not plots.get("errors"), plots.get("errors")
    assert "ANTS adaptive weight lambda over stream batches" in plots["data"]
    assert "reports/figures/trace_demo_ants_code.png" in plots["data"]


def test_scoring_only_changes_rerun_no_embedding_plan_or_answer_job(built):
    w = built["dir"]
    log = w / "results/answers/demo.parquet"
    before = (log.stat().st_mtime_ns, cache_rows(w))

    edit_params(w, lambda p: p["methods"]["adaneg"]["config"].update(lam=0.25))
    assert planned_jobs(w) == {"score": 4, "metrics": 1, "report": 1, "all": 1}  # AdaNeg: 2 OOD x 2 seeds

    edit_params(w, lambda p: p["methods"]["ants_paper"]["config"].update(lambda_stats="code"))
    assert planned_jobs(w) == {"score": 4, "score_ants": 4, "metrics": 1, "report": 1, "all": 1}

    snakemake(w, "all")
    assert (log.stat().st_mtime_ns, cache_rows(w)) == before  # no answer job ran, no MLLM call
    metrics = json.loads((w / "results/metrics.json").read_text())
    old = json.loads(built["metrics"])
    assert metrics["demo"]["mcm"] == old["demo"]["mcm"]
    assert metrics["demo"]["ants_paper"] != old["demo"]["ants_paper"]
    assert planned_jobs(w) == {}


def test_prompt_change_reanswers_only_what_changed_and_survives_a_kill(built):
    """A new ENS prompt: only the answer job (and what reads it) re-runs; VSNL answers come from
    the cache. Killing Snakemake during the answer job loses no answer."""
    w = built["dir"]
    rows_before = cache_rows(w)
    edit_params(w, lambda p: p["mllm"].update(prompts={"ens": "Describe this picture briefly. Not {c}."}))
    jobs = planned_jobs(w)
    assert jobs == {"answer": 1, "score_ants": 8, "metrics": 1, "report": 1, "all": 1}

    proc = subprocess.Popen([BIN / "snakemake", "--cores", "2", "all"], cwd=w, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (w / "results/mllm-cache.sqlite").exists() and cache_rows(w) >= rows_before + 8:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the answer job finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: SIGINT to Snakemake and its running jobs
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    kept = cache_rows(w) - rows_before
    assert kept >= 8
    assert not (w / "results/answers/demo.parquet").exists()  # killed before its (atomic) write
    assert planned_jobs(w).get("answer") == 1

    snakemake(w, "all")
    stats = answer_stats(w)
    log = pq.read_table(w / "results/answers/demo.parquet").to_pandas()
    n_vsnl = log.loc[log["kind"] == "vsnl", "cache_key"].nunique()
    # every VSNL answer and every ENS answer given before the kill came from the cache
    assert stats["hits"] == n_vsnl + kept
    assert stats["generated"] == stats["distinct"] - stats["hits"] > 0
    assert log.loc[log["kind"] == "ens", "prompt"].str.startswith("Describe this picture briefly.").all()
    assert planned_jobs(w) == {}


def test_bad_params_fail_before_any_job_naming_the_key(tmp_path):
    p = test_params()
    p["stream"]["batch_size"] = 0
    p["methods"]["adaneg"]["config"]["lamda"] = 0.1
    w = make_copy(tmp_path / "c", p)
    out = snakemake(w, "all", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "stream.batch_size: 0 is out of range; expected a value >= 1" in text
    assert "methods.adaneg.config.lamda: unknown key (did you mean 'lam'?)" in text
    assert "Nothing was run." in text
    assert not (w / "results").exists()


def test_corrupt_image_fails_naming_it_or_is_skipped_and_recorded(tmp_path):
    w = make_copy(tmp_path / "d")
    snakemake(w, "results/data/demo/far.txt")
    bad = w / "results/data/demo/far/color_field/0003.png"
    bad.write_bytes(b"not an image at all")
    target = "results/embeddings/tiny/demo_far.parquet"
    out = snakemake(w, target, check=False)
    assert out.returncode != 0
    job_log = (w / "results/logs/embed_images/tiny/demo_far.log").read_text()
    assert "far/color_field/0003.png" in job_log and "data.on_bad_image: skip" in job_log
    assert not (w / target).exists()

    edit_params(w, lambda p: p["data"].update(on_bad_image="skip"))
    snakemake(w, target)
    from ants.datasets import read_manifest
    from ants.embeddings import read_embeddings

    manifest, _ = read_manifest(w / "results/manifests/demo_far.parquet")
    row = manifest[manifest["path"].str.endswith("0003.png")].iloc[0]
    assert not row["readable"] and row["error"].startswith("UnidentifiedImageError")
    feats, rows, meta = read_embeddings(w / target)
    assert len(rows) == len(manifest) - 1 and feats.shape[0] == len(manifest) - 1
    assert [s["path"] for s in meta["skipped"]] == [row["path"]]
