"""Batch-state Lambda: a worker container failed (OOM kill, spot reclaim) → note why on its job.

The job itself is retried or ended by the lost-worker path when its lease runs out (its message
reappears); this event only makes the reason precise, and wakes the scaler to replace the worker.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from geobatch_core import wiring
from geobatch_core.adapters.batch_events import parse_batch_job_event
from geobatch_core.services.dead_letters import note_worker_death

logger = Logger(service="geobatch-batch-events")


def death_reason(outcome: Any) -> str:
    if outcome.out_of_memory:
        return "out of memory: the container was killed for exceeding its memory"
    detail = outcome.container_reason or outcome.status_reason or "container failed"
    return f"worker container ended: {detail}"


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    outcome = parse_batch_job_event(event)
    if not outcome.failed or outcome.is_array_parent or not outcome.function_id:
        return {"ignored": outcome.status}
    worker_id = outcome.job_id  # workers use their Batch job id (with :index for array children)
    svc = wiring.services()
    noted = note_worker_death(svc, outcome.function_id, worker_id, death_reason(outcome))
    if svc.on_submit:
        svc.on_submit(outcome.function_id)
    logger.info(
        "worker died", extra={"worker": worker_id, "jobs_noted": noted, "reason": death_reason(outcome)}
    )
    return {"function_id": outcome.function_id, "jobs_noted": noted}
