"""Job use cases: get, cancel, rerun, delete and tags (in bulk: ``operations``).

Listing (filters, sort, cursor) is in ``job_query``, submission in ``submission``, the wire form in
``job_wire``, logs and results in ``job_outputs``; their names are re-exported here, where callers
have always found them.
"""

from __future__ import annotations

import dataclasses
import json

from geobatch.wire import errors
from geobatch.wire.models import RERUNNABLE, TERMINAL, Job, JobStatus
from geobatch_core import layout
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services.access import owned_job
from geobatch_core.services.context import Services, iso
from geobatch_core.services.job_outputs import job_log, job_result, parse_log_line
from geobatch_core.services.job_query import list_jobs
from geobatch_core.services.job_wire import (
    all_attempts,
    executions,
    job_id,
    message_body,
    pending_reason,
    run_attempts,
    to_wire,
)
from geobatch_core.services.submission import bulk_fingerprint, mark_active, submit_job, submit_jobs

__all__ = [
    "all_attempts",
    "bulk_fingerprint",
    "cancel_item",
    "cancel_job",
    "delete_items",
    "delete_job",
    "executions",
    "get_job",
    "job_id",
    "job_log",
    "job_result",
    "list_jobs",
    "mark_active",
    "message_body",
    "parse_log_line",
    "pending_reason",
    "rerun_item",
    "rerun_job",
    "submit_job",
    "submit_jobs",
    "to_wire",
    "update_tags",
]


# --------------------------------------------------------------------------- read


def get_job(svc: Services, principal: str, job_id_: str) -> Job:
    job, function = owned_job(svc, principal, job_id_)
    if job.args_key is not None:
        payload = json.loads(svc.blobs.get(job.args_key))
        job = dataclasses.replace(job, payload=json.dumps(payload))
    workers = svc.executor.worker_states(function) if job.status == JobStatus.PENDING.value else None
    return to_wire(job, function=function, now=svc.clock(), with_result=True, workers=workers)


# --------------------------------------------------------------------------- change


def cancel_item(svc: Services, job: JobRecord) -> JobRecord:
    """Pending → canceled at once; running → cancel (the worker stops it: canceling → canceled)."""
    for _ in range(5):
        status = job.status
        now = iso(svc.clock())
        if status == JobStatus.PENDING.value:
            new = svc.jobs.transition(
                job.function_id,
                job.job_key,
                changes={"status": JobStatus.CANCELED.value, "last_completion_date": now, "retry_at": None},
                expect={"status": status, "run": job.run or 0},
            )
        elif status == JobStatus.RUNNING.value:
            new = svc.jobs.transition(
                job.function_id,
                job.job_key,
                changes={"status": JobStatus.CANCEL.value},
                expect={"status": status, "execution_count": job.execution_count or 0},
            )
        else:
            return job  # already terminal or being canceled
        if new is not None:
            return new
        job = svc.jobs.get(job.function_id, job.job_key, consistent=True)
    raise errors.ConflictError(f"job {job_id(job)} changed too often to cancel; try again")


def rerun_item(svc: Services, job: JobRecord, function: FunctionRecord) -> JobRecord:
    """An unsuccessful job starts a new run: pending again, with a fresh retry budget."""
    if job.status not in RERUNNABLE:
        return job
    if function.enabled is False:
        raise errors.ConflictError(f"Function {function.id} is disabled: enable it to rerun jobs")
    run = int(job.run or 0) + 1
    new = svc.jobs.transition(
        job.function_id,
        job.job_key,
        changes={
            "status": JobStatus.PENDING.value,
            "run": run,
            # The retry budget is per run; the history and the count of starts carry over.
            "earlier_attempts": all_attempts(job),
            "earlier_executions": executions(job),
            "execution_count": 0,
            "attempts": [],
            "claim_msg": None,
            "error_reason": None,
            "status_reason": None,
            "exit_code": None,
            "runtime": None,
            "retry_at": None,
            "last_completion_date": None,
        },
        expect={"status": job.status, "run": job.run or 0},
    )
    if new is None:
        return svc.jobs.get(job.function_id, job.job_key, consistent=True)
    svc.queue.send_batch(function.queue_url or "", [message_body(new)])
    mark_active(svc, function)
    return new


def _job_blobs(job: JobRecord, *, results: bool) -> list[str]:
    keys = [key for a in run_attempts(job) for key in (a.log_key, a.statistics_key) if key]
    if job.args_key:
        keys.append(job.args_key)
    if results and job.result_key:
        keys.append(job.result_key)
    return keys


def delete_items(svc: Services, jobs: list[JobRecord], *, delete_results: bool) -> list[JobRecord]:
    """Delete jobs that are not running (pending ones are canceled first); returns those deleted."""
    deletable = []
    for job in jobs:
        if job.status == JobStatus.PENDING.value:
            job = cancel_item(svc, job)
        if job.status in TERMINAL:
            deletable.append(job)
    if not delete_results:
        for job in deletable:
            keep_result(svc, job)
    blobs = [k for j in deletable for k in _job_blobs(j, results=delete_results)]
    svc.blobs.delete(blobs)
    svc.jobs.delete_batch((j.function_id, j.job_key) for j in deletable)
    return deletable


def keep_result(svc: Services, job: JobRecord) -> None:
    """A small result lives inside its job item: before the item goes, copy it to where large
    results are, so every kept result outlives its job at ``layout.result_key`` (and
    ``GET /jobs/{id}/result`` still answers while the Function exists)."""
    if job.result is not None and job.result_key is None:
        svc.blobs.put(layout.result_key(job.function_id, job.job_key), bytes(job.result))


def cancel_job(svc: Services, principal: str, job_id_: str) -> Job:
    job, function = owned_job(svc, principal, job_id_)
    return to_wire(cancel_item(svc, job), function=function, now=svc.clock())


def rerun_job(svc: Services, principal: str, job_id_: str) -> Job:
    job, function = owned_job(svc, principal, job_id_)
    return to_wire(rerun_item(svc, job, function), function=function, now=svc.clock())


def delete_job(svc: Services, principal: str, job_id_: str, *, delete_results: bool) -> None:
    job, _ = owned_job(svc, principal, job_id_)
    if job.status not in TERMINAL and job.status != JobStatus.PENDING.value:
        raise errors.ConflictError(f"job {job_id_} is {job.status}: cancel it and wait before deleting it")
    delete_items(svc, [job], delete_results=delete_results)


def update_tags(svc: Services, principal: str, job_id_: str, tags: list[str]) -> Job:
    job, function = owned_job(svc, principal, job_id_)
    new = svc.jobs.transition(job.function_id, job.job_key, changes={"tags": list(tags)}, expect={})
    if new is None:
        raise errors.NotFoundError(f"job {job_id_} does not exist")
    return to_wire(new, function=function, now=svc.clock())
