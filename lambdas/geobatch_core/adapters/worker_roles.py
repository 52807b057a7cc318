"""One IAM role per Function for its workers, so user code reaches only its own Function's data.

A worker runs user code with its task role. With one role per Function, that code can read only
its Function's bundle and arguments, write only its jobs' results and logs, change only its own
job items and use only its own queue, and reach only the S3 locations the Function declares
(``data_access``, checked against the stack's bound when the Function is saved). Every role is
created under a permissions boundary that the stack defines (the most any worker may do, including
the operator's data bound), so the API cannot mint a broader role even if asked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from geobatch.wire import data_access
from geobatch_core import layout
from geobatch_core.adapters.aws_errors import ErrorMap, error_code
from geobatch_core.ports import Item

ERRORS = ErrorMap("IAM")

ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
POLICY_NAME = "function-scope"
ROLE_PATH = "/geobatch/"


def queue_arn(queue_url: str, region: str, partition: str) -> str:
    """``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`` → ``arn:PARTITION:sqs:REGION:ACCOUNT:NAME``."""
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


class WorkerRoles:
    def __init__(
        self,
        iam_client: Any,
        *,
        name_prefix: str,
        permissions_boundary_arn: str,
        functions_table_arn: str,
        jobs_table_arn: str,
        bucket: str,
        metrics_namespace: str = layout.WORKER_METRICS_NAMESPACE,
    ):
        self._iam = iam_client
        self.name_prefix = name_prefix
        self.permissions_boundary_arn = permissions_boundary_arn
        self.functions_table_arn = functions_table_arn
        self.jobs_table_arn = jobs_table_arn
        self.bucket = bucket
        self.metrics_namespace = metrics_namespace
        arn_parts = jobs_table_arn.split(":")
        self._partition, self._region = arn_parts[1], arn_parts[3]

    def role_name(self, function_id: str) -> str:
        return f"{self.name_prefix}-fn-{function_id}"

    def policy(self, function: Mapping[str, Any]) -> dict[str, Any]:
        """The role's inline policy: this Function's resources, its declared data and nothing else
        (pure; tested)."""
        fid = str(function["id"])
        objects = f"arn:{self._partition}:s3:::{self.bucket}"
        own_items = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [fid]}}
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OwnQueue",
                    "Effect": "Allow",
                    "Action": [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    "Resource": queue_arn(str(function["queue_url"]), self._region, self._partition),
                },
                {
                    "Sid": "OwnFunction",
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem"],
                    "Resource": self.functions_table_arn,
                    "Condition": own_items,
                },
                {
                    "Sid": "OwnJobs",
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                    "Resource": self.jobs_table_arn,
                    "Condition": own_items,
                },
                {
                    "Sid": "OwnInputs",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"{objects}/{layout.bundle_key(fid)}", f"{objects}/args/{fid}/*"],
                },
                {
                    "Sid": "OwnOutputs",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject"],
                    "Resource": [f"{objects}/results/{fid}/*", f"{objects}/logs/{fid}/*"],
                },
                {
                    "Sid": "Metrics",
                    "Effect": "Allow",
                    "Action": ["cloudwatch:PutMetricData"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": self.metrics_namespace}},
                },
                *data_access.statements(function.get("data_access"), self._partition),
            ],
        }

    def ensure(self, function: Item) -> str:
        """Create (or update) the Function's worker role; returns its ARN."""
        name = self.role_name(str(function["id"]))
        try:
            # Create first, never GetRole first: the control plane may touch only roles under
            # role/geobatch/..., and IAM authorizes GetRole of a role that does not exist yet against
            # role/<name> (it cannot know the path), which that grant does not match: AccessDenied,
            # not NoSuchEntity.
            try:
                arn = str(
                    self._iam.create_role(
                        RoleName=name,
                        Path=ROLE_PATH,
                        AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST),
                        PermissionsBoundary=self.permissions_boundary_arn,
                        Description=f"GeoBatch workers of Function {function['id']}",
                        Tags=[{"Key": "geobatch:function", "Value": str(function["id"])}],
                    )["Role"]["Arn"]
                )
            except ClientError as exc:
                if error_code(exc) != "EntityAlreadyExists":
                    raise
                arn = str(self._iam.get_role(RoleName=name)["Role"]["Arn"])
            self._iam.put_role_policy(
                RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(self.policy(function))
            )
        except (ClientError, BotoCoreError) as exc:
            raise ERRORS.error(exc, f"preparing the worker role of Function {function['id']}") from exc
        return arn

    def delete(self, function_id: str) -> None:
        """Remove the Function's worker role (nothing to do when it is already gone)."""
        name = self.role_name(function_id)
        try:
            self._iam.delete_role_policy(RoleName=name, PolicyName=POLICY_NAME)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise ERRORS.error(exc, f"deleting the worker role policy of Function {function_id}") from exc
        try:
            self._iam.delete_role(RoleName=name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise ERRORS.error(exc, f"deleting the worker role of Function {function_id}") from exc
