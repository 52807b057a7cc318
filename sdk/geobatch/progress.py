"""A one-line progress bar of a Function's jobs on stderr."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geobatch.wire.models import JobStatus

__all__ = ["ProgressBar"]


@dataclass
class ProgressBar:
    """A one-line progress bar on stderr, redrawn in place with ``\\r``."""

    enabled: bool
    width: int = 30
    _shown: int = field(default=0, repr=False)

    def update(self, fn: Any, stats: Mapping[str, int]) -> None:
        """Redraw the bar for Function ``fn`` (its name and status) with job counts ``stats``."""
        if not self.enabled:
            return
        total = sum(stats.values())
        done = sum(stats[s.value] for s in JobStatus.terminal())
        counts = " ".join(f"{k}={v}" for k, v in stats.items() if v)
        self.draw(f"{fn.name} [{fn.status}] {self.bar(done, total)} {done}/{total} {counts}")

    def bar(self, done: int, total: int) -> str:
        """``[####......]`` for ``done`` of ``total`` (empty when the total is not known)."""
        filled = min(self.width, self.width * done // total) if total else 0
        return f"[{'#' * filled}{'.' * (self.width - filled)}]"

    def draw(self, line: str) -> None:
        """Replace the line drawn last with ``line``."""
        sys.stderr.write("\r" + line.ljust(self._shown))
        sys.stderr.flush()
        self._shown = len(line)

    def close(self) -> None:
        """End the line (if anything was drawn)."""
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = 0
