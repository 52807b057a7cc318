"""What a control-plane Lambda needs to run Functions: the tables, the per-Function queues and job
definitions (created at runtime under the stage's name prefix), Batch, and the per-Function roles.

``Execution.grant_control_plane`` is the one way to grant it; the ARN patterns come from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import worker_iam
from stacks.nag import suppress
from stacks.state import State
from stacks.storage import ARGS, BUNDLES, LOGS, RESULTS, Storage

if TYPE_CHECKING:
    from stacks.execution import Execution

QUEUE_ACTIONS_CONTROL = [
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
    "sqs:UntagQueue",
    "sqs:ListQueueTags",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue",
]

CONTROL_PLANE_REASON = (
    "Per-Function SQS queues and job definitions are created at runtime, so access "
    "is scoped to the stage prefix (sqs:...:<prefix>-*, job-definition/<prefix>-*); "
    "S3 access to key prefixes; DynamoDB to the tables' indexes; "
    "batch:ListJobs/DescribeJobs and X-Ray support no resource-level permissions; "
    "TerminateJob needs job/* (job ids are random); worker roles are created per "
    "Function at runtime under role/geobatch/<prefix>-fn-*, only with the worker "
    "permissions boundary, and data roles under role/geobatch/<prefix>-data-*, only "
    "with the data boundary."
)


def grant_control_plane(
    execution: Execution, grantee: iam.IGrantable, *, state: State, storage: Storage
) -> None:
    """Tables, bucket prefixes, per-Function queues, Batch and role management, to ``grantee``."""
    state.functions.grant_read_write_data(grantee)
    state.jobs.grant_read_write_data(grantee)
    storage.grant_objects(
        grantee,
        read=[BUNDLES, ARGS, RESULTS, LOGS],
        # results/: a job deleted without its result first copies a small one out of its item.
        write=[ARGS, LOGS, RESULTS],
        delete=[BUNDLES, ARGS, RESULTS, LOGS],
        list_=[ARGS, RESULTS, LOGS],
    )
    principal = grantee.grant_principal
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=QUEUE_ACTIONS_CONTROL, resources=[execution.queue_arn_pattern])
    )
    _grant_batch(execution, principal)
    worker_iam.grant_role_management(
        principal,
        worker_roles=execution.worker_role_arn_pattern,
        worker_boundary=execution.worker_boundary,
        data_roles=execution.data_role_arn_pattern,
        data_boundary=execution.data_boundary,
        execution_role=execution.execution_role,
    )
    if isinstance(grantee, Construct):
        suppress(grantee, [{"id": "AwsSolutions-IAM5", "reason": CONTROL_PLANE_REASON}])


def _grant_batch(execution: Execution, principal: iam.IPrincipal) -> None:
    """Job definitions (per Function, by name prefix), submission to the one job queue, ending jobs."""
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["batch:RegisterJobDefinition", "batch:DeregisterJobDefinition", "batch:TagResource"],
            resources=[execution.job_definition_arn_pattern],
        )
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["batch:SubmitJob"],
            resources=[execution.job_definition_arn_pattern, execution.job_queue.job_queue_arn],
        )
    )
    jobs = Stack.of(execution).format_arn(
        service="batch", resource="job", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["batch:TerminateJob", "batch:CancelJob"], resources=[jobs])
    )
    # ListJobs / DescribeJobs / DescribeJobDefinitions support no resource-level permissions.
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["batch:ListJobs", "batch:DescribeJobs", "batch:DescribeJobDefinitions"],
            resources=["*"],
        )
    )
