"""The per-status job counts, run against both backends: DynamoDB transactions (moto) and SQLite
triggers (local mode). Every job write moves the counts in the same atomic write, so after any
sequence of writes, duplicates and failed conditions the counts equal the jobs' statuses."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.adapters import provision
from geobatch_core.adapters.dynamodb import DynamoJobStore
from geobatch_core.adapters.sqlite import open_state
from geobatch_core.records import JobRecord
from geobatch_core.store import ABSENT
from tests.infra.state_backends import BACKENDS, backend

pytestmark = pytest.mark.moto
FID = "fn-1"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The JobStore of DynamoDB (moto), SQLite and the benchmarks' fakes (which keep counter
    items as the DynamoDB adapter does, for the benchmarks that size them)."""
    with backend(request.param, tmp_path) as (_, jobs, _):
        yield jobs


def job(key: str, status: str = "pending", fid: str = FID) -> JobRecord:
    return JobRecord(function_id=fid, job_key=key, status=status, execution_count=0, tags=["t"])


def statuses(store: Any, fid: str = FID) -> dict[str, int]:
    """The recount: every job's status, read from the jobs themselves."""
    counted: Counter[str] = Counter()
    start = None
    while True:
        items, start = store.query(fid, start=start, limit=100, newest_first=False)
        counted.update(i.status for i in items)
        if start is None:
            return dict(counted)


def stored(store: Any, fid: str = FID) -> dict[str, int]:
    return {s: n for s, n in store.counts(fid).by_status.items() if n}


def test_counts_follow_creates_transitions_and_deletes(store):
    keys = [f"{i:04x}" for i in range(150)]  # more than one transaction's worth
    assert sorted(store.put_new_batch([job(k) for k in keys], check_existing=False)) == keys
    assert stored(store) == {"pending": 150}
    assert store.put_new_batch([job(k) for k in keys[:10]] + [job("ffff")]) == ["ffff"]  # a resend
    assert stored(store) == {"pending": 151}
    for k in keys[:20]:
        assert store.transition(FID, k, changes={"status": "running"}, expect={"status": "pending"})
    # A duplicate (a retried write whose answer was lost) fails its condition and counts nothing.
    assert store.transition(FID, keys[0], changes={"status": "running"}, expect={"status": "pending"}) is None
    # One of several statuses: the store reads which one it leaves.
    done = store.transition(
        FID, keys[1], changes={"status": "success"}, expect={"status": ["running", "cancel"]}
    )
    assert done is not None and done.status == "success" and done.tags == ["t"]
    assert (
        store.transition(FID, keys[2], changes={"status": "failure"}, expect={"status": ["cancel"]}) is None
    )
    assert store.transition(FID, keys[3], changes={"status": "canceled"}, expect={}) is not None
    assert store.transition(FID, "0fff", changes={"status": "running"}, expect={"status": "pending"}) is None
    # A write that leaves the status alone moves nothing.
    assert store.transition(FID, keys[4], changes={"tags": ["u"]}, expect={}).tags == ["u"]
    store.delete_batch([(FID, k) for k in keys[100:]] + [(FID, "0ffe")])  # 0ffe does not exist
    assert stored(store) == statuses(store) == {"pending": 81, "running": 18, "success": 1, "canceled": 1}


def test_a_status_absent_expectation_and_other_functions_are_kept_apart(store):
    store.put_new_batch([job("0001"), job("0002", fid="fn-2")], check_existing=False)
    store.transition(
        FID, "0001", changes={"status": "running"}, expect={"status": "pending", "claim_msg": ABSENT}
    )
    assert stored(store) == {"running": 1}
    assert stored(store, "fn-2") == {"pending": 1}
    assert stored(store, "fn-none") == {}


def test_a_correction_applies_only_to_the_counts_it_was_computed_against(store):
    store.put_new_batch([job("0001"), job("0002")], check_existing=False)
    seen = store.counts(FID)
    store.transition(FID, "0001", changes={"status": "running"}, expect={"status": "pending"})
    assert not store.correct_counts(FID, {"pending": 5}, version=seen.version)  # moved since
    now = store.counts(FID)
    assert store.correct_counts(FID, {"pending": 5, "success": -1}, version=now.version)
    assert stored(store) == {"pending": 6, "running": 1, "success": -1}
    assert store.counts(FID).version != now.version
    store.delete_counts(FID)
    assert stored(store) == {}


def test_references_and_idempotency_records_are_not_counted(store):
    store.reserve_reference(FID, "r1", 1000, "fp")
    if hasattr(store, "claim_request"):  # the benchmarks' fakes keep no idempotency records
        assert store.claim_request("alice", "0abc", "fp", now_s=1, lease_s=60, ttl_s=600) is None
        store.complete_request("alice", "0abc", "fp", {"status": 201})
    assert stored(store) == {} and stored(store, f"{layout.REQUEST_PARTITION_PREFIX}alice") == {}
    # The service's own rows (background operations, pacing) may carry a status too: not counted.
    row = {**job("0a01", "running", fid=layout.OPERATION_RECORDS).to_item(), "kind": "operation"}
    store.put_rows([row], check_existing=False)
    store.update_row(
        layout.OPERATION_RECORDS, "0a01", changes={"status": "done"}, expect={"status": "running"}
    )
    assert stored(store, layout.OPERATION_RECORDS) == {}
    store.delete_batch([(layout.OPERATION_RECORDS, "0a01")])
    assert stored(store, layout.OPERATION_RECORDS) == {}


def test_a_database_from_before_counts_is_counted_once_when_opened(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    jobs = open_state(path)[1]
    jobs.put_new_batch([job("0001"), job("0002", "success")], check_existing=False)
    with sqlite3.connect(path) as conn:  # what a database written by an older version looks like
        for name in ("jobs_counted_insert", "jobs_counted_update", "jobs_counted_delete"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE job_counts")
    again = open_state(path)[1]
    assert stored(again) == {"pending": 1, "success": 1}
    assert stored(open_state(path)[1]) == {"pending": 1, "success": 1}  # not twice


@mock_aws
def test_dynamodb_retries_a_transaction_that_conflicts_with_another_on_a_counter_item():
    dynamodb = boto3.session.Session(region_name="us-east-1").client("dynamodb")
    provision.create_tables(dynamodb, "functions", "jobs")
    conflicts = {"left": 2}

    class Conflicting:
        """DynamoDB as it answers while another transaction holds the same counter item."""

        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            if conflicts["left"]:
                conflicts["left"] -= 1
                reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}]
                raise ClientError(
                    {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},
                    "TransactWriteItems",
                )
            return dynamodb.transact_write_items(**kwargs)

    jobs = DynamoJobStore(Conflicting(), "jobs")
    jobs.put_new_batch([job("0001")], check_existing=False)
    assert conflicts["left"] == 0 and stored(jobs) == {"pending": 1}
    conflicts["left"] = 1000
    with pytest.raises(errors.ThrottledError):
        jobs.transition(FID, "0001", changes={"status": "running"}, expect={"status": "pending"})
    assert stored(jobs) == statuses(jobs) == {"pending": 1}


def test_one_of_several_statuses_with_another_expectation_failing_is_a_plain_failure(store):
    store.put_new_batch([job("0001")], check_existing=False)
    store.transition(
        FID, "0001", changes={"status": "running", "claim_token": "a"}, expect={"status": "pending"}
    )
    late = store.transition(
        FID,
        "0001",
        changes={"status": "failure"},
        expect={"status": ["running", "cancel"], "claim_token": "b"},
    )
    assert late is None and stored(store) == statuses(store) == {"running": 1}


def test_a_canceled_transaction_writes_nothing_and_the_retry_creates_the_rest(store):
    """One job of a first submission exists already (a concurrent resend): the transaction with it
    is canceled as a whole, then the others are written and counted, once."""
    store.put_new_batch([job("0005")], check_existing=False)
    created = store.put_new_batch([job(f"{i:04x}") for i in range(10)], check_existing=False)
    assert sorted(created) == [f"{i:04x}" for i in range(10) if i != 5]
    assert stored(store) == statuses(store) == {"pending": 10}
