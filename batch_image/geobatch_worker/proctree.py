"""The process tree of a job, from /proc: who is in it, how much memory it holds, how to end it.

The runner is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever user code starts stays below
it even after a double fork or ``setsid``: the tree under the runner's pid is the whole job.
Where /proc is missing (not Linux) the tree is just the runner.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans below this process reparent to it, not to init (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError):
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return out


def descendants(pid: int, spare: frozenset[int] = frozenset()) -> list[int]:
    """Every process below ``pid`` (not ``pid`` itself), parents before children; ``spare`` and
    what is below them left out."""
    found: list[int] = []
    frontier = [c for c in children(pid) if c not in spare]
    while frontier:
        found += frontier
        frontier = [c for p in frontier for c in children(p)]
    return found


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure (MiB) of a process from /proc; 0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM, so the peak read later is this job's, not the process's.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:120] or "?"


def start_time(pid: int) -> int | None:
    """The process's start (clock ticks since boot): with the pid, a name no later process reuses."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class TreeMemory:
    total_mb: float
    biggest_pid: int
    biggest_mb: float
    pids: list[int]

    def culprit(self) -> str:
        return f"subprocess {self.biggest_pid} ({command(self.biggest_pid)})"


def tree_memory(pid: int) -> TreeMemory:
    """Summed resident memory of ``pid`` and everything below it, and the biggest process."""
    best_pid, best = pid, rss_mb(pid)
    total = best
    below = descendants(pid)
    for child in below:
        mb = rss_mb(child)
        total += mb
        if mb > best:
            best_pid, best = child, mb
    return TreeMemory(total, best_pid, best, below)


def kill_known(known: dict[int, int | None]) -> int:
    """SIGKILL the processes in ``known`` (pid -> start time) that are still those processes, and
    everything below them: what a runner that died left behind (its orphans went to init)."""
    alive = [p for p, started in known.items() if started is not None and start_time(p) == started]
    _signal(alive, signal.SIGSTOP)
    below = [c for p in alive for c in descendants(p)]
    _signal(below, signal.SIGSTOP)
    _signal(alive + below, signal.SIGKILL)
    return len(alive) + len(below)


def _signal(pids: list[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def kill_descendants(pid: int, spare: frozenset[int] = frozenset()) -> int:
    """SIGKILL everything below ``pid`` (but ``spare``). Frozen first (SIGSTOP) so nobody forks
    past the sweep."""
    seen: set[int] = set()
    for _ in range(20):
        fresh = [p for p in descendants(pid, spare) if p not in seen]
        if not fresh:
            break
        _signal(fresh, signal.SIGSTOP)
        seen.update(fresh)
    _signal(sorted(seen), signal.SIGKILL)
    return len(seen)


def reap() -> None:
    """Collect exited children (the runner adopts orphans, so it must bury them)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
