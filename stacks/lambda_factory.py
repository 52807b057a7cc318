"""The one way GeoBatch makes a Lambda function: same runtime, tracing, logging and code asset.

All four Lambdas (API, scaler, build events, batch events) run the same code asset — the
packages under ``lambdas/``, the SDK's wire contract (``geobatch/wire``, with the lazy
``geobatch/__init__.py``; not the rest of the SDK) and their pip dependencies — and differ only in
handler, memory, timeout and the permissions their constructs grant them.

The asset is bundled *locally* (no Docker): ``PipLocalBundling`` copies the packages and runs
``pip install --platform manylinux2014_<arch> --only-binary=:all:``, so the wheels match Lambda's
Linux even when synthesizing on macOS. Tests skip bundling with the context
``{"aws:cdk:bundling-stacks": []}``. The asset's hash is ours (``asset_hash``): every file that
goes into it, so a change to the wire contract under ``sdk/`` re-bundles it too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, Duration, ILocalBundling, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from packaging.utils import canonicalize_name

from stacks.config import GeoBatchConfig
from stacks.nag import suppress
from stacks.requirements import lambda_requirements

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
LAMBDA_PACKAGES = ("geobatch_core", "geobatch_api", "geobatch_ops")
SDK_DIR = REPO_ROOT / "sdk" / "geobatch"
# From the SDK, only the wire contract: its package __init__ imports the rest lazily.
WIRE_FILES = ("__init__.py", "wire")
# Runtime dependencies of the Lambda code: geobatch-server's, from lambdas/pyproject.toml (the one
# list), with constraints.txt's versions, so the Lambdas run what the tests ran.
LAMBDA_REQUIREMENTS = lambda_requirements()
# What the Lambda Python runtime provides: boto3 and its dependencies (never bundled, see
# PipLocalBundling).
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
PYTHON_VERSION = "3.11"
METRICS_NAMESPACE = "GeoBatch"
_EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache", "*.egg-info", "build"]


def retention(days: int) -> logs.RetentionDays:
    """``logs.RetentionDays`` for a number of days (config.py validated it is one CloudWatch allows)."""
    by_days = {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        120: "FOUR_MONTHS",
        150: "FIVE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
        400: "THIRTEEN_MONTHS",
        545: "EIGHTEEN_MONTHS",
        731: "TWO_YEARS",
        1096: "THREE_YEARS",
        1827: "FIVE_YEARS",
        2192: "SIX_YEARS",
        2557: "SEVEN_YEARS",
        2922: "EIGHT_YEARS",
        3288: "NINE_YEARS",
        3653: "TEN_YEARS",
    }
    return getattr(logs.RetentionDays, by_days[days])


def asset_hash() -> str:
    """A digest of everything the Lambda asset is made of: the packages, the wire contract, the pins."""
    digest = hashlib.sha256()
    roots = [LAMBDAS_DIR / p for p in LAMBDA_PACKAGES] + [SDK_DIR / f for f in WIRE_FILES]
    files = [REPO_ROOT / "constraints.txt", REPO_ROOT / "pyproject.toml", LAMBDAS_DIR / "pyproject.toml"]
    for root in roots:
        files += [root] if root.is_file() else sorted(root.rglob("*.py"))
    for path in files:
        if path.exists():
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Bundle ``lambdas/`` without Docker: copy the packages, pip-install Linux wheels next to them.

    The Lambda runtime provides boto3 and its closure (``RUNTIME_PROVIDED``). Installing any of them
    into the asset would shadow the runtime's copy: aws-xray-sdk pulls botocore, and a bundled
    botocore without boto3 leaves the runtime's boto3 on a botocore of another version (and was 60%
    of the asset). So pip first resolves the requirements (a dry run, as for the real install), and
    then installs exactly the resolved packages minus the runtime's, with ``--no-deps``.
    """

    def __init__(
        self, source: Path, *, architecture: str, requirements: tuple[str, ...] = LAMBDA_REQUIREMENTS
    ):
        self.source = source
        self.platform = "manylinux2014_aarch64" if architecture == "arm64" else "manylinux2014_x86_64"
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        for package in LAMBDA_PACKAGES:
            shutil.copytree(
                self.source / package, out / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        (out / "geobatch").mkdir()
        shutil.copy2(SDK_DIR / "__init__.py", out / "geobatch" / "__init__.py")
        shutil.copytree(
            SDK_DIR / "wire", out / "geobatch" / "wire", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        subprocess.run([*self._pip(out), "--no-deps", *self.resolve(out)], check=True)
        return True  # True: CDK must not fall back to Docker

    def resolve(self, out: Path) -> list[str]:
        """``name==version`` of every package the requirements need on Lambda, minus the runtime's."""
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            command = [*self._pip(out), "--dry-run", "--ignore-installed", "--report", str(report)]
            subprocess.run([*command, *self.requirements], check=True)
            resolved = json.loads(report.read_text())["install"]
        pins = {canonicalize_name(r["metadata"]["name"]): r["metadata"]["version"] for r in resolved}
        return [
            f"{name}=={version}" for name, version in sorted(pins.items()) if name not in RUNTIME_PROVIDED
        ]

    def _pip(self, out: Path) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            self.platform,
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--only-binary=:all:",
            "--target",
            str(out),
        ]
        constraints = REPO_ROOT / "constraints.txt"
        if constraints.exists():
            command += ["--constraint", str(constraints)]
        return command


# Every GeoBatch Lambda runs the worker image's Python (cdk-nag would have the newest runtime).
PINNED_RUNTIME = {
    "id": "AwsSolutions-L1",
    "reason": "Pinned to python3.11, the version of the worker image and of the wheels the "
    "bundling installs; upgraded together with them.",
}


class LambdaFactory:
    """Makes every GeoBatch Lambda with the shared settings.

    The shared environment (``geobatch.wire.env`` keys → resource names) names resources of every
    construct, while the constructs create their Lambdas; so the stack calls
    ``apply_environment`` once, after all constructs exist.
    """

    def __init__(self, scope: Construct, *, config: GeoBatchConfig) -> None:
        self.config = config
        self.architecture = (
            lambda_.Architecture.ARM_64 if config.architecture == "arm64" else lambda_.Architecture.X86_64
        )
        self.runtime = lambda_.Runtime.PYTHON_3_11
        # One asset shared by all functions: bundled once, uploaded once.
        self.code = lambda_.Code.from_asset(
            str(LAMBDAS_DIR),
            exclude=_EXCLUDE,
            asset_hash=asset_hash(),
            bundling=BundlingOptions(
                # Only used if local bundling declined, which PipLocalBundling never does.
                image=self.runtime.bundling_image,
                local=PipLocalBundling(LAMBDAS_DIR, architecture=config.architecture),
                command=[
                    "bash",
                    "-c",
                    "echo 'Docker bundling is not supported; use local bundling' && exit 1",
                ],
            ),
        )
        self.functions: list[lambda_.Function] = []

    def create(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        service: str,
        description: str,
        memory_mb: int = 512,
        timeout: Duration | None = None,
        extra_environment: Mapping[str, str] | None = None,
        function_name: str | None = None,
        reserved_concurrency: int | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        """A Lambda running ``handler`` with its own role (logs only) and log group.

        ``dead_letter_queue`` receives asynchronous invocations (EventBridge targets) that failed
        all of Lambda's retries."""
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if self.config.is_prod else RemovalPolicy.DESTROY,
        )
        role = self._role(scope, construct_id, service, log_group)
        function = lambda_.Function(
            scope,
            construct_id,
            description=description,
            function_name=function_name,
            runtime=self.runtime,
            architecture=self.architecture,
            handler=handler,
            code=self.code,
            memory_size=memory_mb,
            timeout=timeout or Duration.seconds(30),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=dead_letter_queue,
            environment={
                **(extra_environment or {}),
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
            },
        )
        suppress(function, [PINNED_RUNTIME])
        self.functions.append(function)
        return function

    @staticmethod
    def _role(scope: Construct, construct_id: str, service: str, log_group: logs.LogGroup) -> iam.Role:
        """An explicit role instead of the AWSLambdaBasicExecutionRole managed policy, which allows
        writing to any log group; this one may write only to the function's own group."""
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"GeoBatch {service} Lambda",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:log-stream:*"],
            )
        )
        suppress(
            role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Log streams are created at runtime (':log-stream:*' of the function's own log "
                    "group) and X-Ray PutTraceSegments/PutTelemetryRecords support no resource scoping.",
                }
            ],
        )
        return role

    def apply_environment(self, environment: Mapping[str, str]) -> None:
        """Add the shared environment to every function made so far."""
        for function in self.functions:
            for key, value in environment.items():
                function.add_environment(key, value)
