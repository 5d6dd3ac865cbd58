"""Workflow figures: demo wall time, `snakemake -n` with nothing to do, re-runs after a change.

Runs on a copy of the repository's workflow (Snakefile, workflow/, ants/, params.yaml) in a
temporary folder, with the shipped params.yaml (the offline demo), and prints:

* the wall time of the whole demo DAG from scratch (``snakemake --cores N all``);
* the wall time of ``snakemake -n`` when nothing is out of date (the cost of asking);
* the jobs Snakemake re-runs after a scoring-only change (AdaNeg's lambda; an ANTS lambda
  rule), a new seed, a new OOD set and an MLLM prompt change, per rule, from its own dry-run
  job table, and whether any existing score file was rewritten (a new seed or OOD set must add
  jobs without touching the others);
* the number of texts CLIP encoded in the whole DAG (the text features of the MLLM's
  negatives are encoded once; no score job loads CLIP);
* the job time per rule of the demo DAG (jobs, median and total seconds, from the jobs' own
  Snakemake ``benchmark:`` files in ``results/benchmarks``) and the median job;
* the wall time of the demo sweeps (``snakemake sweeps``), unless ``--no-sweeps``.

Each figure is printed beside its target (issue 15 item 2: the demo DAG <= 3 min, the median
job <= 2 s, ``snakemake -n`` with nothing to do <= 2 s, the demo sweeps <= 5 min) and whether
it is met. The targets are for the reference machine (2 CPU cores); elsewhere read the figures
as ratios to each other.

    python benchmarks/bench_workflow.py [--cores 2] [--keep DIR] [--no-sweeps]
    python benchmarks/bench_workflow.py --job-times DIR   # the table of a finished run in DIR
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ants.snakemake_jobs import NOTHING, job_stats

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPIED = ("Snakefile", "params.yaml", "workflow", "ants", "profiles")
#: issue 15 item 2's targets (seconds), on a 2-core CPU
TARGETS = {"demo": 180.0, "median_job": 2.0, "noop": 2.0, "sweeps": 300.0}


def _vs(seconds: float, target: str) -> str:
    limit = TARGETS[target]
    verdict = "met" if seconds <= limit else f"missed by {seconds - limit:.1f} s"
    return f"target <= {limit:g} s: {verdict}"


def job_times(workdir: Path, column: str = "s") -> dict[str, list[float]]:
    """Seconds of every finished job, per rule, from the Snakemake ``benchmark:`` files
    (``results/benchmarks/{rule}.tsv`` or ``results/benchmarks/{rule}/...tsv``): ``column``
    ``s`` is the wall time, ``cpu_time`` the CPU time (steadier on a shared machine)."""
    base = workdir / "results/benchmarks"
    times: dict[str, list[float]] = {}
    for tsv in sorted(base.rglob("*.tsv")):
        rel = tsv.relative_to(base)
        rule = rel.parts[0] if len(rel.parts) > 1 else tsv.stem
        header, *rows = tsv.read_text().splitlines()
        col = header.split("\t").index(column)
        times.setdefault(rule, []).extend(float(row.split("\t")[col]) for row in rows[:1])
    return times


def _median(values: list[float]) -> float:
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


def print_job_times(workdir: Path) -> float:
    """Print the per-rule table (largest total wall time first; wall and CPU seconds) and
    return the median job's wall time."""
    wall, cpu = job_times(workdir), job_times(workdir, "cpu_time")
    print(
        f"    {'rule':<20}{'jobs':>5}{'median s':>10}{'total s':>10}{'median cpu':>12}"
        f"{'total cpu':>11}"
    )
    for rule, secs in sorted(wall.items(), key=lambda kv: -sum(kv[1])):
        c = cpu[rule]
        print(
            f"    {rule:<20}{len(secs):>5}{_median(secs):>10.1f}{sum(secs):>10.1f}"
            f"{_median(c):>12.1f}{sum(c):>11.1f}"
        )
    every = [s for secs in wall.values() for s in secs]
    every_cpu = [s for secs in cpu.values() for s in secs]
    print(
        f"    {'all':<20}{len(every):>5}{_median(every):>10.1f}{sum(every):>10.1f}"
        f"{_median(every_cpu):>12.1f}{sum(every_cpu):>11.1f}"
    )
    return _median(every)


def _env() -> dict:
    e = dict(os.environ)
    e.update(
        PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return e


def _snakemake(cwd: Path, cores: int, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--cores", str(cores), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def _texts_encoded(workdir: Path) -> int:
    """Texts the encode_negatives jobs encoded (their logs say how many were new)."""
    total = 0
    for log in (workdir / "results/logs/encode_negatives").rglob("*.log"):
        m = re.search(r"\((\d+) encoded now\)", log.read_text())
        total += int(m[1]) if m else 0
    return total


def _edit(workdir: Path, edit) -> None:
    path = workdir / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", help="run in this (new) folder and keep it")
    ap.add_argument("--no-sweeps", action="store_true", help="skip timing the demo sweeps")
    ap.add_argument(
        "--job-times",
        metavar="WORKDIR",
        help="only print the per-rule job times of a finished run in WORKDIR",
    )
    args = ap.parse_args()
    if args.job_times:
        median = print_job_times(Path(args.job_times))
        print(f"median job: {median:.2f} s ({_vs(median, 'median_job')})")
        return

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ants-bench-"))
    work = base / "workflow-copy"
    for rel in COPIED:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, work / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            work.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    try:
        print(
            f"workflow copy: {work} (cores: {args.cores}, CPUs on this machine: {os.cpu_count()})"
        )
        full, out = _snakemake(work, args.cores, "all")
        n_jobs = len(re.findall(r"^Finished jobid", out, flags=re.M))
        print(
            f"demo DAG from scratch:             {full:7.1f} s  ({n_jobs} jobs; {_vs(full, 'demo')})"
        )
        print("job time per rule (the jobs' benchmark files):")
        median = print_job_times(work)
        print(f"median job:                        {median:7.2f} s  ({_vs(median, 'median_job')})")

        dry = [_snakemake(work, args.cores, "-n", "all") for _ in range(3)]
        assert all(NOTHING in text for _, text in dry), "the second run was not a no-op"
        noop = min(s for s, _ in dry)
        print(f"snakemake -n, nothing to do:       {noop:7.2f} s  (best of 3; {_vs(noop, 'noop')})")

        encoded = _texts_encoded(work)
        print(
            f"CLIP text encodes of MLLM negatives in the DAG: {encoded} (encode_negatives jobs); "
            f"score jobs load no CLIP"
        )

        def new_ood(p):
            p["datasets"]["demo_far_b"] = {"source": "demo", "split": "far"}
            p["benchmarks"]["demo"]["ood"]["far"].append("demo_far_b")

        changes = [
            (
                "AdaNeg lambda 0.1 -> 0.2 (scoring only)",
                lambda p: p["methods"]["adaneg"]["config"].update(lam=0.2),
            ),
            (
                "ANTS (paper) lambda statistics paper -> code (scoring only)",
                lambda p: p["methods"]["ants_paper"]["config"].update(lambda_stats="code"),
            ),
            ("a new seed", lambda p: p["run"].update(seeds=[*p["run"]["seeds"], 7])),
            ("a new OOD set", new_ood),
            (
                "MLLM ENS prompt changed",
                lambda p: p["mllm"].update(
                    prompts={"ens": "Describe this picture briefly. Not {c}."}
                ),
            ),
        ]
        for label, edit in changes:
            scores = {p: p.stat().st_mtime_ns for p in (work / "results/scores").rglob("*.parquet")}
            _edit(work, edit)
            _, text = _snakemake(work, args.cores, "-n", "all")
            jobs = job_stats(text)
            seconds, _ = _snakemake(work, args.cores, "all")
            heavy = {
                r: n
                for r, n in jobs.items()
                if r
                in ("embed_images", "embed_labels", "static", "plan", "answer", "encode_negatives")
            }
            rewritten = sum(p.stat().st_mtime_ns != t for p, t in scores.items())
            print(f"after {label}:")
            print(f"    re-run jobs: {sum(jobs.values())} {jobs}")
            print(
                f"    embedding / static / plan / answer / encode jobs among them: {heavy or 'none'}; "
                f"existing score files rewritten: {rewritten} of {len(scores)}; re-run time {seconds:.1f} s"
            )
        if not args.no_sweeps:
            _, text = _snakemake(work, args.cores, "-n", "sweeps")
            jobs = job_stats(text)
            seconds, _ = _snakemake(work, args.cores, "sweeps")
            print(
                f"demo sweeps (snakemake sweeps): {seconds:.1f} s ({_vs(seconds, 'sweeps')}), "
                f"{sum(jobs.values())} jobs {jobs}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
