"""The operations Lambdas of ``Execution``: the scaler (every minute and on submit) and the Batch
job-state handler (a worker ended), each with its event rule; children of the ``Execution`` construct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from stacks.image_build import ImageBuild
from stacks.lambda_factory import LambdaFactory
from stacks.state import State
from stacks.storage import BUILDS, Storage

if TYPE_CHECKING:
    from stacks.execution import Execution


class Parts(NamedTuple):
    """What the operations Lambdas are wired to."""

    storage: Storage
    state: State
    image_build: ImageBuild
    factory: LambdaFactory


def _ops_function(
    execution: Execution, parts: Parts, construct_id: str, *, module: str, service: str, **options: Any
) -> lambda_.Function:
    """The Lambda of ``geobatch_ops.<module>.handler`` (60 s timeout) with the control plane's grants."""
    function = parts.factory.create(
        execution,
        construct_id,
        handler=f"geobatch_ops.{module}.handler",
        service=service,
        timeout=Duration.seconds(60),
        **options,
    )
    execution.grant_control_plane(function, state=parts.state, storage=parts.storage)
    return function


def scaler(execution: Execution, parts: Parts) -> tuple[lambda_.Function, events.Rule]:
    """The scaler and its schedule: every minute and on submit (the API invokes it asynchronously)."""
    storage, image_build = parts.storage, parts.image_build
    function = _ops_function(
        execution,
        parts,
        "Scaler",
        module="scaler",
        service="geobatch-scaler",
        description="GeoBatch: starts workers up to min(concurrency, pending jobs); queue metrics",
        function_name=execution.scaler_function_name,
        reserved_concurrency=execution.config.scaler_reserved_concurrency or None,
    )
    # The scheduled pass settles Functions whose build event was lost (geobatch_ops.build_events).
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["codebuild:BatchGetBuilds"], resources=[image_build.project.project_arn])
    )
    storage.grant_objects(function, read=[BUILDS], write=[BUILDS])
    # The scaler announces "GeoBatch Function Completed" on the default event bus.
    bus = Stack.of(execution).format_arn(service="events", resource="event-bus", resource_name="default")
    function.add_to_role_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus]))
    schedule = events.Rule(
        execution,
        "ScalerSchedule",
        description="GeoBatch scaler tick",
        schedule=events.Schedule.rate(Duration.minutes(1)),
        targets=[targets.LambdaFunction(function, retry_attempts=0)],  # the next tick retries
    )
    return function, schedule


def batch_events(execution: Execution, parts: Parts) -> tuple[lambda_.Function, events.Rule]:
    """A worker job ended: record lost workers and OOM kills on the jobs they held."""
    image_build = parts.image_build
    function = _ops_function(
        execution,
        parts,
        "BatchEvents",
        module="batch_events",
        service="geobatch-batch-events",
        description="GeoBatch: handles the end of a worker (Batch job state change)",
        dead_letter_queue=image_build.dead_letters,
    )
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[execution.worker_log_streams])
    )
    # It wakes the scaler to replace a dead worker (geobatch_core.wiring.scaler_invoker).
    execution.scaler.grant_invoke(function)
    rule = events.Rule(
        execution,
        "BatchStateRule",
        description="GeoBatch worker finished",
        event_pattern=events.EventPattern(
            source=["aws.batch"],
            detail_type=["Batch Job State Change"],
            detail={"jobQueue": [execution.job_queue.job_queue_arn], "status": ["FAILED", "SUCCEEDED"]},
        ),
        targets=[
            targets.LambdaFunction(function, retry_attempts=10, dead_letter_queue=image_build.dead_letters)
        ],
    )
    return function, rule
