"""``Job.statistics``: how much CPU, memory and network a job's attempts used.

As in the Descartes Labs client, so users can right-size ``cpus`` and ``memory``. The worker
samples each attempt every 5 s and at its end; the series lives in one object per attempt (read
here through ``GET /jobs/{id}/statistics``), and each attempt in ``Job.attempts`` carries its
peaks (``attempt.statistics``) without a further request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geobatch.wire.statistics import AttemptStatistics, JobStatistics, Sample, StatisticsSummary

if TYPE_CHECKING:
    from geobatch.job import Job

__all__ = ["AttemptStatistics", "JobStatistics", "Sample", "StatisticsSummary", "attempt_statistics"]


def attempt_statistics(job: Job, attempt: int | None = None) -> list[AttemptStatistics]:
    """The series of attempt ``attempt`` (1-based over all runs), or of the job's newest attempts
    (up to 10) that have one; oldest first. A running attempt has none until it ends."""
    params = {"attempt": attempt} if attempt is not None else None
    body = job.client.get(f"/jobs/{job.id}/statistics", params=params)
    return list(JobStatistics.model_validate(body).attempts)


def latest(job: Job) -> AttemptStatistics | None:
    """The newest attempt's series, or None when no attempt has ended yet."""
    found = attempt_statistics(job)
    return found[-1] if found else None
