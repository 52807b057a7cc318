"""Dead letters: a message that kept killing workers ends in the DLQ; its job must end too.

The scaler drains each Function's DLQ and ends the jobs it names in ``failure`` (unless they are
already terminal), so the DLQ never holds a job that the table still shows as outstanding.
"""

from __future__ import annotations

from dataclasses import replace

from geobatch.wire import errors
from geobatch.wire.models import TERMINAL, JobStatus
from geobatch_core.records import FunctionRecord
from geobatch_core.services.context import Services, iso
from geobatch_core.services.execution import parse_message
from geobatch_core.services.iterate import all_jobs


def drain_dead_letters(svc: Services, function: FunctionRecord, *, max_batches: int = 10) -> int:
    """End the jobs behind dead-lettered messages; returns how many jobs were ended."""
    dlq = function.dlq_url
    if not dlq:
        return 0
    ended = 0
    for _ in range(max_batches):
        try:
            messages = svc.queue.receive(dlq, max_messages=10, wait_seconds=0, visibility_seconds=60)
        except errors.NotFoundError:
            return ended
        if not messages:
            break
        for message in messages:
            try:
                job_key, _ = parse_message(message.body)
                job = svc.jobs.get(function.id, job_key, consistent=True)
            except (errors.NotFoundError, ValueError, KeyError):
                continue
            if job.status in TERMINAL:
                continue
            reason = (
                f"worker lost repeatedly: the job's message was received {message.receive_count} times "
                "without the job finishing"
            )
            now = iso(svc.clock())
            attempts = job.attempts or ()
            # Close the attempt the lost worker left open, so no record of a failed job says running.
            last = None
            if attempts and attempts[-1].status == JobStatus.RUNNING.value:
                last = replace(attempts[-1], number=len(attempts), ended=now, status="failure", reason=reason)
            done = svc.jobs.transition(
                function.id,
                job_key,
                changes={
                    "status": JobStatus.FAILURE.value,
                    "error_reason": reason,
                    "status_reason": reason,
                    "last_completion_date": now,
                },
                expect={"status": job.status, "execution_count": job.execution_count or 0},
                replace_last_attempt=last,
            )
            ended += done is not None
        svc.queue.delete_batch(dlq, [m.receipt for m in messages])
    return ended


def note_worker_death(svc: Services, function_id: str, worker_id: str, reason: str) -> int:
    """AWS Batch says a worker container died: remember why on the job it was running, so the
    lost-worker path names the cause (e.g. out of memory) when the job's lease runs out."""
    noted = 0
    for job in all_jobs(svc, function_id, newest_first=True):
        attempts = job.attempts or ()
        if job.status == JobStatus.RUNNING.value and attempts and attempts[-1].worker_id == worker_id:
            svc.jobs.transition(
                function_id,
                job.job_key,
                changes={"lost_reason": reason},
                expect={"status": JobStatus.RUNNING.value, "execution_count": job.execution_count},
            )
            noted += 1
    return noted
