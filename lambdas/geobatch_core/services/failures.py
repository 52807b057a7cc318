"""Failure summary: 2,000 failures of 78,899 jobs should read as three causes, not 2,000 logs."""

from __future__ import annotations

import re
from typing import Literal

from geobatch.wire.models import FailureGroup, FailureSummary, JobStatus
from geobatch_core.services.access import owned_function
from geobatch_core.services.context import Services
from geobatch_core.services.iterate import all_jobs

Kind = Literal["exception", "out_of_memory", "timeout", "worker_lost", "other"]  # FailureGroup.kind
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_HEX_ID = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b")  # ids, hashes: letters and digits
_QUOTED = re.compile(r"'[^']{24,}'|\"[^\"]{24,}\"")


def cause_of(status: str, reason: str | None) -> tuple[Kind, str]:
    """(kind, cause): the kind of failure, and its reason with the parts that vary stripped."""
    text = (reason or "").strip()
    if status == JobStatus.TIMEOUT.value or text.startswith("timeout"):
        return "timeout", "timeout: still running at the time limit"
    if text.startswith("out of memory"):
        return "out_of_memory", "out of memory"
    if text.startswith("worker lost"):
        return "worker_lost", "worker lost"
    if not text:
        return "other", "no reason recorded"
    first_line = text.splitlines()[0]
    normalized = _QUOTED.sub("'…'", _NUMBER.sub("N", _HEX_ID.sub("<id>", first_line)))
    return "exception", normalized


def failure_summary(svc: Services, principal: str, function_id: str) -> FailureSummary:
    owned_function(svc, principal, function_id)
    failed = {JobStatus.FAILURE.value, JobStatus.TIMEOUT.value}
    groups: dict[str, FailureGroup] = {}
    total = 0
    projection = ["function_id", "job_key", "status", "error_reason"]
    for job in all_jobs(svc, function_id, projection=projection):
        if job.status not in failed:
            continue
        total += 1
        kind, cause = cause_of(job.status, job.error_reason)
        group = groups.get(cause)
        if group is None:
            groups[cause] = FailureGroup(
                cause=cause,
                kind=kind,
                count=1,
                example_job_id=job.id,
                example_reason=job.error_reason,
            )
        else:
            group.count += 1
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.cause))
    return FailureSummary(function_id=function_id, failed=total, groups=ordered)
