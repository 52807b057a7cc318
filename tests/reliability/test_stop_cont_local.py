"""A real ``kill -STOP`` of a worker past its lease, with a second worker running (issue 15, item 2).

The fault-injection suite pauses a worker with a KillSwitch at its AWS calls; here the kernel stops
a real worker process of local mode (the daemon's subprocess) in the middle of a job. Its
user-code child runs on (it is in its own session), sees the lease run out and ends itself; the
second worker receives the message after its visibility lapsed, judges the first attempt lost and
runs the job again. After CONT, the first worker finds its receive overtaken and records nothing.
The job ends terminal exactly once, with both attempts, and the two attempts never ran at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

import geobatch as gb
from tests.support import wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]


def beat(path, seconds):
    """Appends '<pid> <time>' ten times a second for ``seconds``: when, and in which process, the job ran."""
    import os
    import time

    end = time.time() + seconds
    while time.time() < end:
        with open(path, "a") as out:
            out.write(f"{os.getpid()} {time.time()!r}\n")
        time.sleep(0.1)
    return os.getpid()


def _wait(condition: Any, what: str) -> Any:
    return wait_until(condition, what, poll=0.2)  # no deadline: pytest-timeout stops a hang


def test_a_stopped_worker_resumed_past_its_lease_neither_doubles_nor_fails_the_job(
    local_stack: Any, local_api: gb.Client, tmp_path: Path
) -> None:
    lease = local_stack.options.lost_worker_seconds
    beats = tmp_path / "beats.txt"
    fn = gb.Function(
        beat,
        name=f"stopped-{uuid.uuid4().hex[:8]}",
        retry_count=1,
        maximum_concurrency=1,
        timeout=120,
        client=local_api,
    )
    fn.save()
    executor = local_stack.executor
    stopped: int | None = None
    try:
        job = fn(str(beats), 6 * lease)
        _wait(lambda: beats.exists() and beats.read_text().count("\n") >= 3, "the job to run")
        (first,) = executor.worker_pids(fn.id)
        item = local_stack.services.functions.get(fn.id)
        os.kill(first, signal.SIGSTOP)
        stopped = first

        def taken_over() -> bool:
            if len(job.refresh().attempts) >= 2:
                return True
            # A second worker polling the same queue (the scaler counts the stopped one as running;
            # an idle worker exits after a few seconds, so one is started again until it takes over).
            if len(executor.worker_pids(fn.id)) < 2:
                executor.start_workers(item, 1)
            return False

        # Stopped past its lease until the second worker has taken the job over.
        _wait(taken_over, "the second worker to take the job over")
        os.kill(first, signal.SIGCONT)
        stopped = None
        job.wait_for_completion()
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)
    assert job.status == gb.JobStatus.SUCCESS, job.error_reason
    attempts = job.attempts
    assert [a.status for a in attempts] == [gb.JobStatus.FAILURE, gb.JobStatus.SUCCESS], attempts
    assert "lost" in (attempts[0].reason or "")
    assert attempts[0].worker_id != attempts[1].worker_id
    # Two runs of the job, in two processes, one after the other: the first attempt's child had
    # ended (its lease ran out) before the second began.
    runs: dict[str, list[float]] = {}
    for line in beats.read_text().splitlines():
        pid, moment = line.split()
        runs.setdefault(pid, []).append(float(moment))
    assert len(runs) == 2, runs.keys()
    earlier, later = sorted(runs.values(), key=min)
    assert max(earlier) < min(later)
    assert job.result() == int(max(runs, key=lambda p: max(runs[p])))  # the later run's answer
