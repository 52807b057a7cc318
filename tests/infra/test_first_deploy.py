"""Template assertions for what broke the first real deploy and run (issue 12): the API Gateway
account's logging role, the scaler's concurrency, build events that can never be lost, the worker
log group and the grants between the Lambdas."""

from __future__ import annotations

from typing import Any

import pytest

from geobatch.wire import env
from geobatch_core.adapters.codebuild import TERMINAL_BUILD_STATUSES

pytestmark = pytest.mark.infra


def _one(synth_result: Any, cfn_type: str, predicate: Any = lambda r: True) -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in synth_result.resources(cfn_type).items() if predicate(v)]
    assert len(found) == 1, [k for k, _ in found]
    return found[0]


def _function(synth_result: Any, handler: str) -> tuple[str, dict[str, Any]]:
    return _one(synth_result, "AWS::Lambda::Function", lambda r: r["Properties"]["Handler"] == handler)


def _role_statements(synth_result: Any, role_ref: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synth_result.resources("AWS::IAM::Policy").values()
        if {"Ref": role_ref} in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_the_stage_waits_for_the_accounts_api_gateway_logging_role(default):
    """API Gateway refuses a stage with access logging until the account and region have a CloudWatch
    role ("CloudWatch Logs role ARN must be set in account settings"): a fresh account has none."""
    account_id, account = _one(default, "AWS::ApiGateway::Account")
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = default.template_json["Resources"][role_id]
    assert role["Type"] == "AWS::IAM::Role"
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    policies = [str(p) for p in role["Properties"]["ManagedPolicyArns"]]
    assert any("service-role/AmazonAPIGatewayPushToCloudWatchLogs" in p for p in policies)
    # The account setting outlives the stack: its role must too, or every API in the region stops logging.
    assert role["DeletionPolicy"] == "Retain" and account["DeletionPolicy"] == "Retain"
    stage_id, stage = _one(default, "AWS::ApiGateway::Stage")
    assert "AccessLogSetting" in stage["Properties"]
    assert account_id in stage.get("DependsOn", [])


def test_an_operator_can_leave_the_accounts_logging_role_alone(synth):
    kept = synth(api_gateway_account="false")
    assert kept.resources("AWS::ApiGateway::Account") == {}


def test_one_scaler_pass_at_a_time(default, synth):
    _, scaler = _function(default, "geobatch_ops.scaler.handler")
    assert scaler["Properties"]["ReservedConcurrentExecutions"] == 1
    _, unreserved = _function(synth(scaler_reserved_concurrency="0"), "geobatch_ops.scaler.handler")
    assert "ReservedConcurrentExecutions" not in unreserved["Properties"]


def test_build_events_match_every_terminal_state_and_are_never_dropped(default):
    _, rule = _one(
        default,
        "AWS::Events::Rule",
        lambda r: r["Properties"].get("EventPattern", {}).get("source") == ["aws.codebuild"],
    )
    statuses = rule["Properties"]["EventPattern"]["detail"]["build-status"]
    assert sorted(statuses) == sorted(TERMINAL_BUILD_STATUSES)
    assert {"FAULT", "TIMED_OUT"} <= set(statuses)
    (target,) = rule["Properties"]["Targets"]
    dlq_ref = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert default.template_json["Resources"][dlq_ref]["Type"] == "AWS::SQS::Queue"
    # An event delivered but failing all of Lambda's async retries lands in the same queue.
    _, function = _function(default, "geobatch_ops.build_events.handler")
    assert function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0] == dlq_ref
    # The batch-state rule and Lambda share the queue, and an alarm watches it.
    _, batch_rule = _one(
        default,
        "AWS::Events::Rule",
        lambda r: r["Properties"].get("EventPattern", {}).get("source") == ["aws.batch"],
    )
    assert batch_rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] == dlq_ref
    _, batch_events = _function(default, "geobatch_ops.batch_events.handler")
    assert batch_events["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0] == dlq_ref
    _one(
        default,
        "AWS::CloudWatch::Alarm",
        lambda r: (
            r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and dlq_ref in str(r["Properties"].get("Dimensions"))
        ),
    )
    # And the scheduled scaler reconciles Functions stuck `building`: it may read builds.
    scaler_role = _function(default, "geobatch_ops.scaler.handler")[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert any("codebuild:BatchGetBuilds" in _actions(s) for s in _role_statements(default, scaler_role))


def test_batch_events_may_wake_the_scaler(default):
    scaler_id, _ = _function(default, "geobatch_ops.scaler.handler")
    _, batch_events = _function(default, "geobatch_ops.batch_events.handler")
    statements = _role_statements(default, batch_events["Properties"]["Role"]["Fn::GetAtt"][0])
    invokes = [s for s in statements if "lambda:InvokeFunction" in _actions(s)]
    assert invokes, "the batch-events Lambda cannot invoke the scaler"
    resources = [
        r for s in invokes for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert {"Fn::GetAtt": [scaler_id, "Arn"]} in resources


def test_worker_containers_log_to_a_stack_owned_group_with_retention(default):
    assert "/aws/batch/job" not in str(default.template_json)
    _, api = _function(default, "geobatch_api.app.handler")
    group_ref = api["Properties"]["Environment"]["Variables"][env.WORKER_LOG_GROUP]["Ref"]
    group = default.template_json["Resources"][group_ref]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 30
    # The execution role (the awslogs driver) may write there.
    _, execution = _one(
        default,
        "AWS::IAM::Role",
        lambda r: (
            "ecs-tasks.amazonaws.com" in str(r["Properties"]["AssumeRolePolicyDocument"])
            and "container start" in str(r["Properties"].get("Description", ""))
        ),
    )
    roles = [k for k, v in default.resources("AWS::IAM::Role").items() if v is execution]
    statements = _role_statements(default, roles[0])
    writes = [s for s in statements if "logs:PutLogEvents" in _actions(s)]
    assert writes and group_ref in str(writes)
