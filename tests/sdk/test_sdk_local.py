"""End to end: the SDK and CLI against a running local mode.

These need the ``local_api`` fixture (tests/conftest.py, provided by the local-mode owner): it
yields a ``geobatch.Client`` connected to a running local mode. Until it exists they error at setup.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

import geobatch as gb
from geobatch.cli import main

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]


def square(x):
    print(f"squaring {x}")
    return x * x


def fail_on_odd(x):
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x


def sleepy(seconds):
    import time

    time.sleep(seconds)
    return seconds


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_function(local_api: gb.Client) -> Any:
    """Save Functions on the local API and delete them afterwards."""
    created: list[gb.Function] = []

    def make(fn: Any, **settings: Any) -> gb.Function:
        function = gb.Function(fn, name=unique(fn.__name__), client=local_api, **settings)
        function.save()
        created.append(function)
        return function

    yield make
    for function in created:
        with contextlib.suppress(gb.GeoBatchError):
            function.delete(delete_results=True)


def test_map_wait_results_and_log(make_function: Any) -> None:
    fn = make_function(square, maximum_concurrency=4)
    jobs = fn.map([(i,) for i in range(20)])
    assert jobs.is_success and len(jobs) == 20
    fn.wait_for_completion()
    assert fn.job_statistics["success"] == 20
    assert sorted(fn.results()) == [i * i for i in range(20)]
    job = gb.Job.get(jobs[3].id, client=fn.client)
    assert job.result() == 9
    assert "squaring 3" in job.log(timestamps=False)
    assert job.attempts and job.execution_count == 1


def test_filter_by_status_and_rerun(make_function: Any) -> None:
    fn = make_function(fail_on_odd)
    fn.map([(i,) for i in range(6)])
    fn.wait_for_completion()
    failed = fn.jobs.filter(gb.Job.status == gb.JobStatus.FAILURE).collect()
    assert len(failed) == 3 and all("odd input" in (j.error_reason or "") for j in failed)
    assert fn.jobs.filter(gb.Job.status == gb.JobStatus.SUCCESS).count() == 3
    rerun = fn.rerun()
    assert sorted(rerun) == sorted(j.id for j in failed)
    fn.wait_for_completion()
    again = gb.Job.get(failed[0].id, client=fn.client)
    # A rerun is a new run with a fresh retry budget; as in Descartes Labs, execution_count counts
    # the starts of every run, and every attempt of every run stays readable with its log.
    assert again.status == gb.JobStatus.FAILURE and again.run == 1 and again.execution_count == 2
    assert [(a.number, a.run) for a in again.attempts] == [(1, 0), (2, 1)]
    odd = again.args[0]
    assert f"odd input {odd}" in again.log(attempt=1) and f"odd input {odd}" in again.log(attempt=2)
    assert again.log() == again.log(attempt=2)


def test_cancel_and_delete(make_function: Any) -> None:
    fn = make_function(sleepy, auto_start=False)
    jobs = fn.map([(30,) for _ in range(3)])
    canceled = fn.cancel_jobs()
    assert sorted(canceled) == sorted(j.id for j in jobs)
    for job in jobs:
        assert job.refresh().status == gb.JobStatus.CANCELED
    deleted = fn.delete_jobs(job_ids=[jobs[0].id])
    assert deleted == [jobs[0].id]
    with pytest.raises(gb.NotFoundError):
        gb.Job.get(jobs[0].id, client=fn.client)
    assert fn.jobs.count() == 2


def test_bulk_reference_is_idempotent(make_function: Any, local_api: gb.Client) -> None:
    fn = make_function(square, auto_start=False)
    body = {"function_id": fn.id, "bulk_args": [[1], [2], [3]], "reference_id": uuid.uuid4().hex}
    first = local_api.post("/jobs/bulk", body)
    second = local_api.post("/jobs/bulk", body)
    assert [j["id"] for j in first["data"]] == [j["id"] for j in second["data"]]
    assert fn.jobs.count() == 3


def test_build_log_and_cli(make_function: Any, local_api: gb.Client) -> None:
    fn = make_function(square)
    fn.wait_for_completion()
    assert isinstance(fn.build_log(), str)
    result = CliRunner().invoke(main, ["--api-url", local_api.api_url, "functions", "list", "--json"])
    gb.set_default_client(None)  # --api-url configured a default client; do not leak it
    assert result.exit_code == 0, result.output
    assert fn.id in [f["id"] for f in json.loads(result.stdout)]
