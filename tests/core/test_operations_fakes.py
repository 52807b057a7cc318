"""A bulk cancel of 100,000 jobs on the benchmarks' in-memory stores (checked against moto and
SQLite by tests/infra/test_state_contract.py): it runs in pages with progress, and jobs that
workers claim or finish while it runs still end in exactly one terminal state."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.fakes import FakeBlobStore, FakeFunctionStore, FakeJobStore, FakeQueue
from geobatch.wire.models import JobBulkCreate, JobQuery, JobStatus
from geobatch.wire.operations import Operation, OperationState
from geobatch_core.ports import Message
from geobatch_core.records import FunctionRecord
from geobatch_core.services import execution, operations
from geobatch_core.services.context import Services, Settings
from geobatch_core.services.functions import job_statistics
from geobatch_core.services.submission import submit_jobs
from tests.core.helpers import ALICE
from tests.support import compose_stores

pytestmark = pytest.mark.unit
N = 100_000
FID = "fn0123456789"


class RacingJobStore(FakeJobStore):
    """Before the operation cancels a job named in ``claim_first`` (or ``finish_first``), a worker
    claims it (and, for ``finish_first``, runs it to success) through the worker's state machine:
    the cancel's conditional write then meets a job that moved under it."""

    def __init__(self) -> None:
        super().__init__()
        self.claim_first: set[str] = set()
        self.finish_first: set[str] = set()
        self.tokens: dict[str, str] = {}
        self.function: FunctionRecord  # the Function as the store read it back (see services())

    def transition(self, function_id: str, job_key: str, **kwargs: Any) -> Any:
        canceling = kwargs["changes"].get("status") == JobStatus.CANCELED.value
        if canceling and (job_key in self.claim_first or job_key in self.finish_first):
            self._worker(job_key)
        return super().transition(function_id, job_key, **kwargs)

    def _worker(self, job_key: str) -> None:
        finish = job_key in self.finish_first
        self.claim_first.discard(job_key)
        self.finish_first.discard(job_key)
        message = Message(f"m-{job_key}", f"r-{job_key}", f'{{"j":"{job_key}","r":0}}', 1)
        claimed = execution.claim(self, Settings(), self.function, job_key, message, "w-1")
        assert isinstance(claimed, execution.Claimed)
        self.tokens[job_key] = execution.claim_token(message)
        if finish:
            outcome = execution.Outcome(status=JobStatus.SUCCESS, result=b"1")
            token = self.tokens.pop(job_key)
            execution.record_outcome(
                self, FakeBlobStore(), Settings(), self.function, claimed.job, 1, token, outcome
            )


def services() -> tuple[Services, RacingJobStore]:
    jobs = RacingJobStore()
    queue = FakeQueue()
    url, dlq = queue.create("q", max_receive_count=50, visibility_seconds=60)
    function = FunctionRecord(
        id=FID,
        owner=ALICE,
        name="big",
        status="stopped",  # no scaler starts workers; the racing "workers" are the store's
        creation_date="2026-01-01T00:00:00.000Z",
        maximum_concurrency=500,
        timeout=900,
        retry_count=0,
        enabled=True,
        queue_url=url,
        dlq_url=dlq,
    )
    svc = compose_stores(FakeFunctionStore(), jobs, queue, FakeBlobStore())  # no executor or builder
    svc.functions.put_new(function)
    jobs.function = svc.functions.get(FID)
    return svc, jobs


def test_a_cancel_of_100k_jobs_runs_in_pages_and_ends_every_job_once() -> None:
    svc, jobs = services()
    for start in range(0, N, 1000):
        submit_jobs(
            svc,
            ALICE,
            JobBulkCreate(function_id=FID, bulk_args=[[i] for i in range(1000)], reference_id=f"r{start}"),
        )
    keys = sorted(k for f, k in jobs.items if f == FID and not k.startswith("ref#"))
    assert len(keys) == N
    jobs.claim_first = set(keys[5:N:997])  # claimed by a worker as the cancel reaches them
    jobs.finish_first = set(keys[7:N:1009])  # claimed and finished first
    raced, finished = set(jobs.claim_first), set(jobs.finish_first)

    accepted = operations.start(svc, ALICE, "cancel", JobQuery(function_id=FID))
    assert isinstance(accepted, Operation) and accepted.state == OperationState.QUEUED
    progress = []
    while True:
        assert operations.run_operations(svc, seconds=600, max_pages=1) == 1
        op = operations.get_operation(svc, ALICE, accepted.id)
        progress.append(op.processed)
        if op.state.is_final:
            break
        assert op.state == OperationState.RUNNING and op.total == N
    assert op.state == OperationState.SUCCEEDED and op.pages == len(progress) >= N // 1000
    assert progress == sorted(progress) and progress[-1] == N
    # Jobs claimed mid-cancel were asked to stop (cancel); their workers end them.
    for key in raced:
        assert jobs.get(FID, key).status == JobStatus.CANCEL.value
        assert execution.mark_canceling(jobs, FID, key, jobs.tokens[key])
        job = jobs.get(FID, key, consistent=True)
        stopped = execution.Outcome(status=JobStatus.CANCELED)
        execution.record_outcome(
            jobs, svc.blobs, svc.settings, jobs.function, job, 1, jobs.tokens[key], stopped
        )
    stats = job_statistics(svc, FID)
    assert stats["success"] == len(finished)
    assert stats["canceled"] == N - len(finished)
    assert sum(stats.values()) == N  # every job in exactly one status, and that one terminal
    assert op.changed == N - len(finished)
    assert operations.run_operations(svc, seconds=60) == 0  # nothing left to do
