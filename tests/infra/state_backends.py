"""The three backends of the state ports that the contract tests run alike: DynamoDB + SQS (moto),
SQLite (local mode) and the benchmarks' in-memory fakes (``benchmarks/fakes``), and the records
the tests store in them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from geobatch_core.adapters import provision
from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore
from geobatch_core.adapters.sqlite import open_state
from geobatch_core.adapters.sqs import SqsQueue
from geobatch_core.records import FunctionRecord, JobRecord

BACKENDS = ["aws", "sqlite", "fakes"]


@contextmanager
def backend(name: str, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    """(FunctionStore, JobStore, Queue) of the backend ``name`` (one of ``BACKENDS``)."""
    if name == "sqlite":
        yield open_state(tmp_path / "state.sqlite")
        return
    if name == "fakes":  # the benchmarks' in-memory stores must behave as these do too
        from benchmarks.fakes import FakeFunctionStore, FakeJobStore, FakeQueue

        yield FakeFunctionStore(), FakeJobStore(), FakeQueue()
        return
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        dynamodb = session.client("dynamodb")
        provision.create_tables(dynamodb, "functions", "jobs")
        yield (
            DynamoFunctionStore(dynamodb, "functions"),
            DynamoJobStore(dynamodb, "jobs"),
            SqsQueue(session.client("sqs")),
        )


def function(fid: str, owner: str = "alice", created: str = "2026-01-01T00:00:00Z") -> FunctionRecord:
    return FunctionRecord(id=fid, owner=owner, creation_date=created, status="building", cpus=1.0)


def job(key: str, fid: str = "fn-1", **attributes: Any) -> JobRecord:
    return JobRecord(function_id=fid, job_key=key, status="pending", execution_count=0, **attributes)
