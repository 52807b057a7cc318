"""Recording an attempt's outcome: store its log and result, then end the job or schedule a retry.

Every write is fenced by the receive's claim token and the attempt number: a worker whose lease
ran out (another receive took the job over) cannot record anything, even if it comes back before
the new owner has finished; it gets :class:`Stale` and leaves the message alone.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

from geobatch.wire import limits
from geobatch.wire.models import JobStatus
from geobatch_core import layout
from geobatch_core.ports import BlobStore, JobStore
from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord
from geobatch_core.services.context import Settings, iso, utcnow
from geobatch_core.services.decisions import (
    ACTIVE,
    Ack,
    Defer,
    Outcome,
    Stale,
    backoff_seconds,
    last_attempt,
)
from geobatch_core.services.job_statistics import store_statistics

__all__ = ["final_reason", "record_outcome"]

_TAKEN_OVER = "the job was taken over by another worker"


class _Write:
    """One job's final write: the changes, the fence and the attempt entry it replaces."""

    def __init__(
        self, jobs: JobStore, function_id: str, job_key: str, expect: dict[str, Any], record: AttemptRecord
    ):
        self.jobs, self.function_id, self.job_key = jobs, function_id, job_key
        self.expect, self.record = expect, record

    def apply(self, changes: dict[str, Any], expect: dict[str, Any] | None = None) -> JobRecord | None:
        return self.jobs.transition(
            self.function_id,
            self.job_key,
            changes=changes,
            expect=expect if expect is not None else self.expect,
            replace_last_attempt=self.record,
        )

    def end(self, changes: dict[str, Any], status: JobStatus, reason: str | None = None) -> Ack | Stale:
        """Write the terminal ``status``; Ack with ``reason`` (default: the status), Stale if fenced out."""
        done = self.apply({**changes, "status": status.value})
        return Ack(reason or status.value) if done is not None else Stale(_TAKEN_OVER)


def record_outcome(
    jobs: JobStore,
    blobs: BlobStore,
    settings: Settings,
    function: FunctionRecord,
    job: JobRecord,
    attempt: int,
    token: str,
    outcome: Outcome,
    *,
    worker_id: str = "",
    rng: random.Random | None = None,
) -> Ack | Defer | Stale:
    """Store the attempt's log and result and move the job on: terminal (Ack) or retry (Defer)."""
    function_id, job_key = function.id, job.job_key
    now_iso = iso(utcnow())
    run = int(job.run or 0)
    record = _attempt_record(job, attempt, outcome, worker_id, now_iso)
    record = _store_log(blobs, record, outcome, layout.log_key(function_id, job_key, run, attempt))
    if outcome.statistics:
        summary, key = store_statistics(blobs, outcome.statistics, function_id, job_key, run, attempt)
        record = replace(record, statistics=summary, statistics_key=key)
    expect = {"status": ACTIVE, "claim_token": token, "execution_count": attempt}
    write = _Write(jobs, function_id, job_key, expect, record)
    changes: dict[str, Any] = {
        "exit_code": outcome.exit_code,
        "runtime": round(outcome.runtime, 3),
        "last_completion_date": now_iso,
    }
    if outcome.status is JobStatus.SUCCESS:
        changes.update(error_reason=None, status_reason=None)
        changes.update(_stored_result(blobs, outcome, function_id, job_key))
        return write.end(changes, JobStatus.SUCCESS)
    if outcome.status is JobStatus.CANCELED:
        return write.end({**changes, "status_reason": "canceled while running"}, JobStatus.CANCELED)
    changes["error_reason"] = outcome.error_reason
    if attempt < function.attempts_allowed:
        return _retry(write, settings, function, attempt, changes, rng)
    final = outcome.status if outcome.status is JobStatus.TIMEOUT else JobStatus.FAILURE
    changes["status_reason"] = final_reason(outcome.error_reason, attempt, function)
    return write.end(changes, final)


def _attempt_record(
    job: JobRecord, attempt: int, outcome: Outcome, worker_id: str, now_iso: str
) -> AttemptRecord:
    return replace(
        last_attempt(job),
        number=attempt,
        ended=now_iso,
        status=outcome.status.value,
        exit_code=outcome.exit_code,
        reason=outcome.error_reason,
        runtime=round(outcome.runtime, 3),
        peak_memory_mb=outcome.peak_memory_mb,
        cpu_seconds=outcome.cpu_seconds,
        log_bytes=len(outcome.log.encode()),
        worker_id=worker_id or None,
    )


def _store_log(blobs: BlobStore, record: AttemptRecord, outcome: Outcome, log_key: str) -> AttemptRecord:
    """A long log goes to the blob store at ``log_key``; a short one into the attempt entry."""
    log_bytes = outcome.log.encode()
    if len(log_bytes) > limits.INLINE_LOG_BYTES:
        blobs.put(log_key, log_bytes, content_type="text/plain; charset=utf-8")
        return replace(record, log_key=log_key)
    if log_bytes:
        return replace(record, log=outcome.log)
    return record


def _stored_result(blobs: BlobStore, outcome: Outcome, function_id: str, job_key: str) -> dict[str, Any]:
    """The job's result fields: a large result goes to the blob store, a small one into the item."""
    if outcome.result is None:
        return {}
    fields: dict[str, Any] = {"result_size": len(outcome.result)}
    if len(outcome.result) > limits.INLINE_RESULT_BYTES:
        fields["result_key"] = layout.result_key(function_id, job_key)
        blobs.put(fields["result_key"], outcome.result)
    else:
        fields["result"] = outcome.result
    if outcome.result_meta:
        fields["result_meta"] = outcome.result_meta
    return fields


def _retry(
    write: _Write,
    settings: Settings,
    function: FunctionRecord,
    attempt: int,
    changes: dict[str, Any],
    rng: random.Random | None,
) -> Ack | Defer | Stale:
    """Back to pending after a backoff; a job no longer running (a cancel came) ends canceled."""
    delay = backoff_seconds(settings, attempt, rng)
    retry_at = iso(utcnow() + timedelta(seconds=delay))
    pending = {
        **changes,
        "status": JobStatus.PENDING.value,
        "retry_at": retry_at,
        "last_completion_date": None,
    }
    if write.apply(pending, expect={**write.expect, "status": JobStatus.RUNNING.value}) is not None:
        return Defer(delay, f"attempt {attempt} of {function.attempts_allowed} failed; retry in {delay} s")
    # Not running any more: a cancel arrived meanwhile, so the job ends canceled.
    return write.end({**changes, "status_reason": "canceled while running"}, JobStatus.CANCELED)


def final_reason(error: str | None, attempt: int, function: FunctionRecord) -> str | None:
    """The status reason of a job that ran out of attempts, with the advice that applies."""
    if not error:
        return None
    reason = f"{error} on attempt {attempt} of {function.attempts_allowed}"
    if error.startswith("out of memory"):
        reason += "; raise memory"
    elif error.startswith("timeout"):
        reason += f"; raise timeout (now {function.timeout} s)"
    return reason
