"""Issue 2's acceptance run, end to end: SDK → local API → DynamoDB/SQS/S3 (moto) → worker subprocesses."""

from __future__ import annotations

import uuid

import pytest

import geobatch as gb
from tests.support import wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]


def mostly_squares(x):
    import os

    print(f"job {x} attempt {os.environ['GEOBATCH_ATTEMPT']} K={os.environ.get('K')}")
    if x % 25 == 7:
        raise RuntimeError(f"input {x} is cursed")
    return x * x


def flaky(marker):
    import os

    attempt = int(os.environ["GEOBATCH_ATTEMPT"])
    if attempt < 3:
        raise ConnectionError(f"transient failure on attempt {attempt}")
    return {"marker": marker, "attempt": attempt}


def sleeper(seconds):
    import time

    print("going to sleep", flush=True)
    time.sleep(seconds)
    return seconds


def test_two_hundred_jobs_some_failing(saved):
    fn = saved(mostly_squares, maximum_concurrency=4, retry_count=1, timeout=60, environment={"K": "v"})
    jobs = fn.map([[i] for i in range(200)], tags=["demo"])
    assert jobs.is_success and len(jobs) == 200
    fn.wait_for_completion()
    failing = {i for i in range(200) if i % 25 == 7}
    assert fn.job_statistics["success"] == 200 - len(failing)
    assert fn.job_statistics["failure"] == len(failing)
    assert sum(fn.job_statistics.values()) == 200
    failed = fn.jobs.filter(gb.Job.status == gb.JobStatus.FAILURE).collect()
    assert len(failed) == len(failing)
    for job in failed:
        assert "is cursed" in job.error_reason
        assert job.execution_count == 2  # retry_count=1: tried twice, never more
        assert "RuntimeError" in job.log(timestamps=False)
    results = sorted(fn.results())
    assert results == sorted(i * i for i in range(200) if i not in failing)
    tagged = fn.jobs.filter(gb.Job.tags == "demo").count()
    assert tagged == 200
    sample = gb.Job.get(jobs[3].id)
    assert sample.result() == 9 and "K=v" in sample.log(timestamps=False)


def test_fails_twice_then_succeeds(saved, local_stack):
    fn = saved(flaky, retry_count=2, timeout=60)
    job = fn("m")
    job.wait_for_completion()
    assert job.status == gb.JobStatus.SUCCESS
    assert job.execution_count == 3
    assert job.result() == {"marker": "m", "attempt": 3}
    assert [a.status for a in job.attempts] == ["failure", "failure", "success"]
    assert "transient failure on attempt 2" in job.log(attempt=2, timestamps=False)
    # When its outstanding jobs reach zero, the Function's completion is announced (a log line locally).
    wait_until(
        lambda: any(d["function_id"] == fn.id for _, d in local_stack.events.published),
        "the completion event",
        poll=0.2,
    )


def test_timeout_and_cancel(saved):
    fn = saved(sleeper, retry_count=0, timeout=2, maximum_concurrency=1)
    slow = fn(30)
    slow.wait_for_completion()
    assert slow.status == gb.JobStatus.TIMEOUT
    assert "timeout" in slow.error_reason

    fn.timeout = 60
    fn.save()
    running = fn(30)
    queued = fn(30)  # concurrency 1: waits behind the running one
    wait_until(lambda: running.refresh().status == gb.JobStatus.RUNNING, "the job to start", poll=0.2)
    queued.cancel()
    queued.refresh()
    assert queued.status == gb.JobStatus.CANCELED
    running.cancel()
    running.wait_for_completion()
    assert running.status == gb.JobStatus.CANCELED
    assert running.runtime is not None and running.runtime < 30


def test_rerun_and_resubmitted_batch(saved, local_api):
    fn = saved(mostly_squares, retry_count=0, maximum_concurrency=2)
    fn.map([[7], [8]])
    fn.wait_for_completion()
    assert fn.job_statistics["failure"] == 1
    rerun = fn.rerun()
    assert len(rerun) == 1
    fn.wait_for_completion()
    job = gb.Job.get(rerun[0])
    assert job.status == gb.JobStatus.FAILURE and job.run == 1

    # An HTTP retry resends the same batch with the same reference: nothing is duplicated.
    body = {"function_id": fn.id, "bulk_args": [[1], [2], [3]], "reference_id": "retry-me"}
    first = local_api.post("/jobs/bulk", body)
    again = local_api.post("/jobs/bulk", body)
    assert [j["id"] for j in first["data"]] == [j["id"] for j in again["data"]]
    fn.wait_for_completion()
    assert sum(fn.job_statistics.values()) == 5
    assert fn.jobs.filter(gb.Job.reference_id == "retry-me").count() == 3


def test_missing_requirement_fails_the_build_with_its_log(local_api):
    fn = gb.Function(
        mostly_squares, name=f"broken-{uuid.uuid4().hex[:6]}", requirements=["geobatch-no-such-pkg==9.9"]
    )
    fn.save()
    job = fn(3)  # accepted while building; it waits, and says why
    with pytest.raises(gb.BuildFailedError):
        fn.wait_for_completion()
    assert fn.status == gb.FunctionStatus.BUILD_FAILED
    assert "pip could not install the requirements" in fn.status_reason
    assert "geobatch-no-such-pkg" in fn.build_log()
    assert job.refresh().status_reason.startswith("waiting: function image failed to build")
    with pytest.raises(gb.ConflictError, match="failed to build"):
        fn(4)
    with pytest.raises(
        gb.ConflictError, match=f"read its build log \\(geobatch functions build-log {fn.id}\\)"
    ):
        fn.start()
    fn.delete()
