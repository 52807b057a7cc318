"""The state ports and settings every deployable builds from its environment.

The worker needs only these (Functions, Jobs, queues, the bucket, the settings), so it imports this
module and not the control plane's composition root (``geobatch_core.wiring``), which adds AWS
Batch, CodeBuild, IAM, EventBridge and Lambda.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import boto3

from geobatch.wire import env
from geobatch.wire.data_access import Bound
from geobatch_core.adapters import provision
from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore
from geobatch_core.adapters.s3 import S3BlobStore
from geobatch_core.adapters.s3 import make_client as make_s3_client
from geobatch_core.adapters.sqs import SqsQueue
from geobatch_core.ports import BlobStore, FunctionStore, JobStore, Queue
from geobatch_core.services.context import Settings

if TYPE_CHECKING:
    from boto3.session import Session

__all__ = ["Stores", "provisioned_stores", "settings_from_env", "stores_from_env"]


class Stores(NamedTuple):
    """The state ports: Functions, Jobs, queues and blobs."""

    functions: FunctionStore
    jobs: JobStore
    queue: Queue
    blobs: BlobStore


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """The settings a deployed stack gives its Lambdas and workers."""
    admins = frozenset(a.strip() for a in environ.get(env.ADMIN_PRINCIPALS, "").split(",") if a.strip())
    return Settings(
        queue_prefix=environ.get(env.QUEUE_PREFIX, "geobatch"),
        lost_worker_seconds=int(environ.get(env.LOST_WORKER_SECONDS, "120")),
        admins=admins,
        data_bound=Bound.from_json(environ.get(env.DATA_ACCESS)),
    )


def stores_from_env(environ: Mapping[str, str], session: Session | None = None) -> Stores:
    """The state ports of the stack the environment names.

    Local mode's workers get ``GEOBATCH_LOCAL_STATE``: their Functions, Jobs and queues are then the
    daemon's SQLite file; blobs stay S3 (local mode's S3 endpoint), which user code writes to too.
    """
    session = session or boto3.session.Session()
    if environ.get(env.LOCAL_STATE):
        from geobatch_core.adapters.sqlite import open_state

        functions, jobs, queue = open_state(environ[env.LOCAL_STATE])
        return Stores(functions, jobs, queue, S3BlobStore(make_s3_client(session), environ[env.BUCKET]))
    dynamodb = session.client("dynamodb")
    return Stores(
        DynamoFunctionStore(dynamodb, environ[env.FUNCTIONS_TABLE]),
        DynamoJobStore(dynamodb, environ[env.JOBS_TABLE]),
        SqsQueue(session.client("sqs")),
        S3BlobStore(make_s3_client(session), environ[env.BUCKET]),
    )


def provisioned_stores(
    session: Session,
    endpoint_url: str | None = None,
    *,
    functions_table: str = "functions",
    jobs_table: str = "jobs",
    bucket: str = "bucket",
) -> Stores:
    """Create the tables and the bucket (as a deployed stack has them) and return their ports.

    For moto (in-process ``mock_aws``, or its server at ``endpoint_url``): the tests and benchmarks
    that run the services against AWS's APIs without an account.
    """
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    s3 = make_s3_client(session, endpoint_url)
    provision.create_tables(dynamodb, functions_table, jobs_table)
    provision.create_bucket(s3, bucket)
    return Stores(
        DynamoFunctionStore(dynamodb, functions_table),
        DynamoJobStore(dynamodb, jobs_table),
        SqsQueue(session.client("sqs", endpoint_url=endpoint_url)),
        S3BlobStore(s3, bucket),
    )
