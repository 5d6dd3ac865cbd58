"""The SLURM profile for real: the demo DAG submitted through snakemake-executor-plugin-slurm to
the one-node cluster of tests/setup/slurm.sh, against a local run of the same config.

The config is the reduced demo of tests/e2e/test_workflow.py cut further (NegLabel and ANTS on
its two OOD sets and one seed) so the SLURM run takes a few minutes on two cores; it still has
every kind of job: data, manifests, the GPU rules (embed_images, answer: on the `gpu` partition, asking for no GPU since
the demo models run on the CPU), text embedding, streams, plans, static and ANTS scores, metrics,
report. The profile is the shipped profiles/slurm/config.yaml with only its sizes shrunk to this
node (each job: 1 CPU and a CPU's share of the memory, so two run at once); partitions, runtimes,
the executor and the GPU logic are the profile's own. The local run it is compared with is the
same config made locally from a copy of the session's finished demo run (tests/_demo_run.py):
its score files are already there, only what the cut config changes (metrics, tables, report)
runs again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _demo_run import copy_demo_run
from _workflow import make_copy, run, test_params, write_params

from ants.snakemake_jobs import job_stats

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SETUP = ROOT / "tests" / "setup" / "slurm.sh"


def slurm_params() -> dict:
    """tests/e2e/test_workflow.py's reduced demo (one seed) with NegLabel and ANTS only: two
    answer jobs (one per OOD set), the scores of both OOD sets already in the shared run."""
    p = test_params()
    p["run"].update(methods=["neglabel", "ants_code"])
    return p


def node_size() -> tuple[int, int]:
    """CPUs and memory (MB) of the cluster's first node, as slurmctld knows them."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%c %m"], capture_output=True, text=True, check=True,
                         timeout=30).stdout.split()
    return int(out[0]), int(out[1].rstrip("+"))


def shrunk_profile(cpus: int, mem_mb: int) -> dict:
    """profiles/slurm/config.yaml with every job sized to 1 CPU and ``mem_mb // cpus`` MB."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    share = mem_mb // cpus
    for res in [profile["default-resources"], *profile["set-resources"].values()]:
        if "mem_mb" in res:
            res["mem_mb"] = min(res["mem_mb"], share)
        if "cpus_per_task" in res:
            res["cpus_per_task"] = 1
    profile["jobs"] = cpus
    return profile


@pytest.fixture(scope="module")
def cluster():
    """A SLURM cluster that answers (started by tests/setup/slurm.sh where we are root)."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[workflow]')")
    if os.geteuid() == 0 or shutil.which("sinfo") is None:
        setup = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900)
        if setup.returncode != 0:
            pytest.skip(f"tests/setup/slurm.sh could not install or start SLURM:\n{setup.stdout[-2000:]}"
                        f"{setup.stderr[-2000:]}")
    if shutil.which("sbatch") is None or subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0:
        pytest.skip("no SLURM cluster answers `sinfo` (run tests/setup/slurm.sh as root)")
    return node_size()


def test_shrunk_profile_keeps_partitions_runtimes_and_caps_sizes():
    profile = shrunk_profile(2, 24000)
    shipped = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["set-resources"]["answer"]["mem_mb"] == 12000 < shipped["set-resources"]["answer"]["mem_mb"]
    assert profile["set-resources"]["demo_data"] == shipped["set-resources"]["demo_data"]
    for rule, res in shipped["set-resources"].items():
        assert profile["set-resources"][rule]["runtime"] == res["runtime"], rule
        assert profile["set-resources"][rule].get("slurm_partition") == res.get("slurm_partition"), rule


def slurm_jobs(run_id: str) -> list[dict]:
    """The jobs of one Snakemake run as slurmctld lists them (MinJobAge keeps finished ones)."""
    fields = ["JobID", "Comment", "Partition", "State", "NumCPUs", "MinMemory", "TimeLimit", "tres-per-job",
              "StartTime", "EndTime"]
    out = subprocess.run(["squeue", "--states=all", "--noheader", f"--name={run_id}",
                          "-O", ",".join(f"{f}:|" for f in fields)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return [dict(zip(fields, (c.strip() for c in line.split("|")), strict=False))
            for line in out.splitlines() if line.strip()]


@pytest.mark.slow
def test_demo_dag_through_the_slurm_profile_matches_a_local_run(cluster, demo_run, tmp_path, record_figure):
    cpus, mem_mb = cluster
    params = slurm_params()

    local = copy_demo_run(demo_run, tmp_path / "local")
    write_params(local, params)
    t0 = time.perf_counter()
    run([BIN / "snakemake", "--cores", str(cpus), "all"], local)
    t_local = time.perf_counter() - t0

    work = make_copy(tmp_path / "slurm", params)
    (work / "profiles" / "slurm").mkdir(parents=True, exist_ok=True)
    (work / "profiles" / "slurm" / "config.yaml").write_text(yaml.safe_dump(shrunk_profile(cpus, mem_mb)))
    t0 = time.perf_counter()
    out = run([BIN / "snakemake", "--workflow-profile", "profiles/slurm", "all",
               # no accounting database on the test cluster: job states come from squeue
               "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
               "--slurm-keep-successful-logs"], work, timeout=1500)
    t_slurm = time.perf_counter() - t0
    text = out.stdout + out.stderr
    record_figure(f"demo DAG: local run {t_local:.0f} s, through the SLURM profile {t_slurm:.0f} s")

    assert (work / "results/metrics.json").read_text() == (local / "results/metrics.json").read_text()
    assert set(json.loads((work / "results/metrics.json").read_text())["demo"]) == {"neglabel", "ants_code"}
    assert (work / "reports/index.html").is_file()

    run_id = re.search(r"SLURM run ID: (\S+)", text)[1]
    jobs = slurm_jobs(run_id)
    rules = {}
    for job in jobs:
        assert job["State"] == "COMPLETED", job
        rules.setdefault(re.match(r"rule_([a-z_]+?)(_wildcards_.*)?$", job["Comment"])[1], []).append(job)
    planned = job_stats(text)
    planned.pop("all")  # `all` is a local rule
    assert {r: len(js) for r, js in rules.items()} == planned
    assert {"embed_images", "embed_labels", "static", "plan", "answer", "encode_negatives", "score", "report"} <= set(rules)
    shipped = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for rule, js in rules.items():
        res = {**shipped["default-resources"], **shipped["set-resources"].get(rule, {})}
        for job in js:
            assert job["Partition"] == res["slurm_partition"], (rule, job)
            assert job["TimeLimit"] == time_limit(res["runtime"]), (rule, job)
            assert job["MinMemory"] == f"{min(res['mem_mb'], mem_mb // cpus)}M", (rule, job)
            assert "gpu" not in job["tres-per-job"], (rule, job)  # the demo asks for no GPU
    assert rules["answer"][0]["Partition"] == rules["embed_images"][0]["Partition"] == "gpu"
    # the profile's mllm_jobs=1: answer jobs ran one after another, never side by side
    spans = sorted((job["StartTime"], job["EndTime"]) for job in rules["answer"])
    assert len(spans) == 2 and all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False)), spans
    # every job's own log is the SLURM log the plugin kept
    logs = work / ".snakemake" / "slurm_logs"
    assert {p.name for p in logs.iterdir()} == {f"rule_{r}" for r in rules}


def time_limit(minutes: int) -> str:
    """How squeue shows a time limit of ``minutes``: ``15:00``, ``2:00:00``, ``1-00:00:00``."""
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    if d:
        return f"{d}-{h:02d}:{m:02d}:00"
    return f"{h}:{m:02d}:00" if h else f"{m}:00"


def test_time_limit_display():
    assert [time_limit(m) for m in (10, 60, 125, 1440, 1530)] == ["10:00", "1:00:00", "2:05:00", "1-00:00:00",
                                                                  "1-01:30:00"]
