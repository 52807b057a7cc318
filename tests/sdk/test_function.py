"""Function: validation, save flow, map batching and partial failures, waiting, bulk ops."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import geobatch as gb
from geobatch import polling, submission
from geobatch.wire import errors, limits

from .conftest import Call, FakeHTTP, function_body, job_body

pytestmark = pytest.mark.unit

UPLOAD = "https://bucket.s3.amazonaws.com/bundle.zip?sig=1"


def double(x, factor=2):
    return x * factor


@pytest.fixture
def saved(client: Any, http: FakeHTTP) -> gb.Function:
    http.on("GET", "/functions/fn1", (200, function_body(status="ready")))
    return gb.Function.get("fn1")


def bulk_reply(call: Call) -> tuple[int, Any]:
    body = call.json()
    count = len(body.get("bulk_args") or body.get("bulk_kwargs"))
    jobs = [job_body(f"{body['reference_id']}-{i}", reference_id=body["reference_id"]) for i in range(count)]
    return 201, {"data": jobs, "meta": {}}


def test_memory_and_cpus_are_validated_early() -> None:
    fn = gb.Function(double, cpus="2vCPU", memory="8GB")
    assert (fn.cpus, fn.memory) == (2.0, 8192)
    assert (
        gb.Function(double, cpus=0.5, memory="1Gi").memory == 1024
        and gb.Function(double, memory=4096).memory == 4096
    )
    with pytest.raises(gb.ValidationError, match="memory=16384 MB does not fit cpus=1: use 2048-8192"):
        gb.Function(double, cpus=1, memory="16GB")


def test_one_resource_given_picks_the_smallest_fargate_partner() -> None:
    assert (gb.Function(double, memory=512).cpus, gb.Function(double, memory=512).memory) == (0.25, 512)
    assert gb.Function(double, memory="16GB").cpus == 2.0
    assert gb.Function(double, cpus=4).memory == 8192
    # What fits a default keeps it (1 vCPU, 2 GB): only a misfit picks a partner.
    assert gb.Function(double, cpus=0.25).memory is None
    assert gb.Function(double, memory=4096).cpus is None and gb.Function(double, cpus=0.5).memory is None
    with pytest.raises(gb.ValidationError, match="out of range"):
        gb.Function(double, memory=1e309)


def test_more_validation() -> None:
    with pytest.raises(gb.ValidationError, match="cpus=3 is not allowed"):
        gb.Function(double, cpus=3, memory=4096)
    with pytest.raises(gb.ValidationError, match="memory 'lots' is not understood"):
        gb.Function(double, memory="lots")
    with pytest.raises(gb.ValidationError, match="retry_count"):
        gb.Function(double, retry_count=-1)
    with pytest.raises(gb.ValidationError, match="image"):
        gb.Function(double, image="ubuntu")
    with pytest.raises(TypeError, match="unknown arguments"):
        gb.Function(double, colour="red")


def test_new_function_defaults() -> None:
    fn = gb.Function(double)
    assert fn.name == "double" and fn.state == "new" and fn.id is None
    assert fn.image == "python3.11"
    assert gb.Function("pkg.mod:_private").name == "private"


def test_save_creates_uploads_and_starts_build(client: Any, http: FakeHTTP) -> None:
    http.on(
        "POST",
        "/functions",
        (201, {"function": function_body(status="awaiting_bundle"), "bundle_upload_url": UPLOAD}),
    )
    http.on("PUT", UPLOAD, (200, b""))
    http.on("POST", "/functions/fn1/bundle", (200, function_body(status="building")))
    fn = gb.Function(double, requirements=["numpy"], memory="4GB", retry_count=2)
    fn.save()
    assert fn.id == "fn1" and fn.status == gb.FunctionStatus.BUILDING and fn.state == "saved"
    create = http.find("POST", "/functions")[0].json()
    assert create == {
        "name": "double",
        "image": "python3.11",
        "memory": 4096,
        "retry_count": 2,
        "requirements": ["numpy"],
    }
    upload = http.find("PUT", UPLOAD)[0]
    assert upload.body[:2] == b"PK" and "Authorization" not in upload.headers
    fn.save()  # saved: no-op
    assert len(http.calls) == 3


def test_failed_upload_is_reported(client: Any, http: FakeHTTP) -> None:
    http.on(
        "POST",
        "/functions",
        (201, {"function": function_body(status="awaiting_bundle"), "bundle_upload_url": UPLOAD}),
    )
    http.on("PUT", UPLOAD, (403, b"<Error>expired</Error>"))
    fn = gb.Function(double)
    with pytest.raises(gb.AuthError):
        fn.save()
    with pytest.raises(gb.ConflictError, match="upload"):
        fn.save()


def test_modified_function_patches_only_changes(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("PATCH", "/functions/fn1", lambda call: (200, function_body(status="ready", **call.json())))
    saved.maximum_concurrency = 50
    saved.memory = "4GB"
    assert saved.state == "modified"
    saved.save()
    assert http.find("PATCH", "/functions/fn1")[0].json() == {"maximum_concurrency": 50, "memory": 4096}
    assert saved.memory == 4096 and saved.state == "saved"
    with pytest.raises(AttributeError, match="fixed once"):
        saved.requirements = ["numpy"]
    with pytest.raises(AttributeError, match="read-only"):
        saved.status = "ready"  # type: ignore[misc]


def test_map_batches_by_count(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("POST", "/jobs/bulk", bulk_reply)
    result = saved.map(((i,) for i in range(25)), batch_size=10, tags=["t"])
    assert len(result) == 25 and result.is_success
    bodies = [c.json() for c in http.find("POST", "/jobs/bulk")]
    assert [len(b["bulk_args"]) for b in bodies] == [10, 10, 5]
    assert len({b["reference_id"] for b in bodies}) == 3
    assert bodies[0]["bulk_args"][0] == [0] and bodies[0]["tags"] == ["t"]


def test_map_batches_by_bytes(saved: gb.Function, http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_REQUEST_BYTES", submission.BULK_OVERHEAD_BYTES + 2500)
    http.on("POST", "/jobs/bulk", bulk_reply)
    payload = "x" * 1000
    result = saved.map([(payload,)] * 5)
    assert len(result) == 5
    assert [len(c.json()["bulk_args"]) for c in http.find("POST", "/jobs/bulk")] == [2, 2, 1]


def test_map_splits_a_batch_the_server_finds_too_big(saved: gb.Function, http: FakeHTTP) -> None:
    def reply(call: Call) -> tuple[int, Any]:
        if len(call.json()["bulk_args"]) > 2:
            return 413, {"code": "payload_too_large", "message": "too big"}
        return bulk_reply(call)

    http.on("POST", "/jobs/bulk", reply)
    assert len(saved.map([(i,) for i in range(4)])) == 4


def test_map_retry_reuses_reference(saved: gb.Function, http: FakeHTTP) -> None:
    replies = iter([(503, {"code": "service_unavailable", "message": "x"})])
    http.on("POST", "/jobs/bulk", lambda call: next(replies, None) or bulk_reply(call))
    result = saved.map([(1,), (2,)])
    calls = http.find("POST", "/jobs/bulk")
    assert len(calls) == 2 and calls[0].body == calls[1].body
    assert len(result) == 2


def test_map_partial_failure(saved: gb.Function, http: FakeHTTP) -> None:
    count = {"n": 0}

    def reply(call: Call) -> tuple[int, Any]:
        count["n"] += 1
        if count["n"] >= 2:
            return 400, {"code": "bad_request", "message": "function disabled"}
        return bulk_reply(call)

    http.on("POST", "/jobs/bulk", reply)
    result = saved.map([(i,) for i in range(5)], kwargs=[{"k": i} for i in range(5)], batch_size=2)
    assert len(result) == 2 and not result.is_success and len(result.errors) == 2
    error = result.errors[0]
    assert error.args == [[2], [3]] and error.kwargs == [{"k": 2}, {"k": 3}]
    assert isinstance(error.exception, gb.BadRequestError) and len(error.reference_id) == 32
    assert "function disabled" in str(error)


def test_map_first_batch_failure_raises(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("POST", "/jobs/bulk", (400, {"code": "bad_request", "message": "disabled"}))
    with pytest.raises(gb.BadRequestError, match="disabled"):
        saved.map([(1,), (2,)], batch_size=1)


def test_map_argument_checks(saved: gb.Function) -> None:
    with pytest.raises(gb.ValidationError, match="same length"):
        saved.map([(1,), (2,)], kwargs=[{}])
    with pytest.raises(gb.ValidationError, match=r"args\[0\] is the string 'abc'"):
        saved.map(["abc"])
    with pytest.raises(gb.ValidationError, match="wrap it"):
        saved.map([1, 2])
    with pytest.raises(gb.ValidationError, match="batch_size"):
        saved.map([(1,)], batch_size=0)
    with pytest.raises(gb.EncodingError, match="JSON"):
        saved.map([(object(),)])
    assert saved.map([]) == []


def test_call_submits_one_job(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("POST", "/jobs", lambda call: (201, job_body(**{k: v for k, v in call.json().items()})))
    job = saved(3, factor=4, tags=["a"])
    assert http.find("POST", "/jobs")[0].json() == {
        "function_id": "fn1",
        "args": [3],
        "kwargs": {"factor": 4},
        "tags": ["a"],
    }
    assert job.id == "job1" and job.status == gb.JobStatus.PENDING


def test_delete_loops_on_202(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("DELETE", "/functions/fn1", [(202, {"remaining": True}), (202, {"remaining": True}), (204, None)])
    saved.delete(delete_results=True)
    calls = http.find("DELETE", "/functions/fn1")
    assert len(calls) == 3 and calls[0].query["delete_results"] == "true"


def stats(**counts: int) -> dict[str, int]:
    return {s.value: counts.get(s.value, 0) for s in gb.JobStatus}


def test_wait_for_completion(saved: gb.Function, http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling.time, "sleep", lambda s: None)
    http.on(
        "GET",
        "/functions/fn1",
        [
            (200, function_body(status="building", job_statistics=stats(pending=2))),
            (200, function_body(status="ready", job_statistics=stats(running=1, success=1))),
            (200, function_body(status="ready", job_statistics=stats(success=1, failure=1))),
        ],
    )
    saved.wait_for_completion(progress=False)
    assert saved.job_statistics["failure"] == 1
    assert http.calls[-1].query["include"] == "job.statistics"


def test_wait_raises_on_build_failure_and_stopped(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("GET", "/functions/fn1", (200, function_body(status="build_failed", status_reason="pip failed")))
    with pytest.raises(gb.BuildFailedError, match="pip failed"):
        saved.wait_for_completion()
    http.on("GET", "/functions/fn1", (200, function_body(status="stopped", job_statistics=stats(pending=3))))
    with pytest.raises(gb.ConflictError, match="stopped with 3 pending jobs"):
        saved.wait_for_completion(raise_if_stopped=True)


def test_wait_keeps_waiting_while_stopped_and_says_why(saved: gb.Function, http: FakeHTTP) -> None:
    stopped = (200, function_body(status="stopped", job_statistics=stats(pending=3)))
    started = (200, function_body(status="ready", job_statistics=stats(success=3)))
    http.on("GET", "/functions/fn1", [stopped, stopped, stopped, started])
    with pytest.warns(RuntimeWarning, match="stopped with 3 pending jobs.*still waiting") as said:
        saved.wait_for_completion(interval=0.001, progress=False)
    assert len(said) == 1  # said once, not at every poll
    assert saved.job_statistics["success"] == 3


def test_wait_times_out(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("GET", "/functions/fn1", (200, function_body(status="ready", job_statistics=stats(running=1))))
    with pytest.raises(TimeoutError, match="1 jobs outstanding"):
        saved.wait_for_completion(timeout=0.01, interval=0.001)


def test_as_completed(saved: gb.Function, http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling.time, "sleep", lambda s: None)
    jobs = [gb.Job._from_wire(job_body(f"j{i}"), saved.client) for i in range(3)]
    http.on(
        "GET",
        "/jobs",
        [
            (200, {"data": [job_body("j1", status="success")], "meta": {}}),
            (200, {"data": [], "meta": {}}),
            (200, {"data": [job_body("j0", status="failure"), job_body("j2", status="success")], "meta": {}}),
        ],
    )
    done = list(saved.as_completed(jobs))
    assert [j.id for j in done] == ["j1", "j0", "j2"] and done[1].status == gb.JobStatus.FAILURE
    query = http.find("GET", "/jobs")[0].query
    assert query["function_id"] == "fn1"
    assert json.loads(query["filter"])[0] == {"op": "in", "name": "id", "val": ["j0", "j1", "j2"]}


def test_results_use_inline_data(saved: gb.Function, http: FakeHTTP) -> None:
    inline = base64.b64encode(b"[1, 2]").decode()
    http.on(
        "GET",
        "/jobs",
        (
            200,
            {
                "data": [
                    job_body("j1", status="success", has_result=True, result=inline),
                    job_body("j2", status="success", has_result=False),
                    job_body("j3", status="success", has_result=True),
                ],
                "meta": {},
            },
        ),
    )
    http.on(
        "GET", "/jobs/j3/result", (200, {"job_id": "j3", "size": 2, "data": base64.b64encode(b"42").decode()})
    )
    assert saved.results() == [[1, 2], None, 42]
    assert http.find("GET", "/jobs")[0].query["include"] == "result"
    assert len(http.find("GET", "/jobs/j2/result")) == 0


def test_bulk_job_operations(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("POST", "/jobs/rerun", (200, {"job_ids": ["a"], "page_cursor": None}))
    http.on("POST", "/jobs/delete", (200, {"job_ids": ["b"], "page_cursor": None}))
    assert saved.rerun(gb.Job.status == "failure") == ["a"]
    assert saved.delete_jobs(job_ids=["b"], delete_results=True) == ["b"]
    rerun = http.find("POST", "/jobs/rerun")[0].json()
    assert rerun["function_id"] == "fn1" and rerun["filter"] == [
        {"op": "eq", "name": "status", "val": "failure"}
    ]
    delete = http.find("POST", "/jobs/delete")[0].json()
    assert delete["job_ids"] == ["b"] and delete["delete_results"] is True


def test_start_stop_enable(saved: gb.Function, http: FakeHTTP) -> None:
    http.on("PATCH", "/functions/fn1", lambda call: (200, function_body(**call.json())))
    saved.stop()
    saved.disable()
    assert [c.json() for c in http.find("PATCH", "/functions/fn1")] == [
        {"status": "stopped"},
        {"enabled": False},
    ]
    assert saved.enabled is False


def test_build_log(saved: gb.Function, http: FakeHTTP) -> None:
    import gzip

    http.on("GET", "/functions/fn1/log", (200, gzip.compress(b"Successfully installed numpy\n")))
    assert saved.build_log() == "Successfully installed numpy\n"
    http.on("GET", "/functions/fn1/log", (404, {"code": "not_found", "message": "no build log yet"}))
    with pytest.raises(errors.NotFoundError):
        saved.build_log()
