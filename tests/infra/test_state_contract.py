"""The state ports' contract, run against both backends: DynamoDB + SQS (moto) and SQLite (local mode).

Local mode keeps its Functions, Jobs and queues in SQLite; every behaviour the services rely on
(conditional writes, paging, receipts, visibility, dead letters) must be the same as on AWS, so
each test here runs once per backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.adapters import provision
from geobatch_core.adapters.sqlite import open_state
from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord
from geobatch_core.store import ABSENT, Increment
from tests.infra.state_backends import BACKENDS, backend, function, job

pytestmark = pytest.mark.moto


@pytest.fixture(params=BACKENDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    with backend(request.param, tmp_path) as stores:
        yield stores


# ------------------------------------------------------------------------------ Functions


def test_function_create_is_once_and_reads_back_as_dynamodb_would(state):
    functions, _, _ = state
    # Attributes the record does not name ride along in its extra ones, and read back as DynamoDB
    # keeps them: a None value is no attribute, in a map too.
    unnamed = {"note": None, "args": [1, 2.5], "nested": {"a": None}}
    functions.put_new(FunctionRecord.from_item({**function("fn-1").to_item(), **unnamed}))
    with pytest.raises(errors.ConflictError):
        functions.put_new(function("fn-1"))
    read = functions.get("fn-1")
    assert isinstance(read, FunctionRecord) and read == function("fn-1")
    assert dict(read.extra) == {"args": [1, 2.5], "nested": {}}
    assert read.to_item() == {**function("fn-1").to_item(), "cpus": 1, "args": [1, 2.5], "nested": {}}
    with pytest.raises(errors.NotFoundError):
        functions.get("fn-2")


def test_function_update_is_conditional(state):
    functions, _, _ = state
    functions.put_new(dataclasses.replace(function("fn-1"), active=True))
    new = functions.update("fn-1", {"status": "ready", "active": None}, expect={"status": ["building", "x"]})
    assert new.status == "ready" and new.active is None and "active" not in new.to_item()
    with pytest.raises(errors.ConflictError):
        functions.update("fn-1", {"status": "stopped"}, expect={"status": "building"})
    with pytest.raises(errors.ConflictError):
        functions.update("fn-1", {"active": None}, expect={"active": True})
    assert functions.update("fn-1", {"n": Increment(2)}).extra["n"] == 2
    with pytest.raises(errors.NotFoundError):
        functions.update("fn-9", {"status": "ready"})
    functions.delete("fn-1")
    with pytest.raises(errors.NotFoundError):
        functions.get("fn-1")


def test_functions_of_an_owner_page_newest_first(state):
    functions, _, _ = state
    for i in range(5):
        functions.put_new(function(f"fn-{i}", created=f"2026-01-0{i + 1}T00:00:00Z"))
    functions.put_new(function("fn-bob", owner="bob"))
    seen, start = [], None
    while True:
        items, start = functions.list_by_owner("alice", start=start, limit=2)
        seen += [i.id for i in items]
        if start is None:
            break
    assert seen == ["fn-4", "fn-3", "fn-2", "fn-1", "fn-0"]
    everyone, start = [], None
    while True:
        items, start = functions.list_by_owner(None, start=start, limit=4)
        everyone += [i.id for i in items]
        if start is None:
            break
    assert sorted(everyone) == sorted([*seen, "fn-bob"])


# ------------------------------------------------------------------------------ Jobs


def test_a_resent_submission_reference_keeps_its_first_time(state):
    _, jobs, _ = state
    assert jobs.reserve_reference("fn-1", "ref-a", 1000) == (1000, True)
    assert jobs.reserve_reference("fn-1", "ref-a", 2000) == (1000, False)
    items, _ = jobs.query("fn-1", start=None, limit=10, newest_first=False)
    assert items == []  # references never list as jobs


def test_a_reference_past_its_time_to_live_counts_as_gone(state):
    """DynamoDB expires references through TTL; every backend treats an expired one as absent."""
    _, jobs, _ = state
    ttl_ms = layout.REFERENCE_TTL_SECONDS * 1000
    assert jobs.reserve_reference("fn-1", "ref-a", 1000, "fp") == (1000, True)
    assert jobs.reserve_reference("fn-1", "ref-a", 1000 + ttl_ms, "fp") == (1000, False)  # still alive
    later = 1000 + ttl_ms + 2000
    assert jobs.reserve_reference("fn-1", "ref-a", later, "other") == (later, True)


def test_an_idempotency_record_past_its_time_to_live_counts_as_gone(state):
    _, jobs, _ = state
    if not hasattr(jobs, "claim_request"):
        pytest.skip("the benchmarks' in-memory JobStore keeps no idempotency records")
    assert jobs.claim_request("alice", "k1", "fp", now_s=100, lease_s=30, ttl_s=600) is None
    jobs.complete_request("alice", "k1", "fp", {"response": "first"})
    held = jobs.claim_request("alice", "k1", "fp2", now_s=650, lease_s=30, ttl_s=600)
    assert held is not None and held["state"] == "done" and held["response"] == "first"
    # Past its TTL the key is free again, for any request (as after DynamoDB's TTL deleted it).
    assert jobs.claim_request("alice", "k1", "fp2", now_s=701, lease_s=30, ttl_s=600) is None
    assert jobs.claim_request("alice", "k1", "fp2", now_s=702, lease_s=30, ttl_s=600)["state"] == "pending"


def test_sqlite_purges_expired_records_and_nothing_else(tmp_path):
    _, jobs, _ = open_state(tmp_path / "state.sqlite")
    jobs.put_new_batch([job("a0")])
    jobs.reserve_reference("fn-1", "ref-a", 1000)
    assert jobs.claim_request("alice", "old", "fp", now_s=100, lease_s=30, ttl_s=600) is None
    assert jobs.claim_request("alice", "new", "fp", now_s=900, lease_s=30, ttl_s=600) is None
    assert jobs.purge_expired(now_s=800) == 1  # only "old"
    assert jobs.claim_request("alice", "new", "fp2", now_s=901, lease_s=30, ttl_s=600) is not None
    assert jobs.purge_expired(now_s=1 + layout.REFERENCE_TTL_SECONDS + 1000) == 2  # "new", "ref-a"
    assert jobs.get("fn-1", "a0").status == "pending"  # jobs carry no TTL: never purged


def test_put_new_batch_never_creates_a_job_twice(state):
    _, jobs, _ = state
    assert jobs.put_new_batch([job("a0"), job("a1")], check_existing=False) == ["a0", "a1"]
    jobs.transition("fn-1", "a0", changes={"status": "running"}, expect={"status": "pending"})
    assert jobs.put_new_batch([job("a0"), job("a2")]) == ["a2"]
    assert jobs.get("fn-1", "a0").status == "running"


def test_transition_is_a_compare_and_set(state):
    _, jobs, _ = state
    jobs.put_new_batch([JobRecord.from_item({**job("a0").to_item(), "lease": 5})])  # lease: not named
    claim = {"status": "running", "execution_count": Increment(1)}
    first = jobs.transition(
        "fn-1",
        "a0",
        changes=claim,
        expect={"status": "pending", "claim_msg": [ABSENT, "m-1"]},
        append_attempt=AttemptRecord(number=1, status="running"),
    )
    assert (
        first is not None
        and first.execution_count == 1
        and first.attempts == (AttemptRecord(number=1, status="running"),)
        and first.extra == {"lease": 5}
    )
    assert jobs.transition("fn-1", "a0", changes=claim, expect={"status": "pending"}) is None
    assert jobs.transition("fn-1", "zz", changes=claim, expect={"status": "pending"}) is None
    done = jobs.transition(
        "fn-1",
        "a0",
        changes={"status": "success"},
        expect={"status": "running", "execution_count": 1},
        replace_last_attempt=AttemptRecord(number=1, status="success", ended="t"),
    )
    assert done is not None and done.status == "success" and dict(done.extra) == {"lease": 5}
    assert done.attempts == (AttemptRecord(number=1, status="success", ended="t"),)
    assert jobs.get("fn-1", "a0", consistent=True).to_item() == done.to_item()


def test_a_job_write_names_only_the_record_s_attributes(state):
    """A misspelt attribute in a job write fails before anything is written, on every store."""
    _, jobs, _ = state
    jobs.put_new_batch([job("a0")])
    with pytest.raises(ValueError, match="changes statuss, which JobRecord does not name"):
        jobs.transition("fn-1", "a0", changes={"statuss": "running"}, expect={"status": "pending"})
    with pytest.raises(ValueError, match="expects claim_message"):
        jobs.transition("fn-1", "a0", changes={"status": "running"}, expect={"claim_message": ABSENT})
    assert jobs.get("fn-1", "a0", consistent=True).to_item() == job("a0").to_item()


def test_job_pages_in_key_order_with_projection(state):
    _, jobs, _ = state
    jobs.put_new_batch([job(f"a{i}", payload="x") for i in range(7)] + [job("b0", fid="fn-2")])
    jobs.reserve_reference("fn-1", "r", 1)
    for newest_first, expected in (
        (False, [f"a{i}" for i in range(7)]),
        (True, [f"a{i}" for i in range(6, -1, -1)]),
    ):
        seen, start = [], None
        while True:
            items, start = jobs.query(
                "fn-1", start=start, limit=3, newest_first=newest_first, projection=["job_key", "status"]
            )
            # The key attributes come along: a projected row is still a job's record.
            assert all(set(i.to_item()) == {"function_id", "job_key", "status"} for i in items)
            assert all(i.payload is None and i.function_id == "fn-1" for i in items)
            seen += [i.job_key for i in items]
            if start is None:
                break
        assert seen == expected
    jobs.delete_batch([("fn-1", f"a{i}") for i in range(7)])
    assert jobs.query("fn-1", start=None, limit=10, newest_first=False)[0] == []
    assert jobs.get("fn-2", "b0").status == "pending"


def test_job_indexes_page_in_sort_order_and_hold_only_jobs_with_the_field(state):
    _, jobs, _ = state
    finished = [
        job(f"a{i}", owner="alice", creation_date=f"2026-01-0{i + 1}T00:00:00Z", runtime=[3.5, 1, 7, 2][i])
        for i in range(4)
    ]
    others = [
        job("b0", fid="fn-2", owner="alice", creation_date="2026-01-02T12:00:00Z"),  # no runtime yet
        job("c0", fid="fn-3", owner="bob", creation_date="2026-01-01T12:00:00Z", runtime=5),
    ]
    jobs.put_new_batch(finished + others)
    jobs.reserve_reference("fn-1", "r", 1)  # no owner: in no index

    def read(sort: str, partition: str, descending: bool) -> list[str]:
        seen, start = [], None
        while True:
            items, start = jobs.query_index(sort, partition, start=start, limit=2, descending=descending)
            seen += [i.job_key for i in items]
            if start is None:
                return seen

    assert read("creation_date", "alice", False) == ["a0", "a1", "b0", "a2", "a3"]  # across Functions
    assert read("creation_date", "alice", True) == ["a3", "a2", "b0", "a1", "a0"]
    assert read("runtime", "fn-1", False) == ["a1", "a3", "a0", "a2"]
    assert read("runtime", "fn-1", True) == ["a2", "a0", "a3", "a1"]
    assert read("runtime", "fn-2", False) == []  # sparse: a job without a runtime is not there
    jobs.transition("fn-1", "a2", changes={"runtime": None}, expect={})  # a rerun clears it
    assert read("runtime", "fn-1", True) == ["a0", "a3", "a1"]


# ------------------------------------------------------------------------------ Queues


def test_receive_hides_a_message_and_only_its_latest_receipt_acts(state):
    _, _, queue = state
    url, _ = queue.create("q1", max_receive_count=5, visibility_seconds=30)
    queue.send_batch(url, [f"body-{i}" for i in range(12)])
    assert queue.depth(url) == (12, 0)
    first = queue.receive(url, max_messages=10, wait_seconds=0, visibility_seconds=30)
    second = queue.receive(url, max_messages=10, wait_seconds=0, visibility_seconds=30)
    assert len(first) == 10 and len(second) == 2
    assert queue.receive(url, max_messages=10, wait_seconds=0, visibility_seconds=30) == []
    assert queue.depth(url) == (0, 12)
    queue.change_visibility_batch(url, [(first[0].receipt, 0)])
    (again,) = queue.receive(url, max_messages=10, wait_seconds=0, visibility_seconds=30)
    assert again.message_id == first[0].message_id and again.body == first[0].body
    assert again.receive_count == 2 and again.receipt != first[0].receipt
    queue.delete_batch(url, [m.receipt for m in first[1:]] + [m.receipt for m in second])
    assert queue.depth(url) == (0, 1)
    queue.delete_batch(url, [again.receipt])
    assert queue.depth(url) == (0, 0)


def test_a_message_received_too_often_moves_to_the_dead_letter_queue_with_its_id(state):
    _, _, queue = state
    url, dlq = queue.create("q2", max_receive_count=2, visibility_seconds=30)
    queue.send_batch(url, ["poison"])
    ids = set()
    for _ in range(2):
        (message,) = queue.receive(url, max_messages=1, wait_seconds=0, visibility_seconds=30)
        ids.add(message.message_id)
        queue.change_visibility_batch(url, [(message.receipt, 0)])
    assert queue.receive(url, max_messages=1, wait_seconds=0, visibility_seconds=30) == []
    (dead,) = queue.receive(dlq, max_messages=10, wait_seconds=0, visibility_seconds=30)
    assert dead.body == "poison" and {dead.message_id} == ids and dead.receive_count == 3
    queue.delete_batch(dlq, [dead.receipt])
    assert queue.depth(dlq) == (0, 0) and queue.depth(url) == (0, 0)


def test_delayed_messages_are_neither_visible_nor_in_flight(state):
    _, _, queue = state
    url, _ = queue.create("q3", max_receive_count=5, visibility_seconds=30)
    queue.send_batch(url, ["later"], delay_seconds=60)
    assert queue.depth(url) == (0, 0)
    assert queue.receive(url, max_messages=10, wait_seconds=0, visibility_seconds=30) == []


def test_a_deleted_queue_is_not_found(state):
    _, _, queue = state
    url, dlq = queue.create("q4", max_receive_count=5, visibility_seconds=30)
    assert queue.create("q4", max_receive_count=5, visibility_seconds=30) == (url, dlq)
    queue.send_batch(url, ["x"])
    queue.delete(url)
    queue.delete(url)  # deleting twice is fine
    with pytest.raises(errors.NotFoundError):
        queue.receive(url, max_messages=1, wait_seconds=0, visibility_seconds=30)
    with pytest.raises(errors.NotFoundError):
        queue.send_batch(url, ["y"])
    with pytest.raises(errors.NotFoundError):
        queue.depth(url)


# ------------------------------------------------------------------------------ one schema


def test_both_backends_key_their_tables_as_the_schema_says(tmp_path: Path) -> None:
    """The deployed tables (the CDK), moto's and SQLite's all take their keys from geobatch_core.schema."""
    from geobatch_core import schema
    from geobatch_core.adapters.sqlite.db import Database

    db = Database(tmp_path / "state.sqlite")
    for table, spec in (("functions", schema.FUNCTIONS), ("jobs", schema.JOBS)):
        columns = db.read().execute(f"PRAGMA table_info({table})").fetchall()
        primary = [row[1] for row in sorted(columns, key=lambda r: r[5]) if row[5]]
        assert tuple(primary) == spec.key_attributes
    with mock_aws():
        dynamodb = boto3.session.Session(region_name="us-east-1").client("dynamodb")
        provision.create_tables(dynamodb, "functions", "jobs")
        jobs = dynamodb.describe_table(TableName="jobs")["Table"]
        assert [k["AttributeName"] for k in jobs["KeySchema"]] == list(schema.JOBS.key_attributes)
        functions = dynamodb.describe_table(TableName="functions")["Table"]
        index = functions["GlobalSecondaryIndexes"][0]
        assert index["IndexName"] == schema.FUNCTIONS.indexes[0].name
        assert [k["AttributeName"] for k in index["KeySchema"]] == ["owner", "creation_date"]
        ttl = dynamodb.describe_time_to_live(TableName="jobs")["TimeToLiveDescription"]
        assert ttl["AttributeName"] == schema.JOBS.ttl


def test_an_attempt_replaced_past_the_end_is_appended(state):
    """DynamoDB's SET on a list index past the end appends (moto and SQLite do the same): a loss
    recorded for an attempt the list does not hold yet is kept, after the attempts it holds."""
    _, jobs, _ = state
    jobs.put_new_batch([job("a0", attempts=(AttemptRecord(number=1, status="failure"),))])
    lost = jobs.transition(
        "fn-1",
        "a0",
        changes={"status": "failure"},
        expect={"status": "pending"},
        replace_last_attempt=AttemptRecord(number=3, status="failure", reason="worker lost"),
    )
    assert lost is not None and lost.status == "failure"
    assert [a.to_item() for a in lost.attempts or ()] == [
        {"number": 1, "status": "failure"},
        {"number": 3, "status": "failure", "reason": "worker lost"},
    ]
    assert jobs.get("fn-1", "a0", consistent=True).attempts == lost.attempts
