"""The four Lambdas as AWS runs them: ports built from the environment (geobatch_core.wiring), moto for
DynamoDB, SQS, S3, Batch, CodeBuild and ECR, and the event shapes EventBridge and API Gateway send."""

from __future__ import annotations

import copy
import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from geobatch.wire import env
from geobatch_api import app as api_app
from geobatch_api import context as api_context
from geobatch_core.adapters import provision
from geobatch_core.services.execution import claim, parse_message
from geobatch_ops import batch_events, build_events, scaler
from tests.conftest import FakeLambdaContext, apigw_event
from tests.infra import moto_resources

pytestmark = pytest.mark.moto  # the Lambdas' handlers against moto (no synthesis)
EVENTS = Path(__file__).parent / "events"
REGION = "us-west-2"


def event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


@pytest.fixture
def deployed(monkeypatch) -> Any:
    """A 'deployed stack' on moto: the resources the CDK app creates, and the Lambdas' environment."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"batch": {"use_docker": False}}):
        session = boto3.session.Session(region_name=REGION)
        provision.create_tables(session.client("dynamodb"), "functions", "jobs")
        provision.create_bucket(session.client("s3"), "data")
        queue_arn = moto_resources.batch_job_queue(session, "workers")
        boundary = moto_resources.worker_boundary(session)
        tables = {
            name: session.client("dynamodb").describe_table(TableName=name)["Table"]["TableArn"]
            for name in ("functions", "jobs")
        }
        repo = session.client("ecr").create_repository(repositoryName="geobatch")["repository"]
        moto_resources.codebuild_project(session, "image-builder")
        role = session.client("iam").create_role(RoleName="worker-execution", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        for key, value in {
            env.FUNCTIONS_TABLE: "functions",
            env.JOBS_TABLE: "jobs",
            env.BUCKET: "data",
            env.QUEUE_PREFIX: "geobatch-dev",
            env.BATCH_JOB_QUEUE: queue_arn,
            env.BATCH_JOB_DEFINITION_PREFIX: "geobatch-dev",
            env.WORKER_PERMISSIONS_BOUNDARY: boundary,
            env.FUNCTIONS_TABLE_ARN: tables["functions"],
            env.JOBS_TABLE_ARN: tables["jobs"],
            env.WORKER_EXECUTION_ROLE_ARN: role,
            env.CODEBUILD_PROJECT: "image-builder",
            env.ECR_REPOSITORY_URI: repo["repositoryUri"],
            env.EVENT_BUS: "default",
            env.LOST_WORKER_SECONDS: "120",
        }.items():
            monkeypatch.setenv(key, value)
        previous = api_context.configure(None)  # build the ports from the environment, as in AWS
        try:
            yield session
        finally:
            api_context.configure(previous)


def call_api(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = api_app.handler(apigw_event(method, path, **kwargs), FakeLambdaContext())
    body = response.get("body") or ""
    try:
        return int(response["statusCode"]), json.loads(body)
    except ValueError:
        return int(response["statusCode"]), body  # text, e.g. the build log


def build_event(function_id: str, image_tag: str, status: str, name: str | None = None) -> dict[str, Any]:
    build = event(
        name or ("codebuild_build_succeeded.json" if status == "SUCCEEDED" else "codebuild_build_failed.json")
    )
    build["detail"]["build-status"] = status
    variables = build["detail"]["additional-information"]["environment"]["environment-variables"]
    for variable in variables:
        if variable["name"] == "GEOBATCH_FUNCTION_ID":
            variable["value"] = function_id
        if variable["name"] == "GEOBATCH_IMAGE_TAG":
            variable["value"] = image_tag
    return build


def saved_function(session: Any) -> dict[str, Any]:
    status, created = call_api("POST", "/functions", body={"name": "tiles", "retry_count": 1})
    assert status == 201, created
    function_id = created["function"]["id"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("__gbentry__.py", "def f(x):\n    return x\n\nmain = f\n")
    session.client("s3").put_object(Bucket="data", Key=f"bundles/{function_id}.zip", Body=buf.getvalue())
    status, building = call_api("POST", f"/functions/{function_id}/bundle")
    assert status == 200 and building["status"] == "building" and building["build_id"]
    return building


def test_build_event_makes_the_function_ready_and_registers_its_job_definition(deployed):
    function = saved_function(deployed)
    result = build_events.handler(
        build_event(function["id"], function["image_hash"], "SUCCEEDED"), FakeLambdaContext()
    )
    assert result == {"function_id": function["id"], "status": "SUCCEEDED"}
    status, ready = call_api("GET", f"/functions/{function['id']}")
    assert ready["status"] == "ready" and ready["image_uri"].endswith(f"geobatch:{function['image_hash']}")
    definitions = deployed.client("batch").describe_job_definitions(
        jobDefinitionName=f"geobatch-dev-{function['id']}"
    )
    (definition,) = definitions["jobDefinitions"]
    assert definition["containerProperties"]["image"] == ready["image_uri"]
    # The Function's workers run with a role of their own, made under the stack's boundary.
    iam = deployed.client("iam")
    role = iam.get_role(RoleName=f"geobatch-dev-fn-{function['id']}")["Role"]
    assert definition["containerProperties"]["jobRoleArn"] == role["Arn"]
    assert (
        role["PermissionsBoundary"]["PermissionsBoundaryArn"] == os.environ[env.WORKER_PERMISSIONS_BOUNDARY]
    )
    status, log = call_api("GET", f"/functions/{function['id']}/log")
    assert status == 200 and "SUCCEEDED" in log
    # A second delivery of the same event changes nothing (EventBridge delivers at least once).
    again = build_events.handler(
        build_event(function["id"], function["image_hash"], "SUCCEEDED"), FakeLambdaContext()
    )
    assert "ignored" in again
    # Deleting the Function removes its worker role (roles count against the account's IAM quota).
    status, _ = call_api("DELETE", f"/functions/{function['id']}")
    assert status == 204
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role["RoleName"])


def test_failed_build_is_named(deployed):
    function = saved_function(deployed)
    build_events.handler(build_event(function["id"], function["image_hash"], "FAILED"), FakeLambdaContext())
    status, failed = call_api("GET", f"/functions/{function['id']}")
    assert failed["status"] == "build_failed"
    assert failed["status_reason"].startswith("the image build failed")


def test_scaler_starts_workers_and_drains_dead_letters(deployed):
    function = saved_function(deployed)
    build_events.handler(
        build_event(function["id"], function["image_hash"], "SUCCEEDED"), FakeLambdaContext()
    )
    status, page = call_api(
        "POST",
        "/jobs/bulk",
        body={"function_id": function["id"], "bulk_args": [[1], [2], [3]], "reference_id": "r1"},
    )
    assert status == 201
    started = scaler.handler({"function_id": function["id"]}, FakeLambdaContext())
    assert started["started"] == {function["id"]: 3}
    batch = deployed.client("batch")
    jobs = batch.list_jobs(
        jobQueue="workers", filters=[{"name": "JOB_NAME", "values": [f"geobatch-{function['id']}"]}]
    )
    assert jobs["jobSummaryList"], "no worker array job was submitted"

    # A message that kept killing workers lands in the DLQ; the scheduled tick ends its job.
    sqs = deployed.client("sqs")
    status, item = call_api("GET", f"/functions/{function['id']}")
    queue_url = sqs.get_queue_url(QueueName=f"geobatch-dev-{function['id']}")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"geobatch-dev-{function['id']}-dlq")["QueueUrl"]
    message = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"][0]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=message["Body"])
    scheduled = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-26T01:00:00Z", "region": REGION,
        "resources": ["arn:aws:events:us-west-2:123456789012:rule/GeoBatch-dev-ScalerSchedule"], "detail": {},
    }  # fmt: skip
    ticked = scaler.handler(scheduled, FakeLambdaContext())
    assert ticked["dead_letters"] == 1
    job_key, _ = parse_message(message["Body"])
    status, job = call_api("GET", f"/jobs/{function['id']}-{job_key}")
    assert job["status"] == "failure" and job["error_reason"].startswith("worker lost repeatedly")


def test_batch_oom_event_names_the_cause_on_the_job(deployed):
    from geobatch_api.context import services

    function = saved_function(deployed)
    build_events.handler(
        build_event(function["id"], function["image_hash"], "SUCCEEDED"), FakeLambdaContext()
    )
    call_api(
        "POST", "/jobs/bulk", body={"function_id": function["id"], "bulk_args": [[1]], "reference_id": "r1"}
    )
    svc = services()
    record = svc.functions.get(function["id"])
    message = svc.queue.receive(record.queue_url, max_messages=1, wait_seconds=0, visibility_seconds=120)[0]
    oom = event("batch_job_child_oom.json")
    worker_id = oom["detail"]["jobId"]
    job_key, _ = parse_message(message.body)
    claimed = claim(svc.jobs, svc.settings, record, job_key, message, worker_id)
    assert claimed.attempt == 1
    for variable in oom["detail"]["container"].get("environment", []):
        if variable["name"] == env.WORKER_FUNCTION_ID:
            variable["value"] = function["id"]
    result = batch_events.handler(oom, FakeLambdaContext())
    assert result == {"function_id": function["id"], "jobs_noted": 1}
    job = svc.jobs.get(function["id"], job_key, consistent=True)
    assert (job.lost_reason or "").startswith("out of memory")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (
            "TIMED_OUT",
            "the image build timed out (the project allows 60 minutes, 2 hours queued): BUILD_TIMED_OUT",
        ),
        ("FAULT", "the image build hit a CodeBuild service fault"),
        ("STOPPED", "the image build was stopped"),
    ],
)
def test_every_terminal_build_state_ends_building_with_a_reason(deployed, status, reason):
    function = saved_function(deployed)
    name = "codebuild_build_timed_out.json" if status == "TIMED_OUT" else None
    ended = build_event(function["id"], function["image_hash"], status, name)
    result = build_events.handler(ended, FakeLambdaContext())
    assert result == {"function_id": function["id"], "status": status}
    _, failed = call_api("GET", f"/functions/{function['id']}")
    assert failed["status"] == "build_failed"
    assert failed["status_reason"].startswith(reason), failed["status_reason"]


def _scheduled() -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-26T01:00:00Z", "region": REGION,
        "resources": ["arn:aws:events:us-west-2:123456789012:rule/GeoBatch-dev-ScalerSchedule"], "detail": {},
    }  # fmt: skip


def _age_build(function_id: str, seconds: int, **changes: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from geobatch_api.context import services
    from geobatch_core.services.context import iso

    started = iso(datetime.now(UTC) - timedelta(seconds=seconds))
    services().functions.update(function_id, {"build_started": started, "modified_date": started, **changes})


def test_scheduled_scaler_settles_a_build_whose_event_was_lost(deployed):
    """moto's CodeBuild reports every build SUCCEEDED; no event is ever sent here."""
    function = saved_function(deployed)
    scaler.handler(_scheduled(), FakeLambdaContext())
    _, item = call_api("GET", f"/functions/{function['id']}")
    assert item["status"] == "building"  # within the grace period the event may still come
    _age_build(function["id"], build_events.RECONCILE_AFTER_SECONDS + 60)
    scaler.handler(_scheduled(), FakeLambdaContext())
    _, item = call_api("GET", f"/functions/{function['id']}")
    assert item["status"] == "ready" and item["image_uri"].endswith(function["image_hash"])
    status, log = call_api("GET", f"/functions/{function['id']}/log")
    assert f"build {function['build_id']}: SUCCEEDED" in log
    # The late event, if it ever comes, changes nothing.
    late = build_events.handler(
        build_event(function["id"], function["image_hash"], "FAILED"), FakeLambdaContext()
    )
    assert "ignored" in late


def test_scheduled_scaler_fails_a_build_that_never_started(deployed):
    function = saved_function(deployed)
    _age_build(function["id"], build_events.RECONCILE_AFTER_SECONDS + 60, build_id=None)
    scaler.handler(_scheduled(), FakeLambdaContext())
    _, item = call_api("GET", f"/functions/{function['id']}")
    assert item["status"] == "build_failed"
    assert "never started" in item["status_reason"]


def test_build_outcome_from_batch_get_builds_shape():
    from geobatch_core.adapters.codebuild import outcome_from_build
    from geobatch_core.records import FunctionRecord

    build = {  # BatchGetBuilds' build, as the CodeBuild API reference documents it
        "id": "ImageBuildBuilder-abc123:8745a7a9",
        "buildStatus": "TIMED_OUT",
        "projectName": "ImageBuildBuilder-abc123",
        "phases": [
            {
                "phaseType": "PRE_BUILD",
                "phaseStatus": "SUCCEEDED",
                "contexts": [{"statusCode": "", "message": ""}],
            },
            {
                "phaseType": "BUILD",
                "phaseStatus": "TIMED_OUT",
                "contexts": [{"statusCode": "BUILD_TIMED_OUT", "message": "Build has timed out. "}],
            },
        ],
        "logs": {"groupName": "/aws/codebuild/x", "streamName": "8745a7a9", "deepLink": "https://console"},
    }
    outcome = outcome_from_build(build, FunctionRecord(id="fn-1", status="building", image_hash="py311-abc"))
    assert outcome.finished and not outcome.succeeded
    assert outcome.function_id == "fn-1" and outcome.image_tag == "py311-abc"
    assert outcome.failure_reason.startswith("the image build timed out") and "Build has timed out" in (
        outcome.failure_reason
    )


def test_a_failed_scaler_wake_up_is_logged_not_swallowed(deployed, caplog):
    from geobatch_core.wiring import scaler_invoker

    invoke = scaler_invoker(deployed.client("lambda"), "geobatch-dev-scaler")  # no such function here
    assert invoke is not None
    with caplog.at_level("ERROR", logger="geobatch.wiring"):
        invoke("fn-0123456789abcdef")
    (record,) = [r for r in caplog.records if r.name == "geobatch.wiring"]
    assert "could not wake the scaler geobatch-dev-scaler" in record.getMessage()
    assert "ResourceNotFoundException" in record.getMessage()
