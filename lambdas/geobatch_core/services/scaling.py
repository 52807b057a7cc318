"""How many workers a Function should have: min(maximum_concurrency, outstanding jobs), never more.

Shared by the scaler Lambda (AWS Batch array jobs) and local mode (worker subprocesses).
"""

from __future__ import annotations

from geobatch.wire import errors
from geobatch.wire.models import FunctionStatus, JobStatus
from geobatch_core.records import FunctionRecord
from geobatch_core.services.context import Services
from geobatch_core.services.functions import job_statistics


def desired_workers(function: FunctionRecord, outstanding: int) -> int:
    if function.status != FunctionStatus.READY.value:
        return 0
    return max(0, min(int(function.maximum_concurrency or 0), outstanding))


def scale_function(svc: Services, function: FunctionRecord) -> int:
    """Start the workers a Function lacks; returns how many were started.

    Outstanding work is read from the queue (visible + in flight), one cheap request, rather than
    by counting jobs: every pending or running job has exactly one live message.
    """
    try:
        visible, in_flight = svc.queue.depth(function.queue_url or "")
    except errors.NotFoundError:
        return 0
    if visible + in_flight == 0 and function.active:
        announce_completion(svc, function)
    desired = desired_workers(function, visible + in_flight)
    running = svc.executor.running_workers(function)
    missing = desired - running
    if missing > 0 and visible > 0:
        svc.executor.start_workers(function, min(missing, visible))
        return min(missing, visible)
    return 0


COMPLETED = "GeoBatch Function Completed"


def announce_completion(svc: Services, function: FunctionRecord) -> bool:
    """Publish one completion event when a Function's outstanding jobs reach zero.

    Submits and reruns mark the Function ``active``; the first scaler pass that finds its queue
    empty and no job outstanding clears the mark with a conditional write, so exactly one event
    goes out per busy period even with several scalers running at once.
    """
    stats = job_statistics(svc, function.id)
    if any(stats.get(s.value, 0) for s in JobStatus.outstanding()):
        return False  # the queue's counts are approximate; the jobs themselves decide
    try:
        svc.functions.update(function.id, {"active": None}, expect={"active": True})
    except (errors.ConflictError, errors.NotFoundError):
        return False  # another scaler announced it, or the Function is gone
    if svc.events is not None:
        svc.events.publish(
            COMPLETED,
            {"function_id": function.id, "name": function.name, "job_statistics": stats},
        )
    return True
