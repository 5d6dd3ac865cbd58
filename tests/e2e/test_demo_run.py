"""The session's shared demo run (tests/_demo_run.py): a copy of it is a finished run too."""

from __future__ import annotations

import json

from _demo_run import copy_demo_run
from _workflow import planned_jobs, snakemake


def test_a_copy_of_the_shared_run_is_finished_and_its_own(demo_run, tmp_path):
    w = copy_demo_run(demo_run, tmp_path / "copy")
    files = sorted(p.relative_to(demo_run.dir) for p in demo_run.dir.rglob("*") if p.is_file())
    assert any(p.parts[0] == ".snakemake" for p in files) and len(files) > 100
    for rel in files:  # every file, its mtime kept
        assert (w / rel).stat().st_mtime_ns == (demo_run.dir / rel).stat().st_mtime_ns, rel
    assert json.loads((w / "results/metrics.json").read_text()) == json.loads(demo_run.metrics)
    # Snakemake sees it finished: nothing to do for `all` (what `dvc repro` runs)
    assert planned_jobs(w) == {}
    # ... and it is the copy's own: a change there leaves the shared run as it was
    (w / "results/metrics.json").unlink()
    assert planned_jobs(w) == {"metrics": 1, "tables": 1, "report": 1, "all": 1}
    assert (demo_run.dir / "results/metrics.json").is_file()
    snakemake(w, "all")
    assert (w / "results/metrics.json").read_text() == demo_run.metrics
