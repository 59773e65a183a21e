"""A concise progress line with rate and ETA, logged at most every `interval` seconds."""

from __future__ import annotations

import datetime
import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """`H:MM:SS` for a number of seconds."""
    return str(datetime.timedelta(seconds=round(max(seconds, 0.0))))


class Progress:
    """Tracks `done` of `total` units and prints `name done/total (p%) | rate/s | ETA` lines."""

    def __init__(
        self,
        total: int,
        name: str = "progress",
        unit: str = "it",
        interval: float = 5.0,
        stream: TextIO | None = None,
        start: int = 0,
    ):
        self.total = total
        self.name = name
        self.unit = unit
        self.interval = interval
        self.stream = stream or sys.stderr
        self.done = start
        self._start_done = start
        self._t0 = time.perf_counter()
        self._last_print = -float("inf")
        self.counters: dict[str, float] = {}

    def rate(self) -> float:
        """Units per second since this progress started."""
        elapsed = time.perf_counter() - self._t0
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float:
        """Estimated seconds left."""
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 else float("nan")

    def line(self, extra: str = "") -> str:
        """The current progress line."""
        pct = 100.0 * self.done / self.total if self.total else 100.0
        parts = [
            f"{self.name} {self.done}/{self.total} ({pct:.0f}%)",
            f"{self.rate():.2f} {self.unit}/s",
        ]
        elapsed = time.perf_counter() - self._t0
        for key, value in self.counters.items():
            parts.append(f"{value / elapsed if elapsed > 0 else 0.0:.2f} {key}/s")
        eta = self.eta()
        parts.append("ETA " + (format_duration(eta) if eta == eta else "?"))
        if extra:
            parts.append(extra)
        return " | ".join(parts)

    def update(self, n: int = 1, extra: str = "", **counters: float) -> None:
        """Advances by `n` units (and named counters such as frames) and prints if due."""
        self.done += n
        for key, value in counters.items():
            self.counters[key] = self.counters.get(key, 0.0) + value
        now = time.perf_counter()
        if now - self._last_print >= self.interval or self.done >= self.total:
            self._last_print = now
            print(self.line(extra), file=self.stream, flush=True)
