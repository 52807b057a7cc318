"""No duplicates and no phantom writes, through the real path: SDK → HTTP → local mode's API handler
→ moto's server, with answers lost on the way (tests/sdk/lossy.py forwards the request and drops the
answer, so the API does the work and the caller does not hear of it)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import geobatch as gb
from tests.sdk.lossy import LossyHTTP, lossy_client

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]


def triple(x):
    return 3 * x


@pytest.fixture
def cleanup(local_api: gb.Client) -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    for fid in ids:
        with contextlib.suppress(gb.GeoBatchError):
            gb.Function.get(fid, client=local_api).delete(delete_results=True)


def _saved(local_api: gb.Client, cleanup: list[str]) -> gb.Function:
    fn = gb.Function(triple, name=f"idem-{uuid.uuid4().hex[:8]}", auto_start=False, client=local_api)
    fn.save()
    cleanup.append(fn.id)
    return fn


def _named(client: gb.Client, name: str) -> list[gb.Function]:
    return gb.Function.search(client).filter(gb.Function.name == name).collect()


def test_lost_answer_to_function_save_makes_one_function(local_api: gb.Client, cleanup: list[str]) -> None:
    http = LossyHTTP(lambda m, p: (m, p) == ("POST", "/functions"))
    client = lossy_client(local_api.api_url, http)
    name = f"idem-{uuid.uuid4().hex[:8]}"
    fn = gb.Function(triple, name=name, auto_start=False, client=client).save()
    cleanup.append(fn.id)
    assert http.dropped == [("POST", "/functions")]
    keys = http.keys("POST", "/functions")
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]  # the retry reused the call's key
    assert [f.id for f in _named(local_api, name)] == [fn.id]


def test_save_again_after_every_answer_was_lost_makes_one_function(
    local_api: gb.Client, cleanup: list[str]
) -> None:
    http = LossyHTTP(lambda m, p: (m, p) == ("POST", "/functions"), times=3)
    client = lossy_client(local_api.api_url, http, retries=2)
    name = f"idem-{uuid.uuid4().hex[:8]}"
    fn = gb.Function(triple, name=name, auto_start=False, client=client)
    with pytest.raises(gb.ServiceError):
        fn.save()
    fn.save()  # the same call again: safe
    cleanup.append(fn.id)
    assert [f.id for f in _named(local_api, name)] == [fn.id]


def test_lost_answer_to_a_job_submission_makes_one_job(local_api: gb.Client, cleanup: list[str]) -> None:
    fn = _saved(local_api, cleanup)
    http = LossyHTTP(lambda m, p: (m, p) == ("POST", "/jobs"), timeout=True)
    same = gb.Function.get(fn.id, client=lossy_client(local_api.api_url, http))
    job = same(7)
    assert http.dropped and job.args == [7]
    assert [j.id for j in fn.jobs] == [job.id]


def test_resubmitting_a_failed_batch_reuses_its_reference(local_api: gb.Client, cleanup: list[str]) -> None:
    fn = _saved(local_api, cleanup)
    bulk_calls = []

    def second_batch(method: str, path: str) -> bool:
        if path == "/jobs/bulk":
            bulk_calls.append(1)
            return len(bulk_calls) > 1  # the first batch goes through; every answer to the second is lost
        return False

    http = LossyHTTP(second_batch, times=None)
    lossy = gb.Function.get(fn.id, client=lossy_client(local_api.api_url, http, retries=1))
    result = lossy.map([(i,) for i in range(6)], batch_size=3)
    assert len(result) == 3 and len(result.errors) == 1
    error = result.errors[0]
    assert fn.jobs.count() == 6  # the lost batch was created all the same
    http.drop = lambda m, p: False
    again = lossy.map(error.args)  # what the error's docstring advises
    assert again.is_success and sorted(j.args[0] for j in again) == [3, 4, 5]
    assert {j.reference_id for j in again} == {error.reference_id}
    assert fn.jobs.count() == 6


def test_same_reference_with_other_jobs_is_refused(local_api: gb.Client, cleanup: list[str]) -> None:
    fn = _saved(local_api, cleanup)
    reference = uuid.uuid4().hex
    local_api.post("/jobs/bulk", {"function_id": fn.id, "bulk_args": [[1], [2]], "reference_id": reference})
    for other in ([[1], [9]], [[1], [2], [3]]):  # other arguments; a longer resend
        with pytest.raises(gb.ConflictError, match=reference):
            local_api.post(
                "/jobs/bulk", {"function_id": fn.id, "bulk_args": other, "reference_id": reference}
            )
    assert sorted(j.args[0] for j in fn.jobs) == [1, 2]


def test_same_key_with_another_request_is_refused(local_api: gb.Client, cleanup: list[str]) -> None:
    fn = _saved(local_api, cleanup)
    key = uuid.uuid4().hex
    first = local_api.post("/jobs", {"function_id": fn.id, "args": [1]}, idempotency_key=key)
    replay = local_api.request(
        "POST", "/jobs", json_body={"function_id": fn.id, "args": [1]}, idempotency_key=key
    )
    assert replay.json()["id"] == first["id"] and replay.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(gb.ConflictError, match="Idempotency-Key"):
        local_api.post("/jobs", {"function_id": fn.id, "args": [2]}, idempotency_key=key)
    assert fn.jobs.count() == 1


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


REFUSED = {  # raw JSON of a job: args, tags and environment as a hostile caller sends them
    "nested-300": '"args": ' + json.dumps([_nested(300)]),
    "nested-70": '"args": ' + json.dumps([_nested(70)]),
    "lone-surrogate-arg": '"args": ["\\ud800 lone"]',
    "lone-surrogate-tag": '"args": [], "tags": ["\\udfff"]',
    "nul-in-environment": '"args": [], "environment": {"X": "a\\u0000b"}',
}


@pytest.mark.parametrize("fields", list(REFUSED.values()), ids=list(REFUSED))
def test_a_refused_submission_writes_nothing(local_api: gb.Client, cleanup: list[str], fields: str) -> None:
    fn = _saved(local_api, cleanup)
    single = json.loads("{" + fields + "}")
    bulk = {
        "reference_id": uuid.uuid4().hex,
        "bulk_args": [single["args"]],
        "bulk_environments": [single.get("environment")],
        "tags": single.get("tags", []),
    }
    bodies = {
        "/jobs": '{"function_id": "%s", %s}' % (fn.id, fields),  # noqa: UP031 (JSON braces)
        "/jobs/bulk": json.dumps({"function_id": fn.id, **bulk}),
    }
    for path, data in bodies.items():
        headers = {"Content-Type": "application/json"}
        response = local_api.request(
            "POST", path, body=data.encode(), headers=headers, ok_statuses=(400, 422)
        )
        assert response.status in (400, 422), response.text
        assert response.json()["message"]
    assert fn.jobs.count() == 0


def test_sdk_refuses_deep_arguments_before_sending(local_api: gb.Client, cleanup: list[str]) -> None:
    fn = _saved(local_api, cleanup)
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(gb.EncodingError, match="nest"):
        fn(deep)
    assert fn.jobs.count() == 0
