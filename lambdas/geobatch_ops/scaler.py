"""Scaler Lambda: keeps each Function's workers at min(maximum_concurrency, outstanding jobs).

Invoked asynchronously by the API on submit (``{"function_id": ...}``) and every minute by an
EventBridge schedule (all Functions). ``run_pass`` is the control loop itself, and local mode's
daemon runs the same function every half second, so both run one loop: settle Functions whose
build event was lost (scheduled passes), drain dead-letter queues (no job left outstanding behind
a dead letter), announce completion (also for a stopped Function whose jobs were all cancelled),
and scale the ready Functions; then apply pages of background bulk operations
(``services.operations``) for at most ``operation_seconds``.

Passes overlap (one invocation per submit plus the schedule): the stack reserves one concurrent
execution for the scaler, and each Function's pass holds a lease (``services.lease``), so two
passes never both start the same shortfall.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from geobatch.wire import errors
from geobatch.wire.models import FunctionStatus, JobStatus
from geobatch_core import wiring
from geobatch_core.records import FunctionRecord
from geobatch_core.services import operations, scaling
from geobatch_core.services.context import Services
from geobatch_core.services.dead_letters import drain_dead_letters
from geobatch_core.services.iterate import all_functions
from geobatch_core.services.lease import scaling_lease
from geobatch_ops.build_events import reconcile_builds

logger = Logger(service="geobatch-scaler")
metrics = Metrics(namespace="GeoBatch", service="geobatch-scaler")


@dataclass
class PassReport:
    started: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    running: int = 0
    completed: int = 0
    reconciled: int | None = None  # None: not a scheduled pass (builds were not looked at)
    failed: dict[str, str] = field(default_factory=dict)  # Function id → why its steps failed
    operation_pages: int = 0  # pages of background bulk operations applied


def functions_of_pass(svc: Services, function_id: str | None) -> Iterable[FunctionRecord]:
    if not function_id:
        return list(all_functions(svc, None))
    try:
        return [svc.functions.get(function_id)]
    except errors.NotFoundError:
        return []


# Of the scaler's 60 s timeout, what bulk operations may use per pass (local mode passes more often
# and gives them less, so its scaling never waits long behind a large cancel).
OPERATION_SECONDS = 20.0


def run_pass(
    svc: Services, function_id: str | None = None, *, operation_seconds: float = OPERATION_SECONDS
) -> PassReport:
    """One pass of the control loop over one Function (a submit's wake-up) or all of them."""
    report = PassReport()
    functions = functions_of_pass(svc, function_id)
    if not function_id:
        report.reconciled = settle_builds(svc, functions)
    for function in functions:
        try:
            step_function(svc, function, report)
        except Exception as exc:  # one Function's failure must not starve the others of workers
            logger.exception("scaler pass failed for a Function", extra={"function_id": function.id})
            report.failed[function.id] = f"{type(exc).__name__}: {exc}"
    try:
        report.operation_pages = operations.run_operations(svc, seconds=operation_seconds, wake=True)
    except errors.GeoBatchError as exc:  # e.g. throttled: the operations resume next pass
        logger.warning("bulk operations not advanced", extra={"why": exc.message})
    return report


def settle_builds(svc: Services, functions: Iterable[FunctionRecord]) -> int:
    """The scheduled pass also settles builds whose end event was lost."""
    try:
        return reconcile_builds(svc, functions, svc.clock())
    except errors.GeoBatchError as exc:  # e.g. CodeBuild throttled: scale now, reconcile next tick
        logger.warning("could not reconcile builds", extra={"why": exc.message})
        return 0


def step_function(svc: Services, function: FunctionRecord, report: PassReport) -> None:
    """The pass's steps for one Function, in order."""
    if function.status == FunctionStatus.READY.value:
        # One pass per Function at a time: overlapping passes would both start the same shortfall.
        with scaling_lease(svc, function) as held:
            if not held:
                return
            report.dead_letters += drain_dead_letters(svc, function)
            report.started[function.id] = scaling.scale_function(svc, function)
        report.running += svc.executor.running_workers(function)
        return
    # Not ready (stopped, rebuilding): no workers to scale, but a dead letter still ends its job
    # (conditional writes make a concurrent drain harmless), and a busy period that ended (every
    # job cancelled) still gets its one completion event.
    report.dead_letters += drain_dead_letters(svc, function)
    if function.active and not any_outstanding(svc, function):
        report.completed += scaling.announce_completion(svc, function)


def any_outstanding(svc: Services, function: FunctionRecord, page: int = 200) -> bool:
    """Whether a job of the Function is still outstanding: newest first, where outstanding jobs
    are, stopping at the first one. A stopped Function holding a whole map of pending jobs costs
    one small read per pass, not a count of every job (which is what slowed submission to a
    stopped Function as its jobs grew)."""
    outstanding = {s.value for s in JobStatus.outstanding()}
    start = None
    while True:
        jobs, start = svc.jobs.query(
            function.id, start=start, limit=page, newest_first=True, projection=["status"]
        )
        if any(j.status in outstanding for j in jobs):
            return True
        if not start:
            return False


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    report = run_pass(wiring.services(), (event or {}).get("function_id"))
    if report.failed:  # after every other Function had its pass: the Lambda's error alarm sees it
        raise errors.ServiceError(f"the scaler pass failed for Functions {report.failed}")
    if report.reconciled is not None:
        metrics.add_metric(name="BuildsReconciled", unit=MetricUnit.Count, value=report.reconciled)
    metrics.add_metric(name="WorkersStarted", unit=MetricUnit.Count, value=sum(report.started.values()))
    metrics.add_metric(name="RunningWorkers", unit=MetricUnit.Count, value=report.running)
    metrics.add_metric(name="DeadLetterMessages", unit=MetricUnit.Count, value=report.dead_letters)
    metrics.add_metric(name="OperationPages", unit=MetricUnit.Count, value=report.operation_pages)
    logger.info("scaled", extra={"started": report.started, "dead_letters": report.dead_letters})
    return {"started": report.started, "dead_letters": report.dead_letters}
