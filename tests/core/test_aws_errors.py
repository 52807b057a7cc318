"""One mapping of AWS errors to GeoBatch errors, exercised through the real adapters against moto."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from geobatch.wire import errors
from geobatch_core.adapters import batch, codebuild, dynamodb, events, s3, sqs, worker_roles
from geobatch_core.adapters.aws_errors import ErrorMap
from geobatch_core.adapters.dynamodb import DynamoFunctionStore
from geobatch_core.adapters.s3 import S3BlobStore
from geobatch_core.adapters.sqs import SqsQueue

pytestmark = pytest.mark.moto
REGION = "us-east-1"


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


@pytest.fixture
def session():
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_a_missing_object_is_not_found(session) -> None:
    session.client("s3").create_bucket(Bucket="results-bucket")
    store = S3BlobStore(session.client("s3"), "results-bucket")
    with pytest.raises(errors.NotFoundError, match=r"S3: read missing\.bin: no such object"):
        store.get("missing.bin")
    assert store.exists("missing.bin") is False


def test_a_missing_queue_is_not_found(session) -> None:
    queue = SqsQueue(session.client("sqs"))
    url = f"https://sqs.{REGION}.amazonaws.com/123456789012/gone"
    with pytest.raises(errors.NotFoundError, match="the job queue is gone"):
        queue.send_batch(url, ["{}"])


def test_a_missing_table_is_the_stacks_fault_not_the_callers(session) -> None:
    store = DynamoFunctionStore(session.client("dynamodb"), "no-such-table")
    with pytest.raises(errors.ServiceError, match="is the stack deployed") as raised:
        store.get("fn-1")
    assert not isinstance(raised.value, errors.NotFoundError)


@pytest.mark.parametrize(
    ("mapping", "code", "expected"),
    [
        (dynamodb.ERRORS, "ProvisionedThroughputExceededException", errors.ThrottledError),
        (s3.ERRORS, "SlowDown", errors.ThrottledError),
        (sqs.ERRORS, "RequestThrottled", errors.ThrottledError),
        (worker_roles.ERRORS, "Throttling", errors.ThrottledError),
        (codebuild.CODEBUILD_ERRORS, "AccountLimitExceededException", errors.ThrottledError),
        (codebuild.CODEBUILD_ERRORS, "InvalidInputException", errors.BadRequestError),
        (codebuild.ECR_ERRORS, "RepositoryNotFoundException", errors.NotFoundError),
        (events.ERRORS, "AccessDeniedException", errors.ServiceError),
    ],
)
def test_codes_of_each_service(mapping: ErrorMap, code: str, expected: type) -> None:
    error = mapping.error(client_error(code, "what AWS said"), "doing it")
    assert type(error) is expected
    assert mapping.service in str(error) and "doing it" in str(error)


def test_batch_client_exception_is_not_found_or_rejected_by_its_message() -> None:
    missing = batch.BATCH_ERRORS.error(client_error("ClientException", "Job definition does not exist"), "x")
    rejected = batch.BATCH_ERRORS.error(client_error("ClientException", "vcpus must be positive"), "x")
    assert type(missing) is errors.NotFoundError
    assert type(rejected) is errors.BadRequestError


def test_no_answer_from_aws_is_a_service_error() -> None:
    error = ErrorMap("S3").error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "read k")
    assert type(error) is errors.ServiceError and "S3: read k failed" in str(error)
