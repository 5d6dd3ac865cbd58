"""The committed dvc.lock records the code and params this tree holds.

dvc.yaml's one stage depends on Snakefile, workflow/, ants/ and every key of params.yaml; dvc.lock
holds their hashes as of the run that produced the committed results. A change to ants/ committed
without re-running `dvc repro` leaves dvc.lock stale: a clone's `dvc status` then reports the code
as modified, and its first `dvc repro` rewrites dvc.lock (a clean run of that commit no longer
reproduces what is committed). After changing code or params: `dvc repro`, then commit dvc.lock
with the results it wrote.
"""

from __future__ import annotations

import json

import pytest
from _workflow import BIN, ROOT, run


def test_dvc_lock_deps_are_the_trees_code_and_params():
    if not (ROOT / ".dvc").is_dir():
        pytest.skip("not a DVC project checkout")
    status = json.loads(run([BIN / "dvc", "status", "--json", "workflow"], ROOT, timeout=300).stdout or "{}")
    changed = {
        dep: state
        for entry in status.get("workflow", [])
        if isinstance(entry, dict)
        for key in ("changed deps", "changed params")
        for dep, state in entry.get(key, {}).items()
    }
    # (outs "not in cache" are expected: a clone's DVC cache is empty until `dvc repro`/`pull`)
    assert changed == {}, (
        f"dvc.lock is stale for {changed}: run `dvc repro` and commit dvc.lock (and the results "
        "it changed)"
    )
