"""Bulk operations through the real API handler (API Gateway events) on moto: small ones answer at
once, large ones become background operations that the scaler pass applies in pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from geobatch.wire import limits
from geobatch.wire.models import JobIds
from geobatch.wire.operations import Operation, OperationState
from geobatch_api import app as api_app
from geobatch_core.services import bulk_scan, operations
from geobatch_core.services.functions import job_statistics
from geobatch_ops import scaler
from tests.conftest import FakeLambdaContext, apigw_event
from tests.core.helpers import ALICE, BOB
from tests.core.test_api import make_ready

pytestmark = pytest.mark.moto


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto writes a few jobs a second on a busy machine: the thresholds shrink with the run, so a
    few hundred jobs cross them as hundreds of thousands would in AWS."""
    monkeypatch.setattr(limits, "SYNC_BULK_JOBS", 40)
    monkeypatch.setattr(limits, "SYNC_BULK_SCAN", 80)
    monkeypatch.setattr(bulk_scan, "STORE_PAGE", 60)


def stopped_function(api: Any, n: int) -> str:
    """A ready Function holding ``n`` pending jobs that no worker takes (it is stopped)."""
    function_id = make_ready(api)
    status, _ = api("PATCH", f"/functions/{function_id}", body={"status": "stopped"})
    assert status == 200
    for start in range(0, n, 1000):
        count = min(1000, n - start)
        body = {
            "function_id": function_id,
            "bulk_args": [[i] for i in range(count)],
            "reference_id": f"r{start}",
        }
        status, page = api("POST", "/jobs/bulk", body=body)
        assert status == 201, page
    return function_id


def post_with_key(path: str, body: dict[str, Any], key: str, principal: str = ALICE) -> tuple[int, Any]:
    event = apigw_event("POST", path, body=body, principal=principal)
    event["headers"] = {**(event.get("headers") or {}), "Idempotency-Key": key}
    response = api_app.handler(event, FakeLambdaContext())
    return int(response["statusCode"]), json.loads(response["body"])


def test_a_small_cancel_answers_the_ids_at_once(api: Any) -> None:
    function_id = stopped_function(api, 30)  # under SYNC_BULK_JOBS
    status, body = api("POST", "/jobs/cancel", body={"function_id": function_id})
    assert status == 200 and len(JobIds.model_validate(body).job_ids) == 30
    assert job_statistics(api.services, function_id)["canceled"] == 30


def test_a_large_cancel_runs_in_pages_with_progress_and_is_idempotent(api: Any) -> None:
    svc = api.services
    n = 290  # over the synchronous budget: five store pages of 60
    function_id = stopped_function(api, n)
    query = {"function_id": function_id, "filter": [{"op": "eq", "name": "status", "val": "pending"}]}
    status, body = post_with_key("/jobs/cancel", query, "cancel-all-1")
    assert status == 202, body
    accepted = Operation.model_validate(body)
    assert accepted.state == OperationState.QUEUED and accepted.action == "cancel"
    assert job_statistics(svc, function_id)["pending"] == n  # nothing changed inside the request
    # The same request retried (its answer lost) is the same operation, not a second one.
    again_status, again = post_with_key("/jobs/cancel", query, "cancel-all-1")
    assert again_status == 202 and again["id"] == accepted.id
    status, body = api("GET", f"/operations/{accepted.id}", principal=BOB)
    assert status == 404  # another tenant's operation is not there

    seen, woken = [], []
    svc.on_submit = woken.append  # what wakes the scaler Lambda (or local mode's pass)
    while True:
        assert operations.run_operations(svc, seconds=60, max_pages=1, wake=True) <= 1
        status, body = api("GET", f"/operations/{accepted.id}")
        assert status == 200
        op = Operation.model_validate(body)
        seen.append((op.pages, op.processed))
        if op.state.is_final:
            break
    assert op.state == OperationState.SUCCEEDED and op.total == n
    assert op.processed == op.changed == n and op.finish_date is not None
    assert [p for p, _ in seen] == list(range(1, 6))
    assert [c for _, c in seen] == sorted(c for _, c in seen)  # progress only grows
    assert woken == [function_id] * (len(seen) - 1)  # each pass with work left wakes the next
    stats = job_statistics(svc, function_id)
    assert stats["canceled"] == n and stats["pending"] == 0
    # Finished: the pass no longer reads it, and a further pass changes nothing.
    assert scaler.run_pass(svc).operation_pages == 0


def test_a_large_rerun_through_the_scaler_pass(api: Any) -> None:
    svc = api.services
    function_id = stopped_function(api, limits.SYNC_BULK_SCAN + 70)
    status, body = api("POST", "/jobs/cancel", body={"function_id": function_id})
    assert status == 202
    # The pass applies it within its time budget (20 s: a few thousand jobs on an idle machine);
    # on a loaded one the next pass goes on where it stopped, as the scaler's next minute would.
    while scaler.run_pass(svc).operation_pages:
        pass
    assert job_statistics(svc, function_id)["canceled"] == limits.SYNC_BULK_SCAN + 70
    status, body = api("POST", "/jobs/rerun", body={"function_id": function_id})
    assert status == 202
    reports = [scaler.run_pass(svc)]
    while reports[-1].operation_pages:
        reports.append(scaler.run_pass(svc))
    assert sum(r.operation_pages for r in reports) >= 2 and not any(r.failed for r in reports)
    _, op = api("GET", f"/operations/{body['id']}")
    assert op["state"] == "succeeded" and op["changed"] == limits.SYNC_BULK_SCAN + 70
    stats = job_statistics(svc, function_id)
    assert stats["pending"] == limits.SYNC_BULK_SCAN + 70 and stats["canceled"] == 0


def test_an_operation_that_cannot_go_on_fails_with_the_reason(api: Any) -> None:
    svc = api.services
    function_id = stopped_function(api, limits.SYNC_BULK_SCAN + 70)
    status, body = api("POST", "/jobs/cancel", body={"function_id": function_id})
    assert status == 202
    operations.run_operations(svc, seconds=60)
    status, _ = api("PATCH", f"/functions/{function_id}", body={"enabled": False})
    assert status == 200
    status, body = api("POST", "/jobs/rerun", body={"function_id": function_id})
    assert status == 202
    operations.run_operations(svc, seconds=60)
    _, op = api("GET", f"/operations/{body['id']}")
    assert op["state"] == "failed" and "is disabled" in op["error"]
    assert job_statistics(svc, function_id)["canceled"] == limits.SYNC_BULK_SCAN + 70


def test_bad_operation_requests_are_4xx(api: Any) -> None:
    status, body = api("GET", "/operations/not-hex")
    assert status == 404 and body["code"] == "not_found"
    status, body = api("GET", "/operations/00112233aabbccdd")
    assert status == 404
    status, body = api("POST", "/jobs/cancel", body={"filter": [{"op": "eq", "name": "nope", "val": 1}]})
    assert status == 400
