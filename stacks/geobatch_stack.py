"""The GeoBatch stack: composes the capability constructs and wires the shared Lambda environment."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from geobatch.wire import env
from stacks.api import Api
from stacks.config import GeoBatchConfig
from stacks.execution import Execution
from stacks.image_build import ImageBuild
from stacks.lambda_factory import LambdaFactory
from stacks.monitoring import Monitoring
from stacks.state import State
from stacks.storage import BUILDS, BUNDLES, Storage


class GeoBatchStack(Stack):
    """Everything GeoBatch needs in one account and region, for one stage."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GeoBatchConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        factory = LambdaFactory(self, config=config)
        self.storage = Storage(self, "Storage", config=config)
        self.state = State(self, "State", config=config)
        self.image_build = ImageBuild(
            self, "ImageBuild", config=config, storage=self.storage, state=self.state, factory=factory
        )
        self.execution = Execution(
            self,
            "Execution",
            config=config,
            storage=self.storage,
            state=self.state,
            image_build=self.image_build,
            factory=factory,
        )
        self.api = Api(self, "Api", config=config, factory=factory)
        self._grant_api()
        factory.apply_environment(self.shared_environment())
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            rest_api=self.api.rest_api,
            functions=factory.functions,
            event_dead_letters=self.image_build.dead_letters,
        )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="GEOBATCH_API_URL for the SDK")
        CfnOutput(self, "BucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "DashboardUrl", value=self.monitoring.dashboard_url)

    def shared_environment(self) -> dict[str, str]:
        """The ``geobatch.wire.env`` settings of every Lambda (the worker's are in its job definition)."""
        execution, image_build = self.execution, self.image_build
        environment = {
            env.STAGE: self.config.stage,
            env.FUNCTIONS_TABLE: self.state.functions.table_name,
            env.JOBS_TABLE: self.state.jobs.table_name,
            env.BUCKET: self.storage.bucket.bucket_name,
            env.QUEUE_PREFIX: self.config.name_prefix,
            env.ADMIN_PRINCIPALS: ",".join(self.config.admin_principals),
            env.OWNERSHIP: self.config.ownership,
            env.EXECUTOR: "batch",
            env.IMAGE_BUILDER: "codebuild",
            env.BATCH_JOB_QUEUE: execution.job_queue.job_queue_arn,
            env.BATCH_JOB_DEFINITION_PREFIX: self.config.name_prefix,
            env.WORKER_PERMISSIONS_BOUNDARY: execution.worker_boundary.managed_policy_arn,
            env.WORKER_DATA_BOUNDARY: execution.data_boundary.managed_policy_arn,
            env.FUNCTIONS_TABLE_ARN: self.state.functions.table_arn,
            env.JOBS_TABLE_ARN: self.state.jobs.table_arn,
            env.WORKER_EXECUTION_ROLE_ARN: execution.execution_role.role_arn,
            env.CODEBUILD_PROJECT: image_build.project.project_name,
            env.ECR_REPOSITORY_URI: image_build.repository.repository_uri,
            env.EVENT_BUS: "default",
            env.LOG_RETENTION_DAYS: str(self.config.log_retention_days),
            env.LOST_WORKER_SECONDS: str(self.config.lost_worker_seconds),
            env.SCALER_FUNCTION: execution.scaler_function_name,
            # The executor registers job definitions for the compute environment's platform.
            env.BATCH_PLATFORM: execution.platform,
            # What Functions may declare as data_access (the worker boundary allows the same).
            env.DATA_ACCESS: json.dumps(self.config.data_bound, separators=(",", ":")),
            env.WORKER_LOG_GROUP: execution.worker_logs.log_group_name,
        }
        return environment

    def _grant_api(self) -> None:
        """The API runs the control plane (queues, job definitions, Batch) and presigns bundle/result URLs."""
        function = self.api.function
        self.execution.grant_control_plane(function, state=self.state, storage=self.storage)
        self.storage.grant_objects(function, read=[BUILDS], write=[BUNDLES], list_=[BUNDLES])
        self.execution.scaler.grant_invoke(function)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"],
                resources=[self.image_build.project.project_arn],
            )
        )
        self.image_build.repository.grant(function, "ecr:DescribeImages")
        # A finished build registers the Function's job definition and worker role, and wakes the
        # scaler: the build-state Lambda runs that part of the control plane too.
        build_events = self.image_build.events_function
        self.execution.grant_control_plane(build_events, state=self.state, storage=self.storage)
        self.execution.scaler.grant_invoke(build_events)
