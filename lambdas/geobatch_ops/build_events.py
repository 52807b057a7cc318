"""Build-state Lambda: a CodeBuild build ended → the Function becomes ready/stopped or build_failed.

Every terminal build state counts (SUCCEEDED, FAILED, STOPPED, FAULT, TIMED_OUT). An event that
never arrives (its rule target failed past its retries and landed in the DLQ, or was lost) must not
leave the Function ``building`` forever: the scaler's scheduled pass calls ``reconcile_builds``,
which asks CodeBuild about builds older than ``RECONCILE_AFTER_SECONDS`` and applies the same
outcome the event would have.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from geobatch.wire import errors
from geobatch.wire.models import FunctionStatus
from geobatch_core import layout, wiring
from geobatch_core.adapters.codebuild import BuildOutcome, CodeBuildImageBuilder, parse_build_event
from geobatch_core.records import FunctionRecord
from geobatch_core.services.context import Services
from geobatch_core.services.functions import finish_build

logger = Logger(service="geobatch-build-events")
metrics = Metrics(namespace="GeoBatch", service="geobatch-build-events")
# A build event normally arrives within seconds of the build's end; past this age a `building`
# Function's build is looked up directly. Builds run for minutes, so this costs one BatchGetBuilds
# per scheduled tick while any build is running longer than this.
RECONCILE_AFTER_SECONDS = 600


def build_summary(outcome: Any) -> str:
    lines = [f"build {outcome.build_id}: {outcome.status}"]
    if outcome.phase_failure:
        lines.append(f"failed phase: {outcome.phase_failure}")
    if outcome.log_link:
        lines.append(f"full log: {outcome.log_link}")
    return "\n".join(lines) + "\n"


def apply_outcome(svc: Services, outcome: BuildOutcome) -> dict[str, Any]:
    """Move the outcome's Function out of ``building``; a duplicate or stale outcome changes nothing."""
    assert outcome.function_id is not None
    image_uri = svc.builder.image_uri(outcome.image_tag) if outcome.succeeded and outcome.image_tag else None
    # CodeBuild copies the docker output to the build log key; keep it and add the outcome.
    try:
        docker_output = svc.blobs.get(layout.build_log_key(outcome.function_id)).decode("utf-8", "replace")
    except errors.NotFoundError:
        docker_output = ""
    try:
        finish_build(
            svc,
            outcome.function_id,
            succeeded=outcome.succeeded,
            image_uri=image_uri,
            log=docker_output + build_summary(outcome),
            reason="" if outcome.succeeded else outcome.failure_reason,
        )
    except (errors.NotFoundError, errors.ConflictError) as exc:
        # Deleted meanwhile, or a duplicate event after the Function already moved on.
        logger.info("build outcome ignored", extra={"function_id": outcome.function_id, "why": exc.message})
        return {"ignored": exc.message}
    name = "BuildsSucceeded" if outcome.succeeded else "BuildsFailed"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return {"function_id": outcome.function_id, "status": outcome.status}


def _started(function: FunctionRecord) -> datetime:
    return datetime.fromisoformat(str(function.build_started or function.modified_date))


def reconcile_builds(svc: Services, functions: Iterable[FunctionRecord], now: datetime) -> int:
    """Settle every Function still ``building`` after the grace period: apply its finished build's
    outcome (the event was lost), or fail it if its build never started; returns how many moved on."""
    if not isinstance(svc.builder, CodeBuildImageBuilder):
        return 0  # local mode reports builds in-process; nothing can be lost
    cutoff = now - timedelta(seconds=RECONCILE_AFTER_SECONDS)
    stale = [f for f in functions if f.status == FunctionStatus.BUILDING.value and _started(f) < cutoff]
    outcomes = [
        *svc.builder.build_outcomes({f.build_id: f for f in stale if f.build_id}).values(),
        *(
            BuildOutcome(
                build_id="",
                status="FAULT",
                function_id=f.id,
                image_tag=f.image_hash,
                project_name=svc.builder.project_name,
                log_link=None,
                log_group=None,
                log_stream=None,
                phase_failure="the build never started (CodeBuild refused or did not answer StartBuild)",
            )
            for f in stale
            if not f.build_id
        ),
    ]
    moved = 0
    for outcome in outcomes:
        logger.warning("build event missed: reconciling", extra={"function_id": outcome.function_id})
        moved += "ignored" not in apply_outcome(svc, outcome)
    return moved


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    outcome = parse_build_event(event)
    if not outcome.finished or not outcome.function_id:
        return {"ignored": outcome.status}
    return apply_outcome(wiring.services(), outcome)
