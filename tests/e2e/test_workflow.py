"""The workflow end to end: Snakemake and DVC on a copy of the repository's workflow.

The demo DAG runs with a smaller configuration than the shipped params.yaml (fewer images,
one seed, a WordNet corpus cut down with ``mining.exclude_lexnames``) so the whole module
stays within a few minutes on two cores; the structure (every rule, every method, both ANTS
presets, the demo MLLM, the SQLite cache, DVC) is the real one. The module's tests change one
copy of the session's finished demo run (``built``, tests/_demo_run.py) one after another.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from _demo_run import copy_demo_run
from _workflow import (
    BIN,
    NOTHING,
    answer_logs,
    answer_stats,
    cache_rows,
    edit_params,
    env,
    planned_jobs,
    run,
    snakemake,
    test_params,
    tracked_outputs,
    write_params,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(demo_run, tmp_path_factory):
    """This module's copy of the session's finished demo run (`snakemake --cores 2 all` of the
    demo DAG from scratch, tests/_demo_run.py), with what that build printed and its wall time.
    The tests below change the copy one after another, in this order."""
    workdir = copy_demo_run(demo_run, tmp_path_factory.mktemp("wf") / "a")
    return {"dir": workdir, "out": demo_run.out, "seconds": demo_run.seconds, "metrics": demo_run.metrics}


def test_demo_dag_end_to_end_through_snakemake(built, record_figure):
    w = built["dir"]
    record_figure(f"test demo DAG (test_params) from scratch through snakemake: {built['seconds']:.0f} s")
    assert "Its numbers carry NO meaning" in built["out"]
    metrics = json.loads(built["metrics"])
    assert set(metrics["demo"]) == {"mcm", "neglabel", "adaneg", "ants_paper", "ants_code"}
    for method, entries in metrics["demo"].items():  # the far/near averages only
        assert set(entries) == {"far", "near"}, method
        assert 0 <= entries["far"]["auroc"] <= 100
    table = pd.read_csv(w / "results/metrics/demo.csv")  # per OOD set and split average
    assert set(table["dataset"]) == {"demo_far", "demo_near", "far_average", "near_average"}
    assert (table["n_seeds"] == 1).all()
    for m in ("mcm", "neglabel", "adaneg", "ants_paper", "ants_code"):
        for ood in ("demo_far", "demo_near"):
            assert (w / f"results/scores/demo/{m}/{ood}/seed0.parquet").is_file()
    log = answer_logs(w)
    assert set(log["kind"]) == {"ens", "vsnl"} and (log["backend"] == "demo").all()
    assert len(set(log["stream_id"])) == 2 * 2  # 2 ANTS methods x 2 OOD sets (x 1 seed)
    assert not {"answered_at", "seconds", "from_cache"} & set(log.columns)  # run-dependent: sidecar
    # the static pass ran once per (dataset, grouping): 3 datasets x {NegLabel G=5, ANTS s=100}
    assert len(list((w / "results/static").rglob("*.parquet"))) == 3 * 2
    html = (w / "reports/index.html").read_text()
    assert 'id="demo-banner"' in html
    csv = (w / "results/metrics/demo.csv").read_text().splitlines()
    assert csv[0].startswith("benchmark,method,label,dataset,split,")
    # a second run has nothing to do
    assert planned_jobs(w) == {}


def test_dvc_repro_after_snakemake_has_nothing_to_do(built):
    w = built["dir"]
    mtimes = {p: p.stat().st_mtime_ns for p in (w / "results/scores").rglob("*.parquet")}
    before = tracked_outputs(w)
    run(["git", "init", "-q"], w)
    out = run([BIN / "dvc", "repro"], w)
    assert NOTHING in out.stdout + out.stderr  # DVC ran Snakemake, which had nothing to do
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # committing to the cache kept mtimes
    again = run([BIN / "dvc", "repro"], w)
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "up to date" in run([BIN / "dvc", "status"], w).stdout
    assert planned_jobs(w) == {}
    assert (w / "results/metrics.json").read_text() == built["metrics"]
    assert tracked_outputs(w) == before


def _target_inputs(workdir: Path, target: str = "all") -> set[str]:
    """The input files of rule ``target``, as the dry run of its forced job lists them."""
    # `--quiet host` replaces the profile's `quiet: [rules, host]`, so the job's block is printed
    out = snakemake(workdir, "-n", target, "--forcerun", target, "--quiet", "host")  # both take lists
    block = (out.stdout + out.stderr).split(f"rule {target}:", 1)[1]
    return set(re.search(r"input: (.*)", block)[1].split(", "))


def test_a_deleted_versioned_file_is_rebuilt_not_certified_gone(built):
    """`all` (what `dvc repro` runs) requires every file DVC versions, so one deleted is rebuilt;
    a deleted answers log comes back from the cache, byte for byte, nothing asked again (issue
    21 item 4: Snakemake said "Nothing to be done" and DVC recorded the log as gone)."""
    w = built["dir"]
    stage = yaml.safe_load((w / "dvc.yaml").read_text())["stages"]["workflow"]
    outs = [next(iter(e)) if isinstance(e, dict) else e for key in ("outs", "metrics") for e in stage[key]]
    versioned = {str(f.relative_to(w)) for o in outs for f in ([w / o] if (w / o).is_file() else (w / o).rglob("*"))
                 if f.is_file()}
    # the demo's generated images are data below the lists the demo rule declares
    versioned = {f for f in versioned if not re.match(r"results/data/demo/(id|near|far)/", f)}
    assert len(versioned) > 50 and not [f for f in versioned if f.endswith(".svg")]
    assert sorted(versioned - _target_inputs(w)) == []

    # an answers log deleted: its answer job alone (and what reads it) runs again, from the cache
    if not (w / ".git").exists():
        run(["git", "init", "-q"], w)
    if not (w / "dvc.lock").exists():
        run([BIN / "dvc", "repro"], w)
    lock, before, rows = (w / "dvc.lock").read_text(), tracked_outputs(w), cache_rows(w)
    log = w / "results/answers/demo/ants_code/demo_far/seed0.parquet"
    log.unlink()
    assert planned_jobs(w) == {"answer": 1, "encode_negatives": 1, "score": 1, "metrics": 1, "tables": 1,
                               "report": 1, "all": 1}
    run([BIN / "dvc", "repro"], w)
    assert re.search(r"\(\d+ distinct, \d+ from the cache, 0 generated, 0 failed\)",
                     (w / "results/logs/answer/demo/ants_code/demo_far/seed0.log").read_text())
    assert cache_rows(w) == rows
    assert tracked_outputs(w) == before  # the log and everything downstream: byte-identical
    assert (w / "dvc.lock").read_text() == lock
    assert planned_jobs(w) == {}


@pytest.mark.faults
def test_a_damaged_stream_is_set_aside_by_the_job_that_reads_it_and_a_plain_rerun_rebuilds_it(built):
    """Issue 19's fault: a stream Parquet cut to half its size (mtime kept), then a job that reads
    it. Before: a 30-line pyarrow traceback, and a plain re-run failed the same way (the file still
    looked up to date). Now: one line naming the file, saying it was moved aside; a plain re-run
    rebuilds it and what reads it, byte for byte, asking the MLLM nothing."""
    w = built["dir"]
    before, rows = tracked_outputs(w), cache_rows(w)
    stream = w / "results/streams/demo/demo_far/shuffled-bs16/seed0.parquet"
    data, stat = stream.read_bytes(), stream.stat()
    stream.write_bytes(data[: len(data) // 2])
    os.utime(stream, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (w / "results/plans/demo/ants_code/demo_far/seed0.parquet").unlink()  # a job that reads it must run

    failed = snakemake(w, "all", check=False)
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    rel = "results/streams/demo/demo_far/shuffled-bs16/seed0.parquet"
    line = (f"{rel} (stream table): not a Parquet file, or cut short (no Parquet footer). Moved it aside to "
            f"results/damaged/streams/demo/demo_far/shuffled-bs16/seed0.parquet: a plain re-run of the "
            "workflow rebuilds it")
    assert line in text and "ArrowInvalid" not in text
    assert not stream.exists()
    assert (w / "results/damaged/streams/demo/demo_far/shuffled-bs16/seed0.parquet").read_bytes() == data[
        : len(data) // 2]

    snakemake(w, "all")  # the plain re-run
    assert stream.read_bytes() == data
    assert cache_rows(w) == rows
    assert tracked_outputs(w) == before
    assert planned_jobs(w) == {}
    shutil.rmtree(w / "results/damaged")  # the module's run as the later tests expect it


def test_scoring_only_changes_rerun_no_embedding_plan_or_answer_job(built):
    w = built["dir"]
    logs = sorted((w / "results/answers").rglob("*.parquet"))
    before = ([p.stat().st_mtime_ns for p in logs], cache_rows(w))

    edit_params(w, lambda p: p["methods"]["adaneg"]["config"].update(lam=0.25))
    assert planned_jobs(w) == {"score": 2, "metrics": 1, "tables": 1, "report": 1, "all": 1}  # 2 OOD x 1 seed

    edit_params(w, lambda p: p["methods"]["ants_paper"]["config"].update(lambda_stats="code"))
    assert planned_jobs(w) == {"score": 4, "metrics": 1, "tables": 1, "report": 1, "all": 1}

    snakemake(w, "all")
    assert ([p.stat().st_mtime_ns for p in logs], cache_rows(w)) == before  # no answer job, no MLLM call
    metrics = json.loads((w / "results/metrics.json").read_text())
    old = json.loads(built["metrics"])
    assert metrics["demo"]["mcm"] == old["demo"]["mcm"]
    assert metrics["demo"]["ants_paper"] != old["demo"]["ants_paper"]
    assert planned_jobs(w) == {}


def _auroc_by_sklearn(w: Path, method: str, ood: str, seed: int) -> float:
    """AUROC (in %) of one score file by scikit-learn: ID is the positive class, a higher score
    is more ID."""
    from sklearn.metrics import roc_auc_score

    frame = pd.read_parquet(w / f"results/scores/demo/{method}/{ood}/seed{seed}.parquet")
    return 100 * roc_auc_score(~frame["is_ood"].to_numpy(bool), frame["score"].to_numpy())


def test_a_new_seed_runs_only_its_own_jobs_and_the_tables_average_over_seeds(built):
    """A second seed added to the one-seed run: only its own jobs run; the tables then give the
    mean and the population std over both seeds (checked against scikit-learn per seed). Going
    back to one seed, the summary counts the current seed's answers only."""
    w = built["dir"]
    scores = {p: p.stat().st_mtime_ns for p in (w / "results/scores").rglob("*.parquet")}
    edit_params(w, lambda p: p["run"].update(seeds=[0, 1]))
    jobs = planned_jobs(w)
    # one new stream per OOD set; per stream: 5 score jobs, and plan/answer/encode for 2 ANTS methods
    assert jobs == {"stream": 2, "score": 10, "plan": 4, "answer": 4, "encode_negatives": 4, "metrics": 1,
                    "tables": 1, "report": 1, "all": 1}
    out = snakemake(w, "all")
    assert {p: p.stat().st_mtime_ns for p in scores} == scores  # no existing score was recomputed
    text = out.stdout + out.stderr
    assert f"MLLM answers: {len(answer_logs(w, seeds=(0, 1)))} queries in 8 streams: " in text
    table = pd.read_csv(w / "results/metrics/demo.csv").set_index(["method", "dataset"])
    assert (table["n_seeds"] == 2).all()
    # ANTS depends on the stream order: its two seeds differ, and the table holds their mean and std
    per_seed = [_auroc_by_sklearn(w, "ants_code", "demo_near", s) for s in (0, 1)]
    assert per_seed[0] != per_seed[1]
    row = table.loc[("ants_code", "demo_near")]
    assert row["auroc"] == pytest.approx(np.mean(per_seed), abs=1e-3)
    assert row["auroc_std"] == pytest.approx(np.std(per_seed), abs=1e-3)  # population std (ddof 0)
    mcm = table.loc[("mcm", "demo_far")]
    assert re.search(rf"^demo +MCM +demo_far: AUROC {mcm['auroc']:.2f} ", text, re.M)

    edit_params(w, lambda p: p["run"].update(seeds=[0]))
    out = snakemake(w, "all")
    # the summary counts the answers of the current seeds only (seed 1's logs are still there)
    assert len(answer_logs(w, seeds=(0, 1))) > len(answer_logs(w))
    assert f"MLLM answers: {len(answer_logs(w))} queries in 4 streams: " in out.stdout + out.stderr
    assert (pd.read_csv(w / "results/metrics/demo.csv")["n_seeds"] == 1).all()


def _kill_first_answer_job_after_a_commit(w: Path, rows_before: int) -> tuple[int, str]:
    """Start `snakemake all`, SIGKILL the first `ants answer` process once it has committed a
    batch to the cache (as an OOM kill would), let Snakemake fail; return the answers kept and
    the answers file the killed job was writing (its ``--out``)."""
    proc = subprocess.Popen([BIN / "snakemake", "--cores", "1", "all"], cwd=w, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed = False
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not killed:
            if (w / "results/mllm-cache.sqlite").exists() and cache_rows(w) > rows_before:
                ps = subprocess.run(["pgrep", "-f", "ants answer --plan"], capture_output=True, text=True)
                for pid in ps.stdout.split():
                    try:  # only this workflow's job (its working directory), never another run's
                        if Path(f"/proc/{pid}/cwd").resolve() != w.resolve():
                            continue
                        # the job's shell (`sh -c "ants answer ... --out F > log"`) or ants itself
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")
                        os.kill(int(pid), signal.SIGKILL)
                        out = re.search(r"--out '?([^' ]+)", cmdline)[1]
                    except (FileNotFoundError, ProcessLookupError):
                        continue
                    killed = True
            time.sleep(0.02)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed, "no answer job was running after the first committed batch"
    assert proc.returncode != 0
    return cache_rows(w) - rows_before, out


@pytest.mark.faults
def test_a_killed_answer_job_leaves_nothing_stale(built, demo_run, tmp_path):
    """A new ENS prompt; `kill -9` of the answer job after its first committed batch; the same
    command again finishes the change, no answer bought twice, and the killed stream's answers
    file is byte for byte an uninterrupted job's (the same change made to another copy of the
    finished demo run; the jobs after it are deterministic in their inputs, which
    test_reproducibility.py checks)."""
    w = built["dir"]
    prompt = {"ens": "Describe this picture briefly. Not {c}."}
    rows_before = cache_rows(w)
    edit_params(w, lambda p: p["mllm"].update(prompts=prompt))
    jobs = planned_jobs(w)
    assert jobs["answer"] == 4 and jobs["score"] == 4 and "embed_images" not in jobs
    kept, killed_out = _kill_first_answer_job_after_a_commit(w, rows_before)
    assert kept >= 1
    snakemake(w, "all")  # the same command again
    stats = answer_stats(w)
    assert stats["failed"] == 0
    log = answer_logs(w)
    ens = log[log["kind"] == "ens"]
    assert ens["prompt"].str.startswith("Describe this picture briefly.").all()
    # nothing asked twice: the re-run generated exactly the new prompt's distinct ENS questions
    # that the killed job had not committed, and the cache grew by all of them once
    new_keys = ens["cache_key"].nunique()
    assert stats["generated"] == new_keys - kept
    assert cache_rows(w) - rows_before == new_keys
    assert planned_jobs(w) == {}

    # an uninterrupted answer job of the same params (as earlier tests left them), from the
    # finished demo run as the killed one started, writes the same answers file
    fresh = copy_demo_run(demo_run, tmp_path / "fresh")
    write_params(fresh, yaml.safe_load((w / "params.yaml").read_text()))
    assert planned_jobs(fresh, killed_out)["answer"] == 1  # the killed job's, alone
    snakemake(fresh, killed_out)
    assert (fresh / killed_out).read_bytes() == (w / killed_out).read_bytes()


def test_sweeps_cost_a_replay_for_scoring_points_and_only_new_answers_for_prompt_points(built, record_figure):
    """`snakemake sweeps` on the demo: a fixed-lambda point is score jobs alone (its adaptive
    point is the main run's scores); a prompt point asks the MLLM only what the cache lacks."""
    w = built["dir"]
    shipped = test_params()["sweeps"]
    current_prompt = yaml.safe_load((w / "params.yaml").read_text())["mllm"]["prompts"]["ens"]
    old_prompt, new_prompt = shipped["ens_words"]["values"][1], shipped["ens_words"]["values"][0]
    assert current_prompt not in (old_prompt, new_prompt)  # the kill test's prompt is the base now

    def two_sweeps(p):
        p["sweeps"] |= {  # the others stay defined: the paper target's panels name them
            "fixed_lambda": {**shipped["fixed_lambda"], "values": [None, 0.5], "labels": ["adaptive", "0.5"],
                             "methods": ["ants_paper"]},  # in_score ada: lambda counts
            "ens_words": {**shipped["ens_words"], "values": [old_prompt, new_prompt], "labels": [8, 4],
                          "default": old_prompt, "methods": ["ants_code"]},
        }
        p["run"]["sweeps"] = ["fixed_lambda", "ens_words"]

    edit_params(w, two_sweeps)
    rows_before = cache_rows(w)
    jobs = planned_jobs(w, "sweeps")
    # 2 OOD sets x seed 0: fixed_lambda 0.5 -> 2 score jobs; each prompt -> plan, answer, encode, score
    assert jobs == {"plan": 4, "answer": 4, "encode_negatives": 4, "score": 2 + 4, "sweep_metrics": 2, "sweeps": 1}, jobs
    snakemake(w, "sweeps")
    assert planned_jobs(w, "sweeps") == {}

    lam = pd.read_csv(w / "results/sweeps/fixed_lambda.csv")
    avg = lam[(lam["method"] == "ants_paper") & (lam["dataset"] == "near_average")].set_index("value")
    assert set(avg.index) == {"adaptive", "0.5"} and (avg["n_seeds"] == 1).all()
    cols = ["auroc", "aupr_in", "aupr_out", "fpr95_ood"]
    assert (avg.loc["adaptive", cols] != avg.loc["0.5", cols]).any()  # a fixed lambda scores otherwise
    assert bool(avg.at["adaptive", "is_default"]) and not bool(avg.at["0.5", "is_default"])

    # the shipped prompt's answers were bought by the first run of the demo: all from the cache;
    # the new prompt's were generated once each
    logs = sorted((w / "results/logs/answer").rglob("*ens_words*/**/seed0.log")) or sorted(
        p for p in (w / "results/logs/answer").rglob("seed0.log") if "ens_words" in str(p))
    assert len(logs) == 4, logs
    generated = {}
    for path in logs:
        m = re.search(r"answered (\d+) queries \((\d+) distinct, (\d+) from the cache, (\d+) generated", path.read_text())
        point = "old" if "ens_words~0" in str(path) else "new"
        generated[point] = generated.get(point, 0) + int(m[4])
    assert generated["old"] == 0 and generated["new"] > 0
    assert cache_rows(w) - rows_before == generated["new"]
    record_figure(f"demo sweeps fixed_lambda + ens_words (seed 0): {sum(jobs.values())} jobs; answers generated: "
                  f"shipped prompt {generated['old']}, new prompt {generated['new']}")
    words = pd.read_csv(w / "results/sweeps/ens_words.csv")
    assert set(words["value"].astype(str)) == {"8", "4"}
