"""One finished demo run per pytest session, shared by the end-to-end tests that only need one.

Building the reduced demo (``_workflow.test_params()``: every rule, every method, both ANTS
presets, the demo MLLM, one seed) costs minutes; most workflow tests need a finished run only
to change something in it and watch what Snakemake / DVC do next. They share one:

* the ``demo_run`` fixture (tests/conftest.py, session scope) is the :class:`DemoRun` built by
  :func:`finished_demo_run`: ``make_copy`` + ``snakemake --cores 2 all``, ONCE per session, also
  under pytest-xdist: the first worker to ask builds it under a file lock in a folder every
  worker sees (the session's base temp folder), the others wait on the lock and reuse it once
  its completion marker (``run.json``) exists; a failed build is tried once, not once per
  worker (``failed.txt`` holds its error for the others);
* a test never changes the shared run: it takes its own copy with :func:`copy_demo_run` (every
  file with its mtime, ``.snakemake/``'s metadata included), in which ``snakemake -n all`` has
  nothing to do (tests/e2e/test_demo_run.py checks that), and changes the copy.

Use::

    from _demo_run import copy_demo_run

    def test_something(demo_run, tmp_path):
        w = copy_demo_run(demo_run, tmp_path / "w")
        edit_params(w, ...)  # then snakemake(w, "all"), planned_jobs(w), ...

Tests whose point is a build from scratch (the demo DAG's own, DVC's, another CPU path's, an
installed wheel's) keep building their own; they can compare against ``demo_run``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from _workflow import make_copy, snakemake, test_params

#: the completion marker beside the run's folder: what the build printed, and its wall time
MARKER = "run.json"


@dataclass(frozen=True)
class DemoRun:
    """A finished ``snakemake --cores 2 all`` of ``test_params()`` in ``dir`` (never to be
    changed: copy it), with what Snakemake printed (``out``), its wall time (``seconds``) and
    the ``results/metrics.json`` it wrote (``metrics``)."""

    dir: Path
    out: str
    seconds: float
    metrics: str


def shared_root(tmp_path_factory) -> Path:
    """The folder every process of this session sees: under pytest-xdist, the parent of this
    worker's base temp folder (``pytest-N/``, shared by ``popen-gw0``, ``popen-gw1``, ...);
    without it, the base temp folder itself (the parent holds earlier sessions' folders)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def finished_demo_run(tmp_path_factory) -> DemoRun:
    """The session's finished demo run, built by whichever process asks first (see above)."""
    from filelock import FileLock

    root = shared_root(tmp_path_factory) / "shared-demo-run"
    root.mkdir(parents=True, exist_ok=True)
    marker, failed = root / MARKER, root / "failed.txt"
    with FileLock(str(root / "build.lock")):
        if failed.is_file():  # one failed build is enough: the other workers say so at once
            raise AssertionError(f"the shared demo run failed to build:\n{failed.read_text()}")
        if not marker.is_file():
            workdir = root / "demo"
            make_copy(workdir, test_params())
            t0 = time.perf_counter()
            try:
                out = snakemake(workdir, "all")
            except BaseException as e:
                failed.write_text(str(e))
                raise
            record = {
                "out": out.stdout + out.stderr,
                "seconds": time.perf_counter() - t0,
                "metrics": (workdir / "results" / "metrics.json").read_text(),
            }
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(marker)
    record = json.loads(marker.read_text())
    return DemoRun(dir=root / "demo", **record)


def copy_demo_run(run: DemoRun, dest: Path, only: tuple[str, ...] = ()) -> Path:
    """A copy of the finished run at ``dest`` that Snakemake sees as finished too: every file
    keeps its mtime (``shutil.copy2``), ``.snakemake/`` (the jobs' metadata: params, code,
    inputs) comes along, symlinks stay symlinks. ``dest`` must not exist, unless ``only`` names
    the parts to copy into it (e.g. ``("params.yaml", "results", "reports", ".snakemake")`` into
    a clone of the repository, whose workflow files are the run's own)."""
    if not only:
        shutil.copytree(run.dir, dest, symlinks=True, copy_function=shutil.copy2)
        return dest
    for rel in only:
        src = run.dir / rel
        if src.is_dir():
            shutil.copytree(
                src, dest / rel, symlinks=True, copy_function=shutil.copy2, dirs_exist_ok=True
            )
        else:
            shutil.copy2(src, dest / rel)
    return dest
