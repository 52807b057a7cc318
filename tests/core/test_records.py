"""Typed records: the one mapping between the stores' items and ``FunctionRecord`` / ``JobRecord``.

Read back from moto after the real services and worker wrote them (a Function built and run, jobs
that succeeded, failed and were retried), every item maps to a record and back unchanged, and
every attribute the services write is one the record names.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest

from geobatch.wire.models import Function, JobBulkCreate
from geobatch_core.adapters.dynamodb_items import deserialize, serialize
from geobatch_core.records import FunctionRecord, JobRecord, function_wire
from geobatch_core.services import jobs
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
