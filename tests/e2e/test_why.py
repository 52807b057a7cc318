"""Issue 9, end to end in local mode: every waiting, dying or failing job says why."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

import geobatch as gb
from tests.support import wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]


def nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def hog(megabytes):
    import time

    block = bytearray(megabytes * 1024 * 1024)  # touched pages: resident memory
    time.sleep(1)
    return len(block)


def mixed(x):
    import time

    if x % 3 == 0:
        raise ValueError(f"bad value {x} in row {x * 10}")
    if x % 3 == 1:
        raise KeyError(f"band B{x:02d}")
    time.sleep(30)


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> None:
    # No wall-clock limit (``timeout`` is kept for the callers): pytest-timeout stops a hang.
    wait_until(predicate, what, poll=0.2)


def test_concurrency_full_is_named(saved):
    fn = saved(nap, maximum_concurrency=1, timeout=60)
    first, second = fn(4), fn(4)
    wait_for(lambda: first.refresh().status == gb.JobStatus.RUNNING, what="first job to run")
    second.refresh()
    assert second.status == gb.JobStatus.PENDING
    assert second.status_reason == "waiting: 1 of 1 concurrent jobs running (maximum_concurrency=1)"
    fn.wait_for_completion()


def test_out_of_memory_is_named_with_peak_and_limit(saved):
    fn = saved(hog, cpus=0.25, memory=512, retry_count=0, timeout=60)
    job = fn(900)
    job.wait_for_completion()
    assert job.status == gb.JobStatus.FAILURE
    assert job.status_reason.startswith("out of memory: peak ")
    assert job.status_reason.endswith("MiB of 512 MiB limit on attempt 1 of 1; raise memory")
    assert job.exit_code == 137
    assert job.attempts[0].peak_memory_mb is not None and job.attempts[0].peak_memory_mb > 512


def test_killed_worker_is_detected_and_its_job_retried(saved, local_stack):
    fn = saved(nap, retry_count=1, timeout=60, maximum_concurrency=1)
    job = fn(6)
    wait_for(lambda: job.refresh().status == gb.JobStatus.RUNNING, what="the job to run")
    pids = local_stack.executor.worker_pids(fn.id)
    assert pids, "no worker process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # no goodbye: no heartbeat, no outcome, no ack
    job.wait_for_completion()
    assert job.status == gb.JobStatus.SUCCESS and job.execution_count == 2
    lost = job.attempts[0]
    assert lost.status == "failure"
    assert lost.reason.startswith(
        f"worker lost: no heartbeat for {local_stack.options.lost_worker_seconds} s"
    )
    assert "on attempt 1" in lost.reason


def test_failure_summary_groups_causes(saved):
    fn = saved(mixed, retry_count=0, timeout=2, maximum_concurrency=4)
    fn.map([[x] for x in range(9)])
    fn.wait_for_completion()
    summary = fn.failure_summary()
    assert summary.failed == 9
    by_cause = {g.cause: g for g in summary.groups}
    assert by_cause["ValueError: bad value N in row N"].count == 3
    assert by_cause["KeyError: 'band BN'"].count == 3
    timeouts = by_cause["timeout: still running at the time limit"]
    assert timeouts.count == 3 and timeouts.kind == "timeout"
    example = gb.Job.get(by_cause["ValueError: bad value N in row N"].example_job_id)
    assert example.status == gb.JobStatus.FAILURE and "bad value" in example.error_reason


def test_cli_why_prints_the_groups(saved, local_stack):
    from click.testing import CliRunner

    from geobatch.cli import main

    fn = saved(mixed, retry_count=0, timeout=2, maximum_concurrency=3)
    fn.map([[0], [3], [1]])
    fn.wait_for_completion()
    result = CliRunner().invoke(main, ["--api-url", local_stack.api_url, "jobs", "why", fn.id])
    assert result.exit_code == 0, result.output
    assert "3 failed jobs, 2 causes" in result.output
    assert "ValueError: bad value N in row N" in result.output
    missing = CliRunner().invoke(main, ["--api-url", local_stack.api_url, "jobs", "why", "nope"])
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1
