"""CDK assertions on the synthesized GeoBatch stack (default context and variants)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from geobatch.wire import env
from geobatch_core import layout
from stacks.lambda_factory import PYTHON_VERSION

pytestmark = pytest.mark.infra


def _statements(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM statement of the template: inline policies, managed policies and role policies."""
    statements = []
    for resource in template_json["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            statements += props["PolicyDocument"]["Statement"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(template_json: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    statements = []
    for resource in template_json["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [r.get("Ref", "") for r in resource["Properties"].get("Roles", [])]
        if any(r.startswith(role_prefix) for r in roles):
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    return statements


# ---------------------------------------------------------------------- API


def test_every_api_method_requires_iam_auth(default):
    methods = default.resources("AWS::ApiGateway::Method")
    assert len(methods) >= 2  # "/" ANY and "/{proxy+}" ANY
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} >= {"ANY"}
    for logical_id, method in methods.items():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM", logical_id
    default.template.resource_properties_count_is("AWS::ApiGateway::Method", {"AuthorizationType": "NONE"}, 0)
    default.template.resource_count_is("AWS::ApiGateway::Resource", 1)  # {proxy+}
    default.template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "{proxy+}"})


def test_stage_throttling_access_logs_and_tracing(default):
    default.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "dev",
            "TracingEnabled": True,
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("userArn"),
            },
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200, "HttpMethod": "*"}
                    )
                ]
            ),
        },
    )
    default.template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestParameters": True}
    )


def test_outputs(default):
    outputs = default.template_json["Outputs"]
    assert {"ApiUrl", "BucketName", "DashboardUrl"} <= set(outputs)


# ---------------------------------------------------------------------- DynamoDB


def test_tables(default):
    tables = default.resources("AWS::DynamoDB::Table")
    assert len(tables) == 2
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert table["DeletionPolicy"] == "Delete"  # dev stage; prod retains (test_prod_retains_data)
    default.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": layout.FUNCTIONS_OWNER_INDEX,
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "creation_date", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )
    default.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "function_id", "KeyType": "HASH"},
                {"AttributeName": "job_key", "KeyType": "RANGE"},
            ],
            "TimeToLiveSpecification": {"AttributeName": layout.JOB_TTL_ATTRIBUTE, "Enabled": True},
        },
    )


def test_prod_retains_data(synth):
    prod = synth(stage="prod", alarm_email="ops@example.com", result_retention_days=365)
    for table in prod.resources("AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Retain"
        assert table["Properties"]["DeletionProtectionEnabled"] is True
    for bucket in prod.resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
    prod.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    rules = _data_bucket(prod)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"Prefix": "results/", "ExpirationInDays": 365} in [
        {k: r.get(k) for k in ("Prefix", "ExpirationInDays")} for r in rules
    ]


# ---------------------------------------------------------------------- S3


def _data_bucket(synth_result) -> dict[str, Any]:
    return next(
        b
        for b in synth_result.resources("AWS::S3::Bucket").values()
        if "LoggingConfiguration" in b["Properties"]
    )


def test_buckets_encrypted_private_tls_only(default):
    buckets = default.resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # data + access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
    policies = default.resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )


def test_bucket_lifecycle_and_access_logs(default):
    data = _data_bucket(default)
    rules = {r["Id"]: r for r in data["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-job-logs"]["Prefix"] == "logs/"
    assert rules["expire-job-logs"]["ExpirationInDays"] == 30
    assert rules["expire-build-logs"]["Prefix"] == "builds/"
    assert "abort-incomplete-uploads" in rules
    assert "expire-results" not in rules  # result_retention_days=0 keeps results
    assert data["Properties"]["LoggingConfiguration"]["DestinationBucketName"]


# ---------------------------------------------------------------------- Batch


def test_fargate_compute_environment_by_default(default):
    default.template.has_resource_properties(
        "AWS::Batch::ComputeEnvironment",
        {"Type": "managed", "ComputeResources": Match.object_like({"Type": "FARGATE", "MaxvCpus": 256})},
    )
    default.template.resource_count_is("AWS::Batch::JobQueue", 1)
    default.template.resource_count_is("AWS::EC2::NatGateway", 0)
    for subnet in default.resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is True
    default.template.resource_properties_count_is(
        "AWS::EC2::SecurityGroup", {"SecurityGroupIngress": Match.any_value()}, 0
    )


@pytest.mark.parametrize(
    ("compute_type", "cfn_type"),
    [("FARGATE_SPOT", "FARGATE_SPOT"), ("EC2", "EC2"), ("SPOT", "SPOT")],
)
def test_compute_type_variants(synth, compute_type, cfn_type):
    variant = synth(compute_type=compute_type, max_vcpus="64")
    variant.template.has_resource_properties(
        "AWS::Batch::ComputeEnvironment",
        {"ComputeResources": Match.object_like({"Type": cfn_type, "MaxvCpus": 64})},
    )
    if compute_type in ("EC2", "SPOT"):  # instances: their metadata service out of user code's reach
        (template,) = variant.template.find_resources("AWS::EC2::LaunchTemplate").values()
        data = template["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
        assert "--destination 169.254.169.254/32 --match owner --uid-owner 1000 --jump REJECT" in json.dumps(
            data["UserData"]
        )


def test_bad_context_fails_with_a_clear_message():
    from app import SKIP_BUNDLING, build_app
    from stacks.config import ConfigError

    with pytest.raises(ConfigError, match="compute_type"):
        build_app({**SKIP_BUNDLING, "compute_type": "GPU"}, nag=False)
    with pytest.raises(ConfigError, match="log_retention_days"):
        build_app({**SKIP_BUNDLING, "log_retention_days": "31"}, nag=False)


# ---------------------------------------------------------------------- events


def test_scaler_schedule_and_event_rules(default):
    default.template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)", "State": "ENABLED"}
    )
    default.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.codebuild"],
                "detail-type": ["CodeBuild Build State Change"],
                "detail": {
                    "project-name": [Match.any_value()],
                    "build-status": ["SUCCEEDED", "FAILED", "STOPPED", "FAULT", "TIMED_OUT"],
                },
            }
        },
    )
    default.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.batch"],
                "detail-type": ["Batch Job State Change"],
                "detail": {"jobQueue": [Match.any_value()], "status": ["FAILED", "SUCCEEDED"]},
            }
        },
    )


def test_codebuild_project_and_ecr(default):
    default.template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Environment": Match.object_like({"PrivilegedMode": True, "Image": "aws/codebuild/standard:7.0"}),
            "Source": Match.object_like({"Type": "S3"}),
            "SecondarySources": Match.array_with([Match.object_like({"SourceIdentifier": "core"})]),
        },
    )
    buildspec = next(iter(default.resources("AWS::CodeBuild::Project").values()))["Properties"]["Source"][
        "BuildSpec"
    ]
    for needle in (
        "GEOBATCH_IMAGE_TAG",
        "GEOBATCH_REQUIREMENTS_B64",
        "describe-images",
        "batch_image/Dockerfile",
    ):
        assert needle in buildspec
    # The image's runtime requirements are batch_image/pyproject.toml's, pinned (stacks/requirements.py).
    from stacks.requirements import worker_requirements

    passed = re.search(r'WORKER_REQUIREMENTS=([^"\\]*)', buildspec)  # the spec is JSON: quotes escaped
    assert passed and passed.group(1).split() == list(worker_requirements())
    assert "boto3==" in passed.group(1) and "powertools" not in passed.group(1)
    default.template.has_resource_properties(
        "AWS::ECR::Repository",
        {"ImageScanningConfiguration": {"ScanOnPush": True}, "LifecyclePolicy": Match.any_value()},
    )


# ---------------------------------------------------------------------- monitoring


def test_alarms_and_dashboard(default):
    alarms = default.resources("AWS::CloudWatch::Alarm")
    descriptions = " ".join(a["Properties"]["AlarmDescription"] for a in alarms.values())
    assert "dead-letter" in descriptions
    assert "5xx" in descriptions
    assert len(alarms) >= 2 + 4  # DLQ, API 5xx, one per Lambda
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"]
    default.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    topic_policy = next(iter(default.resources("AWS::SNS::TopicPolicy").values()))
    assert "aws:SecureTransport" in json.dumps(topic_policy)
    dashboard = next(iter(default.resources("AWS::CloudWatch::Dashboard").values()))
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    # The workers' job metrics are checked exactly (schema and statistics) in test_alarm_namespaces.py.
    for needle in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "JobsSubmitted",
        "RunningWorkers",
        "BuildsSucceeded",
        "BuildsFailed",
    ):
        assert needle in body, needle


# ---------------------------------------------------------------------- Lambdas


def test_all_lambdas_use_the_factory_settings(default):
    functions = {
        k: v for k, v in default.resources("AWS::Lambda::Function").items() if "Handler" in v["Properties"]
    }
    ours = {k: v for k, v in functions.items() if v["Properties"]["Handler"].startswith("geobatch_")}
    assert {f["Properties"]["Handler"] for f in ours.values()} == {
        "geobatch_api.app.handler",
        "geobatch_ops.scaler.handler",
        "geobatch_ops.build_events.handler",
        "geobatch_ops.batch_events.handler",
    }
    for function in ours.values():
        props = function["Properties"]
        assert props["Runtime"] == f"python{PYTHON_VERSION}"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Architectures"] == ["x86_64"]
        assert props["LoggingConfig"]["LogGroup"]
        variables = props["Environment"]["Variables"]
        for key in (
            env.FUNCTIONS_TABLE,
            env.JOBS_TABLE,
            env.BUCKET,
            env.QUEUE_PREFIX,
            env.BATCH_JOB_QUEUE,
            env.WORKER_PERMISSIONS_BOUNDARY,
            env.FUNCTIONS_TABLE_ARN,
            env.JOBS_TABLE_ARN,
            env.CODEBUILD_PROJECT,
            env.ECR_REPOSITORY_URI,
            env.SCALER_FUNCTION,
        ):
            assert key in variables, key
        assert variables[env.EXECUTOR] == "batch"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "GeoBatch"
        assert variables["POWERTOOLS_SERVICE_NAME"].startswith("geobatch-")
    log_groups = default.resources("AWS::Logs::LogGroup")
    assert all(g["Properties"].get("RetentionInDays") == 30 for g in log_groups.values())


# ---------------------------------------------------------------------- IAM


def test_no_wildcard_actions(default):
    for statement in _statements(default.template_json):
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            assert action != "*", statement
            assert not re.fullmatch(r"[a-z0-9-]+:\*", action), statement


def _managed_policy_statements(template: dict, logical_prefix: str) -> list[dict]:
    return [
        statement
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and logical_id.startswith(logical_prefix)
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_worker_boundary_is_prefix_limited(default):
    # Worker roles are made per Function at runtime; this boundary caps every one of them.
    statements = _managed_policy_statements(default.template_json, "ExecutionWorkerBoundary")
    assert statements
    s3_resources = [
        json.dumps(r)
        for s in statements
        for a in _as_list(s["Action"])
        if a.startswith("s3:")
        for r in _as_list(s["Resource"])
    ]
    assert s3_resources
    for resource in s3_resources:
        assert re.search(r"/(bundles|args|results|logs)/\*", resource), resource
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert {"s3:GetObject", "s3:PutObject", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    assert not any(
        a.startswith(("s3:Delete", "dynamodb:Delete", "sqs:Create", "batch:", "iam:")) for a in actions
    )
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in _as_list(s["Action"]))]
    assert all("geobatch-dev-*" in json.dumps(s["Resource"]) for s in sqs)


def test_user_code_is_bounded_to_data_and_workers_may_assume_only_data_roles(default):
    # The data roles' boundary: explicit denials of anything but S3 and of the control plane's objects.
    data = _managed_policy_statements(default.template_json, "ExecutionDataBoundary")
    denials = [s for s in data if s["Effect"] == "Deny"]
    assert {"NotAction": "s3:*", "Resource": "*"}.items() <= next(
        s for s in denials if "NotAction" in s
    ).items()
    objects = json.dumps([s["Resource"] for s in denials if s.get("Action") == "s3:*"])
    for prefix in ("bundles/", "args/", "results/", "logs/", "builds/"):
        assert prefix in objects
    assert not [s for s in data if s["Effect"] == "Allow"]  # the default context bounds no user data
    worker = _managed_policy_statements(default.template_json, "ExecutionWorkerBoundary")
    (assume,) = [s for s in worker if "sts:AssumeRole" in _as_list(s["Action"])]
    assert _as_list(assume["Action"]) == ["sts:AssumeRole"]
    assert "role/geobatch/geobatch-dev-data-*" in json.dumps(assume["Resource"])


def test_control_plane_sqs_batch_and_passrole_are_scoped(default):
    statements = _role_statements(default.template_json, "ApiHandlerRole")
    by_action = {a: s for s in statements for a in _as_list(s["Action"])}
    for action in ("sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue"):
        assert "geobatch-dev-*" in json.dumps(by_action[action]["Resource"]), action
    assert "job-definition/geobatch-dev-*" in json.dumps(by_action["batch:RegisterJobDefinition"]["Resource"])
    pass_role = json.dumps(by_action["iam:PassRole"]["Resource"])
    assert "role/geobatch/geobatch-dev-fn-*" in pass_role and "ExecutionWorkerExecutionRole" in pass_role
    # The control plane may create worker roles only under the worker boundary and data roles only under
    # the data boundary, each only by its name prefix.
    creates = {
        json.dumps(s["Resource"]): json.dumps(s["Condition"]["StringEquals"]["iam:PermissionsBoundary"])
        for s in statements
        if "iam:CreateRole" in _as_list(s["Action"])
    }
    assert len(creates) == 2
    for resource, boundary in creates.items():
        assert (
            "ExecutionWorkerBoundary" if "geobatch-dev-fn-*" in resource else "ExecutionDataBoundary"
        ) in boundary
        assert (
            "role/geobatch/geobatch-dev-fn-*" in resource or "role/geobatch/geobatch-dev-data-*" in resource
        )
    assert all(
        "iam:PutRolePolicy" in _as_list(s["Action"])
        for s in statements
        if "iam:CreateRole" in _as_list(s["Action"])
    )
    assert "geobatch-dev-data-*" in json.dumps(by_action["iam:UpdateAssumeRolePolicy"]["Resource"])
    assert "lambda:InvokeFunction" in by_action
