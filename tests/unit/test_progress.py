"""ants.progress: bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import io
import logging

import pytest

from ants.progress import format_count, format_duration, progress, progress_mode


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("ANTS_PROGRESS", raising=False)


def test_mode_follows_the_stream_and_the_environment(monkeypatch):
    assert progress_mode(io.StringIO()) == "log"
    assert progress_mode(TTY()) == "bar"
    assert progress_mode(TTY(), enabled=False) == "off"
    monkeypatch.setenv("ANTS_PROGRESS", "log")
    assert progress_mode(TTY()) == "log"
    monkeypatch.setenv("ANTS_PROGRESS", "off")
    assert progress_mode(io.StringIO()) == "off"


def test_formatting():
    assert format_count(999, "B") == "999 B"
    assert format_count(1_234_567, "B") == "1.2 MB"
    assert format_count(12_345, "img") == "12,345 img"
    assert format_duration(4.2) == "4s"
    assert format_duration(75.2) == "1m15s"
    assert format_duration(3725) == "1h02m"


def test_log_lines_every_tenth_and_a_done_line(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="ants.progress")
    bar = progress(range(100), desc="manifest x", unit="img", stream=io.StringIO(), clock=clock, min_seconds=0.5)
    for _ in bar:
        clock.t += 0.1  # 100 items in 10 s
    lines = [r.getMessage() for r in caplog.records]
    # nothing in the first 0.5 s (min_seconds); then one line per 10 % crossed, 100 % left to "done"
    assert [m.split(":")[1].split("(")[0].strip() for m in lines[:-1]] == [f"{p}%" for p in range(10, 100, 10)]
    assert lines[0] == "manifest x: 10% (10 of 100 img, 10 img/s, ~9s left)"
    assert lines[-1] == "manifest x: done, 100 img in 10s (10 img/s)"


def test_time_based_lines_when_the_total_is_unknown(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="ants.progress")
    with progress(desc="download a", unit="B", stream=io.StringIO(), clock=clock, every_seconds=30) as bar:
        for _ in range(7):
            clock.t += 10
            bar.update(1_000_000)
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        "download a: 3.0 MB so far (100.0 kB/s, 30s elapsed)",
        "download a: 6.0 MB so far (100.0 kB/s, 1m00s elapsed)",
        "download a: done, 7.0 MB in 1m10s (100.0 kB/s)",
    ]


def test_short_loops_and_failures_stay_quiet(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="ants.progress")
    for _ in progress(range(5), desc="quick", stream=io.StringIO(), clock=clock):
        clock.t += 0.01
    with pytest.raises(RuntimeError):
        with progress(total=10, desc="broken", stream=io.StringIO(), clock=clock) as bar:
            clock.t += 5
            bar.update(1)
            raise RuntimeError("x")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["broken: 10% (1 of 10 it, 0 it/s, ~45s left)"]  # no 'done' after a failure


def test_resumed_count_and_bar_mode(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="ants.progress")
    with progress(total=100, initial=50, desc="resume", unit="B", stream=io.StringIO(), clock=clock) as bar:
        clock.t += 2
        bar.update(10)
    assert caplog.records[0].getMessage() == "resume: 60% (60 of 100 B, 5 B/s, ~8s left)"
    tty = TTY()
    with progress(total=3, desc="bar", stream=tty) as bar:
        bar.update(3)
    assert "bar: 100%" in tty.getvalue()
    off = io.StringIO()
    for _ in progress(range(3), desc="off", stream=off, enabled=False):
        pass
    assert off.getvalue() == ""


def test_log_lines_reach_the_stream_when_logging_is_not_configured(caplog):
    """No handler anywhere (a plain Python session): Python would drop INFO records, so the
    lines are written to the stream; a configured logger gets them instead."""
    clock = Clock()
    quiet = logging.getLogger("ants.test.unconfigured")
    quiet.propagate = False  # no handler on it or above it, as in a fresh interpreter
    assert not quiet.hasHandlers()
    out = io.StringIO()
    with progress(total=4, desc="mine", unit="label", stream=out, logger=quiet, clock=clock) as bar:
        for _ in range(4):
            clock.t += 1
            bar.update(1)
    assert out.getvalue().splitlines() == [
        "mine: 25% (1 of 4 label, 1 label/s, ~3s left)",
        "mine: 50% (2 of 4 label, 1 label/s, ~2s left)",
        "mine: 75% (3 of 4 label, 1 label/s, ~1s left)",
        "mine: done, 4 label in 4s (1 label/s)",
    ]
    caplog.set_level(logging.INFO, logger="ants.progress")
    out = io.StringIO()
    with progress(total=4, desc="mine", stream=out, clock=clock) as bar:
        clock.t += 2
        bar.update(4)
    assert out.getvalue() == ""
    assert [r.getMessage() for r in caplog.records] == ["mine: done, 4 it in 2s (2 it/s)"]


def test_a_jupyter_output_stream_gets_a_bar():
    notebook_stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})
    assert progress_mode(notebook_stream()) == "bar"
    assert progress_mode(notebook_stream(), enabled=False) == "off"
