"""Composition root for AWS: the ports of the deployed stack, built from a Lambda's environment."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from geobatch.wire import env
from geobatch.wire.data_access import Bound
from geobatch_core.adapters.batch import BatchExecutor
from geobatch_core.adapters.codebuild import CodeBuildImageBuilder
from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore
from geobatch_core.adapters.events import EventBridgePublisher
from geobatch_core.adapters.s3 import S3BlobStore
from geobatch_core.adapters.s3 import make_client as make_s3_client
from geobatch_core.adapters.sqs import SqsQueue
from geobatch_core.adapters.worker_roles import WorkerRoles
from geobatch_core.ports import FunctionStore, JobStore, Queue
from geobatch_core.services.context import Services, Settings, utcnow
from geobatch_core.services.pacing import SubmitPacer

log = logging.getLogger("geobatch.aws")


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    admins = frozenset(a.strip() for a in environ.get(env.ADMIN_PRINCIPALS, "").split(",") if a.strip())
    return Settings(
        queue_prefix=environ.get(env.QUEUE_PREFIX, "geobatch"),
        lost_worker_seconds=int(environ.get(env.LOST_WORKER_SECONDS, "120")),
        admins=admins,
        data_bound=Bound.from_json(environ.get(env.DATA_ACCESS)),
    )


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What every worker container needs to find the stack's state (the Function adds its own)."""
    keys = (env.FUNCTIONS_TABLE, env.JOBS_TABLE, env.BUCKET, env.LOST_WORKER_SECONDS, env.QUEUE_PREFIX)
    return {k: environ[k] for k in keys if k in environ}


def stores_from_env(
    environ: Mapping[str, str], session: Any = None
) -> tuple[FunctionStore, JobStore, Queue, S3BlobStore]:
    """The state ports every component needs: Functions, Jobs, queues and the bucket.

    Local mode's workers get ``GEOBATCH_LOCAL_STATE``: their Functions, Jobs and queues are then the
    daemon's SQLite file; blobs stay S3 (local mode's S3 endpoint), which user code writes to too.
    """
    session = session or boto3.session.Session()
    if environ.get(env.LOCAL_STATE):
        from geobatch_core.adapters.sqlite import open_state

        functions, jobs, queue = open_state(environ[env.LOCAL_STATE])
        return functions, jobs, queue, S3BlobStore(make_s3_client(session), environ[env.BUCKET])
    dynamodb = session.client("dynamodb")
    return (
        DynamoFunctionStore(dynamodb, environ[env.FUNCTIONS_TABLE]),
        DynamoJobStore(dynamodb, environ[env.JOBS_TABLE]),
        SqsQueue(session.client("sqs")),
        S3BlobStore(make_s3_client(session), environ[env.BUCKET]),
    )


def services_from_env(environ: Mapping[str, str], session: Any = None) -> Services:
    session = session or boto3.session.Session()
    functions, jobs, queue, blobs = stores_from_env(environ, session)
    return Services(
        functions=functions,
        jobs=jobs,
        queue=queue,
        blobs=blobs,
        executor=BatchExecutor(
            session.client("batch"),
            job_queue=environ[env.BATCH_JOB_QUEUE],
            job_definition_prefix=environ[env.BATCH_JOB_DEFINITION_PREFIX],
            worker_role_arn=environ.get(env.WORKER_ROLE_ARN),
            roles=worker_roles(session, environ),
            execution_role_arn=environ[env.WORKER_EXECUTION_ROLE_ARN],
            environment=worker_environment(environ),
            platform="EC2" if environ.get(env.BATCH_PLATFORM) == "EC2" else "FARGATE",
            log_group=environ.get(env.WORKER_LOG_GROUP),
            pacer=SubmitPacer(jobs, clock=utcnow),
        ),
        builder=CodeBuildImageBuilder(
            session.client("codebuild"),
            session.client("ecr"),
            project_name=environ[env.CODEBUILD_PROJECT],
            repository_uri=environ[env.ECR_REPOSITORY_URI],
        ),
        settings=settings_from_env(environ),
        on_submit=scaler_invoker(session.client("lambda"), environ.get(env.SCALER_FUNCTION)),
        events=EventBridgePublisher(session.client("events"), environ.get(env.EVENT_BUS, "default")),
    )


def worker_roles(session: Any, environ: Mapping[str, str]) -> WorkerRoles | None:
    """A role per Function when the stack gives a permissions boundary (it does); else None."""
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
    )


def scaler_invoker(lambda_client: Any, scaler_function: str | None) -> Callable[[str], None] | None:
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
            code = (
                exc.response.get("Error", {}).get("Code")
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            log.error(
                "could not wake the scaler %s for Function %s (%s): %s",
                scaler_function,
                function_id,
                code,
                exc,
            )

    return invoke
