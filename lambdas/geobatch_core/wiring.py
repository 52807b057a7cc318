"""The composition root: the one place ``Services`` is assembled, for every deployable and mode.

- ``compose(stores, executor=..., builder=...)``: Services from its ports. The Lambdas (through
  ``services_from_env``), local mode, the tests and the benchmarks all assemble theirs here.
- ``services_from_env(environ)``: the control plane of a deployed stack (DynamoDB, SQS, S3, AWS
  Batch, CodeBuild, IAM, EventBridge), from a Lambda's environment.
- ``services()`` / ``configure(...)``: the ports of this Lambda container (API and ops Lambdas alike),
  built from the environment on first use, or injected by local mode and tests.

The worker builds only its state ports (``adapters.environment``): it does not import this module.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from geobatch.wire import env
from geobatch_core.adapters.aws_errors import error_code
from geobatch_core.adapters.environment import Stores, settings_from_env, stores_from_env
from geobatch_core.ports import EventPublisher, Executor, ImageBuilder
from geobatch_core.services.context import Services, Settings, utcnow
from geobatch_core.services.functions import build_reporter
from geobatch_core.services.pacing import SubmitPacer

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_lambda import LambdaClient

__all__ = ["compose", "configure", "services", "services_from_env"]

log = logging.getLogger("geobatch.wiring")


@runtime_checkable
class ReportsBuilds(Protocol):
    """A builder that reports the end of its builds itself (local builds); CodeBuild's end arrives
    as an EventBridge event instead (``geobatch_ops.build_events``)."""

    on_done: Callable[[str, bool, str | None, str, str], None] | None


def compose(
    stores: Stores,
    *,
    executor: Executor,
    builder: ImageBuilder,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_submit: Callable[[str], None] | None = None,
    events: EventPublisher | None = None,
) -> Services:
    """The Services of these ports; a builder that reports its own builds is wired to record them."""
    svc = Services(
        functions=stores.functions,
        jobs=stores.jobs,
        queue=stores.queue,
        blobs=stores.blobs,
        executor=executor,
        builder=builder,
        settings=settings or Settings(),
        clock=clock,
        on_submit=on_submit,
        events=events,
    )
    if isinstance(builder, ReportsBuilds):
        builder.on_done = _logged(build_reporter(svc))
    return svc


def _logged(report: Callable[[str, bool, str | None, str, str], None]) -> Callable[..., None]:
    def build_done(function_id: str, ok: bool, image_uri: str | None, build_log: str, reason: str) -> None:
        try:
            report(function_id, ok, image_uri, build_log, reason)
        except Exception:  # the builder's thread has no caller to tell: say so in the log
            log.exception("could not record the end of the build of %s", function_id)

    return build_done


# ----------------------------------------------------------------------------- a deployed stack


def services_from_env(environ: Mapping[str, str], session: Session | None = None) -> Services:
    """The control plane's ports, from a Lambda's environment."""
    from geobatch_core.adapters.batch import BatchExecutor
    from geobatch_core.adapters.codebuild import CodeBuildImageBuilder
    from geobatch_core.adapters.events import EventBridgePublisher

    session = session or boto3.session.Session()
    stores = stores_from_env(environ, session)
    executor = BatchExecutor(
        session.client("batch"),
        job_queue=environ[env.BATCH_JOB_QUEUE],
        job_definition_prefix=environ[env.BATCH_JOB_DEFINITION_PREFIX],
        worker_role_arn=environ.get(env.WORKER_ROLE_ARN),
        roles=worker_roles(session, environ),
        execution_role_arn=environ[env.WORKER_EXECUTION_ROLE_ARN],
        environment=worker_environment(environ),
        platform="EC2" if environ.get(env.BATCH_PLATFORM) == "EC2" else "FARGATE",
        log_group=environ.get(env.WORKER_LOG_GROUP),
        pacer=SubmitPacer(stores.jobs, clock=utcnow),
    )
    builder = CodeBuildImageBuilder(
        session.client("codebuild"),
        session.client("ecr"),
        project_name=environ[env.CODEBUILD_PROJECT],
        repository_uri=environ[env.ECR_REPOSITORY_URI],
    )
    return compose(
        stores,
        executor=executor,
        builder=builder,
        settings=settings_from_env(environ),
        on_submit=scaler_invoker(session.client("lambda"), environ.get(env.SCALER_FUNCTION)),
        events=EventBridgePublisher(session.client("events"), environ.get(env.EVENT_BUS, "default")),
    )


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What every worker container needs to find the stack's state (the Function adds its own)."""
    keys = (env.FUNCTIONS_TABLE, env.JOBS_TABLE, env.BUCKET, env.LOST_WORKER_SECONDS, env.QUEUE_PREFIX)
    return {k: environ[k] for k in keys if k in environ}


def worker_roles(session: Any, environ: Mapping[str, str]) -> Any:
    """A role per Function when the stack gives a permissions boundary (it does); else None."""
    from geobatch_core.adapters.worker_roles import WorkerRoles

    boundary = environ.get(env.WORKER_PERMISSIONS_BOUNDARY)
    if not boundary:
        return None
    return WorkerRoles(
        session.client("iam"),
        name_prefix=environ[env.BATCH_JOB_DEFINITION_PREFIX],
        permissions_boundary_arn=boundary,
        functions_table_arn=environ[env.FUNCTIONS_TABLE_ARN],
        jobs_table_arn=environ[env.JOBS_TABLE_ARN],
        bucket=environ[env.BUCKET],
        data_boundary_arn=environ.get(env.WORKER_DATA_BOUNDARY),
    )


def scaler_invoker(lambda_client: LambdaClient, scaler_function: str | None) -> Callable[[str], None] | None:
    """Wake the scaler for one Function right after a submit (async; the schedule is the backstop)."""
    if not scaler_function:
        return None

    def invoke(function_id: str) -> None:
        # On failure the scheduled run starts the workers within a minute, so the caller's request
        # still succeeds; but the failure is logged, never silent: an AccessDenied here is a stack
        # misconfiguration that would otherwise only show as workers starting a minute late.
        try:
            lambda_client.invoke(
                FunctionName=scaler_function,
                InvocationType="Event",
                Payload=json.dumps({"function_id": function_id}).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            log.error(
                "could not wake the scaler %s for Function %s (%s): %s",
                scaler_function,
                function_id,
                code,
                exc,
            )

    return invoke


# ----------------------------------------------------------------------------- this container's ports

_services: Services | None = None


def configure(services: Services | None) -> Services | None:
    """Local mode and tests inject ready-made ports; ``None`` goes back to the environment.
    Returns the ports that were configured before, so a caller can put them back."""
    global _services
    previous, _services = _services, services
    return previous


def services() -> Services:
    """This container's ports: built from the environment on first use (or as configured)."""
    global _services
    if _services is None:
        _services = services_from_env(os.environ)
    return _services
