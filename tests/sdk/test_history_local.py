"""History and results that outlive reruns and deletes, through the SDK against local mode."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import geobatch as gb
from tests.sdk.lossy import LossyHTTP, lossy_client

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]


def sized(n):
    return "x" * n


@pytest.fixture
def make(local_api: gb.Client) -> Iterator[Any]:
    created: list[gb.Function] = []

    def build(fn: Any, client: gb.Client | None = None, **settings: Any) -> gb.Function:
        function = gb.Function(
            fn, name=f"hist-{uuid.uuid4().hex[:8]}", client=client or local_api, **settings
        )
        function.save()
        created.append(function)
        return function

    yield build
    for function in created:
        with contextlib.suppress(gb.GeoBatchError):
            gb.Function.get(function.id, client=local_api).delete(delete_results=True)


def test_results_outlive_jobs_deleted_without_them(make: Any, local_api: gb.Client) -> None:
    fn = make(sized)
    small, large = fn.map([(10,), (9000,)])  # one kept inside the job item, one in S3
    fn.wait_for_completion()
    assert sorted(fn.delete_jobs(delete_results=False)) == sorted([small.id, large.id])
    with pytest.raises(gb.NotFoundError):
        gb.Job.get(small.id, client=local_api)
    assert gb.Job.get_result(small.id, client=local_api) == "x" * 10
    assert gb.Job.get_result(large.id, client=local_api) == "x" * 9000
    other = make(sized)
    job = other(5)
    other.wait_for_completion()
    other.delete_jobs(delete_results=True)
    with pytest.raises(gb.NotFoundError):
        gb.Job.get_result(job.id, client=local_api)


def test_later_pages_of_results_keep_their_results(make: Any, local_api: gb.Client) -> None:
    recorder = LossyHTTP(lambda m, p: False)
    fn = make(sized, client=lossy_client(local_api.api_url, recorder), maximum_concurrency=3)
    fn.map([(i,) for i in range(5)])
    fn.wait_for_completion()
    recorder.sent.clear()
    recorder.queries.clear()
    search = fn.jobs.filter(gb.Job.status == gb.JobStatus.SUCCESS).param(include="result", page_size=2)
    assert sorted(job.result() for job in search) == sorted("x" * i for i in range(5))
    pages = [
        q for (m, p, _), q in zip(recorder.sent, recorder.queries, strict=True) if (m, p) == ("GET", "/jobs")
    ]
    assert len(pages) == 3 and all("include=result" in q for q in pages)
    assert not [p for m, p, _ in recorder.sent if p.endswith("/result")]  # no GET per result
    assert sorted(fn.results()) == sorted("x" * i for i in range(5))


def test_job_statistics_right_after_map(make: Any) -> None:
    fn = make(sized, auto_start=False)
    assert fn.job_statistics["pending"] == 0
    fn.map([(1,), (2,), (3,)])
    assert fn.job_statistics["pending"] == 3
    fn(4)
    assert fn.job_statistics["pending"] == 4


def odd_fails(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def test_descartes_labs_keyword_filters(make: Any, local_api: gb.Client) -> None:
    fn = make(odd_fails)
    fn.map([(i,) for i in range(4)], tags=["batch-a"])
    fn.wait_for_completion()
    failed = gb.Job.list(function_id=fn.id, status="failure", client=local_api).collect()
    assert sorted(j.args[0] for j in failed) == [1, 3]
    either = gb.Job.list(fn.id, status=[gb.JobStatus.FAILURE, gb.JobStatus.SUCCESS], client=local_api)
    assert either.count() == 4
    assert gb.Job.list(fn.id, tags=["batch-a", "nope"], client=local_api).count() == 4
    with pytest.raises(TypeError, match="statuss"):
        gb.Job.list(fn.id, statuss="failure", client=local_api)
    with pytest.raises(gb.BadRequestError, match="unknown query parameter status"):
        local_api.get("/jobs", {"function_id": fn.id, "status": "failure"})  # raw HTTP: refused, not ignored
    job = gb.Job.get(failed[0].id, client=local_api, include=["result"])
    assert job.status == gb.JobStatus.FAILURE
    with pytest.raises(gb.BadRequestError, match="include"):
        gb.Job.get(failed[0].id, client=local_api, include=["bogus"])
