"""What the parent makes of its runner: a job's ``RunResult``, the runner's answers on the channel
(each must carry the job's token), why a runner exited, and the memory watch of its process tree."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobatch.wire import limits
from geobatch_worker import proctree
from geobatch_worker.channel import ChannelError
from geobatch_worker.child import LEASE_EXIT
from geobatch_worker.sampler import Sampler

TREE_SECONDS = 0.2  # how often the whole process tree's memory is summed
LOST = "lost"  # a RunResult status: the lease ran out, another worker may own the job now


@dataclass
class RunResult:
    status: str  # success, failure, timeout, canceled
    exit_code: int | None = None
    error: str | None = None
    result: bytes | None = None
    result_meta: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    runtime: float = 0.0
    peak_memory_mb: float | None = None
    cpu_seconds: float | None = None
    startup_seconds: float = 0.0  # spawn + imports of a fresh runner (0 when it was warm)
    statistics: dict[str, Any] | None = None  # the attempt's series (geobatch.wire.statistics)


def read_log(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if len(data) > limits.MAX_LOG_BYTES:
        half = limits.MAX_LOG_BYTES // 2
        data = data[:half] + b"\n[geobatch] log truncated: the middle was dropped\n" + data[-half:]
    return data.decode("utf-8", "replace")


def exit_reason(code: int | None, during: str) -> tuple[int | None, str]:
    if code == LEASE_EXIT:
        return code, "the worker's lease on the job ran out"
    signal_note = f" (killed by signal {-code})" if code is not None and code < 0 else ""
    exit_code = 128 - code if code is not None and code < 0 else code
    return exit_code, f"the function's process exited with code {exit_code}{signal_note}{during}"


class Watch:
    """What the parent checks while it waits on the runner, and the peak it saw."""

    def __init__(self, memory_limit_mb: float | None):
        self.limit = memory_limit_mb
        self.peak = 0.0
        self._next_tree = 0.0
        self.seen: dict[int, int | None] = {}  # pid -> start time of the processes below the runner
        self.sampler: Sampler | None = None  # set while a job runs (not during start-up)

    def memory(self, pid: int) -> RunResult | None:
        # The runner's own high-water mark every poll (it catches spikes between polls); the whole
        # tree, which costs a walk of /proc, a few times a second.
        hwm = proctree.rss_mb(pid, "VmHWM")
        now = time.monotonic()
        if now < self._next_tree and not (self.limit and hwm > self.limit):
            self.peak = max(self.peak, hwm)
            return None
        self._next_tree = now + TREE_SECONDS
        tree = proctree.tree_memory(pid)
        for child in tree.pids:
            if child not in self.seen:
                self.seen[child] = proctree.start_time(child)
        self.peak = max(self.peak, tree.total_mb, hwm)
        if self.sampler is not None:
            self.sampler.observe(tree.total_mb, tree.pids)
        if self.limit and max(tree.total_mb, hwm) > self.limit:
            reason = f"out of memory: peak {self.peak:,.0f} MiB of {self.limit:,.0f} MiB limit"
            if tree.biggest_pid != pid:  # the function's own process needs no naming
                reason += f" (biggest: {tree.culprit()} at {tree.biggest_mb:,.0f} MiB)"
            return RunResult("failure", 137, reason)
        return None


def raise_breach(what: str) -> None:
    """The runner answered out of protocol (another job's token, an unknown frame)."""
    raise ChannelError(what)


def answer(header: dict[str, Any], body: bytes, token: str) -> RunResult | None:
    if header.get("token") != token:
        raise_breach("an answer with another job's token")
    cpu = header.get("cpu")
    cpu_seconds = float(cpu) if isinstance(cpu, int | float) else None
    if header.get("t") == "ok":
        meta = header.get("meta")
        result = None if header.get("none") else body
        return RunResult(
            "success", 0, None, result, meta if isinstance(meta, dict) else {}, cpu_seconds=cpu_seconds
        )
    if header.get("t") == "error":
        code = header.get("code")
        return RunResult(
            "failure",
            int(code) if isinstance(code, int) else 1,
            str(header.get("message"))[:2000],
            cpu_seconds=cpu_seconds,
        )
    raise_breach(f"unexpected {str(header.get('t'))[:40]!r} frame")
    return None
