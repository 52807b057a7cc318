"""3. User code runs with its Function's data role, not its worker's task role (issue 15, items 7
and 10): under enforced IAM, a job whose code tries to forge its own job's state, read the control
plane's objects or write the metrics the alarms read is denied, while it reads and writes the data
its Function declared, and the worker parent still records its result."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from botocore.exceptions import ClientError

from tests.rehearsal import flow, jobs
from tests.rehearsal.synth import USER_BUCKET

# The first test of a session synthesizes (with bundling) and deploys: allow for a loaded machine.
pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(900)]

DENIED = ("AccessDenied", "AccessDeniedException")
DECLARED = {"read": [f"s3://{USER_BUCKET}/inputs/*"], "write": [f"s3://{USER_BUCKET}/products/v1/*"]}
OTHER_FUNCTION = "0123456789ab"


@pytest.fixture(scope="module")
def hostile_run(cloud, stack, lambdas):
    admin = cloud.client("s3")
    with contextlib.suppress(admin.exceptions.BucketAlreadyOwnedByYou):  # test_data_access made it
        admin.create_bucket(Bucket=USER_BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    admin.put_object(Bucket=USER_BUCKET, Key="inputs/contained.txt", Body=b"blue swir")
    args = [
        lambdas.api.environment["GEOBATCH_JOBS_TABLE"],
        lambdas.api.environment["GEOBATCH_BUCKET"],
        OTHER_FUNCTION,
        "contained.txt",
    ]
    one = flow.run_one_job(
        cloud, stack, lambdas, "rehearsal-contained", code=jobs.contained, args=args, data_access=DECLARED
    )
    function, submitted, definition, run = one.function, one.submitted, one.definition, one.run
    status, job = flow.api_call(lambdas.api, "GET", f"/jobs/{submitted['id']}")
    if job.get("status") != "success":
        log = flow.api_call(lambdas.api, "GET", f"/jobs/{submitted['id']}/log")[1]
        pytest.fail(f"the job did not succeed: {json.dumps(job)[:1500]}\n{str(log)[-3000:]}")
    status, result = flow.api_call(lambdas.api, "GET", f"/jobs/{submitted['id']}/result")
    assert status == 200, result
    return function, definition, result, run


def _value(result):
    """The job's return value, from the API's result body (inline base64 JSON)."""
    assert result.get("data") is not None, result
    return json.loads(base64.b64decode(result["data"]))


def test_user_code_cannot_forge_job_state_read_control_objects_or_write_alarm_metrics(hostile_run):
    _, _, result, _ = hostile_run
    value = _value(result)
    assert value["allowed"] == [], value
    assert set(value["denied"]) == {
        "update its own job item",
        "read its own Function's args",
        "read another Function's args",
        "read its bundle",
        "write its result",
        "metrics the alarms read",
        "the workers' metrics",
    }
    assert set(value["denied"].values()) <= set(DENIED), value["denied"]


def test_user_code_reads_and_writes_its_declared_data_with_the_data_role(hostile_run, cloud):
    function, definition, _, _ = hostile_run
    product = cloud.client("s3").get_object(Bucket=USER_BUCKET, Key="products/v1/contained.txt")
    assert product["Body"].read() == b"BLUE SWIR"
    data_role = flow.data_role(definition)
    assert data_role.endswith(f"-data-{function.id}") and ":role/geobatch/" in data_role, data_role
    decisions = [d for d in cloud.decisions() if d["principal"] == data_role]
    user_bucket = [d for d in decisions if USER_BUCKET in d["resource"]]
    assert {d["action"] for d in user_bucket} >= {"s3:GetObject", "s3:PutObject"}
    assert all(d["allowed"] for d in user_bucket), user_bucket
    # Everything else it tried was denied explicitly (the data role's and data boundary's denials).
    others = [d for d in decisions if USER_BUCKET not in d["resource"]]
    assert others and not any(d["allowed"] for d in others), others
    # The worker role assumed the data role (role chaining, checked against its trust policy) and
    # itself recorded the job: its result object and its job item.
    worker_role = definition["containerProperties"]["jobRoleArn"]
    assumed = [
        d for d in cloud.decisions() if d["principal"] == worker_role and d["action"] == "sts:AssumeRole"
    ]
    assert assumed and all(d["allowed"] and d["resource"] == data_role for d in assumed), assumed
    worker = [d for d in cloud.decisions() if d["principal"] == worker_role]
    assert any(d["action"] == "dynamodb:UpdateItem" and d["allowed"] for d in worker)


def test_the_child_gets_only_the_data_roles_endpoint_and_cannot_read_the_parents_environment(hostile_run):
    _, _, result, _ = hostile_run
    value = _value(result)
    names = set(value["aws_names"])
    assert {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"} <= names
    assert not names & {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    }, names
    # The parent re-executed itself without the task role's keys, so its /proc/<pid>/environ shows
    # none; it is also undumpable, which keeps the file closed to a non-root job (the image's user;
    # this suite may run as root, who can read it: tests/core/test_credentials.py checks that part).
    assert value["parent_environ"] in ("readable", "unreadable (Permission denied)"), value["parent_environ"]


def test_only_the_functions_worker_role_may_assume_its_data_role(hostile_run, cloud):
    _, definition, _, _ = hostile_run
    data_role = flow.data_role(definition)
    iam = cloud.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="rehearsal-intruder", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(
        RoleName="rehearsal-intruder",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    intruder = cloud.client("sts", cloud.assume(role["Arn"], "intruder"))
    with pytest.raises(ClientError) as denied:
        intruder.assume_role(RoleArn=data_role, RoleSessionName="steal")
    assert denied.value.response["Error"]["Code"] in DENIED
    reasons = [
        d["reason"]
        for d in cloud.decisions()
        if d["principal"] == role["Arn"] and d["action"] == "sts:AssumeRole" and not d["allowed"]
    ]
    assert reasons == ["the role's trust policy does not allow the caller"]
