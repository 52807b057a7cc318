"""CPU, memory and network of the running job, sampled into one series per attempt.

The runner walks the job's process tree a few times a second to enforce the memory limit; the
sampler rides on that walk (no extra /proc walk for memory), keeps the highest total it saw since
the last sample, and every ``interval`` seconds (and once at the end) adds a row:
``[t, cpu %, memory MiB, rx bytes, tx bytes]``.

CPU is the sum of user+system time of the tree's live processes plus what they have reaped
(cutime/cstime); the runner is a subreaper, so a finished subprocess's time moves to a parent in
the tree instead of vanishing. The runner is reused across jobs, so every figure is taken against
a baseline read when the job starts. Network counters are those of the runner's network namespace
(/proc/<pid>/net/dev, loopback left out): in a container that is the container's traffic, which
includes the worker's own calls to SQS/DynamoDB (a few KB per job).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from geobatch.wire import statistics
from geobatch_worker import proctree

try:
    _TICKS = float(os.sysconf("SC_CLK_TCK"))
except (AttributeError, ValueError, OSError):
    _TICKS = 100.0


def cpu_seconds(pids: list[int]) -> float:
    """User+system seconds of ``pids``, with what each has reaped of its children."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / _TICKS


def network_bytes(pid: int) -> tuple[int, int] | None:
    """(received, sent) bytes of ``pid``'s network namespace, loopback left out; None off Linux."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    rx = tx = 0
    for line in lines:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() == "lo" or len(values) < 9:
            continue
        rx, tx = rx + int(values[0]), tx + int(values[8])
    return rx, tx


class Sampler:
    """The series of one attempt of one job."""

    def __init__(self, root: int, interval: float = statistics.SAMPLE_SECONDS):
        self.root = root
        self.interval = max(0.05, interval)
        self.rows: list[list[Any]] = []
        self._started = self._last = time.monotonic()
        self._cpu0 = self._cpu = cpu_seconds([root])
        self._net0 = network_bytes(root)
        self._memory = 0.0  # most seen since the last row
        self._pids: list[int] = [root]

    def observe(self, memory_mb: float, pids: list[int]) -> None:
        """One walk of the tree (from the runner's memory check); a row when one is due."""
        self._memory = max(self._memory, memory_mb)
        self._pids = [self.root, *pids]
        if time.monotonic() - self._last >= self.interval:
            self._row()

    def _row(self) -> None:
        now = time.monotonic()
        cpu = cpu_seconds(self._pids)
        elapsed = max(now - self._last, 1e-6)
        percent = max(0.0, cpu - self._cpu) / elapsed * 100
        net = network_bytes(self.root)
        rx = tx = None
        if net is not None and self._net0 is not None:
            rx, tx = max(0, net[0] - self._net0[0]), max(0, net[1] - self._net0[1])
        self.rows.append([round(now - self._started, 2), round(percent, 1), round(self._memory, 1), rx, tx])
        self._last, self._cpu, self._memory = now, max(cpu, self._cpu), 0.0
        if len(self.rows) > statistics.MAX_SAMPLES:
            self.rows = statistics.merge_pairs(self.rows)
            self.interval *= 2

    def finish(self, alive: bool, memory_peak_mb: float | None) -> dict[str, Any]:
        """The stored document: a last row (while the runner still lives), then the summary."""
        # A last stretch shorter than a tenth of a second says little about CPU; it is left out
        # unless it is the only one.
        if alive and (not self.rows or time.monotonic() - self._last >= 0.1):
            if not self._memory:  # a job shorter than one walk of the tree: read it now
                self._memory = proctree.tree_memory(self.root).total_mb
            self._row()
        summary = statistics.summarize(self.rows, self.interval, memory_peak_mb)
        return statistics.to_document(self.rows, summary)
