"""Typed records: the one mapping between the stores' items and ``FunctionRecord`` / ``JobRecord``.

Read back from moto after the real services and worker wrote them (a Function built and run, jobs
that succeeded, failed and were retried), every item maps to a record and back unchanged, and
every attribute the services write is one the record names; so does every attempt entry each of
its writers produces (``AttemptRecord``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest

from geobatch.wire import limits
from geobatch.wire.models import Function, JobBulkCreate, JobStatus
from geobatch_core.adapters.dynamodb_items import deserialize, serialize
from geobatch_core.ports import Message
from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord, function_wire
from geobatch_core.services import execution, jobs, live_logs
from geobatch_core.services.dead_letters import drain_dead_letters
from geobatch_core.services.decisions import Claimed, Outcome
from geobatch_core.services.outcome import record_outcome
from tests.core.helpers import ALICE, ready_function
from tests.core.test_worker import SOURCE, worker


@pytest.mark.moto
def test_records_map_what_the_services_and_the_worker_write(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", retry_count=1, timeout=20)
    bulk = JobBulkCreate(function_id=function.id, bulk_args=[["a"], ["boom"], ["big"]], reference_id="r")
    submitted = jobs.submit_jobs(svc, ALICE, bulk).data
    worker(svc, function).run()
    record = svc.functions.get(function.id)
    assert isinstance(record, FunctionRecord)
    item = _stored(svc, "functions", {"id": function.id})
    assert record.to_item() == item and FunctionRecord.from_item(item).to_item() == item
    assert dict(record.extra) == {}, "a Function attribute the record does not name"
    assert record.status == "ready" and record.attempts_allowed == 2 and record.queue_url == item["queue_url"]
    assert function_wire(record, {"success": 2}) == Function.model_validate(
        {**item, "job_statistics": {"success": 2}}
    )
    for job in submitted:
        function_id, _, key = job.id.rpartition("-")
        job_record = svc.jobs.get(function_id, key, consistent=True)
        assert isinstance(job_record, JobRecord) and job_record.id == job.id
        stored = _stored(svc, "jobs", {"function_id": function_id, "job_key": key})
        assert job_record.to_item() == stored and JobRecord.from_item(stored).to_item() == stored
        assert dict(job_record.extra) == {}, f"job attributes the record does not name: {job_record.extra}"
        assert all(dict(a.extra) == {} for a in job_record.attempts or ()), job_record.attempts
    a, boom, big = (svc.jobs.get(function.id, j.id.rpartition("-")[2], consistent=True) for j in submitted)
    assert a.status == "success" and a.result is not None and json.loads(a.result)["x"] == "a"
    assert (
        boom.execution_count == 2
        and boom.error_reason == "KeyError: 'boom'"
        and len(boom.attempts or []) == 2
    )
    assert big.result is None and (big.result_key or "").startswith("results/")


def _stored(svc: Any, table: str, key: dict[str, str]) -> dict[str, Any]:
    """The item as DynamoDB (moto) holds it, read past the store adapters (the tables of
    ``environment.provisioned_stores``)."""
    client = boto3.session.Session(region_name="us-east-1").client("dynamodb")
    return deserialize(client.get_item(TableName=table, Key=serialize(key), ConsistentRead=True)["Item"])


@pytest.mark.unit
def test_a_record_keeps_absent_attributes_absent_and_unknown_ones_as_they_are():
    item = {"id": "fn-1", "status": "building", "job_definition_revision": 3}
    record = FunctionRecord.from_item(item)
    assert record.to_item() == item  # no defaults filled in
    assert record.cpus is None and record.extra == {"job_definition_revision": 3}
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "ready"  # type: ignore[misc]
    with pytest.raises(KeyError, match="job_key"):
        JobRecord.from_item({"function_id": "fn-1", "status": "pending"})


SUMMARY = {"samples": 1, "interval_seconds": 5.0, "cpu_peak_percent": 90.0, "cpu_mean_percent": 50.5}
SUMMARY |= {"memory_peak_mb": 61.5, "net_rx_bytes": 100, "net_tx_bytes": 10}


class _Writes:
    """Every attempt entry the services write, checked against the job item read back past the
    store adapters right after its write (what moto holds is what was written)."""

    def __init__(self, svc: Any):
        self.svc, self.entries = svc, []
        self._transition = svc.jobs.transition

    def __call__(self, function_id: str, job_key: str, **write: Any) -> JobRecord | None:
        new = self._transition(function_id, job_key, **write)
        if new is None:
            return None
        stored = _stored(self.svc, "jobs", {"function_id": function_id, "job_key": job_key})
        appended, replaced = write.get("append_attempt"), write.get("replace_last_attempt")
        if appended is not None:
            assert stored["attempts"][-1] == appended.to_item()
        if replaced is not None:
            assert stored["attempts"][replaced.index] == replaced.to_item()
        earlier = write["changes"].get("earlier_attempts")
        if earlier is not None:
            assert stored["earlier_attempts"] == earlier
        self.entries += [e.to_item() for e in (appended, replaced) if e is not None] + (earlier or [])
        for entry in [*stored.get("attempts", []), *stored.get("earlier_attempts", [])]:
            record = AttemptRecord.from_item(entry)
            assert record.to_item() == entry and dict(record.extra) == {}, entry
        assert JobRecord.from_item(stored).to_item() == stored == new.to_item()
        return new


@pytest.mark.moto
def test_every_attempt_entry_the_writers_produce_round_trips(moto_services, monkeypatch):
    """Success (inline log, statistics summary), failure with retry, a big log and series in blobs,
    timeout, live-log parts, a worker lost to a later receive and to the dead letters, a rerun:
    every entry written maps to an ``AttemptRecord`` and back unchanged, in moto as written, and
    between them they hold every attribute the record names."""
    svc = moto_services
    writes = _Writes(svc)
    monkeypatch.setattr(svc.jobs, "transition", writes)
    function = ready_function(svc, build=False, retry_count=1, timeout=20)
    names = ["ok", "fail", "big", "slow", "live", "lost", "dead"]
    bulk = JobBulkCreate(function_id=function.id, bulk_args=[[n] for n in names], reference_id="r")
    submitted = jobs.submit_jobs(svc, ALICE, bulk).data
    keys = {n: j.id.rpartition("-")[2] for n, j in zip(names, submitted, strict=True)}

    def run(name: str, receive: int, outcome: Outcome | None, message_id: str = "", worker: str = "w-1"):
        message = Message(message_id or f"m-{name}", f"r-{name}-{receive}", "", receive)
        claimed = execution.claim(svc.jobs, svc.settings, function, keys[name], message, worker)
        assert isinstance(claimed, Claimed), claimed
        token = execution.claim_token(message)
        if outcome is not None:
            job = svc.jobs.get(function.id, keys[name], consistent=True)
            record_outcome(svc.jobs, svc.blobs, svc.settings, function, job, claimed.attempt, token, outcome)
        return claimed, token

    log = "2026-01-01T00:00:00Z\thello\n"
    ok = Outcome(JobStatus.SUCCESS, 0, None, 1.25, b"1", {}, log, 40.5, 1.1, SUMMARY)
    run("ok", 1, ok)
    failed = Outcome(JobStatus.FAILURE, 1, "KeyError: 'x'", 0.5, log=log)
    run("fail", 1, failed)
    run("fail", 2, failed)
    rerun = jobs.rerun_item(svc, svc.jobs.get(function.id, keys["fail"], consistent=True), function)
    assert rerun.earlier_attempts is not None and len(rerun.earlier_attempts) == 2
    run("fail", 1, ok, message_id="m-fail-rerun")
    big_log = "x" * (limits.INLINE_LOG_BYTES + 1)
    run("big", 1, dataclasses.replace(ok, log=big_log, statistics={**SUMMARY, "samples": 3}))
    run("slow", 1, Outcome(JobStatus.TIMEOUT, None, "timeout: 20 s", 20.0))
    claimed, token = run("live", 1, None)
    for part in range(2):
        assert live_logs.ship_part(svc.jobs, svc.blobs, claimed.job, claimed.attempt, token, part, b"x\n")
    record_outcome(svc.jobs, svc.blobs, svc.settings, function, claimed.job, claimed.attempt, token, ok)
    run("lost", 1, None)
    run("lost", 2, ok, worker="w-2")  # a later receive of the same message: the first worker is lost
    run("dead", 1, None)
    svc.queue.send_batch(function.dlq_url or "", [json.dumps({"j": keys["dead"]})])
    assert drain_dead_letters(svc, function) == 1

    named = {f.name for f in dataclasses.fields(AttemptRecord)} - {"extra"}
    assert set().union(*writes.entries) == named
    for key in keys.values():
        stored = _stored(svc, "jobs", {"function_id": function.id, "job_key": key})
        assert svc.jobs.get(function.id, key, consistent=True).to_item() == stored


@pytest.mark.unit
def test_attempt_entries_are_records_and_map_back_to_the_stored_lists():
    entry = {"number": 2, "log": None, "future_key": 7}  # a None stays None, an absent key absent
    item = {"function_id": "fn-1", "job_key": "k", "status": "failure", "attempts": [entry]}
    item["earlier_attempts"] = []
    record = JobRecord.from_item(item)
    (attempt,) = record.attempts or ()
    assert record.earlier_attempts == () and attempt.number == 2 and attempt.log is None
    assert attempt.extra == {"log": None, "future_key": 7} and attempt.index == 1
    assert record.to_item() == item and isinstance(record.to_item()["attempts"][0], dict)
    assert dataclasses.replace(attempt, log="x").to_item() == {"number": 2, "log": "x", "future_key": 7}
    with pytest.raises(ValueError, match="number"):
        _ = AttemptRecord(status="running").index
