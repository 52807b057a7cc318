"""AWS resources the stack would create, made on moto for the adapter and Lambda tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

# moto's Batch runs no containers (there is no Docker engine): jobs stay as submitted.
NO_DOCKER = {"batch": {"use_docker": False}}


@contextlib.contextmanager
def moto_aws(monkeypatch: pytest.MonkeyPatch, region: str) -> Iterator[None]:
    """``mock_aws`` (Batch without Docker) with test credentials and ``region`` in the environment."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config=NO_DOCKER):
        yield


def batch_job_queue(session: Any, name: str = "geobatch-queue") -> str:
    """An (unmanaged) compute environment and a job queue; returns the queue's ARN."""
    role = session.client("iam").create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    batch = session.client("batch")
    ce = batch.create_compute_environment(
        computeEnvironmentName="geobatch-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    queue = batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )
    return str(queue["jobQueueArn"])


def codebuild_project(session: Any, name: str) -> None:
    role = session.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    session.client("codebuild").create_project(
        name=name,
        source={"type": "S3", "location": "bucket/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_MEDIUM",
        },
        serviceRole=role,
    )


def worker_boundary(session: Any) -> str:
    """A managed policy to serve as the worker roles' permissions boundary; returns its ARN."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    policy = session.client("iam").create_policy(
        PolicyName="worker-boundary", PolicyDocument=json.dumps(document)
    )
    return str(policy["Policy"]["Arn"])
