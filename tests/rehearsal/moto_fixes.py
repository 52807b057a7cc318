"""Fixes to moto's CloudFormation models, applied in the rehearsal's moto server (listed in BRIDGES).

Each makes moto do what CloudFormation does for a template that AWS accepts; none changes what the
template asks for.
"""

from __future__ import annotations

import json
from typing import Any


def _lowercase_generated_names() -> None:
    """CloudFormation generates lowercase names for resources whose names must be lowercase (ECR
    repositories); moto keeps the stack name's case, which its own ECR then rejects."""
    from moto.cloudformation import parsing

    original = parsing.generate_resource_name

    def generate(resource_type: str, stack_name: str, logical_id: str) -> str:
        name = original(resource_type, stack_name, logical_id)
        return name.lower() if resource_type == "AWS::ECR::Repository" else name

    parsing.generate_resource_name = generate


def _kms_key_properties() -> None:
    """AWS::KMS::Key's Tags are Key/Value pairs and its KeyPolicy a JSON object; moto's model passes
    both to its KMS backend unchanged, which expects the API's TagKey/TagValue and a policy string."""
    from moto.kms.models import Key

    original = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        properties["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
            for t in properties.get("Tags", [])
        ]
        return original(cls, resource_name, cloudformation_json, *args, **kwargs)

    Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment]


def _batch_compute_environment() -> None:
    """AWS::Batch::ComputeEnvironment without ServiceRole uses Batch's service-linked role
    (AWSServiceRoleForBatch, created by AWS on first use) and accepts Type in any case ("managed", as
    CDK writes it); moto requires an existing ServiceRole and upper-case Type, and its model has no
    Fn::GetAtt ComputeEnvironmentArn."""
    from moto.batch.models import ComputeEnvironment
    from moto.iam.models import iam_backends

    original = ComputeEnvironment.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        properties["Type"] = str(properties["Type"]).upper()
        if not properties.get("ServiceRole"):
            iam = iam_backends[account_id]["aws"]
            name, path = "AWSServiceRoleForBatch", "/aws-service-role/batch.amazonaws.com/"
            try:
                role = iam.get_role(name)
            except Exception:
                role = iam.create_role(
                    role_name=name,
                    assume_role_policy_document='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                    '"Principal":{"Service":"batch.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
                    path=path,
                    permissions_boundary=None,
                    description="service-linked role of AWS Batch",
                    tags=[],
                    max_session_duration=None,
                    linked_service="batch.amazonaws.com",
                )
            properties["ServiceRole"] = role.arn
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    ComputeEnvironment.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment]
    _arn_attribute(ComputeEnvironment, "ComputeEnvironmentArn")


def _arn_attribute(model: Any, attribute: str) -> None:
    """Fn::GetAtt <attribute> → the model's ARN (moto's model implements no attributes)."""
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name == attribute:
            return self.arn
        raise UnformattedGetAttTemplateException()

    model.get_cfn_attribute = get_cfn_attribute
    model.has_cfn_attr = classmethod(lambda cls, attr: attr == attribute)


def _batch_job_queue() -> None:
    """Fn::GetAtt JobQueue.JobQueueArn, which moto's model lacks."""
    from moto.batch.models import JobQueue

    _arn_attribute(JobQueue, "JobQueueArn")


FIXES = (_lowercase_generated_names, _kms_key_properties, _batch_compute_environment, _batch_job_queue)


def apply() -> None:
    for fix in FIXES:
        fix()
