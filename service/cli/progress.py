"""A progress bar with ETA for long CLI jobs (stderr; one line per update when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, every_s: float = 0.2, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream: TextIO = stream or sys.stderr
        self.every_s = every_s if getattr(self.stream, "isatty", lambda: False)() else 15.0
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int, item: str) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.start
        frac = done / total if total else 1.0
        eta = elapsed / done * (total - done) if done else float("nan")
        width = 28
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta_text = f"{eta:5.0f}s" if eta == eta else "    ?"
        line = (
            f"{self.label} [{bar}] {done}/{total} {100 * frac:5.1f}% {elapsed:6.0f}s elapsed, "
            f"ETA {eta_text} {item[:50]}"
        )
        tty = getattr(self.stream, "isatty", lambda: False)()
        end = "\n" if (done >= total or not tty) else ""
        print(("\r" if tty else "") + line.ljust(140 if tty else 0), end=end, file=self.stream, flush=True)
