"""Progress of long loops: a tqdm bar on a terminal, periodic log lines everywhere else.

Downloads, manifests and image / text encoding can take minutes to hours. On a terminal a
tqdm bar shows their progress; but under Snakemake (or any redirect) stderr is a log file,
where a bar's carriage returns make an unreadable single line. There :func:`progress` logs
plain lines instead (logger ``ants.progress``, level INFO), so ``tail -f`` of a job's log shows
how far it got::

    manifest sun: 30% (3,000 of 10,000 img, 512 img/s, ~14s left)
    download SUN.tar.gz: 40% (420.0 MB of 1.1 GB, 11.8 MB/s, ~1m00s left)
    download SUN.tar.gz: done, 1.1 GB in 1m35s (11.6 MB/s)

Usage (wrap an iterable, or update a counter by hand)::

    from ants.progress import progress

    for path in progress(paths, desc="manifest sun", unit="img"):
        ...
    with progress(total=size, desc="download X.tar.gz", unit="B", initial=resumed) as bar:
        bar.update(len(block))

Rules of the log mode: a line each time the count crosses another ``every_fraction`` of the
total (default every 10 %) and at least every ``every_seconds`` (default 30 s; the only rule
when the total is unknown), but nothing during the first ``min_seconds`` (default 1 s), so
short loops stay quiet; and one ``done`` line at the end when any line was logged or the loop
took longer than ``min_seconds``. ``unit="B"`` formats counts as bytes (kB, MB, GB).

Which mode: ``enabled=False`` shows nothing; else the environment variable ``ANTS_PROGRESS``
(``bar``, ``log`` or ``off``) decides when set; else a bar when ``stream`` (default
``sys.stderr``) is a terminal or a Jupyter kernel's output stream, log lines otherwise.

Where the log lines go: to the ``ants.progress`` logger when logging is configured (the
``ants`` command configures it; so does pytest, or a ``logging.basicConfig()`` call, whose
level then decides what shows). When nothing is configured -- a plain Python session or
script whose stderr is not a terminal -- Python would drop INFO records silently (its
last-resort handler shows only warnings), so the lines are written to ``stream`` instead:
long work called from Python is never silent.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

__all__ = ["Progress", "format_count", "format_duration", "progress", "progress_mode"]

log = logging.getLogger("ants.progress")

MODES = ("bar", "log", "off")


def progress_mode(stream: TextIO | None = None, enabled: bool = True) -> str:
    """``'bar'``, ``'log'`` or ``'off'`` for ``stream`` (see the module docstring)."""
    if not enabled:
        return "off"
    env = os.environ.get("ANTS_PROGRESS", "").strip().lower()
    if env in MODES:
        return env
    stream = sys.stderr if stream is None else stream
    if _is_notebook_stream(stream):
        return "bar"  # tqdm.auto draws a notebook widget there (or a text bar, which Jupyter shows)
    try:
        return "bar" if stream.isatty() else "log"
    except (AttributeError, ValueError):  # closed or odd streams
        return "log"


def _is_notebook_stream(stream: TextIO) -> bool:
    """True for the output streams of a Jupyter (IPython) kernel, which are no terminals."""
    return type(stream).__module__.split(".", 1)[0] == "ipykernel"


def format_count(n: float, unit: str) -> str:
    """A count for a progress line; ``unit="B"`` gives bytes with a decimal prefix.

    >>> format_count(1_234_567, "B"), format_count(1234, "img")
    ('1.2 MB', '1,234 img')
    """
    if unit == "B":
        value = float(n)
        for prefix in ("B", "kB", "MB", "GB", "TB"):
            if abs(value) < 1000 or prefix == "TB":
                return f"{value:.0f} B" if prefix == "B" else f"{value:.1f} {prefix}"
            value /= 1000
    return f"{int(n):,} {unit}"


def format_duration(seconds: float) -> str:
    """A duration for a progress line, rounded to whole seconds.

    >>> format_duration(4.2), format_duration(75.2), format_duration(3725)
    ('4s', '1m15s', '1h02m')
    """
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _rate(n: float, seconds: float, unit: str) -> str:
    if seconds <= 0:
        return ""
    per_s = n / seconds
    return f"{format_count(per_s, unit)}/s" if unit == "B" else f"{per_s:,.0f} {unit}/s"


class Progress:
    """One progress display; see :func:`progress` (which builds it) for the arguments."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        *,
        initial: float = 0,
        enabled: bool = True,
        stream: TextIO | None = None,
        logger: logging.Logger | None = None,
        every_fraction: float = 0.1,
        every_seconds: float = 30.0,
        min_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable = iterable
        self.total = total if (total is None or total > 0) else None
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.initial = initial
        self.mode = progress_mode(stream, enabled)
        self._stream = stream
        self._log = logger or log
        self._every_fraction = every_fraction
        self._every_seconds = every_seconds
        self._min_seconds = min_seconds
        self._clock = clock
        self._start = clock()
        self._last_emit = self._start
        self._next_fraction = self._fraction_step(initial)
        self._emitted = False
        self._closed = False
        self._bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total,
                desc=desc,
                unit=unit,
                unit_scale=unit == "B",
                initial=initial,
                file=stream,
                dynamic_ncols=True,
            )

    # -- counting -------------------------------------------------------------------------
    def _fraction_step(self, n: float) -> float:
        if not self.total or self._every_fraction <= 0:
            return float("inf")
        steps = int((n / self.total) / self._every_fraction + 1e-9) + 1
        return steps * self._every_fraction - 1e-9

    def update(self, n: float = 1) -> None:
        """Add ``n`` to the count (and redraw or maybe log)."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            self._maybe_log()

    def set_total(self, total: float | None) -> None:
        """Change the total (e.g. once a server says how large a file is)."""
        self.total = total if (total is None or total > 0) else None
        self._next_fraction = self._fraction_step(self.n)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def _maybe_log(self) -> None:
        now = self._clock()
        if now - self._start < self._min_seconds:
            return
        # the last step (100 %) is left to the 'done' line
        fraction_due = self.total is not None and self._next_fraction <= self.n / self.total < 1.0
        time_due = now - self._last_emit >= self._every_seconds
        if fraction_due or time_due:
            self._emit(now)

    def _emit(self, now: float) -> None:
        elapsed = now - self._start
        done = self.n - self.initial
        rate = _rate(done, elapsed, self.unit)
        if self.total:
            pct = 100.0 * self.n / self.total
            left = (self.total - self.n) / (done / elapsed) if done > 0 and elapsed > 0 else None
            parts = [
                f"{format_count(self.n, self.unit).rsplit(' ', 1)[0]} of {format_count(self.total, self.unit)}"
            ]
            if rate:
                parts.append(rate)
            if left is not None:
                parts.append(f"~{format_duration(left)} left")
            self._say("%s: %d%% (%s)", self.desc, int(pct), ", ".join(parts))
        else:
            self._say(
                "%s: %s so far (%s)",
                self.desc,
                format_count(self.n, self.unit),
                ", ".join(p for p in (rate, f"{format_duration(elapsed)} elapsed") if p),
            )
        self._emitted = True
        self._last_emit = now
        self._next_fraction = self._fraction_step(self.n)

    def _say(self, message: str, *args: Any) -> None:
        """One progress line: to the logger when logging is configured, else to the stream."""
        if self._log.hasHandlers():
            self._log.info(message, *args)
            return
        stream = sys.stderr if self._stream is None else self._stream
        try:
            stream.write((message % args) + "\n")
            stream.flush()
        except (AttributeError, ValueError, OSError):  # a closed or odd stream: nothing to show
            pass

    # -- iteration and lifetime -----------------------------------------------------------
    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this Progress wraps no iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def close(self, *, failed: bool = False) -> None:
        """End the display: close the bar, or log the ``done`` line (not after a failure)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        if self.mode != "log" or failed:
            return
        elapsed = self._clock() - self._start
        if self._emitted or elapsed >= self._min_seconds:
            done = self.n - self.initial
            rate = _rate(done, elapsed, self.unit)
            self._say(
                "%s: done, %s in %s%s",
                self.desc,
                format_count(self.n, self.unit),
                format_duration(elapsed),
                f" ({rate})" if rate else "",
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(failed=exc_type is not None)


def progress(
    iterable: Iterable | None = None,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    **kwargs: Any,
) -> Progress:
    """A :class:`Progress` over ``iterable`` (``total`` defaults to its length) or a counter.

    Keywords: ``initial`` (count to start from, e.g. bytes already downloaded), ``enabled``
    (False shows nothing), ``stream`` (default ``sys.stderr``), ``logger``, ``every_fraction``
    (0.1), ``every_seconds`` (30), ``min_seconds`` (1), ``clock`` (for tests).
    """
    return Progress(iterable, total, desc, unit, **kwargs)
