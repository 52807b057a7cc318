"""What a job leaves: its attempts' logs and its result (also after the job was deleted)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime

from geobatch.wire import errors, limits
from geobatch.wire.models import JobStatus, LogLine, ResultBody
from geobatch_core import layout
from geobatch_core.records import AttemptRecord, JobRecord
from geobatch_core.services import live_logs
from geobatch_core.services.access import owned_function, owned_job, split_job_id
from geobatch_core.services.context import Services
from geobatch_core.services.job_wire import run_attempts


def job_log(
    svc: Services, principal: str, job_id_: str, attempt: int | None = None, offset: int = 0
) -> tuple[list[LogLine], int | None]:
    """The lines of one attempt's log from character ``offset`` on, as many as fit one answer, and
    the offset of the rest (None when this is the end)."""
    job, _ = owned_job(svc, principal, job_id_)
    attempts = run_attempts(job)
    if not attempts:
        return [], None
    if attempt is None:
        record = attempts[-1]
    else:
        if not 1 <= attempt <= len(attempts):
            raise errors.NotFoundError(f"job {job_id_} has attempts 1 to {len(attempts)}, not {attempt}")
        record = attempts[attempt - 1]
    text, record = _log_text(svc, job, record)
    lines: list[LogLine] = []
    used, position = 0, offset
    for line in text[offset:].splitlines(keepends=True):
        cost = len(json.dumps(line)) + 60  # as NDJSON: the escaped text plus its date
        if lines and used + cost > limits.MAX_LOG_PAGE_BYTES:
            return lines, position
        lines.append(parse_log_line(line.rstrip("\r\n"), record.started))
        used, position = used + cost, position + len(line)
    return lines, None


def _log_text(svc: Services, job: JobRecord, record: AttemptRecord) -> tuple[str, AttemptRecord]:
    """An attempt's log text (and its entry, re-read if the attempt ended while we read it)."""
    if record.live_log_parts:
        # A running attempt: the parts of its log shipped so far (numbered within its run).
        number = int(record.number or int(job.execution_count or 0))
        text = live_logs.live_text(svc.blobs, job, number, record)
        if text is not None:
            return text, record
        # It ended while we read them: its whole log is stored now.
        fresh = svc.jobs.get(job.function_id, job.job_key, consistent=True)
        record = replace((fresh.attempts or (AttemptRecord(),))[number - 1], run=record.run)
    if record.log_key:
        return svc.blobs.get(record.log_key).decode("utf-8", "replace"), record
    return record.log or "", record


def parse_log_line(line: str, fallback: str | None) -> LogLine:
    stamp, sep, message = line.partition("\t")
    if sep:
        try:
            return LogLine(date=datetime.fromisoformat(stamp.replace("Z", "+00:00")), log=message)
        except ValueError:
            pass
    return LogLine(
        date=datetime.fromisoformat((fallback or "1970-01-01T00:00:00Z").replace("Z", "+00:00")), log=line
    )


def job_result(svc: Services, principal: str, job_id_: str) -> ResultBody:
    try:
        job, _ = owned_job(svc, principal, job_id_)
    except errors.NotFoundError:
        return _kept_result(svc, principal, job_id_)
    if job.status != JobStatus.SUCCESS.value:
        raise errors.JobFailedError(f"job {job_id_} is {job.status}, not success: it has no result")
    if job.result is not None:
        data = job.result
        return ResultBody(job_id=job_id_, size=len(data), data=base64.b64encode(data).decode())
    if job.result_key is not None:
        size = int(job.result_size or svc.blobs.size(job.result_key))
        url = svc.blobs.presign_get(job.result_key, seconds=limits.PRESIGNED_URL_SECONDS)
        return ResultBody(job_id=job_id_, size=size, url=url)
    raise errors.NotFoundError(f"job {job_id_} returned None: no result was stored")


def _kept_result(svc: Services, principal: str, job_id_: str) -> ResultBody:
    """The result a deleted job left behind (deleted with ``delete_results=False``)."""
    function_id, key = split_job_id(job_id_)
    owned_function(svc, principal, function_id)  # 404 unless the caller owns the Function
    result_key = layout.result_key(function_id, key)
    if not svc.blobs.exists(result_key):
        raise errors.NotFoundError(f"job {job_id_} does not exist, and left no result")
    size = svc.blobs.size(result_key)
    if size <= limits.INLINE_RESULT_BYTES:
        data = svc.blobs.get(result_key)
        return ResultBody(job_id=job_id_, size=size, data=base64.b64encode(data).decode())
    url = svc.blobs.presign_get(result_key, seconds=limits.PRESIGNED_URL_SECONDS)
    return ResultBody(job_id=job_id_, size=size, url=url)
