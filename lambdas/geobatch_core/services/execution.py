"""The job state machine as workers drive it: claim a message, record an outcome, detect lost workers.

Claiming and lost workers are here; recording an outcome is in ``outcome``, the decisions both
return in ``decisions`` (their names are re-exported here, where callers have always found them).

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
from dataclasses import dataclass, replace
from typing import Any

from geobatch.wire.errors import NotFoundError
from geobatch.wire.models import JobStatus
from geobatch_core.ports import JobStore, Message
from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord
from geobatch_core.services.context import Settings, iso, utcnow
from geobatch_core.services.decisions import (
    Ack,
    Claimed,
    Defer,
    Outcome,
    Stale,
    last_attempt,
)
from geobatch_core.services.outcome import record_outcome
from geobatch_core.store import ABSENT, Increment

# The decisions and record_outcome are re-exported: the worker finds the state machine here.
__all__ = [
    "Ack",
    "Claimed",
    "Defer",
    "Outcome",
    "Stale",
    "claim",
    "claim_token",
    "mark_canceling",
    "parse_message",
    "record_outcome",
]


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


@dataclass(frozen=True)
class _Receive:
    """One receive of a job's message by a worker, and what judging it needs."""

    jobs: JobStore
    settings: Settings
    function: FunctionRecord
    message: Message
    token: str
    worker_id: str
    now_iso: str

    def start_attempt(self, job_key: str, held: Any) -> JobRecord | None:
        """PENDING → RUNNING under this receive, when the job's claim token is still ``held``."""
        return self.jobs.transition(
            self.function.id,
            job_key,
            changes={
                "status": JobStatus.RUNNING.value,
                "execution_count": Increment(1),
                "claim_msg": self.message.message_id,
                "claim_token": self.token,
                "last_execution_date": self.now_iso,
                "retry_at": None,
            },
            expect={
                "status": JobStatus.PENDING.value,
                "claim_msg": [ABSENT, self.message.message_id],
                "claim_token": held,
            },
            append_attempt=AttemptRecord(
                started=self.now_iso, status=JobStatus.RUNNING.value, worker_id=self.worker_id
            ),
        )


def claim(
    jobs: JobStore,
    settings: Settings,
    function: FunctionRecord,
    job_key: str,
    message: Message,
    worker_id: str,
    now_iso: str | None = None,
) -> Claimed | Ack | Defer | Stale:
    rx = _Receive(
        jobs, settings, function, message, claim_token(message), worker_id, now_iso or iso(utcnow())
    )
    # The common case in one write: a job never claimed before.
    new = rx.start_attempt(job_key, ABSENT)
    if new is not None:
        return Claimed(new, _attempt_of(new))
    for _ in range(3):
        try:
            job = jobs.get(function.id, job_key, consistent=True)
        except NotFoundError:
            return Ack("job deleted")
        decision = _judge(rx, job)
        if decision is not None:
            return decision
    return Defer(settings.lost_worker_seconds, "job changed while claiming")


def _attempt_of(job: JobRecord) -> int:
    """The number of the job's current attempt (0 before the first)."""
    return int(job.execution_count or 0)


def _judge(rx: _Receive, job: JobRecord) -> Claimed | Ack | Defer | Stale | None:
    """What this receive does with a job someone claimed before; None: it changed, read again."""
    status = job.status
    if status in (s.value for s in JobStatus.terminal()):
        return Ack(f"job is {status}")
    owner = job.claim_msg
    if owner is not None and owner != rx.message.message_id:
        return Ack("duplicate message")
    held = job.claim_token
    if held == rx.token and status == JobStatus.RUNNING.value:
        # Our own claim, whose answer was lost (a retried write): the job is ours.
        return Claimed(job, _attempt_of(job))
    if held == rx.token and status != JobStatus.PENDING.value:
        return Stale("the job is being canceled")
    if owner is not None and held != rx.token and rx.message.receive_count <= _receive_of(held):
        # Both receives are of this message and ours is not the later one: our lease ran out.
        return Stale("a later receive of this message owns the job")
    if status == JobStatus.PENDING.value:
        new = rx.start_attempt(job.job_key, held or ABSENT)
        return Claimed(new, _attempt_of(new)) if new is not None else None
    # The receive that claimed this job is older than ours: its lease ran out, so its worker is gone.
    return _lost_worker(rx, job)


def _lost_worker(rx: _Receive, job: JobRecord) -> Claimed | Ack | None:
    attempt = _attempt_of(job)
    cause = f" ({job.lost_reason})" if job.lost_reason else ""
    reason = f"worker lost: no heartbeat for {rx.settings.lost_worker_seconds} s on attempt {attempt}{cause}"
    lost = replace(last_attempt(job), number=attempt, ended=rx.now_iso, status="failure", reason=reason)
    expect = {
        "status": job.status,
        "claim_msg": rx.message.message_id,
        "claim_token": ABSENT if job.claim_token is None else job.claim_token,
        "execution_count": attempt,
    }
    if job.status != JobStatus.RUNNING.value or attempt >= rx.function.attempts_allowed:
        final = JobStatus.CANCELED if job.status != JobStatus.RUNNING.value else JobStatus.FAILURE
        changes = {
            "status": final.value,
            "error_reason": reason if final is JobStatus.FAILURE else None,
            "status_reason": f"{reason}; no attempts left" if final is JobStatus.FAILURE else None,
            "last_completion_date": rx.now_iso,
            "lost_reason": None,
            "claim_token": rx.token,
        }
        done = rx.jobs.transition(
            rx.function.id, job.job_key, changes=changes, expect=expect, replace_last_attempt=lost
        )
        return Ack(reason) if done is not None else None
    # Two writes (a list item cannot be replaced and appended to at once): back to pending under our
    # token, then a new attempt that only our token may start.
    back = rx.jobs.transition(
        rx.function.id,
        job.job_key,
        changes={
            "status": JobStatus.PENDING.value,
            "error_reason": reason,
            "lost_reason": None,
            "claim_token": rx.token,
        },
        expect=expect,
        replace_last_attempt=lost,
    )
    if back is None:
        return None
    new = rx.start_attempt(job.job_key, rx.token)
    return Claimed(new, _attempt_of(new)) if new is not None else None


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
