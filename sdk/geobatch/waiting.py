"""Waiting for a Function's jobs: until all are done (with a progress bar), or each as it ends.

Polls back off while nothing changes and return to the base rate when something does; a
``timeout`` is checked between polls (the last pause is cut short so it is not overrun).
"""

from __future__ import annotations

import builtins
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from geobatch import polling
from geobatch.job import Job
from geobatch.progress import ProgressBar
from geobatch.wire import errors
from geobatch.wire.models import FunctionStatus, JobStatus

if TYPE_CHECKING:
    from geobatch.function import Function

__all__ = ["as_completed", "raise_if_stuck", "wait_for_function"]

OUTSTANDING = tuple(s.value for s in JobStatus.outstanding())
AS_COMPLETED_CHUNK = 128
MAX_POLL_SECONDS = 60.0


def wait_for_function(
    fn: Function, timeout: float | None, interval: float | None, progress: bool | None, raise_if_stopped: bool
) -> Function:
    """What ``fn.wait_for_completion(...)`` does (see :meth:`geobatch.Function.wait_for_completion`)."""
    base = interval or fn.client.poll_interval
    delay = base
    deadline = polling.deadline(timeout)
    bar = ProgressBar(sys.stderr.isatty() if progress is None else progress)
    last: dict[str, int] | None = None
    warned: set[str] = set()
    try:
        while True:
            fn.refresh(includes=["job.statistics"])
            stats = fn.job_statistics
            bar.update(fn, stats)
            raise_if_stuck(fn, stats, raise_if_stopped=raise_if_stopped, warned=warned)
            outstanding = sum(stats[s] for s in OUTSTANDING)
            if fn.status in (FunctionStatus.READY, FunctionStatus.STOPPED) and outstanding == 0:
                return fn
            if polling.passed(deadline):
                raise TimeoutError(
                    f"Function {fn.name} ({fn.id}) is not done after {timeout} s: "
                    f"status {fn.status}, {outstanding} jobs outstanding"
                )
            # Poll less often while nothing moves; go back to the base rate when something does.
            delay = base if stats != last else min(delay * 1.5, max(base, MAX_POLL_SECONDS))
            last = stats
            polling.pause(delay, deadline)
    finally:
        bar.close()


def raise_if_stuck(
    fn: Function,
    stats: Mapping[str, int] | None = None,
    *,
    raise_if_stopped: bool = True,
    warned: set[str] | None = None,
) -> None:
    """``BuildFailedError`` if the build failed; for a stopped Function with pending jobs (and
    nothing running) ``ConflictError`` if ``raise_if_stopped``, else one ``RuntimeWarning``."""
    if fn.status == FunctionStatus.BUILD_FAILED:
        reason = f": {fn.status_reason}" if fn.status_reason else ""
        raise errors.BuildFailedError(
            f"Function {fn.name} ({fn.id}) failed to build{reason}; read fn.build_log() "
            f"or `geobatch functions build-log {fn.id}`"
        )
    if stats is None:
        return
    active = sum(stats[s] for s in ("running", "cancel", "canceling"))
    if fn.status == FunctionStatus.STOPPED and stats["pending"] and not active:
        message = (
            f"Function {fn.name} ({fn.id}) is stopped with {stats['pending']} pending jobs, "
            "which will not run until it is started (fn.start(), or Start in the monitor)"
        )
        if raise_if_stopped:
            raise errors.ConflictError(message)
        if warned is not None and "stopped" not in warned:
            warned.add("stopped")
            warnings.warn(f"{message}: still waiting", RuntimeWarning, stacklevel=4)
    elif warned is not None:
        warned.discard("stopped")  # started again: say so again if it stops again


def as_completed(
    fn: Function, jobs: Iterable[Job], timeout: float | None, interval: float | None
) -> Iterator[Job]:
    """What ``fn.as_completed(...)`` does (see :meth:`geobatch.Function.as_completed`)."""
    waiting: dict[str, Job] = {}
    for job in jobs:
        if job.function_id != fn.id:
            raise errors.ValidationError(f"job {job.id} belongs to Function {job.function_id}, not {fn.id}")
        waiting[job.id] = job
    base = interval or fn.client.poll_interval
    delay = base
    deadline = polling.deadline(timeout)
    while waiting:
        found = False
        for done in _finished(fn, builtins.list(waiting)):
            if done.id in waiting and done._wire is not None:  # a listed job is always saved
                found = True
                yield waiting.pop(done.id)._update(done._wire)
        if not waiting:
            return
        fn.refresh()
        raise_if_stuck(fn)
        if polling.passed(deadline):
            raise TimeoutError(f"{len(waiting)} jobs of Function {fn.id} did not finish within {timeout} s")
        delay = base if found else min(delay * 2, MAX_POLL_SECONDS)
        polling.pause(delay, deadline)


def _finished(fn: Function, ids: builtins.list[str]) -> Iterator[Job]:
    """The jobs among ``ids`` that have ended, asking for at most ``AS_COMPLETED_CHUNK`` per request."""
    terminal = JobStatus.terminal()
    for i in range(0, len(ids), AS_COMPLETED_CHUNK):
        chunk = ids[i : i + AS_COMPLETED_CHUNK]
        search = fn.jobs.filter(Job.id.in_(chunk) & Job.status.in_(terminal)).param(page_size=len(chunk))
        yield from search
