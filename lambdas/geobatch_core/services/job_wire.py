"""Jobs as the API shows them: the wire form of a job record, and why a pending job waits."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from geobatch.wire.models import FunctionStatus, Job, JobStatus
from geobatch_core.ports import Item
from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord

# What an attempt entry holds for the service only: where its log and statistics are, its number
# within its run (the wire numbers attempts over all runs).
_ATTEMPT_PRIVATE = ("log", "log_key", "number", "statistics_key")


def job_id(job: JobRecord) -> str:
    return job.id


def message_body(job: JobRecord) -> str:
    return json.dumps({"j": job.job_key, "r": job.run or 0}, separators=(",", ":"))


def _attempt_wire(attempt: AttemptRecord) -> dict[str, Any]:
    return {k: v for k, v in attempt.to_item().items() if k not in _ATTEMPT_PRIVATE}


def executions(job: JobRecord) -> int:
    """Starts over every run (the stored ``execution_count`` is the current run's)."""
    return int(job.earlier_executions or 0) + int(job.execution_count or 0)


def run_attempts(job: JobRecord) -> list[AttemptRecord]:
    """Every attempt of every run, oldest first, each with its run. The current run's attempts are
    the worker's (numbered within the run, which its retry budget counts); earlier runs' are kept
    beside them by each rerun."""
    run = int(job.run or 0)
    return [*(job.earlier_attempts or ()), *(replace(a, run=run) for a in job.attempts or ())]


def all_attempts(job: JobRecord) -> list[Item]:
    """``run_attempts`` as entries: what a rerun keeps in ``earlier_attempts``."""
    return [a.to_item() for a in run_attempts(job)]


def pending_reason(
    job: JobRecord, function: FunctionRecord | None, now: datetime, workers: Mapping[str, int] | None = None
) -> str | None:
    """Why a pending job is not running, from state the service already has (no write per job):
    the Function's status, the job's backoff timer, and the workers' states (running vs waiting
    for capacity from AWS Batch)."""
    if job.status != JobStatus.PENDING.value or function is None:
        return None
    waiting = _function_waits(function, now)
    if waiting is not None:
        return waiting
    if job.retry_at:
        wait = (datetime.fromisoformat(job.retry_at.replace("Z", "+00:00")) - now).total_seconds()
        if wait > 0:
            return (
                f"backing off: attempt {job.execution_count or 0} of {function.attempts_allowed} failed, "
                f"next try in {wait:.0f} s"
            )
    limit = 1 if function.maximum_concurrency is None else int(function.maximum_concurrency)
    running = int((workers or {}).get("RUNNING", 0))
    starting = sum(v for k, v in (workers or {}).items() if k != "RUNNING")
    if running >= limit:
        return f"waiting: {running} of {limit} concurrent jobs running (maximum_concurrency={limit})"
    if starting:
        states = ", ".join(f"{v} {k}" for k, v in sorted((workers or {}).items()) if k != "RUNNING")
        return f"waiting: AWS Batch has not yet started {starting} workers ({states}); {running} running"
    return f"waiting: queued for a worker ({running} of {limit} workers running)"


def _function_waits(function: FunctionRecord, now: datetime) -> str | None:
    """Why no job of the Function can run now, when its status says so."""
    status = function.status
    if status == FunctionStatus.BUILDING.value:
        since = function.build_started
        minutes = ""
        if since:
            elapsed = (now - datetime.fromisoformat(since.replace("Z", "+00:00"))).total_seconds()
            minutes = f" ({elapsed / 60:.0f} min so far)"
        return f"waiting: function image is building{minutes}"
    if status == FunctionStatus.AWAITING_BUNDLE.value:
        return "waiting: function code has not been uploaded"
    if status == FunctionStatus.BUILD_FAILED.value:
        return "waiting: function image failed to build; see Function.build_log()"
    if status == FunctionStatus.STOPPED.value:
        return "waiting: function is stopped; start it to run pending jobs"
    return None


def to_wire(
    job: JobRecord,
    *,
    function: FunctionRecord | None = None,
    now: datetime | None = None,
    with_result: bool = False,
    workers: Mapping[str, int] | None = None,
) -> Job:
    """The job as the API answers it. What stays inside the service is not named here: its
    payload (as ``args``/``kwargs`` instead), owner, key, claim, backoff timer, where its
    arguments and result are stored, its earlier runs (folded into ``attempts`` and
    ``execution_count``), and any attribute the record does not name."""
    payload = json.loads(job.payload) if job.payload is not None else {}
    status_reason = job.status_reason
    if now is not None and status_reason is None:
        status_reason = pending_reason(job, function, now, workers)
    return Job.model_validate(
        {
            "id": job.id,
            "function_id": job.function_id,
            "creation_date": job.creation_date,
            "status": job.status,
            "args": payload.get("args"),
            "kwargs": payload.get("kwargs"),
            "environment": job.environment,
            "tags": job.tags or [],
            "error_reason": job.error_reason,
            "status_reason": status_reason,
            # As in the Descartes Labs client, execution_count counts the starts of every run.
            "execution_count": executions(job),
            "exit_code": job.exit_code,
            "runtime": job.runtime,
            "last_execution_date": job.last_execution_date,
            "last_completion_date": job.last_completion_date,
            "reference_id": job.reference_id,
            "run": job.run or 0,
            "attempts": [{"number": n, **_attempt_wire(a)} for n, a in enumerate(run_attempts(job), 1)],
            "has_result": job.result is not None or job.result_key is not None,
            "result_size": job.result_size,
            "result": base64.b64encode(job.result).decode()
            if with_result and job.result is not None
            else None,
        }
    )


def wire_bytes(job: JobRecord, *, with_result: bool) -> int:
    """About how many bytes the job takes in a page (an overestimate), so a page can be cut short
    before it outgrows a Lambda response."""
    size = 1500 + len(job.payload or "")
    size += sum(len(str(reason or "")) for reason in (job.error_reason, job.status_reason))
    size += sum(len(t) + 4 for t in job.tags or [])
    size += sum(len(k) + len(v) + 8 for k, v in (job.environment or {}).items())
    size += sum(300 + len(str(a.reason or "")) for a in run_attempts(job))
    if with_result and job.result is not None:
        size += len(job.result) * 4 // 3 + 4
    return size
