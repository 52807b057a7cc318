"""A worker's configuration (from the job definition's or local executor's environment) and counts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from geobatch.wire import env, statistics
from geobatch_worker.runner import STARTUP_SECONDS


@dataclass
class WorkerConfig:
    function_id: str
    queue_url: str
    worker_id: str
    idle_seconds: float = 60.0
    poll_seconds: int = 20
    prefetch: int = 10  # most messages held at once (SQS's batch maximum)
    min_prefetch: int = 1  # the batch a worker starts with; it grows while the queue stays deep
    memory_limit_mb: float | None = None
    function_check_seconds: float = 10.0
    startup_seconds: float = STARTUP_SECONDS  # spawn + imports of the user-code child, apart from the timeout
    sample_seconds: float = statistics.SAMPLE_SECONDS  # how often a job's CPU/memory/network is sampled
    # Past this many seconds the worker claims no new job and exits, before AWS Batch's attempt
    # timeout (lifetime + one job timeout + a margin) could kill it mid-job; the scaler replaces it.
    # The job definition sets it; None (local mode) means no limit.
    lifetime_seconds: float | None = field(default_factory=lambda: _lifetime_from_env(os.environ))


def _lifetime_from_env(environ: Mapping[str, str]) -> float | None:
    value = environ.get(env.WORKER_LIFETIME_SECONDS)
    return float(value) if value else None


# A message stays invisible at most 12 h from its receipt however often its lease is extended; a
# held message whose job could not finish (timeout + settling) within that is handed back unclaimed
# and received afresh, rather than claimed and re-delivered while it still runs.
SETTLE_SECONDS = 600


@dataclass
class WorkerStats:
    received: int = 0
    claimed: int = 0
    acked: int = 0
    retried: int = 0
    dropped: int = 0
    stale: int = 0  # receives another worker had overtaken (this worker's lease had run out)
    outcomes: dict[str, int] = field(default_factory=dict)
