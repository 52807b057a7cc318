"""A job's resource use: the CPU/memory/network series the worker stored for each attempt."""

from __future__ import annotations

import json

from geobatch.wire import errors
from geobatch.wire.statistics import AttemptStatistics, JobStatistics, from_document
from geobatch_core.ports import Item
from geobatch_core.services.access import owned_job
from geobatch_core.services.context import Services
from geobatch_core.services.job_wire import all_attempts

# Without ``attempt``, at most this many (the newest) attempts come back: each series is up to
# about 80 KB, and an answer must fit a Lambda response.
MAX_ATTEMPTS_PER_ANSWER = 10


def job_statistics(svc: Services, principal: str, job_id_: str, attempt: int | None = None) -> JobStatistics:
    """The series of one attempt (1-based over all runs, as in the job's ``attempts``), or of the
    newest attempts that have one. Attempts that are running or were lost have none yet."""
    item, _ = owned_job(svc, principal, job_id_)
    attempts = all_attempts(item)
    if attempt is not None:
        if not 1 <= attempt <= len(attempts):
            raise errors.NotFoundError(f"job {job_id_} has attempts 1 to {len(attempts)}, not {attempt}")
        chosen = [(attempt, attempts[attempt - 1])]
    else:
        chosen = [(n, a) for n, a in enumerate(attempts, 1) if a.get("statistics_key")]
        chosen = chosen[-MAX_ATTEMPTS_PER_ANSWER:]
    return JobStatistics(job_id=job_id_, attempts=[_series(svc, n, a) for n, a in chosen if _has(a)])


def _has(record: Item) -> bool:
    return bool(record.get("statistics_key"))


def _series(svc: Services, number: int, record: Item) -> AttemptStatistics:
    try:
        document = json.loads(svc.blobs.get(record["statistics_key"]))
    except errors.NotFoundError:
        # Deleted behind the job's back (a lifecycle rule, a hand): the summary is still known.
        document = dict(record.get("statistics") or {})
    return from_document(document, attempt=number, run=int(record.get("run", 0)))
