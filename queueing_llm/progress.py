"""A dependency-free progress bar for long runs, shown only once a run lasts a while.

``ProgressBar(total)`` is a callable ``(done, total)``: it stays silent during the first
``delay`` seconds counted from its first call (short runs print nothing, however long the
work before the run took), then redraws a bar on standard error at most a few times per
second; on a non-terminal stream it writes a line per quarter.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Progress of ``total`` steps on ``stream`` (standard error by default).

    Parameters
    ----------
    total : int
        Steps of the whole run (iterations, or points of a sweep).
    label : str
        First word of each line (``"simulating"``, ``"sweeping"``).
    delay : float
        Seconds after the first call during which nothing is shown.
    stream : text stream or None
        Where to draw (standard error by default).
    clock : callable
        Seconds now (``time.monotonic``; a fake clock in tests).
    """

    def __init__(self, total: int, *, label: str = "simulating", delay: float = 2.0,
                 stream: TextIO | None = None, clock=time.monotonic) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.delay = delay
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.start: float | None = None  # set by the first call: the run's own time counts
        self.last_draw = -1.0
        self.last_quarter = -1
        self.shown = False

    def __call__(self, done: int, total: int | None = None) -> None:
        total = self.total if total is None else max(int(total), 1)
        now = self.clock()
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        if elapsed < self.delay:
            return
        frac = min(done / total, 1.0)
        if self.stream.isatty():
            if now - self.last_draw < 0.2 and done < total:
                return
            self.last_draw = now
            width = 30
            filled = int(frac * width)
            eta = elapsed * (1 - frac) / frac if frac > 0 else float("inf")
            self.stream.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} "
                f"{done}/{total} eta {eta:5.1f}s"
            )
        else:
            quarter = int(frac * 4)
            if quarter == self.last_quarter:
                return
            self.last_quarter = quarter
            self.stream.write(f"{self.label}: {done}/{total} ({frac:.0%}) after {elapsed:.1f}s\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """End the bar's line if one was drawn."""
        if self.shown and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()
