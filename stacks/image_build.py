"""Image build: an ECR repository, the CodeBuild project that builds Function images, and the
EventBridge rule that reports a build's end to the build_events Lambda.

The project's sources are three S3 assets (``batch_image/`` primary, ``lambdas/geobatch_core`` and
``sdk/geobatch`` secondary) instead of one asset of the repository root, so synthesis never walks
``.venv`` or ``node_modules``. The variables the API sets per build are the ``VAR_*`` names of
``geobatch_core.adapters.codebuild``.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from geobatch_core import build_names as cb
from stacks.config import GeoBatchConfig
from stacks.lambda_factory import REPO_ROOT, LambdaFactory, retention
from stacks.nag import suppress
from stacks.requirements import worker_requirements
from stacks.state import State
from stacks.storage import BUILDS, BUNDLES, Storage

# Caches, and what an editable install or a wheel build leaves beside the sources.
_EXCLUDE = ["**/__pycache__", "**/*.pyc", "*.egg-info", "build"]
# The image's runtime requirements: batch_image/pyproject.toml's, at constraints.txt's versions.
_WORKER_REQUIREMENTS = " ".join(worker_requirements())
_SECONDARY = {"core": "lambdas/geobatch_core", "sdk": "sdk/geobatch"}

# Runs with bash; ``set -e`` semantics come from CodeBuild (a failing command fails the phase).
BUILDSPEC = {
    "version": "0.2",
    "env": {"shell": "bash"},
    "phases": {
        "pre_build": {
            "commands": [
                'aws ecr get-login-password --region "$AWS_REGION" '
                '| docker login --username AWS --password-stdin "${REPOSITORY_URI%%/*}"',
                f'if aws ecr describe-images --repository-name "$REPOSITORY_NAME" '
                f'--image-ids imageTag="${cb.VAR_IMAGE_TAG}" >/dev/null 2>&1; '
                f'then echo "image ${cb.VAR_IMAGE_TAG} exists: nothing to build"; touch /tmp/skip; fi',
                # Assemble a context laid out like the repository, as batch_image/Dockerfile expects.
                "mkdir -p /tmp/ctx/batch_image /tmp/ctx/lambdas /tmp/ctx/sdk",
                'cp -R "$CODEBUILD_SRC_DIR"/. /tmp/ctx/batch_image/',
                'cp -R "$CODEBUILD_SRC_DIR_core" /tmp/ctx/lambdas/geobatch_core',
                'cp -R "$CODEBUILD_SRC_DIR_sdk" /tmp/ctx/sdk/geobatch',
                f'echo "${cb.VAR_REQUIREMENTS}" | base64 -d > /tmp/ctx/requirements.txt',
            ]
        },
        "build": {
            "commands": [
                # One bash block, so an existing image skips it; pipefail keeps docker's exit status.
                f"""if [ ! -f /tmp/skip ]; then
  set -o pipefail
  docker build -f /tmp/ctx/batch_image/Dockerfile --build-arg "PYTHON_VERSION=${{{cb.VAR_PYTHON}#python}}" \\
    --build-arg REQUIREMENTS=requirements.txt --build-arg "WORKER_REQUIREMENTS={_WORKER_REQUIREMENTS}" \\
    -t "$REPOSITORY_URI:${cb.VAR_IMAGE_TAG}" /tmp/ctx 2>&1 \\
    | tee /tmp/build.log \\
  && {{ docker push "$REPOSITORY_URI:${cb.VAR_IMAGE_TAG}" || aws ecr describe-images \\
    --repository-name "$REPOSITORY_NAME" --image-ids "imageTag=${cb.VAR_IMAGE_TAG}"; }}
fi
""",
            ]
        },
        # Tags are immutable: if a concurrent build of the same requirements pushed first, the push
        # fails and the describe-images fallback turns that into success.
        "post_build": {
            "commands": [
                # The user reads this through Function.build_log(); post_build runs after a failed build too.
                f"if [ -f /tmp/build.log ]; then aws s3 cp /tmp/build.log "
                f'"s3://$BUCKET/{BUILDS}${cb.VAR_FUNCTION_ID}.log" --only-show-errors; fi',
            ]
        },
    },
}


class ImageBuild(Construct):
    """ECR repository + CodeBuild project + build-state rule → build_events Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GeoBatchConfig,
        storage: Storage,
        state: State,
        factory: LambdaFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository = self._repository(config)
        self.project = self._project(config, storage)
        self.dead_letters = self._dead_letters()
        self.events_function = self._events_function(state, storage, factory)
        self.rule = self._rule()

    def _repository(self, config: GeoBatchConfig) -> ecr.Repository:
        return ecr.Repository(
            self,
            "Images",
            image_scan_on_push=True,
            # Tags are requirement hashes: an image never changes once pushed.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Drop untagged layers of interrupted pushes",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
            empty_on_delete=not config.is_prod,
        )

    def _project(self, config: GeoBatchConfig, storage: Storage) -> codebuild.Project:
        """The CodeBuild project that builds an image from the worker's sources and the requirements."""
        primary = s3_assets.Asset(self, "WorkerSource", path=str(REPO_ROOT / "batch_image"), exclude=_EXCLUDE)
        secondary = {
            name: s3_assets.Asset(self, f"{name.title()}Source", path=str(REPO_ROOT / path), exclude=_EXCLUDE)
            for name, path in _SECONDARY.items()
        }
        self.log_group = logs.LogGroup(
            self,
            "BuildLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        key = kms.Key(
            self, "BuildKey", enable_key_rotation=True, description="GeoBatch image build artifacts"
        )
        key.apply_removal_policy(RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY)
        project = codebuild.Project(
            self,
            "Builder",
            description="Builds GeoBatch Function images (worker runtime + requirements)",
            source=codebuild.Source.s3(bucket=primary.bucket, path=primary.s3_object_key),
            secondary_sources=[
                codebuild.Source.s3(bucket=asset.bucket, path=asset.s3_object_key, identifier=name)
                for name, asset in secondary.items()
            ],
            build_spec=codebuild.BuildSpec.from_object(BUILDSPEC),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.MEDIUM,
                privileged=True,  # docker build
            ),
            environment_variables={
                "REPOSITORY_URI": codebuild.BuildEnvironmentVariable(value=self.repository.repository_uri),
                "REPOSITORY_NAME": codebuild.BuildEnvironmentVariable(value=self.repository.repository_name),
                "BUCKET": codebuild.BuildEnvironmentVariable(value=storage.bucket.bucket_name),
                cb.VAR_IMAGE_TAG: codebuild.BuildEnvironmentVariable(value="latest-manual"),
                cb.VAR_REQUIREMENTS: codebuild.BuildEnvironmentVariable(value=""),
                cb.VAR_FUNCTION_ID: codebuild.BuildEnvironmentVariable(value="manual"),
                cb.VAR_PYTHON: codebuild.BuildEnvironmentVariable(value="python3.11"),
            },
            encryption_key=key,
            timeout=Duration.minutes(60),
            queued_timeout=Duration.hours(2),
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
        )
        self._grant_project(project, [primary, *secondary.values()], storage)
        return project

    def _grant_project(
        self, project: codebuild.Project, assets: list[s3_assets.Asset], storage: Storage
    ) -> None:
        """The project reads its sources, pushes to the repository and writes build logs."""
        for asset in assets:
            asset.grant_read(project)
        self.repository.grant_pull_push(project)
        project.add_to_role_policy(
            iam.PolicyStatement(actions=["ecr:DescribeImages"], resources=[self.repository.repository_arn])
        )
        storage.grant_objects(project, write=[BUILDS])
        suppress(
            project,
            [
                {"id": "AwsSolutions-CB3", "reason": "Privileged mode is required to run docker build."},
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "CDK asset grants (s3:GetObject*/List* on the asset bucket), CodeBuild report "
                    "groups and log streams created at runtime; the role can write S3 only under builds/*.",
                },
            ],
        )

    def _dead_letters(self) -> sqs.Queue:
        # The build's end → build_events Lambda (moves the Function to ready / build_failed). An event
        # that fails delivery (EventBridge's retries) or processing (Lambda's async retries) is kept
        # in this queue; either way the scaler's scheduled pass reconciles Functions left `building`.
        # (The batch-events rule and Lambda use it too.) SQS-managed encryption: EventBridge cannot
        # send to a queue under the AWS-managed aws/sqs KMS key.
        dead_letters = sqs.Queue(
            self,
            "EventsDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        suppress(
            dead_letters,
            [
                {
                    "id": "AwsSolutions-SQS3",
                    "reason": "The dead-letter queue of the build- and batch-state rules and Lambdas.",
                }
            ],
        )
        return dead_letters

    def _events_function(self, state: State, storage: Storage, factory: LambdaFactory) -> lambda_.Function:
        """The build_events Lambda: moves the Function to ready / build_failed."""
        function = factory.create(
            self,
            "BuildEvents",
            handler="geobatch_ops.build_events.handler",
            service="geobatch-build-events",
            description="GeoBatch: records the end of a Function image build",
            timeout=Duration.seconds(60),
            dead_letter_queue=self.dead_letters,
        )
        state.functions.grant_read_write_data(function)
        storage.grant_objects(function, read=[BUNDLES, BUILDS], write=[BUILDS])
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["codebuild:BatchGetBuilds"], resources=[self.project.project_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["logs:GetLogEvents", "logs:FilterLogEvents"],
                resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:log-stream:*"],
            )
        )
        return function

    def _rule(self) -> events.Rule:
        return events.Rule(
            self,
            "BuildStateRule",
            description="GeoBatch image build finished",
            event_pattern=events.EventPattern(
                source=["aws.codebuild"],
                detail_type=["CodeBuild Build State Change"],
                detail={
                    "project-name": [self.project.project_name],
                    "build-status": list(cb.TERMINAL_BUILD_STATUSES),
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.events_function, retry_attempts=10, dead_letter_queue=self.dead_letters
                )
            ],
        )
