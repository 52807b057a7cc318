"""BatchExecutor and CodeBuildImageBuilder against moto, and the EventBridge event parsers."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from geobatch.wire import env, limits
from geobatch.wire.errors import NotFoundError
from geobatch_core.adapters.batch import (
    WORKER_LIFETIME_SECONDS,
    BatchExecutor,
    attempt_timeout_seconds,
)
from geobatch_core.adapters.batch_events import parse_batch_job_event
from geobatch_core.adapters.codebuild import CodeBuildImageBuilder, parse_build_event
from geobatch_core.records import FunctionRecord
from tests.infra import moto_resources

pytestmark = pytest.mark.moto  # the adapters against moto (no synthesis)
EVENTS = Path(__file__).parent / "events"
REGION = "us-west-2"
FUNCTION = FunctionRecord(
    id="fn-0123456789abcdef",
    status="building",
    image_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/geobatch:py311-abc",
    cpus=1.0,
    memory=2048,
    timeout=900,
    queue_url="https://sqs.us-west-2.amazonaws.com/123456789012/geobatch-dev-fn-0123456789abcdef",
    requirements=["scikit-learn==1.9.1", "rasterio"],
    image="python3.11",
)


@pytest.fixture
def aws(monkeypatch):
    with moto_resources.moto_aws(monkeypatch, REGION):
        yield


def stubbed_executor() -> tuple[BatchExecutor, Any]:
    """An executor on a Batch client whose answers the test stubs (states moto cannot hold)."""
    client = boto3.client("batch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    executor = BatchExecutor(
        client,
        job_queue="q",
        job_definition_prefix="p",
        worker_role_arn="r",
        execution_role_arn="e",
        environment={},
    )
    return executor, client


@pytest.fixture
def executor(aws) -> BatchExecutor:
    session = boto3.session.Session(region_name=REGION)
    return BatchExecutor(
        session.client("batch"),
        job_queue=moto_resources.batch_job_queue(session),
        job_definition_prefix="geobatch-dev",
        worker_role_arn="arn:aws:iam::123456789012:role/worker",
        execution_role_arn="arn:aws:iam::123456789012:role/worker-execution",
        environment={env.FUNCTIONS_TABLE: "functions", env.JOBS_TABLE: "jobs", env.BUCKET: "data"},
    )


# ---------------------------------------------------------------------- BatchExecutor


def test_register_creates_the_job_definition(executor):
    attributes = executor.register(FUNCTION)
    assert attributes["job_definition_arn"].endswith("job-definition/geobatch-dev-fn-0123456789abcdef:1")
    (definition,) = executor._batch.describe_job_definitions(
        jobDefinitionName="geobatch-dev-fn-0123456789abcdef"
    )["jobDefinitions"]
    container = definition["containerProperties"]
    assert container["image"] == FUNCTION.image_uri
    assert container["command"] == ["python", "-m", "geobatch_worker"]
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {
        "VCPU": "1",
        "MEMORY": "2048",
    }
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment[env.WORKER_FUNCTION_ID] == FUNCTION.id
    assert environment[env.WORKER_QUEUE_URL] == FUNCTION.queue_url
    assert environment[env.FUNCTIONS_TABLE] == "functions"
    assert container["jobRoleArn"].endswith("role/worker")
    assert container["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert definition["platformCapabilities"] == ["FARGATE"]
    assert definition["timeout"] == {"attemptDurationSeconds": attempt_timeout_seconds(900)}
    # Worker logs go to the stack's log group (with retention), not to Batch's /aws/batch/job.
    assert container["logConfiguration"] == {"logDriver": "awslogs"}  # this executor was given none


def test_workers_stop_claiming_before_batch_kills_them(executor):
    """The lifetime budget is in the worker's environment, and the attempt timeout leaves room for the
    last job a worker claims just before its budget runs out, at any job timeout."""
    for timeout in (1, 900, 3600, limits.MAX_TIMEOUT_SECONDS):
        request = executor.job_definition(dataclasses.replace(FUNCTION, timeout=timeout))
        environment = {e["name"]: e["value"] for e in request["containerProperties"]["environment"]}
        lifetime = int(environment[env.WORKER_LIFETIME_SECONDS])
        assert lifetime == WORKER_LIFETIME_SECONDS
        attempt = request["timeout"]["attemptDurationSeconds"]
        assert attempt >= lifetime + timeout + 600, timeout
    # The old rule (10 job timeouts, at least an hour) killed a worker of 900 s jobs after 2.5 h.
    assert attempt_timeout_seconds(900) > WORKER_LIFETIME_SECONDS + 900


def test_workers_get_the_region_on_every_platform(executor):
    """Fargate injects AWS_REGION, EC2 container instances do not: the job definition sets both names."""
    for platform in ("FARGATE", "EC2"):
        executor.platform = platform
        request = executor.job_definition(FUNCTION)
        environment = {e["name"]: e["value"] for e in request["containerProperties"]["environment"]}
        assert environment["AWS_REGION"] == REGION and environment["AWS_DEFAULT_REGION"] == REGION


def test_worker_logs_go_to_the_stacks_log_group(aws):
    session = boto3.session.Session(region_name=REGION)
    executor = BatchExecutor(
        session.client("batch"),
        job_queue=moto_resources.batch_job_queue(session),
        job_definition_prefix="geobatch-dev",
        worker_role_arn="arn:aws:iam::123456789012:role/worker",
        execution_role_arn="arn:aws:iam::123456789012:role/worker-execution",
        environment={},
        log_group="GeoBatch-dev-ExecutionWorkerLogs-abc",
    )
    executor.register(FUNCTION)
    (definition,) = session.client("batch").describe_job_definitions(
        jobDefinitionName="geobatch-dev-fn-0123456789abcdef"
    )["jobDefinitions"]
    assert definition["containerProperties"]["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "GeoBatch-dev-ExecutionWorkerLogs-abc",
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "worker",
        },
    }


def test_ec2_platform_rounds_vcpus_up(executor):
    ec2 = BatchExecutor(
        executor._batch,
        job_queue=executor.job_queue,
        job_definition_prefix="geobatch-dev",
        worker_role_arn=executor.worker_role_arn,
        execution_role_arn=executor.execution_role_arn,
        environment={},
        platform="EC2",
    )
    request = ec2.job_definition(dataclasses.replace(FUNCTION, cpus=0.5))
    assert {r["type"]: r["value"] for r in request["containerProperties"]["resourceRequirements"]}[
        "VCPU"
    ] == "1"
    assert "networkConfiguration" not in request["containerProperties"]
    assert request["platformCapabilities"] == ["EC2"]


def test_start_workers_submits_one_array_job(executor):
    function = dataclasses.replace(FUNCTION, **executor.register(FUNCTION))
    executor.start_workers(function, 3)
    jobs = executor._batch.list_jobs(
        jobQueue=executor.job_queue,
        filters=[{"name": "JOB_NAME", "values": ["geobatch-fn-0123456789abcdef"]}],
    )["jobSummaryList"]
    parents = [j for j in jobs if ":" not in j["jobId"]]
    assert len(parents) == 1
    (parent,) = executor._batch.describe_jobs(jobs=[parents[0]["jobId"]])["jobs"]
    assert parent["arrayProperties"]["size"] == 3
    # moto's no-docker Batch finishes jobs at once: nothing is left running.
    assert executor.running_workers(function) == 0


def test_start_one_worker_submits_a_plain_job(executor):
    function = dataclasses.replace(FUNCTION, **executor.register(FUNCTION))
    executor.start_workers(function, 1)
    executor.start_workers(function, 0)
    jobs = executor._batch.list_jobs(
        jobQueue=executor.job_queue,
        filters=[{"name": "JOB_NAME", "values": ["geobatch-fn-0123456789abcdef"]}],
    )["jobSummaryList"]
    assert len(jobs) == 1
    (job,) = executor._batch.describe_jobs(jobs=[jobs[0]["jobId"]])["jobs"]
    assert "arrayProperties" not in job


def test_running_workers_counts_plain_jobs_and_active_array_children():
    """Batch states moto cannot hold (RUNNABLE, RUNNING...) come from a stubbed client."""
    executor, client = stubbed_executor()
    name = "geobatch-fn-0123456789abcdef"
    summaries = [
        {"jobArn": "a1", "jobId": "plain-running", "jobName": name, "status": "RUNNING"},
        {"jobArn": "a2", "jobId": "plain-done", "jobName": name, "status": "SUCCEEDED"},
        {
            "jobArn": "a3",
            "jobId": "array-1",
            "jobName": name,
            "status": "PENDING",
            "arrayProperties": {"size": 5},
        },
        {
            "jobArn": "a4",
            "jobId": "array-2",
            "jobName": name,
            "status": "SUBMITTED",
            "arrayProperties": {"size": 4},
        },
    ]
    summary = {
        "SUBMITTED": 0,
        "PENDING": 0,
        "RUNNABLE": 1,
        "STARTING": 1,
        "RUNNING": 2,
        "SUCCEEDED": 1,
        "FAILED": 0,
    }
    described = [
        {
            "jobName": name,
            "jobId": "array-1",
            "jobQueue": "q",
            "status": "PENDING",
            "startedAt": 0,
            "jobDefinition": "d",
            "arrayProperties": {"size": 5, "statusSummary": summary},
        },
        {
            "jobName": name,
            "jobId": "array-2",
            "jobQueue": "q",
            "status": "SUBMITTED",
            "startedAt": 0,
            "jobDefinition": "d",
            "arrayProperties": {"size": 4, "statusSummary": {}},
        },
    ]
    with Stubber(client) as stub:
        stub.add_response("list_jobs", {"jobSummaryList": summaries, "nextToken": "t"})
        stub.add_response("list_jobs", {"jobSummaryList": []})
        stub.add_response("describe_jobs", {"jobs": described}, {"jobs": ["array-1", "array-2"]})
        # 1 plain running + (1 + 1 + 2) active children of array-1 + 4 not-yet-created children of array-2
        assert executor.running_workers(FunctionRecord(id="fn-0123456789abcdef", status="ready")) == 1 + 4 + 4

        # The states behind a pending job's reason: by Batch status, and asked of Batch once per
        # few seconds however often jobs are read (a second call here has no stubbed response).
        stub.add_response("list_jobs", {"jobSummaryList": summaries})
        stub.add_response("describe_jobs", {"jobs": described}, {"jobs": ["array-1", "array-2"]})
        states = {"RUNNING": 1 + 2, "RUNNABLE": 1, "STARTING": 1, "SUBMITTED": 4}
        assert executor.worker_states(FunctionRecord(id="fn-0123456789abcdef", status="ready")) == states
        assert executor.worker_states(FunctionRecord(id="fn-0123456789abcdef", status="ready")) == states
        stub.assert_no_pending_responses()


def test_stop_workers_terminates_active_jobs():
    executor, client = stubbed_executor()
    summaries = [
        {"jobArn": "a", "jobId": "running", "jobName": "n", "status": "RUNNING"},
        {"jobArn": "b", "jobId": "done", "jobName": "n", "status": "FAILED"},
    ]
    with Stubber(client) as stub:
        stub.add_response("list_jobs", {"jobSummaryList": summaries})
        stub.add_response("terminate_job", {}, {"jobId": "running", "reason": "GeoBatch: Function stopped"})
        executor.stop_workers(FunctionRecord(id="f", status="ready"))
        stub.assert_no_pending_responses()


def test_missing_job_queue_is_a_domain_error(executor):
    executor.job_queue = "no-such-queue"
    with pytest.raises(NotFoundError):
        executor.running_workers(FUNCTION)


# ---------------------------------------------------------------------- CodeBuildImageBuilder


@pytest.fixture
def builder(aws) -> CodeBuildImageBuilder:
    session = boto3.session.Session(region_name=REGION)
    ecr = session.client("ecr")
    repository = ecr.create_repository(repositoryName="geobatch")["repository"]
    moto_resources.codebuild_project(session, "geobatch-builder")
    codebuild = session.client("codebuild")
    return CodeBuildImageBuilder(
        codebuild, ecr, project_name="geobatch-builder", repository_uri=repository["repositoryUri"]
    )


def test_existing_image_finds_a_pushed_tag(builder):
    assert builder.existing_image("py311-abc") is None
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "digest": "sha256:" + "0" * 64,
            "size": 1,
            "mediaType": "application/vnd.docker.container.image.v1+json",
        },
        "layers": [],
    }
    builder._ecr.put_image(
        repositoryName="geobatch", imageManifest=json.dumps(manifest), imageTag="py311-abc"
    )
    assert builder.existing_image("py311-abc") == f"{builder.repository_uri}:py311-abc"


def test_start_build_passes_the_requirements(builder):
    sent: list[dict[str, Any]] = []  # moto does not keep the variable overrides: capture the request
    builder._codebuild.meta.events.register(
        "provide-client-params.codebuild.StartBuild", lambda params, **_: sent.append(params)
    )
    result = builder.start_build(FUNCTION, bundle_key="bundles/fn.zip", image_hash="py311-abc")
    assert result["image_uri"] == f"{builder.repository_uri}:py311-abc"
    (build,) = builder._codebuild.batch_get_builds(ids=[result["build_id"]])["builds"]
    assert build["projectName"] == "geobatch-builder"
    (request,) = sent
    assert request["projectName"] == "geobatch-builder"
    variables = {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}
    assert variables["GEOBATCH_IMAGE_TAG"] == "py311-abc"
    assert variables["GEOBATCH_FUNCTION_ID"] == FUNCTION.id
    assert variables["GEOBATCH_PYTHON"] == "python3.11"
    assert (
        base64.b64decode(variables["GEOBATCH_REQUIREMENTS_B64"]).decode() == "scikit-learn==1.9.1\nrasterio\n"
    )


def test_start_build_of_a_missing_project_is_a_domain_error(builder):
    builder.project_name = "nope"
    with pytest.raises(NotFoundError):
        builder.start_build(FUNCTION, bundle_key="bundles/fn.zip", image_hash="x")


# ---------------------------------------------------------------------- events


def load_event(name: str) -> dict[str, Any]:
    """A sample EventBridge event (shapes from the AWS Batch and CodeBuild user guides)."""
    return json.loads((EVENTS / name).read_text())


def test_parse_failed_build_event():
    outcome = parse_build_event(load_event("codebuild_build_failed.json"))
    assert outcome.status == "FAILED" and not outcome.succeeded and outcome.finished
    assert outcome.function_id == "fn-0123456789abcdef"
    assert outcome.image_tag == "py311-9f86d081884c7d65"
    assert outcome.build_id.startswith("arn:aws:codebuild:")
    assert outcome.log_link and "logEvent" in outcome.log_link
    assert outcome.phase_failure and outcome.phase_failure.startswith("COMMAND_EXECUTION_ERROR")


def test_parse_succeeded_build_event():
    outcome = parse_build_event(load_event("codebuild_build_succeeded.json"))
    assert outcome.succeeded and outcome.phase_failure is None


def test_parse_oom_killed_array_child():
    outcome = parse_batch_job_event(load_event("batch_job_child_oom.json"))
    assert outcome.failed and outcome.out_of_memory
    assert outcome.exit_code == 137
    assert outcome.array_index == 2 and not outcome.is_array_parent
    assert outcome.function_id == "fn-0123456789abcdef"
    assert outcome.log_stream_name


def test_parse_array_parent():
    outcome = parse_batch_job_event(load_event("batch_job_array_succeeded.json"))
    assert outcome.succeeded and outcome.is_array_parent and outcome.array_size == 3
    assert outcome.array_status_summary["SUCCEEDED"] == 3
    assert not outcome.out_of_memory and outcome.exit_code is None


def test_parsers_reject_other_events():
    with pytest.raises(ValueError):
        parse_batch_job_event(load_event("codebuild_build_failed.json"))
    with pytest.raises(ValueError):
        parse_build_event(load_event("batch_job_array_succeeded.json"))


# ---------------------------------------------------------------------- worker roles


def test_each_function_gets_its_own_worker_role_under_the_boundary(executor):
    from geobatch_core.adapters.worker_roles import WorkerRoles

    iam = boto3.client("iam")
    boundary = moto_resources.worker_boundary(boto3.session.Session(region_name=REGION))
    roles = WorkerRoles(
        iam,
        name_prefix="geobatch-dev",
        permissions_boundary_arn=boundary,
        functions_table_arn="arn:aws:dynamodb:us-west-2:123456789012:table/functions",
        jobs_table_arn="arn:aws:dynamodb:us-west-2:123456789012:table/jobs",
        bucket="data",
    )
    executor.roles = roles
    attributes = executor.register(FUNCTION)
    role = iam.get_role(RoleName=f"geobatch-dev-fn-{FUNCTION.id}")["Role"]
    assert role["Path"] == "/geobatch/"
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    (definition,) = executor._batch.describe_job_definitions(
        jobDefinitions=[attributes["job_definition_arn"]]
    )["jobDefinitions"]
    assert definition["containerProperties"]["jobRoleArn"] == role["Arn"]

    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="function-scope")["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    fid = FUNCTION.id
    assert by_sid["OwnQueue"]["Resource"] == f"arn:aws:sqs:us-west-2:123456789012:geobatch-dev-{fid}"
    assert by_sid["OwnInputs"]["Resource"] == [
        f"arn:aws:s3:::data/bundles/{fid}.zip",
        f"arn:aws:s3:::data/args/{fid}/*",
    ]
    assert by_sid["OwnOutputs"]["Resource"] == [
        f"arn:aws:s3:::data/results/{fid}/*",
        f"arn:aws:s3:::data/logs/{fid}/*",
    ]
    for sid in ("OwnFunction", "OwnJobs"):
        assert by_sid[sid]["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [fid]}}

    executor.register(FUNCTION)  # a re-registration (new cpus/memory) reuses the role
    executor.release(dataclasses.replace(FUNCTION, **attributes))
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role["RoleName"])
    executor.release(dataclasses.replace(FUNCTION, **attributes))  # releasing twice is fine
