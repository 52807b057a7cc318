"""The typed boundary of the state ports, run against DynamoDB (moto), SQLite and the benchmarks'
fakes alike: every typed method of ``FunctionStore`` and ``JobStore`` answers ``FunctionRecord``s
and ``JobRecord``s (nothing reaches the services as an item), while the ``JobRows`` methods keep
the Jobs table's other rows (operation records and markers, the pacing bucket) as the plain rows
they are: such a row has no job status, and no record could hold it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geobatch_core import layout
from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord
from geobatch_core.store import ABSENT, Increment
from tests.infra.state_backends import BACKENDS, backend, function, job

pytestmark = pytest.mark.moto


@pytest.fixture(params=BACKENDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    with backend(request.param, tmp_path) as stores:
        yield stores


def records_only(values: list[Any], kind: type) -> bool:
    """Every value is exactly a ``kind`` (not an item, nor a subclass standing in for one)."""
    return bool(values) and all(type(v) is kind for v in values)


def test_every_typed_function_method_answers_records(state):
    functions, _, _ = state
    written = dataclasses.replace(function("fn-1"), retry_count=2, environment={"A": "1"})
    assert functions.put_new(written) is None
    functions.put_new(function("fn-2", owner="bob"))
    read = functions.get("fn-1")
    assert records_only([read], FunctionRecord) and read.to_item() == written.to_item()
    changes = {"status": "ready", "retry_count": Increment(1)}
    updated = functions.update("fn-1", changes, expect={"status": "building"})
    assert records_only([updated], FunctionRecord)
    assert updated.status == "ready" and updated.attempts_allowed == 4 and updated.environment == {"A": "1"}
    mine, _ = functions.list_by_owner("alice", start=None, limit=10)
    everyone, _ = functions.list_by_owner(None, start=None, limit=10)
    assert records_only(mine, FunctionRecord) and [f.id for f in mine] == ["fn-1"]
    assert records_only(everyone, FunctionRecord) and sorted(f.id for f in everyone) == ["fn-1", "fn-2"]
    assert mine[0].to_item() == updated.to_item()


def test_every_typed_job_method_answers_records(state):
    _, jobs, _ = state
    written = [
        job("a0", owner="alice", creation_date="2026-01-01T00:00:00Z", tags=["t"], runtime=1.5),
        job("a1", owner="alice", creation_date="2026-01-02T00:00:00Z", payload='{"args":[1]}'),
    ]
    assert jobs.put_new_batch(written, check_existing=False) == ["a0", "a1"]
    read = jobs.get("fn-1", "a0", consistent=True)
    assert records_only([read], JobRecord) and read.to_item() == written[0].to_item()
    moved = jobs.transition(
        "fn-1",
        "a1",
        changes={"status": "running", "execution_count": Increment(1)},
        expect={"status": "pending", "claim_token": ABSENT},
        append_attempt=AttemptRecord(number=1, status="running"),
    )
    assert records_only([moved], JobRecord) and moved.id == "fn-1-a1"
    assert moved.execution_count == 1 and moved.attempts == (AttemptRecord(number=1, status="running"),)
    page, _ = jobs.query("fn-1", start=None, limit=10, newest_first=False, consistent=True)
    assert records_only(page, JobRecord) and [j.to_item() for j in page] == [read.to_item(), moved.to_item()]
    projected, _ = jobs.query("fn-1", start=None, limit=10, newest_first=True, projection=["status"])
    assert records_only(projected, JobRecord) and [(j.job_key, j.status) for j in projected] == [
        ("a1", "running"),
        ("a0", "pending"),
    ]
    by_owner, _ = jobs.query_index("creation_date", "alice", start=None, limit=10, descending=False)
    by_runtime, _ = jobs.query_index("runtime", "fn-1", start=None, limit=10, descending=False)
    assert records_only(by_owner, JobRecord) and [j.job_key for j in by_owner] == ["a0", "a1"]
    assert records_only(by_runtime, JobRecord) and [j.runtime for j in by_runtime] == [1.5]


def operation_record(key: str) -> dict[str, Any]:
    """A background operation's record as ``services.operations`` writes it (under a hex key, as
    jobs): no job status, and attributes no job has."""
    return {
        "function_id": layout.OPERATION_RECORDS,
        "job_key": key,
        "kind": "operation",
        "principal": "alice",
        "state": "queued",
        "scan": '{"fids":["fn-1"]}',
        "delete_results": False,
        "processed": 0,
    }


def test_job_rows_keep_the_other_rows_as_plain_rows(state):
    _, jobs, _ = state
    rows = [operation_record("0a01"), operation_record("0a02")]
    pacing = {"function_id": layout.PACING_PARTITION, "job_key": "bucket", "milli_tokens": 5000, "at_ms": 1}
    assert jobs.put_rows(rows, check_existing=False) == ["0a01", "0a02"]
    assert jobs.put_rows([pacing]) == ["bucket"] and jobs.put_rows([pacing]) == []
    got = jobs.get_row(layout.OPERATION_RECORDS, "0a01", consistent=True)
    assert type(got) is dict and got == rows[0]
    taken = jobs.update_row(
        layout.OPERATION_RECORDS,
        "0a01",
        changes={"lease": "t1", "processed": Increment(25)},
        expect={"lease": ABSENT, "state": "queued"},
    )
    assert type(taken) is dict and taken == {**rows[0], "lease": "t1", "processed": 25}
    page, _ = jobs.query_rows(layout.OPERATION_RECORDS, start=None, limit=10, newest_first=False)
    assert all(type(r) is dict for r in page) and page == [taken, rows[1]]
    projected, _ = jobs.query_rows(
        layout.OPERATION_RECORDS, start=None, limit=10, newest_first=False, projection=["state"]
    )
    assert [set(r) for r in projected] == [{"function_id", "job_key", "state"}] * 2
    bucket = jobs.get_row(layout.PACING_PARTITION, "bucket", consistent=True)
    assert type(bucket) is dict and bucket == pacing
    # Through the typed methods such a row is no job: the record it lacks the key of is named.
    with pytest.raises(KeyError, match="status"):
        jobs.get(layout.OPERATION_RECORDS, "0a01")


def test_job_rows_read_a_job_as_its_plain_item(state):
    """A job read row by row is its item, the one its record maps to: the rows are what the typed
    methods are made of (``store.TypedJobs``), and they add nothing and drop nothing."""
    _, jobs, _ = state
    written = job("a0", owner="alice", creation_date="2026-01-01T00:00:00Z", runtime=2.0)
    assert jobs.put_rows([written.to_item()]) == ["a0"]
    row = jobs.get_row("fn-1", "a0", consistent=True)
    assert type(row) is dict and row == written.to_item() == jobs.get("fn-1", "a0").to_item()
    page, _ = jobs.query_rows("fn-1", start=None, limit=10, newest_first=False)
    indexed, _ = jobs.query_index_rows("runtime", "fn-1", start=None, limit=10, descending=False)
    assert [type(r) for r in page + indexed] == [dict, dict] and page == indexed == [row]


def test_attempt_entries_come_back_as_the_records_written(state):
    """Every attribute an attempt entry names, and one it does not, through an append and a
    replace: the entries read back are the records written, in every store."""
    _, jobs, _ = state
    jobs.put_new_batch([job("a0")])
    started = AttemptRecord(started="t0", status="running", worker_id="w-1", extra={"future": [1]})
    claim = {"status": "running", "execution_count": Increment(1)}
    jobs.transition("fn-1", "a0", changes=claim, expect={"status": "pending"}, append_attempt=started)
    ended = dataclasses.replace(
        started,
        number=1,
        run=0,
        ended="t1",
        status="failure",
        exit_code=1,
        reason="boom",
        runtime=1.5,
        peak_memory_mb=40.5,
        cpu_seconds=1.25,
        log_bytes=3,
        log="x\n",
        log_key="logs/k",
        statistics={"samples": 2},
        statistics_key="s/k",
        live_log_parts=2,
    )
    done = jobs.transition(
        "fn-1", "a0", changes={"status": "failure"}, expect={"status": "running"}, replace_last_attempt=ended
    )
    assert done is not None and records_only(list(done.attempts or ()), AttemptRecord)
    assert [a.to_item() for a in done.attempts or ()] == [ended.to_item()]
    assert jobs.get("fn-1", "a0", consistent=True).attempts == (ended,)
    assert jobs.get_row("fn-1", "a0", consistent=True)["attempts"] == [ended.to_item()]
