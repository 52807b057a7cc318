"""Execution: network, AWS Batch compute, worker roles, the scaler and the Batch job-state handler.

Workers are Batch jobs in one job queue; each Function has its own job definition and SQS queue,
both created at runtime by the control plane under the name prefix ``config.name_prefix``. That
prefix is what the IAM statements below are scoped to.

Network: by default a new VPC with public subnets only and no NAT gateway (a NAT costs more per
month than many small batch runs); Fargate tasks get a public IP and reach S3/DynamoDB through
free gateway endpoints. ``-c vpc_id=vpc-...`` uses an existing VPC instead (its private subnets
with egress if it has any, otherwise its public subnets).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from geobatch.wire import data_access
from geobatch_core import layout
from stacks import worker_iam
from stacks.config import GeoBatchConfig
from stacks.image_build import ImageBuild
from stacks.lambda_factory import LambdaFactory, retention
from stacks.nag import suppress
from stacks.state import State
from stacks.storage import ARGS, BUILDS, BUNDLES, LOGS, RESULTS, Storage

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
QUEUE_ACTIONS_WORKER = [
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:SendMessage",
]


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
        self.vpc, subnets = self._network(config)
        self._batch(config, subnets)
        self._worker_logs_and_roles(config, stack, storage, state, image_build)
        self.scaler = self._scaler(config, stack, storage, state, image_build, factory)
        self.batch_events = self._batch_events(storage, state, image_build, factory)

    def _batch(self, config: GeoBatchConfig, subnets: ec2.SubnetSelection) -> None:
        """The workers' security group, the compute environment and the job queue."""
        self.security_group = ec2.SecurityGroup(
            self,
            "Workers",
            vpc=self.vpc,
            description="GeoBatch workers: no inbound traffic, outbound to AWS APIs and data sources",
            allow_all_outbound=True,
        )
        self.compute_environment = self._compute_environment(config, subnets)
        self.job_queue = batch.JobQueue(
            self,
            "JobQueue",
            priority=1,
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute_environment, order=1)
            ],
        )

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
        self.worker_boundary, self.execution_role = self._worker_roles(stack, storage, state, image_build)
        self.data_boundary = worker_iam.data_boundary(self, config, storage)

    def _scaler(
        self,
        config: GeoBatchConfig,
        stack: Stack,
        storage: Storage,
        state: State,
        image_build: ImageBuild,
        factory: LambdaFactory,
    ) -> lambda_.Function:
        """The scaler: every minute and on submit (the API invokes it asynchronously)."""
        scaler = factory.create(
            self,
            "Scaler",
            handler="geobatch_ops.scaler.handler",
            service="geobatch-scaler",
            description="GeoBatch: starts workers up to min(concurrency, pending jobs); queue metrics",
            timeout=Duration.seconds(60),
            function_name=self.scaler_function_name,
            reserved_concurrency=config.scaler_reserved_concurrency or None,
        )
        self.grant_control_plane(scaler, state=state, storage=storage)
        # The scheduled pass settles Functions whose build event was lost (geobatch_ops.build_events).
        scaler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codebuild:BatchGetBuilds"], resources=[image_build.project.project_arn]
            )
        )
        storage.grant_objects(scaler, read=[BUILDS], write=[BUILDS])
        # The scaler announces "GeoBatch Function Completed" on the default event bus.
        scaler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[stack.format_arn(service="events", resource="event-bus", resource_name="default")],
            )
        )
        self.schedule = events.Rule(
            self,
            "ScalerSchedule",
            description="GeoBatch scaler tick",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[targets.LambdaFunction(scaler, retry_attempts=0)],  # the next tick retries
        )
        return scaler

    def _batch_events(
        self, storage: Storage, state: State, image_build: ImageBuild, factory: LambdaFactory
    ) -> lambda_.Function:
        """A worker job ended: record lost workers and OOM kills on the jobs they held."""
        batch_events = factory.create(
            self,
            "BatchEvents",
            handler="geobatch_ops.batch_events.handler",
            service="geobatch-batch-events",
            description="GeoBatch: handles the end of a worker (Batch job state change)",
            timeout=Duration.seconds(60),
            dead_letter_queue=image_build.dead_letters,
        )
        self.grant_control_plane(batch_events, state=state, storage=storage)
        batch_events.add_to_role_policy(
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[self.worker_log_streams])
        )
        # It wakes the scaler to replace a dead worker (geobatch_core.wiring.scaler_invoker).
        self.scaler.grant_invoke(batch_events)
        self.batch_rule = events.Rule(
            self,
            "BatchStateRule",
            description="GeoBatch worker finished",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"jobQueue": [self.job_queue.job_queue_arn], "status": ["FAILED", "SUCCEEDED"]},
            ),
            targets=[
                targets.LambdaFunction(
                    batch_events, retry_attempts=10, dead_letter_queue=image_build.dead_letters
                )
            ],
        )
        return batch_events

    @property
    def scaler_function_name(self) -> str:
        """A fixed name: the API's environment names the scaler, and the scaler's own environment may not
        reference itself (a CloudFormation dependency cycle)."""
        return f"{self.config.name_prefix}-scaler"

    @property
    def platform(self) -> str:
        return "FARGATE" if self.config.is_fargate else "EC2"

    # ------------------------------------------------------------------ grants

    def grant_control_plane(self, grantee: iam.IGrantable, *, state: State, storage: Storage) -> None:
        """What a control-plane Lambda needs to run Functions: tables, per-Function queues and Batch."""
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
            iam.PolicyStatement(actions=QUEUE_ACTIONS_CONTROL, resources=[self.queue_arn_pattern])
        )
        stack = Stack.of(self)
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:RegisterJobDefinition", "batch:DeregisterJobDefinition", "batch:TagResource"],
                resources=[self.job_definition_arn_pattern],
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:SubmitJob"],
                resources=[self.job_definition_arn_pattern, self.job_queue.job_queue_arn],
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:TerminateJob", "batch:CancelJob"],
                resources=[
                    stack.format_arn(
                        service="batch",
                        resource="job",
                        resource_name="*",
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            )
        )
        # ListJobs / DescribeJobs / DescribeJobDefinitions support no resource-level permissions.
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:ListJobs", "batch:DescribeJobs", "batch:DescribeJobDefinitions"],
                resources=["*"],
            )
        )
        worker_iam.grant_role_management(
            principal,
            worker_roles=self.worker_role_arn_pattern,
            worker_boundary=self.worker_boundary,
            data_roles=self.data_role_arn_pattern,
            data_boundary=self.data_boundary,
            execution_role=self.execution_role,
        )
        if isinstance(grantee, Construct):
            suppress(
                grantee,
                [
                    {
                        "id": "AwsSolutions-IAM5",
                        "reason": (
                            "Per-Function SQS queues and job definitions are created at runtime, so access "
                            "is scoped to the stage prefix (sqs:...:<prefix>-*, job-definition/<prefix>-*); "
                            "S3 access to key prefixes; DynamoDB to the tables' indexes; "
                            "batch:ListJobs/DescribeJobs and X-Ray support no resource-level permissions; "
                            "TerminateJob needs job/* (job ids are random); worker roles are created per "
                            "Function at runtime under role/geobatch/<prefix>-fn-*, only with the worker "
                            "permissions boundary, and data roles under role/geobatch/<prefix>-data-*, only "
                            "with the data boundary."
                        ),
                    }
                ],
            )

    # ------------------------------------------------------------------ parts

    def _network(self, config: GeoBatchConfig) -> tuple[ec2.IVpc, ec2.SubnetSelection]:
        if config.vpc_id:
            vpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=config.vpc_id)
            if vpc.private_subnets:
                return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=3,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20)
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)

    def _compute_environment(
        self, config: GeoBatchConfig, subnets: ec2.SubnetSelection
    ) -> batch.IManagedComputeEnvironment:
        spot = config.compute_type in ("FARGATE_SPOT", "SPOT")
        if config.is_fargate:
            return batch.FargateComputeEnvironment(
                self,
                "Compute",
                vpc=self.vpc,
                vpc_subnets=subnets,
                security_groups=[self.security_group],
                spot=spot,
                maxv_cpus=config.max_vcpus,
            )
        environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "Compute",
            vpc=self.vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            launch_template=worker_iam.instance_template(self),
            spot=spot,
            minv_cpus=0,
            maxv_cpus=config.max_vcpus,
            use_optimal_instance_classes=True,
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
        )
        suppress(
            environment,
            [
                {
                    "id": "AwsSolutions-IAM4",
                    "reason": "AmazonEC2ContainerServiceforEC2Role is the documented "
                    "instance role policy of ECS container instances in a Batch EC2 compute environment.",
                    "findings": [
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
                    ],
                },
            ],
        )
        return environment

    def _worker_roles(
        self, stack: Stack, storage: Storage, state: State, image_build: ImageBuild
    ) -> tuple[iam.ManagedPolicy, iam.Role]:
        """The worker roles' permissions boundary (what user code may at most do) and the execution role
        (what ECS needs to start the container)."""
        # Each Function's workers get a role of their own, created at runtime by the control plane
        # and scoped to that Function (see geobatch_core.adapters.worker_roles). This managed policy
        # is their permissions boundary: the most any worker role may ever do.
        worker = iam.ManagedPolicy(
            self,
            "WorkerBoundary",
            description="GeoBatch: the most a Function's worker role may do (permissions boundary)",
        )
        worker.add_statements(
            iam.PolicyStatement(actions=QUEUE_ACTIONS_WORKER, resources=[self.queue_arn_pattern]),
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
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self.data_role_arn_pattern]),
        )
        # The operator's data bound (cdk.json "data_access"): the most any Function may declare; the API
        # refuses a declaration outside it at save time, this makes IAM refuse it too.
        for statement in data_access.statements(self.config.data_bound, stack.partition, sid="Bound"):
            worker.add_statements(iam.PolicyStatement.from_json(statement))
        execution = iam.Role(
            self,
            "WorkerExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="GeoBatch worker container start: pull the image, write container logs",
        )
        image_build.repository.grant_pull(execution)
        execution.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.worker_log_streams],
            )
        )
        for role, reason in (
            (
                worker,
                "Permissions boundary of the per-Function worker roles (each role's own policy names its "
                "Function's queue, items and keys): SQS scoped to the stage's queue prefix, S3 to the "
                "bundles/, args/ (read) and results/, logs/ (write) prefixes, and to the data locations "
                "the operator allows (context data_access, s3:// prefixes); PutMetricData supports no "
                "resource, it is limited to the workers' own namespace by condition; sts:AssumeRole of "
                "the stage's data roles (role/geobatch/<prefix>-data-*, created at runtime).",
            ),
            (
                execution,
                "ecr:GetAuthorizationToken supports no resource; log streams are created at runtime "
                "in the stack's worker log group.",
            ),
        ):
            suppress(role, [{"id": "AwsSolutions-IAM5", "reason": reason}])
        return worker, execution
