"""What the workflow tests share: a copy of the repository's workflow with the reduced demo
params (``make_copy``, ``test_params``), running Snakemake / DVC there (``run``, ``snakemake``,
``planned_jobs``), and reading what a run left (answers logs and counts, the answer cache's rows,
the sha256 of every DVC-tracked file)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from ants.snakemake_jobs import NOTHING, job_stats  # noqa: F401 (NOTHING: for the tests)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPIED = ("Snakefile", "params.yaml", "dvc.yaml", ".dvcignore", "workflow", "ants", "profiles", ".dvc/config",
          ".dvc/.gitignore")
KEEP_LEXNAMES = {"noun.shape", "noun.object", "noun.phenomenon", "noun.feeling", "adj.ppl", "adj.all"}


def env() -> dict:
    e = dict(os.environ)
    e.update(PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1",
             TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
             GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return e


def interruptible() -> None:
    """``preexec_fn`` for a child that a test interrupts: SIGINT as a terminal delivers it (a
    shell's background job, e.g. a CI runner's or ``make test &``, inherits it ignored, and
    Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: the reduced demo's stream seeds (``test_params``), the default of the answer-log readers below
SEEDS = (0,)


def test_params() -> dict:
    """The shipped params.yaml, scaled down for the test: fewer images and negatives, a smaller
    MLLM batch, and ONE seed. A second seed runs the same jobs again with another stream order
    (a third of a build's jobs); what it adds, the mean and spread over seeds, is checked end to
    end once, by tests/e2e/test_workflow.py's new-seed test (and on fixtures by
    tests/unit/test_metrics.py and tests/integration/test_tables.py)."""
    from ants.wordnet import LEXNAMES

    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["demo"].update(images_per_class=8, near_per_class=8, n_far=40)
    p["run"]["seeds"] = list(SEEDS)
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


def run(args, cwd: Path, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def snakemake(cwd: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
    return run([BIN / "snakemake", "--cores", "2", *args], cwd, check=check)


def planned_jobs(cwd: Path, target: str = "all") -> dict[str, int]:
    """Jobs per rule that ``snakemake -n target`` would run (from its own job-stats table)."""
    out = snakemake(cwd, "-n", target)
    return job_stats(out.stdout + out.stderr)


def cache_rows(workdir: Path) -> int:
    with sqlite3.connect(workdir / "results" / "mllm-cache.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


def answer_stats(workdir: Path, seeds=SEEDS) -> dict[str, int]:
    """The answer jobs' counts, summed over the answer logs of the streams of ``seeds``."""
    total = dict.fromkeys(("queries", "distinct", "hits", "generated", "failed"), 0)
    logs = sorted(p for s in seeds for p in (workdir / "results" / "logs" / "answer").rglob(f"seed{s}.log"))
    assert logs
    for path in logs:
        text = path.read_text()
        m = re.search(r"answered (\d+) queries \((\d+) distinct, (\d+) from the cache, (\d+) generated, "
                      r"(\d+) failed\)", text)
        assert m, text[-2000:]
        for key, value in zip(total, map(int, m.groups()), strict=True):
            total[key] += value
    return total


def answer_logs(workdir: Path, seeds=SEEDS):
    """Every answers log of the streams of ``seeds`` (a test that added a seed and went back
    leaves that seed's files behind, as Snakemake does)."""
    import pandas as pd

    files = sorted(p for s in seeds for p in (workdir / "results/answers").rglob(f"seed{s}.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in files], ignore_index=True)


def tracked_outputs(workdir: Path) -> dict[str, str]:
    """sha256 of every file DVC records (the workflow stage's outs, metrics and plots)."""
    import hashlib

    stage = yaml.safe_load((workdir / "dvc.yaml").read_text())["stages"]["workflow"]
    paths = [next(iter(e)) if isinstance(e, dict) else e
             for key in ("outs", "metrics", "plots") for e in stage.get(key, [])]
    out = {}
    for rel in paths:
        p = workdir / rel
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
        for f in files:
            out[str(f.relative_to(workdir))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out
