"""Execution: network, AWS Batch compute, worker roles, the scaler and the Batch job-state handler.

Workers are Batch jobs in one job queue; each Function has its own job definition and SQS queue,
both created at runtime by the control plane under the name prefix ``config.name_prefix``. That
prefix is what the IAM statements are scoped to.

The parts live in sibling modules, each adding its constructs to this one (so their construct paths
and logical IDs are this construct's): ``compute`` (network, compute environment, job queue),
``worker_boundary`` (the worker roles' boundary, the execution role), ``control_grants`` (what the
control plane may do) and ``ops_lambdas`` (the scaler and the Batch job-state handler).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import compute, control_grants, ops_lambdas, worker_iam
from stacks.config import GeoBatchConfig
from stacks.image_build import ImageBuild
from stacks.lambda_factory import LambdaFactory, retention
from stacks.state import State
from stacks.storage import Storage
from stacks.worker_boundary import worker_roles


class Execution(Construct):
    """VPC, security group, Batch compute environment + job queue, worker roles, scaler, batch events."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GeoBatchConfig,
        storage: Storage,
        state: State,
        image_build: ImageBuild,
        factory: LambdaFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        stack = Stack.of(self)
        self.vpc, subnets = compute.network(self, config)
        self.security_group = compute.security_group(self, self.vpc)
        self.compute_environment = compute.compute_environment(
            self, config, self.vpc, subnets, self.security_group
        )
        self.job_queue = compute.job_queue(self, self.compute_environment)
        self._worker_logs_and_roles(config, stack, storage, state, image_build)
        parts = ops_lambdas.Parts(storage=storage, state=state, image_build=image_build, factory=factory)
        self.scaler, self.schedule = ops_lambdas.scaler(self, parts)
        self.batch_events, self.batch_rule = ops_lambdas.batch_events(self, parts)

    def _worker_logs_and_roles(
        self, config: GeoBatchConfig, stack: Stack, storage: Storage, state: State, image_build: ImageBuild
    ) -> None:
        """The ARN patterns of what workers own, their log group and their roles."""
        prefix = config.name_prefix
        self.queue_arn_pattern = stack.format_arn(service="sqs", resource=f"{prefix}-*")
        self.job_definition_arn_pattern = stack.format_arn(
            service="batch",
            resource="job-definition",
            resource_name=f"{prefix}-*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # Worker containers log here (the job definitions' awslogs options name it), not to Batch's
        # default /aws/batch/job, which no stack owns and which would keep logs forever.
        self.worker_logs = logs.LogGroup(
            self,
            "WorkerLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        self.worker_log_streams = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.worker_logs.log_group_name}:log-stream:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # Per-Function worker and data roles live under this path and these name prefixes (WorkerRoles).
        self.worker_role_arn_pattern = stack.format_arn(
            service="iam", region="", resource="role", resource_name=f"geobatch/{prefix}-fn-*"
        )
        self.data_role_arn_pattern = stack.format_arn(
            service="iam", region="", resource="role", resource_name=f"geobatch/{prefix}-data-*"
        )
        self.worker_boundary, self.execution_role = worker_roles(
            self,
            config=config,
            storage=storage,
            state=state,
            image_build=image_build,
            queues=self.queue_arn_pattern,
            data_roles=self.data_role_arn_pattern,
            log_streams=self.worker_log_streams,
        )
        self.data_boundary = worker_iam.data_boundary(self, config, storage)

    @property
    def scaler_function_name(self) -> str:
        """A fixed name: the API's environment names the scaler, and the scaler's own environment may not
        reference itself (a CloudFormation dependency cycle)."""
        return f"{self.config.name_prefix}-scaler"

    @property
    def platform(self) -> str:
        return "FARGATE" if self.config.is_fargate else "EC2"

    def grant_control_plane(self, grantee: iam.IGrantable, *, state: State, storage: Storage) -> None:
        """What a control-plane Lambda needs to run Functions: tables, per-Function queues and Batch."""
        control_grants.grant_control_plane(self, grantee, state=state, storage=storage)
