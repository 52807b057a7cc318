"""Pending reasons and failure causes, through the API handler on moto (and their pure parts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from geobatch.wire.models import FunctionCreate, JobBulkCreate
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services import functions, jobs
from geobatch_core.services.context import Settings
from geobatch_core.services.failures import cause_of
from geobatch_worker.loop import Worker, WorkerConfig
from tests.core.helpers import ALICE, ready_function

pytestmark = pytest.mark.moto

FAILING = """
def always_fails(x):
    raise RuntimeError("no")
"""


def test_a_job_waiting_for_code_says_so(api):
    svc = api.services
    created = functions.create_function(svc, ALICE, FunctionCreate(name="later"))
    bulk = JobBulkCreate(function_id=created.function.id, bulk_args=[[1]], reference_id="r")
    job = jobs.submit_jobs(svc, ALICE, bulk).data[0]
    status, body = api("GET", f"/jobs/{job.id}")
    assert status == 200
    assert body["status"] == "pending"
    assert body["status_reason"] == "waiting: function code has not been uploaded"


def test_a_backing_off_job_says_when_it_retries(api):
    svc = api.services
    svc.settings = Settings(queue_prefix="test", lost_worker_seconds=5, retry_base_seconds=60.0)
    function = ready_function(svc, FAILING, "always_fails", retry_count=2)
    bulk = JobBulkCreate(function_id=function.id, bulk_args=[[1]], reference_id=str(uuid.uuid4()))
    job = jobs.submit_jobs(svc, ALICE, bulk).data[0]
    worker = Worker.for_services(
        WorkerConfig(function.id, function.queue_url, "w1", idle_seconds=0.5, poll_seconds=0), svc
    )
    worker.run()  # one attempt; the retry is 30-60 s away, so the worker goes idle and stops
    status, body = api("GET", f"/jobs/{job.id}")
    assert body["status"] == "pending" and body["execution_count"] == 1
    assert body["status_reason"].startswith("backing off: attempt 1 of 3 failed, next try in ")
    seconds = int(body["status_reason"].rsplit(" in ", 1)[1].split()[0])
    assert 25 <= seconds <= 60
    assert body["attempts"][0]["reason"] == "RuntimeError: no"
    status, body = api("GET", "/jobs", query={"function_id": function.id})
    assert body["data"][0]["status_reason"].startswith("backing off")


def test_building_reason_counts_minutes():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    started = (now - timedelta(minutes=2, seconds=5)).isoformat().replace("+00:00", "Z")
    item = JobRecord(status="pending", function_id="f", job_key="k")
    function = FunctionRecord(id="f", status="building", build_started=started, maximum_concurrency=5)
    assert jobs.pending_reason(item, function, now) == "waiting: function image is building (2 min so far)"
    ready = FunctionRecord(id="f", status="ready", maximum_concurrency=3)
    assert jobs.pending_reason(item, ready, now, {"RUNNING": 3}) == (
        "waiting: 3 of 3 concurrent jobs running (maximum_concurrency=3)"
    )
    assert jobs.pending_reason(item, ready, now, {"RUNNABLE": 2, "RUNNING": 1}) == (
        "waiting: AWS Batch has not yet started 2 workers (2 RUNNABLE); 1 running"
    )
    stopped = FunctionRecord(id="f", status="stopped")
    assert jobs.pending_reason(item, stopped, now).startswith("waiting: function is stopped")


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("failure", "ValueError: bad value 17 in row 170", ("exception", "ValueError: bad value N in row N")),
        ("failure", "KeyError: 'deadbeefcafe1234'", ("exception", "KeyError: '<id>'")),
        (
            "timeout",
            "timeout: still running after 2 s",
            ("timeout", "timeout: still running at the time limit"),
        ),
        ("failure", "out of memory: peak 2,043 MiB of 2,048 MiB limit", ("out_of_memory", "out of memory")),
        ("failure", "worker lost: no heartbeat for 120 s on attempt 1", ("worker_lost", "worker lost")),
        ("failure", None, ("other", "no reason recorded")),
    ],
)
def test_causes_strip_what_varies(status, reason, expected):
    assert cause_of(status, reason) == expected
