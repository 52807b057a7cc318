"""1. The synthesized template (with the real Lambda asset) deploys into moto's CloudFormation."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from tests.rehearsal.bridges import BRIDGED_TYPES, BRIDGES

# The first test of a session synthesizes (with bundling) and deploys: allow for a loaded machine.
pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(900)]


def test_the_stack_reaches_create_complete_with_every_resource_of_the_template(cloud, stack):
    assert stack.status == "CREATE_COMPLETE"
    summaries = cloud.client("cloudformation").list_stack_resources(StackName=stack.name)
    created = {r["LogicalResourceId"]: r for r in summaries["StackResourceSummaries"]}
    # moto skips a type it does not know with only a warning: every resource must be either created
    # by moto's CloudFormation or made by a bridge, none silently missing.
    missing = {
        logical: resource["Type"]
        for logical, resource in stack.template["Resources"].items()
        if logical not in created and resource["Type"] not in BRIDGED_TYPES
    }
    assert missing == {}, f"resources moto's CloudFormation did not create and no bridge makes: {missing}"
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in created.values())


def test_the_bridged_resources_deploy_as_aws_would_accept_them(stack):
    # A bridge applies AWS's own preconditions (e.g. API Gateway stage logging needs the account's
    # CloudWatch role): a resource the template gets wrong fails here, with AWS's message.
    assert stack.bridge_failures == {}, "\n".join(stack.bridge_failures.values())


def test_every_bridge_is_listed_with_its_reason():
    assert all(b.what and b.how and b.why for b in BRIDGES)
    assert {f"resource type {t}" for t in BRIDGED_TYPES} <= {b.what for b in BRIDGES}


def test_the_lambdas_run_the_uploaded_asset(cloud, stack, lambdas):
    functions = [lambdas.api, lambdas.scaler, lambdas.build_events, lambdas.batch_events]
    packed = stack.asset_dir.parent / f"{stack.asset_dir.name}.rehearsal.zip"
    digest = base64.b64encode(hashlib.sha256(packed.read_bytes()).digest()).decode()
    synthesized = {  # each Lambda's runtime as synthesized (tests/infra pins it), by handler
        r["Properties"].get("Handler"): r["Properties"].get("Runtime")
        for r in stack.template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    for function in functions:
        assert function.config["Runtime"] == synthesized[function.config["Handler"]]
        assert function.config["CodeSha256"] == digest, function.config["FunctionName"]
        module = function.config["Handler"].rpartition(".")[0]
        assert (stack.asset_dir / (module.replace(".", "/") + ".py")).is_file()


def test_the_lambda_asset_leaves_the_sdk_to_the_runtime(stack):
    # Lambda's python runtime puts the asset before its own boto3/botocore on sys.path: an asset with
    # botocore but no boto3 makes the runtime's boto3 run on a foreign botocore.
    shipped = {p.name for p in stack.asset_dir.iterdir()}
    assert not ("botocore" in shipped and "boto3" not in shipped), (
        "the Lambda asset bundles botocore without boto3 (pulled in by aws-xray-sdk): the runtime's boto3 "
        "then runs on the asset's botocore; exclude botocore (and its deps) from the bundle"
    )


def test_each_lambda_role_trusts_only_lambda(cloud, lambdas):
    iam = cloud.client("iam")
    for function in (lambdas.api, lambdas.scaler, lambdas.build_events, lambdas.batch_events):
        role = iam.get_role(RoleName=function.role_arn.rsplit("/", 1)[-1])["Role"]
        document = role["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        principals = [s["Principal"] for s in document["Statement"]]
        assert principals == [{"Service": "lambda.amazonaws.com"}], role["RoleName"]


def test_requests_are_authenticated_and_authorized(cloud, lambdas):
    # An unknown access key, a wrong secret, and a role asking for what it was not granted.
    unknown = cloud.client("s3", {"aws_access_key_id": "AKIAUNKNOWN000000000", "aws_secret_access_key": "x"})
    with pytest.raises(ClientError) as denied:
        unknown.list_buckets()
    assert denied.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    forged = cloud.client("iam", {**cloud.admin_credentials, "aws_secret_access_key": "not-the-secret"})
    with pytest.raises(ClientError) as denied:
        forged.list_users()
    assert denied.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    api_role = cloud.assume(lambdas.api.role_arn, "probe")
    with pytest.raises(ClientError) as denied:
        cloud.client("iam", api_role).create_user(UserName="intruder")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as denied:
        cloud.client("dynamodb", api_role).list_tables()
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
