"""The image tests' AWS: moto's server on 127.0.0.1 with the stack's resources (one for the package)."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator

import boto3
import pytest

from geobatch.wire import env
from geobatch_core.adapters import provision
from geobatch_core.adapters.s3 import make_client as make_s3_client
from tests.image import containers
from tests.image.harness import REPOSITORY
from tests.infra import moto_resources

_ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    reason = containers.can_build()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's Batch would try to start submitted jobs in Docker; here the tests play Batch.
    config = json.dumps({"batch": {"use_docker": False}}).encode()
    request = urllib.request.Request(f"{endpoint}/moto-api/config", data=config, method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(env.AWS_ENDPOINT_URL, endpoint)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="package")
def stack(moto_endpoint: str) -> dict[str, str]:
    """The stack's resources on moto; returns the control plane's environment (as the stack sets it)."""
    session = boto3.session.Session()
    dynamodb = session.client("dynamodb")
    provision.create_tables(dynamodb, "functions", "jobs")
    tables = {
        name: dynamodb.describe_table(TableName=name)["Table"]["TableArn"] for name in ("functions", "jobs")
    }
    provision.create_bucket(make_s3_client(session), "geobatch-bucket")
    iam = session.client("iam")
    roles = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for name in ("worker", "worker-execution")
    }
    # With a permissions boundary the control plane makes each Function its worker role and its data
    # role (the one its user code gets, served by the worker on loopback). moto does not enforce IAM
    # here: what the roles allow is rehearsed in tests/rehearsal and tests/infra.
    boundaries = {
        name: iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(_ALLOW_S3))["Policy"]["Arn"]
        for name in ("worker-boundary", "data-boundary")
    }
    session.client("ecr").create_repository(repositoryName=REPOSITORY.partition("/")[2])
    moto_resources.codebuild_project(session, "geobatch-images")
    return {
        env.FUNCTIONS_TABLE: "functions",
        env.JOBS_TABLE: "jobs",
        env.BUCKET: "geobatch-bucket",
        env.QUEUE_PREFIX: "geobatch",
        env.LOST_WORKER_SECONDS: "120",
        env.BATCH_JOB_QUEUE: moto_resources.batch_job_queue(session),
        env.BATCH_JOB_DEFINITION_PREFIX: "geobatch",
        env.BATCH_PLATFORM: "FARGATE",
        env.WORKER_ROLE_ARN: roles["worker"],
        env.WORKER_PERMISSIONS_BOUNDARY: boundaries["worker-boundary"],
        env.WORKER_DATA_BOUNDARY: boundaries["data-boundary"],
        env.FUNCTIONS_TABLE_ARN: tables["functions"],
        env.JOBS_TABLE_ARN: tables["jobs"],
        env.WORKER_EXECUTION_ROLE_ARN: roles["worker-execution"],
        env.CODEBUILD_PROJECT: "geobatch-images",
        env.ECR_REPOSITORY_URI: REPOSITORY,
    }
