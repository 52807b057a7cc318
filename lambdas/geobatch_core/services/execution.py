"""The job state machine as workers drive it: claim a message, record an outcome, detect lost workers.

Every transition is a conditional write keyed on (status, claiming message, claim token, attempt
number), so a duplicate message, a late worker or a redelivery can never move a job backwards, run
it twice at once, or count an attempt twice. A job's message lives until the job is terminal: a
worker that dies leaves the message to reappear after its lease, and the next worker finishes the
story.

The claim token names one *receive* of the job's message (its receive count and a digest of its
receipt handle), not the message: every redelivery of a message shares its MessageId, so a worker
that was stopped past its lease and resumes would otherwise pass for the worker that now runs the
job. A receive may take a job over only from an older receive; a worker with an older receive than
the job's claim is stale, and can neither record an outcome nor judge the job lost.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from geobatch.wire import limits
from geobatch.wire.errors import NotFoundError
from geobatch.wire.models import JobStatus
from geobatch_core import layout
from geobatch_core.ports import BlobStore, Item, JobStore, Message
from geobatch_core.services.context import Settings, iso, utcnow
from geobatch_core.services.job_statistics import store_statistics
from geobatch_core.store import ABSENT, Increment

ACTIVE = [JobStatus.RUNNING.value, JobStatus.CANCEL.value, JobStatus.CANCELING.value]


@dataclass(frozen=True)
class Claimed:
    """Run this job now as attempt ``attempt``."""

    job: Item
    attempt: int


@dataclass(frozen=True)
class Ack:
    """Delete the message: the job is terminal, or this message is a duplicate."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Make the message visible again after ``seconds`` (a retry's backoff)."""

    seconds: int
    reason: str = ""


@dataclass(frozen=True)
class Stale:
    """Another worker owns the job now: leave the message alone."""

    reason: str


@dataclass
class Outcome:
    """What happened to one attempt, as the worker saw it."""

    status: JobStatus  # success, failure, timeout or canceled
    exit_code: int | None = None
    error_reason: str | None = None
    runtime: float = 0.0
    result: bytes | None = None
    result_meta: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    peak_memory_mb: float | None = None
    cpu_seconds: float | None = None
    statistics: dict[str, Any] | None = None  # the series document (geobatch.wire.statistics)


def claim_token(message: Message) -> str:
    """The token of one receive of ``message``: its receive count (to order receives) and a digest
    of the receipt (two receives never share one)."""
    digest = hashlib.sha256(message.receipt.encode()).hexdigest()[:16]
    return f"{int(message.receive_count)}.{digest}"


def _receive_of(token: Any) -> int:
    try:
        return int(str(token).split(".", 1)[0])
    except ValueError:
        return 0


def parse_message(body: str) -> tuple[str, int]:
    data = json.loads(body)
    return str(data["j"]), int(data.get("r", 0))


def max_attempts(function: Item) -> int:
    return int(function.get("retry_count", 0)) + 1


def backoff_seconds(settings: Settings, failed_attempt: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with jitter: base·2^(n−1), capped, scaled by a random 0.5–1.0."""
    rng = rng or random.Random()
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (failed_attempt - 1))
    return max(1, round(ceiling * rng.uniform(0.5, 1.0)))


def claim(
    jobs: JobStore,
    settings: Settings,
    function: Item,
    job_key: str,
    message: Message,
    worker_id: str,
    now_iso: str | None = None,
) -> Claimed | Ack | Defer | Stale:
    function_id = function["id"]
    now_iso = now_iso or iso(utcnow())
    token = claim_token(message)
    # The common case in one write: a job never claimed before.
    new = _start_attempt(jobs, function_id, job_key, message, token, worker_id, now_iso, ABSENT)
    if new is not None:
        return Claimed(new, int(new["execution_count"]))
    for _ in range(3):
        try:
            item = jobs.get(function_id, job_key, consistent=True)
        except NotFoundError:
            return Ack("job deleted")
        decision = _judge(jobs, settings, function, item, message, token, worker_id, now_iso)
        if decision is not None:
            return decision
    return Defer(settings.lost_worker_seconds, "job changed while claiming")


def _judge(
    jobs: JobStore,
    settings: Settings,
    function: Item,
    item: Item,
    message: Message,
    token: str,
    worker_id: str,
    now_iso: str,
) -> Claimed | Ack | Defer | Stale | None:
    """What this receive does with a job someone claimed before; None: it changed, read again."""
    status = item["status"]
    if status in (s.value for s in JobStatus.terminal()):
        return Ack(f"job is {status}")
    owner = item.get("claim_msg")
    if owner is not None and owner != message.message_id:
        return Ack("duplicate message")
    held = item.get("claim_token")
    if held == token and status == JobStatus.RUNNING.value:
        # Our own claim, whose answer was lost (a retried write): the job is ours.
        return Claimed(item, int(item.get("execution_count", 0)))
    if held == token and status != JobStatus.PENDING.value:
        return Stale("the job is being canceled")
    if owner is not None and held != token and message.receive_count <= _receive_of(held):
        # Both receives are of this message and ours is not the later one: our lease ran out.
        return Stale("a later receive of this message owns the job")
    if status == JobStatus.PENDING.value:
        new = _start_attempt(
            jobs, function["id"], item["job_key"], message, token, worker_id, now_iso, held or ABSENT
        )
        return Claimed(new, int(new["execution_count"])) if new is not None else None
    # The receive that claimed this job is older than ours: its lease ran out, so its worker is gone.
    return _lost_worker(jobs, settings, function, item, message, token, worker_id, now_iso)


def _start_attempt(
    jobs: JobStore,
    function_id: str,
    job_key: str,
    message: Message,
    token: str,
    worker_id: str,
    now_iso: str,
    held: Any,
) -> Item | None:
    return jobs.transition(
        function_id,
        job_key,
        changes={
            "status": JobStatus.RUNNING.value,
            "execution_count": Increment(1),
            "claim_msg": message.message_id,
            "claim_token": token,
            "last_execution_date": now_iso,
            "retry_at": None,
        },
        expect={
            "status": JobStatus.PENDING.value,
            "claim_msg": [ABSENT, message.message_id],
            "claim_token": held,
        },
        append_attempt={"started": now_iso, "status": JobStatus.RUNNING.value, "worker_id": worker_id},
    )


def _lost_worker(
    jobs: JobStore,
    settings: Settings,
    function: Item,
    item: Item,
    message: Message,
    token: str,
    worker_id: str,
    now_iso: str,
) -> Claimed | Ack | None:
    attempt = int(item.get("execution_count", 0))
    cause = f" ({item['lost_reason']})" if item.get("lost_reason") else ""
    reason = f"worker lost: no heartbeat for {settings.lost_worker_seconds} s on attempt {attempt}{cause}"
    lost = {**_last_attempt(item), "number": attempt, "ended": now_iso, "status": "failure", "reason": reason}
    expect = {
        "status": item["status"],
        "claim_msg": message.message_id,
        "claim_token": item.get("claim_token", ABSENT),
        "execution_count": attempt,
    }
    if item["status"] != JobStatus.RUNNING.value or attempt >= max_attempts(function):
        final = JobStatus.CANCELED if item["status"] != JobStatus.RUNNING.value else JobStatus.FAILURE
        done = jobs.transition(
            function["id"],
            item["job_key"],
            changes={
                "status": final.value,
                "error_reason": reason if final is JobStatus.FAILURE else None,
                "status_reason": f"{reason}; no attempts left" if final is JobStatus.FAILURE else None,
                "last_completion_date": now_iso,
                "lost_reason": None,
                "claim_token": token,
            },
            expect=expect,
            replace_last_attempt=lost,
        )
        return Ack(reason) if done is not None else None
    # Two writes (a list item cannot be replaced and appended to at once): back to pending under our
    # token, then a new attempt that only our token may start.
    back = jobs.transition(
        function["id"],
        item["job_key"],
        changes={
            "status": JobStatus.PENDING.value,
            "error_reason": reason,
            "lost_reason": None,
            "claim_token": token,
        },
        expect=expect,
        replace_last_attempt=lost,
    )
    if back is None:
        return None
    new = _start_attempt(jobs, function["id"], item["job_key"], message, token, worker_id, now_iso, token)
    return Claimed(new, int(new["execution_count"])) if new is not None else None


def _last_attempt(item: Item) -> dict[str, Any]:
    attempts = item.get("attempts") or []
    return dict(attempts[-1]) if attempts else {}


def record_outcome(
    jobs: JobStore,
    blobs: BlobStore,
    settings: Settings,
    function: Item,
    job: Item,
    attempt: int,
    token: str,
    outcome: Outcome,
    *,
    worker_id: str = "",
    rng: random.Random | None = None,
) -> Ack | Defer | Stale:
    """Store the attempt's log and result and move the job on: terminal (Ack) or retry (Defer)."""
    function_id, job_key = function["id"], job["job_key"]
    now_iso = iso(utcnow())
    record: dict[str, Any] = {
        **_last_attempt(job),
        "number": attempt,
        "ended": now_iso,
        "status": outcome.status.value,
        "exit_code": outcome.exit_code,
        "reason": outcome.error_reason,
        "runtime": round(outcome.runtime, 3),
        "peak_memory_mb": outcome.peak_memory_mb,
        "cpu_seconds": outcome.cpu_seconds,
        "log_bytes": len(outcome.log.encode()),
        "worker_id": worker_id or None,
    }
    log_bytes = outcome.log.encode()
    if len(log_bytes) > limits.INLINE_LOG_BYTES:
        record["log_key"] = layout.log_key(function_id, job_key, int(job.get("run", 0)), attempt)
        blobs.put(record["log_key"], log_bytes, content_type="text/plain; charset=utf-8")
    elif log_bytes:
        record["log"] = outcome.log
    if outcome.statistics:
        record.update(
            store_statistics(blobs, outcome.statistics, function_id, job_key, int(job.get("run", 0)), attempt)
        )
    # Fenced by the receive's token: a worker whose lease ran out (another receive took the job over)
    # cannot record anything, even if it comes back before the new owner has finished.
    expect = {"status": ACTIVE, "claim_token": token, "execution_count": attempt}
    changes: dict[str, Any] = {
        "exit_code": outcome.exit_code,
        "runtime": round(outcome.runtime, 3),
        "last_completion_date": now_iso,
    }
    if outcome.status is JobStatus.SUCCESS:
        changes.update(status=JobStatus.SUCCESS.value, error_reason=None, status_reason=None)
        if outcome.result is not None:
            changes["result_size"] = len(outcome.result)
            if len(outcome.result) > limits.INLINE_RESULT_BYTES:
                changes["result_key"] = layout.result_key(function_id, job_key)
                blobs.put(changes["result_key"], outcome.result)
            else:
                changes["result"] = outcome.result
            if outcome.result_meta:
                changes["result_meta"] = outcome.result_meta
        done = jobs.transition(
            function_id, job_key, changes=changes, expect=expect, replace_last_attempt=record
        )
        return Ack("success") if done is not None else Stale("the job was taken over by another worker")

    if outcome.status is JobStatus.CANCELED:
        changes.update(status=JobStatus.CANCELED.value, status_reason="canceled while running")
        done = jobs.transition(
            function_id, job_key, changes=changes, expect=expect, replace_last_attempt=record
        )
        return Ack("canceled") if done is not None else Stale("the job was taken over by another worker")

    changes["error_reason"] = outcome.error_reason
    if attempt < max_attempts(function):
        delay = backoff_seconds(settings, attempt, rng)
        retry_at = iso(utcnow() + timedelta(seconds=delay))
        retry = jobs.transition(
            function_id,
            job_key,
            changes={
                **changes,
                "status": JobStatus.PENDING.value,
                "retry_at": retry_at,
                "last_completion_date": None,
            },
            expect={**expect, "status": JobStatus.RUNNING.value},
            replace_last_attempt=record,
        )
        if retry is not None:
            return Defer(delay, f"attempt {attempt} of {max_attempts(function)} failed; retry in {delay} s")
        # Not running any more: a cancel arrived meanwhile, so the job ends canceled.
        changes.update(status=JobStatus.CANCELED.value, status_reason="canceled while running")
        done = jobs.transition(
            function_id, job_key, changes=changes, expect=expect, replace_last_attempt=record
        )
        return Ack("canceled") if done is not None else Stale("the job was taken over by another worker")
    final = outcome.status if outcome.status is JobStatus.TIMEOUT else JobStatus.FAILURE
    changes.update(status=final.value, status_reason=final_reason(outcome.error_reason, attempt, function))
    done = jobs.transition(function_id, job_key, changes=changes, expect=expect, replace_last_attempt=record)
    return Ack(final.value) if done is not None else Stale("the job was taken over by another worker")


def final_reason(error: str | None, attempt: int, function: Item) -> str | None:
    """The status reason of a job that ran out of attempts, with the advice that applies."""
    if not error:
        return None
    reason = f"{error} on attempt {attempt} of {max_attempts(function)}"
    if error.startswith("out of memory"):
        reason += "; raise memory"
    elif error.startswith("timeout"):
        reason += f"; raise timeout (now {function.get('timeout')} s)"
    return reason


def mark_canceling(jobs: JobStore, function_id: str, job_key: str, token: str) -> bool:
    return (
        jobs.transition(
            function_id,
            job_key,
            changes={"status": JobStatus.CANCELING.value},
            expect={"status": JobStatus.CANCEL.value, "claim_token": token},
        )
        is not None
    )
