"""The workers' permissions boundary (the most any per-Function worker role may do) and the execution
role ECS starts their containers with; children of the ``Execution`` construct.

Each Function's workers get a role of their own, created at runtime by the control plane and scoped to
that Function (see geobatch_core.adapters.worker_roles); the boundary defined here caps them all.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from geobatch.wire import data_access
from geobatch_core import layout
from stacks.config import GeoBatchConfig
from stacks.image_build import ImageBuild
from stacks.nag import suppress
from stacks.state import State
from stacks.storage import ARGS, BUNDLES, LOGS, RESULTS, Storage

QUEUE_ACTIONS_WORKER = [
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:SendMessage",
]

BOUNDARY_REASON = (
    "Permissions boundary of the per-Function worker roles (each role's own policy names its "
    "Function's queue, items and keys): SQS scoped to the stage's queue prefix, S3 to the "
    "bundles/, args/ (read) and results/, logs/ (write) prefixes, and to the data locations "
    "the operator allows (context data_access, s3:// prefixes); PutMetricData supports no "
    "resource, it is limited to the workers' own namespace by condition; sts:AssumeRole of "
    "the stage's data roles (role/geobatch/<prefix>-data-*, created at runtime)."
)
EXECUTION_REASON = (
    "ecr:GetAuthorizationToken supports no resource; log streams are created at runtime "
    "in the stack's worker log group."
)


def worker_roles(
    scope: Construct,
    *,
    config: GeoBatchConfig,
    storage: Storage,
    state: State,
    image_build: ImageBuild,
    queues: str,
    data_roles: str,
    log_streams: str,
) -> tuple[iam.ManagedPolicy, iam.Role]:
    """The worker roles' permissions boundary (what user code may at most do) and the execution role
    (what ECS needs to start the container). ``queues``, ``data_roles``, ``log_streams``: ARN patterns."""
    worker = boundary(
        scope, config=config, storage=storage, state=state, queues=queues, data_roles=data_roles
    )
    execution = iam.Role(
        scope,
        "WorkerExecutionRole",
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description="GeoBatch worker container start: pull the image, write container logs",
    )
    image_build.repository.grant_pull(execution)
    execution.add_to_policy(
        iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_streams])
    )
    for role, reason in ((worker, BOUNDARY_REASON), (execution, EXECUTION_REASON)):
        suppress(role, [{"id": "AwsSolutions-IAM5", "reason": reason}])
    return worker, execution


def boundary(
    scope: Construct, *, config: GeoBatchConfig, storage: Storage, state: State, queues: str, data_roles: str
) -> iam.ManagedPolicy:
    """The managed policy every worker role is created under: the most any worker role may ever do."""
    worker = iam.ManagedPolicy(
        scope,
        "WorkerBoundary",
        description="GeoBatch: the most a Function's worker role may do (permissions boundary)",
    )
    worker.add_statements(
        iam.PolicyStatement(actions=QUEUE_ACTIONS_WORKER, resources=[queues]),
        iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[state.functions.table_arn]),
        iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
            resources=[state.jobs.table_arn],
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[storage.bucket.arn_for_objects(f"{p}*") for p in (BUNDLES, ARGS)],
        ),
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[storage.bucket.arn_for_objects(f"{p}*") for p in (RESULTS, LOGS)],
        ),
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": layout.WORKER_METRICS_NAMESPACE}},
        ),
        # The worker hands its user code the Function's data role, and nothing else of STS.
        iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[data_roles]),
    )
    # The operator's data bound (cdk.json "data_access"): the most any Function may declare; the API
    # refuses a declaration outside it at save time, this makes IAM refuse it too.
    for statement in data_access.statements(config.data_bound, Stack.of(scope).partition, sid="Bound"):
        worker.add_statements(iam.PolicyStatement.from_json(statement))
    return worker
