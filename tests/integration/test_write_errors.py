"""A file that cannot be written (a full disk, a file-size limit, a read-only folder) is one
line naming the file and the OS error, nothing half-written left behind, and the ``ants``
command exits 1 (issue 19: before, a pyarrow/OS traceback naming a hidden temporary file)."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _workflow import interruptible

from ants._io import WriteError, atomic_path, write_table

pytestmark = [pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))


def test_a_write_past_the_file_size_limit_is_one_line_naming_the_file(tmp_path):
    """`ants config merge` (an atomic writer) under RLIMIT_FSIZE, as a full disk: EFBIG."""
    big = tmp_path / "big.yaml"
    big.write_text((ROOT / "params.yaml").read_text())  # merged, longer than 4 KB
    out = subprocess.run(
        [sys.executable, "-m", "ants.cli", "config", "merge", str(big), "--out", "merged.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert text.strip().splitlines()[-1] == (
        "ants config: failed: cannot write merged.yaml: [Errno 27] File too large; nothing was "
        "written (free some space or make the folder writable, then run it again)"
    )
    assert "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.yaml"]


def test_pyarrows_write_error_is_a_write_error_naming_the_target(tmp_path, monkeypatch):
    """pyarrow reports ENOSPC as an OSError whose errno is only in its text."""
    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(
            "[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device"
        )

    monkeypatch.setattr(pq, "write_table", full)
    target = tmp_path / "t.parquet"
    with pytest.raises(WriteError) as info:
        write_table(target, pd.DataFrame({"a": [1]}))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert str(info.value).startswith(
        f"cannot write {target}: [Errno 28] No space left on device; "
    )
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_in_the_body_pass_through(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x") as _tmp:
        open(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_command_is_one_line_not_a_traceback(tmp_path):
    """SIGINT to a running `ants` command (Ctrl-C, or Snakemake's process group interrupted)."""
    code = (
        "import time, ants.cli as c\n"
        "def slow(args):\n"
        "    print('started', flush=True); time.sleep(60)\n"
        "c.cmd_config_check = slow\n"
        "raise SystemExit(c.main(['config', 'check']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=interruptible,
    )
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == (
        "ants config: interrupted; nothing was written (a re-run does this step again)"
    )


def test_an_unwritable_results_folder_is_named_with_what_to_do(tmp_path, monkeypatch):
    from ants import artifacts

    (tmp_path / "results/scores/demo").mkdir(parents=True)
    assert artifacts.unwritable_folder(tmp_path / "results") is None
    assert artifacts.unwritable_folder(tmp_path / "missing") is None
    blocked = str(tmp_path / "results/scores")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and str(p) != blocked)
    assert artifacts.unwritable_folder(tmp_path / "results") == (
        f"{blocked}: cannot write there (no write permission); make it writable (chmod u+w), "
        "then run again"
    )
