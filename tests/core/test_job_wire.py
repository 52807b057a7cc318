"""The wire form of a job, built from the record's named attributes, against a fixed answer.

``tests/core/job_wire_expected.json`` was written by the wire builder this one replaced (a copy of
the job item minus an exclusion list, commit 6a31621), over the varied jobs below: succeeded with
an inline result, the result in S3, failed with retries and earlier runs, pending with backoff
(running out, and over), arguments in S3 (as listed, and as ``GET /jobs/{id}`` reads them), a
status reason that wins over the pending one, a job with only its required attributes, attributes
the record does not name. Each job is shown as a listing shows it, with its result, and with its
Function's state (building, stopped, at its concurrency, workers starting, ...). The answers must
stay the same byte for byte: clients and the SDK parse them, and a page's size is budgeted from
``wire_bytes``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services import job_wire

pytestmark = pytest.mark.unit

EXPECTED = json.loads((Path(__file__).parent / "job_wire_expected.json").read_text())
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ATTEMPT_OK = {
    "number": 1,
    "started": "2026-11-26T11:00:00Z",
    "ended": "2026-11-26T11:00:04Z",
    "status": "success",
    "exit_code": 0,
    "runtime": 4.25,
    "peak_memory_mb": 211.5,
    "cpu_seconds": 3.9,
    "log_bytes": 120,
    "worker_id": "w-1",
    "log": "2026-11-26T11:00:01Z\thello\n",
    "statistics_key": "stats/f/k/0/1.json",
    "statistics": {"samples": 3, "cpu_mean_percent": 80.0, "memory_peak_mb": 211.5},
}
FUNCTIONS = {
    "ready": {
        "id": "f0a1",
        "status": "ready",
        "owner": "alice",
        "maximum_concurrency": 4,
        "retry_count": 2,
        "queue_url": "https://q/f0a1",
    },
    "building": {
        "id": "f0a1",
        "status": "building",
        "build_started": "2026-11-26T11:50:00Z",
        "maximum_concurrency": 2,
    },
    "stopped": {"id": "f0a1", "status": "stopped", "maximum_concurrency": 2},
    "awaiting": {"id": "f0a1", "status": "awaiting_bundle"},
    "build_failed": {"id": "f0a1", "status": "build_failed"},
    "bare": {"id": "f0a1", "status": "ready"},
}
BASE = {
    "function_id": "f0a1",
    "job_key": "0190abc1234def000",
    "owner": "alice",
    "creation_date": "2026-11-26T10:59:58.123Z",
    "reference_id": "ref-1",
}
JOBS = {
    "succeeded_inline": {
        **BASE,
        "status": "success",
        "payload": '{"args":[1,"two"],"kwargs":{"x":[3]}}',
        "environment": {"A": "1", "B": "two"},
        "tags": ["t1", "tile:12/3/4"],
        "run": 0,
        "execution_count": 1,
        "claim_msg": "m-1",
        "claim_token": "tok-1",
        "attempts": [ATTEMPT_OK],
        "exit_code": 0,
        "runtime": 4.25,
        "last_execution_date": "2026-11-26T11:00:00Z",
        "last_completion_date": "2026-11-26T11:00:04Z",
        "result": b'{"ok": true}\x00\xff',
        "result_size": 14,
    },
    "result_in_s3": {
        **BASE,
        "status": "success",
        "payload": '{"args":[],"kwargs":{}}',
        "tags": [],
        "run": 0,
        "execution_count": 1,
        "attempts": [{**ATTEMPT_OK, "log_key": "logs/f0a1/k/0/1.txt", "log": None}],
        "exit_code": 0,
        "runtime": 9.5,
        "last_execution_date": "2026-11-26T11:00:00Z",
        "last_completion_date": "2026-11-26T11:00:09Z",
        "result_key": "results/f0a1/0190abc1234def000",
        "result_size": 5_000_000,
        "result_meta": {"content_type": "application/octet-stream"},
    },
    "failed_reruns": {
        **BASE,
        "status": "failure",
        "payload": '{"args":[7],"kwargs":null}',
        "tags": ["x"],
        "run": 2,
        "execution_count": 2,
        "earlier_executions": 4,
        "earlier_attempts": [
            {
                "number": 1,
                "run": 0,
                "status": "failure",
                "reason": "ValueError: a",
                "exit_code": 1,
                "log_key": "logs/a",
            },
            {"number": 2, "run": 0, "status": "failure", "reason": "worker lost", "worker_id": "w-9"},
            {
                "number": 1,
                "run": 1,
                "status": "timeout",
                "reason": "timeout after 20 s",
                "runtime": 20.0,
                "statistics": {"samples": 1, "cpu_mean_percent": 10.0},
            },
            {"number": 2, "run": 1, "status": "failure", "reason": "out of memory (OOM killed)"},
        ],
        "attempts": [
            {
                "number": 1,
                "started": "2026-11-26T11:10:00Z",
                "ended": "2026-11-26T11:10:01Z",
                "status": "failure",
                "exit_code": 1,
                "reason": "RuntimeError: no\nTraceback ...",
                "log_bytes": 40,
            },
            {
                "number": 2,
                "started": "2026-11-26T11:11:00Z",
                "ended": "2026-11-26T11:11:02Z",
                "status": "failure",
                "exit_code": 1,
                "reason": "RuntimeError: no",
                "live_log_parts": 2,
            },
        ],
        "error_reason": "RuntimeError: no",
        "exit_code": 1,
        "runtime": 2.0,
        "lost_reason": "heartbeat stopped",
        "last_execution_date": "2026-11-26T11:11:00Z",
        "last_completion_date": "2026-11-26T11:11:02Z",
    },
    "pending_backoff": {
        **BASE,
        "status": "pending",
        "payload": '{"args":[1],"kwargs":{}}',
        "tags": ["b"],
        "run": 0,
        "execution_count": 1,
        "retry_at": "2026-11-26T12:00:42Z",
        "claim_msg": "m-2",
        "attempts": [{"number": 1, "status": "failure", "reason": "RuntimeError: no", "exit_code": 1}],
        "error_reason": "RuntimeError: no",
        "last_execution_date": "2026-11-26T11:59:50Z",
    },
    "pending_backoff_past": {
        **BASE,
        "status": "pending",
        "payload": '{"args":[1],"kwargs":{}}',
        "run": 1,
        "execution_count": 1,
        "retry_at": "2026-11-26T11:59:00Z",
        "earlier_executions": 1,
        "earlier_attempts": [{"number": 1, "run": 0, "status": "failure", "reason": "x"}],
        "attempts": [{"number": 1, "status": "failure", "reason": "y"}],
    },
    "args_in_s3": {
        **BASE,
        "status": "pending",
        "args_key": "args/f0a1/0190abc1234def000",
        "tags": ["big"],
        "run": 0,
        "execution_count": 0,
        "environment": {"K": "v"},
    },
    "args_in_s3_read": {
        **BASE,
        "status": "running",
        "args_key": "args/f0a1/0190abc1234def000",
        "payload": '{"args": [[0.5, 1.5]], "kwargs": {"big": "' + "y" * 300 + '"}}',
        "run": 0,
        "execution_count": 1,
        "claim_token": "tok",
        "attempts": [
            {"number": 1, "started": "2026-11-26T11:59:00Z", "worker_id": "w-2", "live_log_parts": 1}
        ],
        "last_execution_date": "2026-11-26T11:59:00Z",
    },
    "pending_with_reason": {
        **BASE,
        "status": "pending",
        "payload": '{"args":[],"kwargs":{}}',
        "run": 0,
        "execution_count": 0,
        "status_reason": "requeued by the operator",
    },
    "canceled_minimal": {
        "function_id": "f0a1",
        "job_key": "0190abc1234def001",
        "status": "canceled",
        "creation_date": "2026-11-26T10:00:00Z",
    },
    "with_extra_attributes": {
        **BASE,
        "status": "cancel",
        "payload": '{"args":[1],"kwargs":{}}',
        "run": 0,
        "execution_count": 1,
        "expires_at": 1790000000,
        "some_future_attribute": {"a": 1},
        "tags": ["z"],
        "attempts": [{"number": 1, "started": "2026-11-26T11:59:00Z"}],
        "claim_token": "t",
    },
    "timeout_empty_result": {
        **BASE,
        "status": "timeout",
        "payload": '{"args":[],"kwargs":{}}',
        "run": 0,
        "execution_count": 1,
        "attempts": [{"number": 1, "status": "timeout", "reason": "timeout: 20 s", "runtime": 20.0}],
        "error_reason": "timeout: 20 s",
        "runtime": 20.0,
        "result": b"",
        "result_size": 0,
    },
}
# (job, function, now?, with_result, workers)
VARIANTS = [
    ("plain", None, False, False, None),
    ("with_result", None, False, True, None),
    ("ready_now", "ready", True, True, None),
    ("ready_busy", "ready", True, False, {"RUNNING": 4}),
    ("ready_starting", "ready", True, False, {"RUNNABLE": 2, "STARTING": 1, "RUNNING": 1}),
    ("building", "building", True, False, None),
    ("stopped", "stopped", True, False, None),
    ("awaiting", "awaiting", True, False, None),
    ("build_failed", "build_failed", True, False, None),
    ("bare", "bare", True, False, {}),
    ("now_without_function", None, True, False, None),
]


def _cases() -> list[tuple[str, str]]:
    return [(job, variant) for job, case in sorted(EXPECTED.items()) for variant in sorted(case["wire"])]


def test_every_case_has_its_expected_answer():
    assert set(EXPECTED) == set(JOBS)
    assert {v[0] for v in VARIANTS} >= {v for case in EXPECTED.values() for v in case["wire"]}


@pytest.mark.parametrize(("job", "variant"), _cases())
def test_wire_form_is_unchanged(job: str, variant: str):
    _, function, with_now, with_result, workers = next(v for v in VARIANTS if v[0] == variant)
    wire = job_wire.to_wire(
        JobRecord.from_item(JOBS[job]),
        function=FunctionRecord.from_item(FUNCTIONS[function]) if function else None,
        now=NOW if with_now else None,
        with_result=with_result,
        workers=workers,
    )
    assert wire.model_dump_json() == EXPECTED[job]["wire"][variant]


@pytest.mark.parametrize("job", sorted(JOBS))
def test_helpers_are_unchanged(job: str):
    record, expected = JobRecord.from_item(JOBS[job]), EXPECTED[job]
    assert job_wire.job_id(record) == expected["job_id"]
    assert job_wire.message_body(record) == expected["message_body"]
    assert job_wire.executions(record) == expected["executions"]
    assert _json(job_wire.all_attempts(record)) == expected["all_attempts"]
    sizes = [job_wire.wire_bytes(record, with_result=False), job_wire.wire_bytes(record, with_result=True)]
    assert sizes == expected["wire_bytes"]


def test_the_wire_keeps_the_service_s_own_attributes_inside():
    """What the exclusion list kept out stays out: no payload, owner, key, claim, backoff timer,
    storage keys, earlier runs by name, nor attributes the record does not name."""
    text = job_wire.to_wire(JobRecord.from_item(JOBS["with_extra_attributes"])).model_dump_json()
    text += job_wire.to_wire(JobRecord.from_item(JOBS["failed_reruns"]), with_result=True).model_dump_json()
    text += job_wire.to_wire(JobRecord.from_item(JOBS["result_in_s3"]), now=NOW).model_dump_json()
    for private in (
        "payload",
        "owner",
        "job_key",
        "claim_msg",
        "claim_token",
        "retry_at",
        "result_key",
        "result_meta",
        "args_key",
        "earlier_attempts",
        "earlier_executions",
        "lost_reason",
        "expires_at",
        "some_future_attribute",
        "log_key",
        "statistics_key",
        "live_log_parts",
    ):
        assert f'"{private}"' not in text, private


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))
