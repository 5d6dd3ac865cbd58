"""Every writer of a stored artifact is atomic: a process killed (SIGKILL, as a scheduler or the
OOM killer does it) in the middle of writing never leaves a file that looks complete.

Each case runs the artifact's own writer in a child process: the child first writes a valid file
(the "previous run"), then writes it again and is killed at the last moment before the new file
would take its place (when its bytes are written and being flushed to disk). The file must still
be the previous one, byte for byte, and read through its validating reader; what the killed
writer left is at most a hidden temporary file (``.NAME.*.tmp``) that no rule takes for an output.
The SQLite stores' transactions are killed in tests/_stores.py; downloads in test_downloads.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _artifact_fixtures import PARQUET

from ants import artifacts

pytestmark = [pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]

#: the other stored files: kind -> (child code writing ``rel`` (a str), the reader)
OTHER = {
    "metrics_json": (
        "artifacts.write_metrics_json(rel, {'b': {'m': {'far': {'auroc': 50.0, 'fpr95': 9.0}}}})",
        artifacts.read_metrics_json,
    ),
    "metrics_csv": (
        "import pandas as pd\n"
        "artifacts.write_csv(rel, pd.DataFrame({'a': [1.5, 2.5], 'b': ['x', 'y']}))",
        lambda path: Path(path).read_text(),
    ),
    "figure": (
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from ants.report import _figure_out\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([0, 1], [0, 1])\n"
        "_figure_out(fig, Path(rel).parent, Path(rel).stem, 'a figure')",
        lambda path: Path(path).read_bytes()[:8],
    ),
}

_WILDCARDS = {"metrics_json": {}, "metrics_csv": {"benchmark": "b"}}

CHILD = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
import ants._io
from ants import artifacts
rel = {rel!r}
def write():
{write}
write()  # the previous run's file, complete
real = ants._io._fsync
def stop_before_rename(path, *, directory=False):
    if not directory:  # the new file's bytes are written: the moment before it replaces the old one
        real(path)
        print("WRITTEN", flush=True)
        time.sleep(600)
    return real(path, directory=directory)
ants._io._fsync = stop_before_rename
write()
print("NOT KILLED", flush=True)
"""


def _parquet_code(kind: str) -> str:
    return f"from _artifact_fixtures import PARQUET\nPARQUET[{kind!r}][0](Path(rel))"


def _case(kind: str) -> tuple[str, str, object]:
    """``(rel, child code, reader)`` of one kind."""
    if kind in PARQUET:
        write, read, wildcards, _, _ = PARQUET[kind]
        return artifacts.path(kind, **wildcards), _parquet_code(kind), read
    code, read = OTHER[kind]
    rel = "reports/figures/roc_b.png" if kind == "figure" else artifacts.path(kind, **_WILDCARDS[kind])
    return rel, code, read


@pytest.mark.parametrize("kind", sorted(PARQUET) + sorted(OTHER))
def test_a_writer_killed_before_its_file_is_complete_leaves_the_previous_file(tmp_path, kind):
    rel, code, read = _case(kind)
    script = tmp_path / "child.py"
    script.write_text(
        CHILD.format(tests=str(ROOT / "tests"), rel=rel, write=textwrap.indent(code, "    ")),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    child = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        line = child.stdout.readline()
        assert line == "WRITTEN\n", line + child.stderr.read()
        target = tmp_path / rel
        before = target.read_bytes()  # the previous run's file, still in place
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == before
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        read(rel)  # still a valid file of its kind
    finally:
        os.chdir(cwd)
    left = sorted(p.name for p in target.parent.iterdir() if p.name != target.name)
    assert all(n.startswith(f".{target.name}.") and n.endswith(".tmp") for n in left), left
