"""Scaler Lambda: keeps each Function's workers at min(maximum_concurrency, outstanding jobs).

Invoked asynchronously by the API on submit (``{"function_id": ...}``) and every minute by an
EventBridge schedule (all Functions). It also drains dead-letter queues so no job is left
outstanding behind a dead letter, and settles Functions whose build event was lost.

Passes overlap (one invocation per submit plus the schedule): the stack reserves one concurrent
execution for the scaler, and each Function's pass holds a lease (``services.lease``), so two
passes never both start the same shortfall.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from geobatch_api import context
from geobatch_core import errors
from geobatch_core.models import FunctionStatus
from geobatch_core.services import scaling
from geobatch_core.services.dead_letters import drain_dead_letters
from geobatch_core.services.iterate import all_functions
from geobatch_core.services.lease import scaling_lease
from geobatch_ops.build_events import reconcile_builds

logger = Logger(service="geobatch-scaler")
metrics = Metrics(namespace="GeoBatch", service="geobatch-scaler")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    svc = context.services()
    function_id = (event or {}).get("function_id")
    if function_id:
        try:
            functions = [svc.functions.get(function_id)]
        except errors.NotFoundError:
            return {"started": {}, "dead_letters": 0}
    else:
        functions = list(all_functions(svc, None))
        # The scheduled pass also settles builds whose end event was lost.
        try:
            reconciled = reconcile_builds(svc, functions, svc.clock())
        except errors.GeoBatchError as exc:  # e.g. CodeBuild throttled: scale now, reconcile next tick
            logger.warning("could not reconcile builds", extra={"why": exc.message})
            reconciled = 0
        metrics.add_metric(name="BuildsReconciled", unit=MetricUnit.Count, value=reconciled)
    started: dict[str, int] = {}
    dead = 0
    running = 0
    for function in functions:
        if function.get("status") != FunctionStatus.READY.value:
            continue
        # One pass per Function at a time: overlapping passes would both start the same shortfall.
        with scaling_lease(svc, function) as held:
            if not held:
                continue
            dead += drain_dead_letters(svc, function)
            started[function["id"]] = scaling.scale_function(svc, function)
        running += svc.executor.running_workers(function)
    metrics.add_metric(name="WorkersStarted", unit=MetricUnit.Count, value=sum(started.values()))
    metrics.add_metric(name="RunningWorkers", unit=MetricUnit.Count, value=running)
    metrics.add_metric(name="DeadLetterMessages", unit=MetricUnit.Count, value=dead)
    logger.info("scaled", extra={"started": started, "dead_letters": dead})
    return {"started": started, "dead_letters": dead}
