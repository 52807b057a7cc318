"""Answers stay under Lambda's 6 MB response limit: long logs come in parts and job pages are cut
by size, and the SDK reads on until the end (SDK → HTTP → local mode's handler → moto)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest

import geobatch as gb
from geobatch_core import layout
from geobatch_core.records import AttemptRecord
from geobatch_core.services.access import split_job_id
from tests.sdk.lossy import LossyHTTP, lossy_client

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]

LAMBDA_LIMIT = 6 * 1024 * 1024


def noop(x):
    return None


class SizeRecorder(LossyHTTP):
    """Records the size of every answer body (it forwards everything, drops nothing)."""

    def __init__(self) -> None:
        super().__init__(lambda m, p: False)
        self.sizes: list[tuple[str, int]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = super().request(method, url, **kwargs)
        data = response.read()
        self.sizes.append((self.sent[-1][1], len(data)))
        import io

        import urllib3

        return urllib3.HTTPResponse(
            body=io.BytesIO(data), status=response.status, headers=response.headers, preload_content=False
        )


@pytest.fixture
def saved(local_api: gb.Client) -> Any:
    recorder = SizeRecorder()
    client = lossy_client(local_api.api_url, recorder)
    fn = gb.Function(noop, name=f"big-{uuid.uuid4().hex[:8]}", auto_start=False, client=client).save()
    yield fn, recorder
    with contextlib.suppress(gb.GeoBatchError):
        gb.Function.get(fn.id, client=local_api).delete(delete_results=True)


def test_a_10_mb_log_comes_in_parts(saved: Any, local_stack: Any) -> None:
    fn, recorder = saved
    job = fn(1)
    fid, key = split_job_id(job.id)
    svc = local_stack.services
    lines = [f"2026-01-01T00:00:00Z\tline {i} " + "x" * 1000 for i in range(10_000)]  # ~10 MB
    log_key = layout.log_key(fid, key, 0, 1)
    svc.blobs.put(log_key, ("\n".join(lines) + "\n").encode())
    attempt = AttemptRecord(started="2026-01-01T00:00:00Z", status="failure", log_key=log_key)
    svc.jobs.transition(fid, key, changes={}, expect={}, append_attempt=attempt)
    recorder.sizes.clear()
    got = job.log(timestamps=False).splitlines()
    assert got == [line.partition("\t")[2] for line in lines]
    parts = [size for path, size in recorder.sizes if path.endswith("/log")]
    assert len(parts) >= 5 and max(parts) < LAMBDA_LIMIT / 2


def test_job_pages_are_cut_by_size(saved: Any) -> None:
    fn, recorder = saved
    big = "y" * 15_000  # kept inside the job item (under 16 KB)
    for _ in range(2):
        fn.map([(big,)] * 200)
    recorder.sizes.clear()
    jobs = fn.jobs.param(page_size=1000).collect()
    assert len(jobs) == 400 and len({j.id for j in jobs}) == 400
    pages = [size for path, size in recorder.sizes if path == "/jobs"]
    assert len(pages) >= 2 and max(pages) < LAMBDA_LIMIT / 2


TAGS = [f"{i:02d}" + "t" * 254 for i in range(50)]  # the most tags, each the longest allowed


def test_a_bulk_submit_at_the_limits_answers_well_under_6_mb(saved: Any) -> None:
    """1,000 jobs with 50 tags of 256 characters: an echo of every job would be 13 MB. The answer
    carries ids and state; the SDK's Jobs still have what was sent (tags, arguments)."""
    fn, recorder = saved
    recorder.sizes.clear()
    result = fn.map([(i, "a" * 10) for i in range(1000)], tags=TAGS)
    answers = [size for path, size in recorder.sizes if path == "/jobs/bulk"]
    assert answers and max(answers) < LAMBDA_LIMIT / 10, answers
    assert len(result) == 1000 and len({j.id for j in result}) == 1000
    assert result[7].tags == TAGS and result[7].args == [7, "a" * 10] and result[7].status == "pending"
    fetched = gb.Job.get(result[7].id, client=fn.client)
    assert (
        fetched.tags == TAGS
        and fetched.args == [7, "a" * 10]
        and fetched.creation_date == result[7].creation_date
    )
    recorder.sizes.clear()
    listed = fn.jobs.param(page_size=1000).collect()  # GET /jobs?page_size=1000, cursor followed
    assert len(listed) == 1000 and {j.id for j in listed} == {j.id for j in result}
    pages = [size for path, size in recorder.sizes if path == "/jobs"]
    assert len(pages) >= 2 and max(pages) < LAMBDA_LIMIT, pages
    assert all(j.tags == TAGS for j in listed)
