"""Build-state Lambda: a CodeBuild build ended → the Function becomes ready/stopped or build_failed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from geobatch_api import context
from geobatch_core import errors, layout
from geobatch_core.adapters.codebuild import parse_build_event
from geobatch_core.services.functions import finish_build

logger = Logger(service="geobatch-build-events")
metrics = Metrics(namespace="GeoBatch", service="geobatch-build-events")


def build_summary(outcome: Any) -> str:
    lines = [f"build {outcome.build_id}: {outcome.status}"]
    if outcome.phase_failure:
        lines.append(f"failed phase: {outcome.phase_failure}")
    if outcome.log_link:
        lines.append(f"full log: {outcome.log_link}")
    return "\n".join(lines) + "\n"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    outcome = parse_build_event(event)
    if not outcome.finished or not outcome.function_id:
        return {"ignored": outcome.status}
    svc = context.services()
    image_uri = svc.builder.image_uri(outcome.image_tag) if outcome.succeeded and outcome.image_tag else None
    # CodeBuild copies the docker output to the build log key; keep it and add the outcome.
    try:
        docker_output = svc.blobs.get(layout.build_log_key(outcome.function_id)).decode("utf-8", "replace")
    except errors.NotFoundError:
        docker_output = ""
    log_text = docker_output + build_summary(outcome)
    try:
        finish_build(
            svc,
            outcome.function_id,
            succeeded=outcome.succeeded,
            image_uri=image_uri,
            log=log_text,
            reason=""
            if outcome.succeeded
            else f"the image build {outcome.status.lower()}: {outcome.phase_failure}",
        )
    except (errors.NotFoundError, errors.ConflictError) as exc:
        # Deleted meanwhile, or a duplicate event after the Function already moved on.
        logger.info("build event ignored", extra={"function_id": outcome.function_id, "why": exc.message})
        return {"ignored": exc.message}
    name = "BuildsSucceeded" if outcome.succeeded else "BuildsFailed"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return {"function_id": outcome.function_id, "status": outcome.status}
