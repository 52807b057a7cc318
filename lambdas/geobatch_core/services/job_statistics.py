"""A job's resource use: the CPU/memory/network series the worker stored for each attempt."""

from __future__ import annotations

import json
from typing import Any

from geobatch.wire import errors
from geobatch.wire.statistics import SUMMARY_FIELDS, AttemptStatistics, JobStatistics, from_document
from geobatch_core import layout
from geobatch_core.ports import BlobStore
from geobatch_core.records import AttemptRecord
from geobatch_core.services.access import owned_job
from geobatch_core.services.context import Services
from geobatch_core.services.job_wire import run_attempts

# Without ``attempt``, at most this many (the newest) attempts come back: each series is up to
# about 80 KB, and an answer must fit a Lambda response.
MAX_ATTEMPTS_PER_ANSWER = 10


def job_statistics(svc: Services, principal: str, job_id_: str, attempt: int | None = None) -> JobStatistics:
    """The series of one attempt (1-based over all runs, as in the job's ``attempts``), or of the
    newest attempts that have one. Attempts that are running or were lost have none yet."""
    job, _ = owned_job(svc, principal, job_id_)
    attempts = run_attempts(job)
    if attempt is not None:
        if not 1 <= attempt <= len(attempts):
            raise errors.NotFoundError(f"job {job_id_} has attempts 1 to {len(attempts)}, not {attempt}")
        chosen = [(attempt, attempts[attempt - 1])]
    else:
        chosen = [(n, a) for n, a in enumerate(attempts, 1) if _has(a)]
        chosen = chosen[-MAX_ATTEMPTS_PER_ANSWER:]
    return JobStatistics(job_id=job_id_, attempts=[_series(svc, n, a) for n, a in chosen if _has(a)])


def _has(record: AttemptRecord) -> bool:
    return bool(record.statistics_key or record.statistics)


def _series(svc: Services, number: int, record: AttemptRecord) -> AttemptStatistics:
    run = int(record.run or 0)
    summary = dict(record.statistics or {})
    if record.statistics_key:
        try:
            return from_document(json.loads(svc.blobs.get(record.statistics_key)), attempt=number, run=run)
        except errors.NotFoundError:
            pass  # deleted behind the job's back (a lifecycle rule, a hand): the summary is known
    # One row (a job shorter than the sampling interval) is stored as its summary alone.
    row = [
        float(record.runtime or 0.0),
        summary.get("cpu_mean_percent") or 0.0,
        summary.get("memory_peak_mb") or 0.0,
        summary.get("net_rx_bytes"),
        summary.get("net_tx_bytes"),
    ]
    return from_document(
        {**summary, "rows": [row] if summary.get("samples") else []}, attempt=number, run=run
    )


def store_statistics(
    blobs: BlobStore, document: dict[str, Any], function_id: str, job_key: str, run: int, attempt: int
) -> tuple[dict[str, Any], str | None]:
    """Store an ended attempt's series (the worker's document); returns what its attempt entry
    gets: the summary, and the key of the one object beside its log (None when none was stored).

    A job shorter than one sampling interval has a single row, which its summary already is: it
    costs no S3 PUT (most tile jobs take a few seconds; a PUT per job would cost more than the
    rest of the control plane together, see benchmarks/job_statistics.py)."""
    summary = {k: document.get(k) for k in SUMMARY_FIELDS}
    if int(document.get("samples") or 0) <= 1:
        return summary, None
    key = layout.statistics_key(function_id, job_key, run, attempt)
    blobs.put(key, json.dumps(document, separators=(",", ":")).encode(), content_type="application/json")
    return summary, key
