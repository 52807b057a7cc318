"""Two IAM roles per Function: its workers' task role, and the data role its user code runs with.

The **worker role** is the task role of the Function's worker containers: the worker parent reads
only its Function's bundle and arguments, writes only its jobs' results and logs, changes only its
own job items and uses only its own queue. It may also assume the Function's data role, and nothing
else besides.

The **data role** is what user code gets (the worker parent assumes it and serves its credentials
to the user-code child, ``geobatch_worker.credentials``): only the S3 locations the Function
declares (``data_access``, checked against the stack's bound when the Function is saved), with an
explicit deny of everything that is not S3 and of the control plane's own objects, so a job can
neither forge its jobs' state nor write the metrics alarms read. Its trust names the Function's
worker role only.

Each role is created under a permissions boundary that the stack defines (the workers' boundary,
and the data boundary: the operator's data bound), so the API cannot mint a broader role even if
asked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from geobatch.wire import data_access
from geobatch_core import layout
from geobatch_core.adapters.aws_errors import ErrorMap, error_code
from geobatch_core.records import FunctionRecord

ERRORS = ErrorMap("IAM")

ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
POLICY_NAME = "function-scope"
DATA_POLICY_NAME = "function-data"
ROLE_PATH = "/geobatch/"
# IAM may refuse a trust policy naming a role created a moment ago ("Invalid principal") until the new
# role has propagated: the data role's creation is retried this often, this many seconds apart.
TRUST_ATTEMPTS, TRUST_DELAY_SECONDS = 6, 2.0


def data_trust(worker_role_arn: str) -> dict[str, Any]:
    """Only the Function's worker role may assume its data role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": worker_role_arn}, "Action": "sts:AssumeRole"}],
    }


@dataclass(frozen=True)
class FunctionRoles:
    """The ARNs of a Function's two roles."""

    worker: str  # the workers' task role (job state, its queue, its inputs and outputs)
    data: str  # what its user code runs with (its data_access)


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
        data_boundary_arn: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._iam = iam_client
        self.name_prefix = name_prefix
        self.permissions_boundary_arn = permissions_boundary_arn
        # Without a boundary of its own (an older stack) the data role gets the workers' boundary; its
        # own policy's denials still hold.
        self.data_boundary_arn = data_boundary_arn or permissions_boundary_arn
        self._sleep = sleep
        self.functions_table_arn = functions_table_arn
        self.jobs_table_arn = jobs_table_arn
        self.bucket = bucket
        self.metrics_namespace = metrics_namespace
        arn_parts = jobs_table_arn.split(":")
        self._partition, self._region, self._account = arn_parts[1], arn_parts[3], arn_parts[4]

    def role_name(self, function_id: str) -> str:
        return f"{self.name_prefix}-fn-{function_id}"

    def data_role_name(self, function_id: str) -> str:
        return f"{self.name_prefix}-data-{function_id}"

    def data_role_arn(self, function_id: str) -> str:
        name = self.data_role_name(function_id)
        return f"arn:{self._partition}:iam::{self._account}:role{ROLE_PATH}{name}"

    def data_policy(self, function: FunctionRecord) -> dict[str, Any]:
        """The data role's inline policy: the Function's declared data, nothing of the control plane's
        (pure; tested). Public locations need nothing: they are read unsigned."""
        return {
            "Version": "2012-10-17",
            "Statement": [
                *data_access.denials(self.bucket, self._partition),
                *data_access.statements(function.data_access, self._partition),
            ],
        }

    def policy(self, function: FunctionRecord) -> dict[str, Any]:
        """The worker role's inline policy: this Function's resources and its data role, nothing else
        (pure; tested)."""
        fid = function.id
        objects = f"arn:{self._partition}:s3:::{self.bucket}"
        own_items = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [fid]}}
        queue = queue_arn(function.queue_url or "", self._region, self._partition)
        receive = ["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"]
        namespace = {"StringEquals": {"cloudwatch:namespace": self.metrics_namespace}}
        return {
            "Version": "2012-10-17",
            "Statement": [
                _allow("OwnQueue", [f"sqs:{action}" for action in receive], queue),
                _allow("OwnFunction", ["dynamodb:GetItem"], self.functions_table_arn, own_items),
                _allow(
                    "OwnJobs", ["dynamodb:GetItem", "dynamodb:UpdateItem"], self.jobs_table_arn, own_items
                ),
                _allow(
                    "OwnInputs",
                    ["s3:GetObject"],
                    [f"{objects}/{layout.bundle_key(fid)}", f"{objects}/args/{fid}/*"],
                ),
                _allow(
                    "OwnOutputs", ["s3:PutObject"], [f"{objects}/results/{fid}/*", f"{objects}/logs/{fid}/*"]
                ),
                _allow("Metrics", ["cloudwatch:PutMetricData"], "*", namespace),
                # Only to hand its user code the data role (role chaining); nothing else of STS.
                _allow("DataRole", ["sts:AssumeRole"], self.data_role_arn(fid)),
                # No data_access statements: the worker parent reads and writes no user data; its
                # user code does, with the data role.
            ],
        }

    def ensure(self, function: FunctionRecord) -> FunctionRoles:
        """Create (or update) the Function's worker role, then its data role (whose trust names the
        worker role, which must exist first); returns both ARNs."""
        fid = function.id
        try:
            worker = self._create(self.role_name(fid), ECS_TASKS_TRUST, self.permissions_boundary_arn, fid)
            self._iam.put_role_policy(
                RoleName=self.role_name(fid),
                PolicyName=POLICY_NAME,
                PolicyDocument=json.dumps(self.policy(function)),
            )
            data = self._ensure_data_role(function, worker)
        except (ClientError, BotoCoreError) as exc:
            raise ERRORS.error(exc, f"preparing the worker roles of Function {fid}") from exc
        return FunctionRoles(worker=worker, data=data)

    def _ensure_data_role(self, function: FunctionRecord, worker_arn: str) -> str:
        fid = function.id
        name, trust = self.data_role_name(fid), data_trust(worker_arn)
        for attempt in range(TRUST_ATTEMPTS):
            try:
                arn = self._create(name, trust, self.data_boundary_arn, fid, data=True)
                # Also for a role that existed: a worker role deleted and made again is a new principal,
                # which an old trust policy does not name any more.
                self._iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                break
            except ClientError as exc:
                if error_code(exc) != "MalformedPolicyDocument" or attempt == TRUST_ATTEMPTS - 1:
                    raise
                self._sleep(TRUST_DELAY_SECONDS)  # the new worker role is not known everywhere yet
        self._iam.put_role_policy(
            RoleName=name, PolicyName=DATA_POLICY_NAME, PolicyDocument=json.dumps(self.data_policy(function))
        )
        return arn

    def _create(
        self, name: str, trust: Mapping[str, Any], boundary: str, fid: str, *, data: bool = False
    ) -> str:
        # Create first, never GetRole first: the control plane may touch only roles under
        # role/geobatch/..., and IAM authorizes GetRole of a role that does not exist yet against
        # role/<name> (it cannot know the path), which that grant does not match: AccessDenied, not
        # NoSuchEntity.
        try:
            return str(
                self._iam.create_role(
                    RoleName=name,
                    Path=ROLE_PATH,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    PermissionsBoundary=boundary,
                    Description=f"GeoBatch {'user code' if data else 'workers'} of Function {fid}",
                    Tags=[{"Key": "geobatch:function", "Value": fid}],
                )["Role"]["Arn"]
            )
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            return str(self._iam.get_role(RoleName=name)["Role"]["Arn"])

    def delete(self, function_id: str) -> None:
        """Remove the Function's data role and worker role (nothing to do when they are gone)."""
        for name, policy in (
            (self.data_role_name(function_id), DATA_POLICY_NAME),
            (self.role_name(function_id), POLICY_NAME),
        ):
            self._delete_role(name, policy, function_id)

    def _delete_role(self, name: str, policy: str, function_id: str) -> None:
        try:
            self._iam.delete_role_policy(RoleName=name, PolicyName=policy)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise ERRORS.error(exc, f"deleting the policy of {name} (Function {function_id})") from exc
        try:
            self._iam.delete_role(RoleName=name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise ERRORS.error(exc, f"deleting role {name} (Function {function_id})") from exc


def _allow(
    sid: str, actions: list[str], resource: str | list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One Allow statement of a worker role's policy."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return statement
