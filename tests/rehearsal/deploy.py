"""Deploy a synthesized template into moto's CloudFormation, bridging what moto cannot create.

``split_template`` takes the resources of ``bridges.BRIDGED_TYPES`` out of a copy of the template
and replaces references to them with the names/ARNs their bridge will give them;
``create_bridged`` then makes each through its service's API from its own properties, resolved
against the deployed stack. Nothing else in the template is changed.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.rehearsal.bridges import BRIDGED_TYPES
from tests.rehearsal.cloud import ACCOUNT, REGION, MotoCloud

PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


class DeployError(AssertionError):
    """The template (or a bridged resource) would not deploy; the message says what AWS would say."""


def bridged_literals(stack_name: str, logical: str, resource: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(value of Ref, {attribute: value of GetAtt}) the bridge will give a removed resource."""
    props = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::CodeBuild::Project":
        name = props.get("Name") or f"{stack_name}-{logical}"[:150]
        return name, {"Arn": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}"}
    if kind == "AWS::CloudWatch::Alarm":
        name = props.get("AlarmName") or f"{stack_name}-{logical}"
        return name, {"Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"}
    if kind == "AWS::ApiGateway::Stage":
        return str(props["StageName"]), {}
    return f"rehearsal-{logical}", {}


def _replace_refs(value: Any, literals: dict[str, tuple[str, dict[str, str]]]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in literals:
            return literals[value["Ref"]][0]
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in literals:
            logical, attribute = value["Fn::GetAtt"][0], value["Fn::GetAtt"][1]
            return literals[logical][1][attribute]
        return {k: _replace_refs(v, literals) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, literals) for v in value]
    return value


def split_template(template: dict[str, Any], stack_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(template moto deploys, {logical id: resource} the bridges create)."""
    resources = template["Resources"]
    bridged = {k: v for k, v in resources.items() if v["Type"] in BRIDGED_TYPES}
    literals = {k: bridged_literals(stack_name, k, v) for k, v in bridged.items()}
    deployable = copy.deepcopy(template)
    deployable["Resources"] = {}
    for logical, resource in resources.items():
        if logical in bridged:
            continue
        resource = _replace_refs(copy.deepcopy(resource), literals)
        depends = resource.get("DependsOn")
        if depends:
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in bridged]
            resource["DependsOn"] = kept
            if not kept:
                del resource["DependsOn"]
        deployable["Resources"][logical] = resource
    deployable["Outputs"] = _replace_refs(deployable.get("Outputs", {}), literals)
    return deployable, bridged


# ------------------------------------------------------------------ resolving against the stack


class Resolver:
    """Ref / Fn::GetAtt / Fn::Join / Fn::Select / Fn::Split / Fn::Sub against the deployed stack."""

    def __init__(self, cloud: MotoCloud, template: dict[str, Any], stack_name: str) -> None:
        self.cloud = cloud
        self.types = {k: v["Type"] for k, v in template["Resources"].items()}
        summaries = cloud.client("cloudformation").list_stack_resources(StackName=stack_name)
        self.physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries["StackResourceSummaries"]
        }
        self.literals = {
            k: bridged_literals(stack_name, k, v)
            for k, v in template["Resources"].items()
            if v["Type"] in BRIDGED_TYPES
        }

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.literals:
            return self.literals[name][0]
        if name not in self.physical:
            raise DeployError(f"Ref to {name}, which the stack did not create")
        return self.physical[name]

    def attribute(self, logical: str, attribute: str) -> str:
        if logical in self.literals:
            return self.literals[logical][1][attribute]
        kind, physical = self.types[logical], self.ref(logical)
        arns: dict[str, Callable[[], str]] = {
            "AWS::S3::Bucket": lambda: f"arn:aws:s3:::{physical}",
            "AWS::IAM::Role": lambda: self.cloud.client("iam").get_role(RoleName=physical)["Role"]["Arn"],
            "AWS::KMS::Key": lambda: self.cloud.client("kms").describe_key(KeyId=physical)["KeyMetadata"][
                "Arn"
            ],
            "AWS::Logs::LogGroup": lambda: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*",
            "AWS::ECR::Repository": lambda: f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{physical}",
            "AWS::DynamoDB::Table": lambda: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
            "AWS::SNS::Topic": lambda: physical,
            "AWS::Lambda::Function": lambda: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::Events::Rule": lambda: f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical.split('|')[-1]}",
            # Ref of a queue is its URL.
            "AWS::SQS::Queue": lambda: (
                f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical.rstrip('/').split('/')[-1]}"
            ),
        }
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return physical.rstrip("/").split("/")[-1]
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return physical
        if attribute in ("Arn", "TopicArn") and kind in arns:
            return arns[kind]()
        raise DeployError(f"the rehearsal cannot resolve Fn::GetAtt {logical}.{attribute} ({kind})")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.attribute(arg[0], arg[1])
            if key == "Fn::Join":
                return str(arg[0]).join(str(self(part)) for part in self(arg[1]))
            if key == "Fn::Select":
                return self(arg[1])[int(arg[0])]
            if key == "Fn::Split":
                return str(self(arg[1])).split(arg[0])
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(variables.get(m.group(1)) or self._sub_name(m.group(1))),
                    text,
                )
        return {k: self(v) for k, v in value.items()}

    def _sub_name(self, name: str) -> Any:
        logical, _, attribute = name.partition(".")
        return self.attribute(logical, attribute) if attribute else self.ref(logical)


# ------------------------------------------------------------------ deploy


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names → the service API's camelCase (keys only)."""
    if isinstance(value, dict):
        renamed = {"BuildSpec": "buildspec"}
        return {renamed.get(k, k[:1].lower() + k[1:]): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def create_stack(cloud: MotoCloud, stack_name: str, template: dict[str, Any]) -> dict[str, Any]:
    """create_stack, answer the custom resources (see BRIDGES), wait for CREATE_COMPLETE."""
    cfn = cloud.client("cloudformation")
    stack_id = cfn.create_stack(
        StackName=stack_name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
    )["StackId"]
    for logical, resource in template["Resources"].items():
        if resource["Type"].startswith("Custom::"):
            _answer_custom_resource(cloud, stack_id, logical)
    for _ in range(100):
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_IN_PROGRESS":
            break
        time.sleep(0.1)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in events
            if "FAILED" in e["ResourceStatus"]
        ]
        raise DeployError(f"stack {stack['StackStatus']}: {failed}")
    return dict(stack)


def _answer_custom_resource(cloud: MotoCloud, stack_id: str, logical: str) -> None:
    import requests

    response = requests.put(
        f"{cloud.endpoint}/cloudformation_{REGION}/cfnresponse?stack={stack_id}",
        data=json.dumps(
            {
                "Status": "SUCCESS",
                "StackId": stack_id,
                "LogicalResourceId": logical,
                "PhysicalResourceId": logical,
                "Data": {},
            }
        ),
        # moto finds the stack's region in a credential scope (in AWS the ResponseURL is a presigned
        # S3 URL and needs no header); the rehearsal's authorizer lets this one call through unsigned.
        headers={
            "Content-Type": "",
            "Authorization": "AWS4-HMAC-SHA256 "
            f"Credential=cfn/20260101/{REGION}/cloudformation/aws4_request, SignedHeaders=host, Signature=-",
        },
        timeout=30,
    )
    response.raise_for_status()


def create_bridged(cloud: MotoCloud, bridged: dict[str, Any], resolve: Resolver) -> dict[str, str]:
    """Create every bridged resource in an order that satisfies their references; returns the ones
    AWS would refuse ({logical id: why}), so one test can fail for them and the others go on."""
    failures: dict[str, str] = {}
    order = ["AWS::ApiGateway::Account", "AWS::ApiGateway::RequestValidator", "AWS::ApiGateway::Stage"]
    ranked = sorted(
        bridged.items(), key=lambda kv: order.index(kv[1]["Type"]) if kv[1]["Type"] in order else -1
    )
    for logical, resource in ranked:
        name = resolve.literals[logical][0]
        try:
            props = resolve(resource.get("Properties", {}))
            _CREATORS[resource["Type"]](cloud, name, props)
        except DeployError as exc:
            failures[logical] = str(exc)
    return failures


def _bucket_policy(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    cloud.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))


def _topic_policy(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    for topic in props["Topics"]:
        cloud.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )


def _queue_policy(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    for queue_url in props["Queues"]:
        cloud.client("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )


def _codebuild(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    api = _camel({k: v for k, v in props.items() if k not in ("Name", "Tags")})
    api["timeoutInMinutes"] = api.pop("timeoutInMinutes", 60)
    cloud.client("codebuild").create_project(name=name, **api)


def _alarm(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName=name, **{k: v for k, v in props.items() if k != "AlarmName"}
    )


def _account(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    cloud.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": props["CloudWatchRoleArn"]}]
    )


def _request_validator(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    cloud.client("apigateway").create_request_validator(
        restApiId=props["RestApiId"],
        name=props.get("Name", name),
        validateRequestBody=props.get("ValidateRequestBody", False),
        validateRequestParameters=props.get("ValidateRequestParameters", False),
    )


def _stage(cloud: MotoCloud, name: str, props: dict[str, Any]) -> None:
    apigateway = cloud.client("apigateway")
    logging_on = "AccessLogSetting" in props or any(
        s.get("LoggingLevel") not in (None, "OFF") for s in props.get("MethodSettings", [])
    )
    if logging_on and not apigateway.get_account().get("cloudwatchRoleArn"):
        # What API Gateway answers in an account whose settings name no CloudWatch role.
        raise DeployError(
            f"AWS::ApiGateway::Stage {name}: CloudWatch Logs role ARN must be set in account settings to "
            "enable logging (the stack enables stage logging but creates no AWS::ApiGateway::Account "
            "with a CloudWatch role; a fresh account/region refuses the deploy)"
        )
    apigateway.create_stage(
        restApiId=props["RestApiId"],
        stageName=props["StageName"],
        deploymentId=props["DeploymentId"],
        tracingEnabled=bool(props.get("TracingEnabled")),
        tags={t["Key"]: t["Value"] for t in props.get("Tags", [])},
    )


_CREATORS: dict[str, Callable[[MotoCloud, str, dict[str, Any]], None]] = {
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::CodeBuild::Project": _codebuild,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::ApiGateway::Account": _account,
    "AWS::ApiGateway::RequestValidator": _request_validator,
    "AWS::ApiGateway::Stage": _stage,
}
