"""The decisions of the job state machine and the rules both its halves (claim, outcome) share.

A worker's message handling ends in one of these: run the job (:class:`Claimed`), delete the
message (:class:`Ack`), make it visible again later (:class:`Defer`), or leave it to the worker
that owns the job now (:class:`Stale`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from geobatch.wire.models import JobStatus
from geobatch_core.records import AttemptRecord, JobRecord
from geobatch_core.services.context import Settings

__all__ = [
    "ACTIVE",
    "Ack",
    "Claimed",
    "Defer",
    "Outcome",
    "Stale",
    "backoff_seconds",
    "last_attempt",
]

# The statuses of a job some worker is running (or stopping).
ACTIVE = [JobStatus.RUNNING.value, JobStatus.CANCEL.value, JobStatus.CANCELING.value]


@dataclass(frozen=True)
class Claimed:
    """Run this job now as attempt ``attempt``."""

    job: JobRecord
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


def backoff_seconds(settings: Settings, failed_attempt: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with jitter: base·2^(n−1), capped, scaled by a random 0.5–1.0."""
    rng = rng or random.Random()
    ceiling: float = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (failed_attempt - 1))
    return max(1, round(ceiling * rng.uniform(0.5, 1.0)))


def last_attempt(job: JobRecord) -> AttemptRecord:
    """The job's current attempt entry (an empty one before the first)."""
    return job.attempts[-1] if job.attempts else AttemptRecord()
