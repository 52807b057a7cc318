"""Typed records: the one mapping between the stores' items and ``FunctionRecord`` / ``JobRecord``.

Read back from moto after the real services and worker wrote them (a Function built and run, jobs
that succeeded, failed and were retried), every item maps to a record and back unchanged, and
every attribute the services write is one the record names.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from geobatch.wire.models import Function
from geobatch_core.records import FunctionRecord, JobRecord, function_wire
from geobatch_core.services import functions
from tests.core.helpers import ready_function
from tests.core.test_worker import SOURCE, job_item, submit, worker


@pytest.mark.moto
def test_records_map_what_the_services_and_the_worker_write(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "work", retry_count=1, timeout=20)
    submitted = submit(svc, function, ["a", "boom", "big"])
    worker(svc, function).run()
    item = svc.functions.get(function["id"])
    record = FunctionRecord.from_item(item)
    assert record.to_item() == item
    assert dict(record.extra) == {}, "a Function attribute the record does not name"
    assert record.status == "ready" and record.attempts_allowed == 2 and record.queue_url == item["queue_url"]
    wire = functions.to_wire(item, {"success": 2})
    assert (
        function_wire(record, {"success": 2})
        == wire
        == Function.model_validate({**item, "job_statistics": {"success": 2}})
    )
    for job in submitted:
        stored = job_item(svc, job)
        job_record = JobRecord.from_item(stored)
        assert job_record.to_item() == stored
        assert dict(job_record.extra) == {}, f"job attributes the record does not name: {job_record.extra}"
        assert job_record.id == job.id
    a, boom, big = (JobRecord.from_item(job_item(svc, j)) for j in submitted)
    assert a.status == "success" and a.result is not None and json.loads(a.result)["x"] == "a"
    assert (
        boom.execution_count == 2
        and boom.error_reason == "KeyError: 'boom'"
        and len(boom.attempts or []) == 2
    )
    assert big.result is None and (big.result_key or "").startswith("results/")


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
