"""The pieces of one job's turn that are not the loop's: what its user code is given (environment),
what its run becomes (an ``Outcome`` for the state machine), and how its message is settled."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from geobatch.wire import data_access, errors
from geobatch.wire.env import UNSIGNED_S3
from geobatch.wire.models import JobStatus
from geobatch_core.ports import Queue
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services.execution import Outcome
from geobatch_worker.held import HeldMessages
from geobatch_worker.runner import RunResult
from geobatch_worker.support import TRANSIENT

log = logging.getLogger("geobatch.worker")


def job_environment(function: FunctionRecord, job: JobRecord, attempt: int) -> dict[str, str]:
    """The environment of one job on top of the child's: the Function's and the job's own names,
    who the job is, and the Function's public locations (read unsigned, see env.UNSIGNED_S3)."""
    environ = {**(function.environment or {}), **(job.environment or {})}
    environ["GEOBATCH_JOB_ID"] = job.id
    environ["GEOBATCH_ATTEMPT"] = str(attempt)
    environ[UNSIGNED_S3] = data_access.unsigned_value(function.data_access)
    return environ


def outcome_of(result: RunResult) -> Outcome:
    return Outcome(
        status=JobStatus(result.status),
        exit_code=result.exit_code,
        error_reason=result.error,
        runtime=result.runtime,
        result=result.result,
        result_meta=result.result_meta,
        log=result.log,
        peak_memory_mb=result.peak_memory_mb,
        cpu_seconds=round(result.cpu_seconds, 3) if result.cpu_seconds is not None else None,
        statistics=result.statistics,
    )


def settle(
    queue: Queue,
    queue_url: str,
    held: HeldMessages,
    acks: list[str],
    defers: list[tuple[str, int]],
    retry: Callable[..., Any],
) -> None:
    """Acknowledge, defer and return what we still hold; messages stay held (their leases
    extended) until this point, so a deferred job cannot come back early to another worker."""
    live = set(held.take_live())
    settled = set(acks) | {r for r, _ in defers}
    acks = [r for r in acks if r in live]
    defers = [(r, s) for r, s in defers if r in live]
    unstarted = [(r, 0) for r in live if r not in settled]
    # A failed ack or deferral loses nothing: the message returns after its lease and the job
    # state machine drops it (terminal job) or retries it (its job went back to pending).
    try:
        if acks:
            retry(queue.delete_batch, queue_url, acks)
        if defers or unstarted:
            retry(queue.change_visibility_batch, queue_url, defers + unstarted)
    except errors.NotFoundError:
        pass  # the queue was deleted with its Function: there is nothing left to settle
    except TRANSIENT as exc:
        log.error("could not settle %d messages: %s", len(acks) + len(defers), exc.message)
