"""What the workflow versions is byte-identical under another thread count and CPU code path,
and whichever of the two entry points (``snakemake all``, ``dvc repro``) built it.

On another machine of the same kind (x86-64, another CPU model: AVX-512 instead of AVX2, other
core count), torch, MKL, oneDNN, OpenBLAS and numpy pick other kernels and thread splits; before
:mod:`ants.numerics` pinned them, the demo's CLIP features, mined negatives, scores, metrics,
tables and figures all changed in their last bits there. This module compares two builds of
the reduced demo DAG from scratch: the session's shared one (tests/_demo_run.py), made by
``snakemake all`` as this machine's libraries choose, and one made by ``dvc repro`` (git
initialised, nothing built) under the settings another CPU would lead them to (other vector
widths and kernels for each library) with one thread instead of two; every file DVC records
(``dvc.yaml``'s outs, metrics and plots) must be byte for byte the same. One build serves both
questions (another machine; DVC's entry point), so the suite builds the demo from scratch once
less.
"""

from __future__ import annotations

import json
import subprocess
import time

import pyarrow.parquet as pq
import pytest
from _workflow import BIN, env, make_copy, planned_jobs, run, test_params, tracked_outputs

from ants._io import METADATA_KEY
from ants.numerics import portable_settings, why_not_portable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(why_not_portable() is not None, reason=f"{why_not_portable()}"),
]

#: what another machine's CPU makes the libraries do, plus another thread count. On the code
#: before the pin, each of these changed files (the CLIP features first, then everything after
#: them); OPENBLAS / MKL thread counts changed NegMining's statistics on their own.
OTHER_MACHINE = {
    "ATEN_CPU_CAPABILITY": "default",  # torch's kernels without AVX2 vectors
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN's convolution and GELU kernels
    "MKL_CBWR": "AUTO",  # MKL's own dispatch, in its reproducible mode
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",  # MKL's kernels on an Intel CPU
    "OPENBLAS_CORETYPE": "Sandybridge",  # numpy's BLAS kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V3",  # numpy's own SIMD loops at their baseline
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def dvc_repro(workdir, extra: dict[str, str]) -> tuple[dict[str, str], str]:
    """``dvc repro`` of ``test_params()`` (the shared demo run's) from scratch in a fresh copy
    (a new git repository) under ``extra`` environment settings: the sha256 of every
    DVC-tracked file, and what DVC and Snakemake printed."""
    make_copy(workdir, test_params())
    run(["git", "init", "-q"], workdir)
    e = env()
    for key in list(e):  # only the settings named here differ between the two runs
        if key in OTHER_MACHINE or key == "ANTS_CPU_NUMERICS":
            del e[key]
    e.update(extra)
    proc = subprocess.run(
        [BIN / "dvc", "repro"],
        cwd=workdir,
        env=e,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return tracked_outputs(workdir), proc.stdout + proc.stderr


def test_dvc_repro_from_scratch_under_another_cpu_path_and_thread_count_is_byte_identical(
    request, tmp_path, record_figure
):
    w = tmp_path / "other"
    t0 = time.perf_counter()
    other, out = dvc_repro(w, OTHER_MACHINE)
    t1 = time.perf_counter()
    assert "Running stage 'workflow'" in out
    # here: the shared run (asked for after the build above, so that this worker builds while
    # another may be building the shared run), built in the tests' environment (`env()`: at
    # most ants' own pinned settings, which its jobs would set anyway): none of OTHER_MACHINE's
    demo_run = request.getfixturevalue("demo_run")
    assert all(env().get(k) != v for k, v in OTHER_MACHINE.items())
    assert "ANTS_CPU_NUMERICS" not in env()
    here = tracked_outputs(demo_run.dir)
    record_figure(
        f"test reproducibility: demo DAG here {demo_run.seconds:.0f} s (the shared run), by dvc "
        f"repro under another CPU path and 1 thread {t1 - t0:.0f} s; {len(here)} DVC-tracked files compared"
    )
    assert here.keys() == other.keys() and len(here) > 50
    # every kind of versioned file is among them
    for part in (
        "embeddings/",
        "text/",
        "negatives/",
        "static/",
        "scores/",
        "answers/",
        "negatives-text/",
        "metrics/",
        "tables/",
        "metrics.json",
        "ants_trace.csv",
        "reports/figures/",
    ):
        assert any(part in k for k in here), part
    assert sorted(k for k in here if here[k] != other[k]) == []
    assert (w / "results/metrics.json").read_text() == demo_run.metrics

    # after DVC, Snakemake agrees there is nothing to do, and DVC too; its metrics and plots read
    assert planned_jobs(w) == {}
    again = run([BIN / "dvc", "repro"], w)
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "ants_code" in run([BIN / "dvc", "metrics", "show", "--json"], w).stdout
    plots = json.loads(run([BIN / "dvc", "plots", "show", "--json"], w).stdout)
    assert not plots.get("errors"), plots.get("errors")

    # the second run did meet other settings: ants replaced them where the workflow imports it
    # first (Snakemake's process, whose environment every job inherits), and said so; the files
    # record the code path they were computed under
    replaced = ", ".join(f"{k}={OTHER_MACHINE[k]}" for k in sorted(portable_settings()))
    assert f"replaced {replaced} (ANTS_CPU_NUMERICS=native keeps yours)" in out
    meta = pq.read_schema(demo_run.dir / "results/scores/demo/ants_paper/demo_near/seed0.parquet")
    recorded = json.loads(meta.metadata[METADATA_KEY])["cpu_numerics"]
    assert recorded["mode"] == "portable" and recorded["settings"]["MKL_CBWR"] == "COMPATIBLE"
