"""How many workers a Function should have: min(maximum_concurrency, outstanding jobs), never more.

Shared by the scaler Lambda (AWS Batch array jobs) and local mode (worker subprocesses).
"""

from __future__ import annotations

from geobatch_core import errors
from geobatch_core.models import FunctionStatus
from geobatch_core.ports import Item
from geobatch_core.services.context import Services


def desired_workers(function: Item, outstanding: int) -> int:
    if function.get("status") != FunctionStatus.READY.value:
        return 0
    return max(0, min(int(function["maximum_concurrency"]), outstanding))


def scale_function(svc: Services, function: Item) -> int:
    """Start the workers a Function lacks; returns how many were started.

    Outstanding work is read from the queue (visible + in flight), one cheap request, rather than
    by counting jobs: every pending or running job has exactly one live message.
    """
    try:
        visible, in_flight = svc.queue.depth(function["queue_url"])
    except errors.NotFoundError:
        return 0
    desired = desired_workers(function, visible + in_flight)
    running = svc.executor.running_workers(function)
    missing = desired - running
    if missing > 0 and visible > 0:
        svc.executor.start_workers(function, min(missing, visible))
        return min(missing, visible)
    return 0


def scale_all(svc: Services) -> dict[str, int]:
    started: dict[str, int] = {}
    start = None
    while True:
        items, start = svc.functions.list_by_owner(None, start=start, limit=500)
        for function in items:
            if function.get("owner") and function.get("status") == FunctionStatus.READY.value:
                started[function["id"]] = scale_function(svc, function)
        if not start:
            return started
