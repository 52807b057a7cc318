"""Job: submission, tags, results (inline, data, url, none), errors and logs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import geobatch as gb

from .conftest import FakeHTTP, job_body

pytestmark = pytest.mark.unit


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_save_new_and_modified(client: Any, http: FakeHTTP) -> None:
    http.on("POST", "/jobs", lambda call: (201, job_body(**call.json())))
    http.on("PATCH", "/jobs/job1", lambda call: (200, job_body(**call.json())))
    job = gb.Job("fn1", [1, 2], {"k": "v"}, tags=["a"]).save()
    assert job.id == "job1" and job.args == [1, 2] and job.state == "saved"
    job.tags = ["a", "b"]
    assert job.state == "modified"
    job.save()
    assert http.find("PATCH", "/jobs/job1")[0].json() == {"tags": ["a", "b"]}
    with pytest.raises(AttributeError, match="only tags"):
        job.args = [3]
    with pytest.raises(gb.ValidationError, match="tags"):
        gb.Job("fn1", tags=["x" * 300]).save()


def test_jobs_hash_and_compare_by_id(client: Any) -> None:
    a = gb.Job._from_wire(job_body("j1"), client)
    b = gb.Job._from_wire(job_body("j1", status="success"), client)
    assert a == b and len({a, b}) == 1


def test_result_inline_data_url_and_none(client: Any, http: FakeHTTP) -> None:
    http.on("GET", "/jobs/j2/result", (200, {"job_id": "j2", "size": 3, "data": b64(b"\x00\x01\x02")}))
    http.on("GET", "/jobs/j3/result", (200, {"job_id": "j3", "size": 9, "url": "https://s3.test/r?sig=1"}))
    http.on("GET", "https://s3.test/r?sig=1", (200, json.dumps({"a": 1}).encode()))
    http.on("GET", "/jobs/j4/result", (404, {"code": "not_found", "message": "no result"}))
    inline = gb.Job._from_wire(job_body("j1", status="success", result=b64(b'"hi"'), has_result=True), client)
    assert inline.result() == "hi"
    assert gb.Job._from_wire(job_body("j2", status="success"), client).result() == b"\x00\x01\x02"
    assert gb.Job._from_wire(job_body("j3", status="success"), client).result() == {"a": 1}
    assert gb.Job._from_wire(job_body("j4", status="success"), client).result() is None
    url_call = http.find("GET", "https://s3.test/r?sig=1")[0]
    assert "Authorization" not in url_call.headers


def test_result_cast_type(client: Any) -> None:
    class Point:
        def __init__(self, raw: bytes):
            self.raw = raw

        @classmethod
        def deserialize(cls, data: bytes) -> Point:
            return cls(data)

    job = gb.Job._from_wire(job_body("j1", status="success", result=b64(b"xy")), client)
    assert job.result(Point).raw == b"xy"


def test_result_of_unfinished_and_failed_jobs(client: Any, http: FakeHTTP) -> None:
    http.on("GET", "/jobs/j1", (200, job_body("j1", status="running")))
    http.on("GET", "/jobs/j2", (200, job_body("j2", status="failure", error_reason="ZeroDivisionError")))
    with pytest.raises(gb.JobResultError, match="has not completed"):
        gb.Job._from_wire(job_body("j1"), client).result()
    with pytest.raises(ValueError, match=r"not completed successfully.*ZeroDivisionError"):
        gb.Job._from_wire(job_body("j2"), client).result()
    assert len(http.find("GET", "/jobs/j1")) == 1  # refreshed once


def test_log_lines_and_timestamps(client: Any, http: FakeHTTP) -> None:
    lines = [
        {"date": "2024-05-01T12:00:00Z", "log": "starting"},
        {"date": "2024-05-01T12:00:01Z", "log": "done\n"},
    ]
    http.on("GET", "/jobs/j1/log", (200, "\n".join(json.dumps(x) for x in lines) + "\n"))
    job = gb.Job._from_wire(job_body("j1"), client)
    assert job.log(timestamps=False) == "starting\ndone\n"
    stamped = list(job.iter_log(attempt=2))
    assert stamped[0].endswith(" starting") and stamped[0][:4] == "2024"
    assert http.calls[-1].query == {"attempt": "2"}


def test_wait_and_cancel(client: Any, http: FakeHTTP) -> None:
    http.on(
        "GET", "/jobs/j1", [(200, job_body("j1", status="running")), (200, job_body("j1", status="success"))]
    )
    http.on("POST", "/jobs/j1/cancel", (200, job_body("j1", status="canceled")))
    job = gb.Job._from_wire(job_body("j1"), client)
    assert job.wait_for_completion(interval=0.001).status == gb.JobStatus.SUCCESS
    assert job.cancel().status == gb.JobStatus.CANCELED
    http.on("GET", "/jobs/j1", (200, job_body("j1", status="running")))
    with pytest.raises(TimeoutError):
        job.wait_for_completion(timeout=0.01, interval=0.001)
