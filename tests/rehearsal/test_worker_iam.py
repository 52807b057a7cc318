"""3. IAM enforced on the data plane: the worker runs with the role the control plane made for its
Function, a job succeeds end to end, and that role reaches nothing of another Function's or outside
its declared access."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.rehearsal import flow

# The first test of a session synthesizes (with bundling) and deploys: allow for a loaded machine.
pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(900)]

DENIED = ("AccessDenied", "AccessDeniedException")


@pytest.fixture(scope="module")
def two_functions(cloud, stack, lambdas):
    """Two ready Functions of the same owner; jobs submitted to the first, its worker run once."""
    project = stack.bridged_name("AWS::CodeBuild::Project")
    first, built = flow.save_function(lambdas.api, lambdas.build_events, project, "rehearsal-worker")
    built.ok()
    second, built = flow.save_function(lambdas.api, lambdas.build_events, project, "rehearsal-other")
    built.ok()
    prefix = lambdas.api.environment["GEOBATCH_BATCH_JOB_DEFINITION_PREFIX"]
    status, submitted = flow.api_call(
        lambdas.api, "POST", "/jobs", body={"function_id": first.id, "args": [21]}
    )
    assert status == 201, submitted
    definition = flow.job_definition(cloud, f"{prefix}-{first.id}")
    other_definition = flow.job_definition(cloud, f"{prefix}-{second.id}")
    run = flow.run_worker(cloud, definition, "rehearsal-batch-job:0")
    return first, second, submitted, definition, other_definition, run


def test_a_job_succeeds_end_to_end_under_the_functions_worker_role(two_functions, lambdas, cloud):
    first, _, submitted, definition, _, run = two_functions
    assert run.returncode == 0, run.output[-4000:]
    job_id = submitted["id"]
    status, job = flow.api_call(lambdas.api, "GET", f"/jobs/{job_id}")
    assert status == 200 and job["status"] == "success", (job, run.output[-3000:])
    status, result = flow.api_call(lambdas.api, "GET", f"/jobs/{job_id}/result")
    assert status == 200, result
    status, log = flow.api_call(lambdas.api, "GET", f"/jobs/{job_id}/log")
    assert status == 200, log
    # Every request the worker made was checked against its own role (and boundary), none denied.
    role = definition["containerProperties"]["jobRoleArn"]
    worker_decisions = [d for d in cloud.decisions() if d["principal"] == role]
    assert worker_decisions, "the worker made no request under its role"
    assert [d for d in worker_decisions if not d["allowed"]] == []
    # Its job metrics went to CloudWatch under that role (geobatch_worker/metrics.py, at exit).
    assert "cloudwatch:PutMetricData" in {d["action"] for d in worker_decisions}


def test_the_worker_role_reaches_nothing_of_another_function(two_functions, cloud, stack, lambdas):
    first, second, _, definition, other_definition, _ = two_functions
    credentials = cloud.assume(definition["containerProperties"]["jobRoleArn"], "probe")
    s3, sqs = cloud.client("s3", credentials), cloud.client("sqs", credentials)
    dynamodb = cloud.client("dynamodb", credentials)
    bucket = lambdas.api.environment["GEOBATCH_BUCKET"]
    other_env = flow.container_environment(other_definition)
    attempts = {
        "another Function's bundle": lambda: s3.get_object(Bucket=bucket, Key=second.bundle_key),
        "another Function's results": lambda: s3.put_object(
            Bucket=bucket, Key=f"results/{second.id}/forged", Body=b"x"
        ),
        "another Function's queue": lambda: sqs.receive_message(QueueUrl=other_env["GEOBATCH_QUEUE_URL"]),
        "another Function's item": lambda: dynamodb.get_item(
            TableName=lambdas.api.environment["GEOBATCH_FUNCTIONS_TABLE"], Key={"id": {"S": second.id}}
        ),
        "listing the stack bucket": lambda: s3.list_objects_v2(Bucket=bucket, Prefix="bundles/"),
    }
    allowed = []
    for what, attempt in attempts.items():
        try:
            attempt()
            allowed.append(what)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] in DENIED, (what, exc.response["Error"])
    assert allowed == [], f"the worker role of {first.id} could reach: {allowed}"


def test_the_worker_role_cannot_touch_a_bucket_outside_its_access(two_functions, cloud):
    _, _, _, definition, _, _ = two_functions
    admin = cloud.client("s3")
    admin.create_bucket(
        Bucket="rehearsal-outside", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    admin.put_object(Bucket="rehearsal-outside", Key="private/data.bin", Body=b"secret")
    s3 = cloud.client("s3", cloud.assume(definition["containerProperties"]["jobRoleArn"], "probe"))
    for attempt in (
        lambda: s3.get_object(Bucket="rehearsal-outside", Key="private/data.bin"),
        lambda: s3.put_object(Bucket="rehearsal-outside", Key="private/other.bin", Body=b"x"),
    ):
        with pytest.raises(ClientError) as denied:
            attempt()
        assert denied.value.response["Error"]["Code"] in DENIED
