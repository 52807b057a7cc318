"""The IAM of a Function's two runtime roles that the stack defines: the data roles' boundary, what the
control plane may do with worker and data roles, and EC2 instances' metadata service kept from user code.

The roles themselves are created at runtime by ``geobatch_core.adapters.worker_roles``: the worker
role (the workers' task role, under ``Execution.worker_boundary``) and the data role (what user code
runs with, under the data boundary defined here).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from geobatch.wire import data_access
from stacks.config import GeoBatchConfig
from stacks.nag import suppress
from stacks.storage import Storage

WORKER_UID = 1000  # the image's user (batch_image/Dockerfile): the worker and its user code


def grant_role_management(
    principal: iam.IPrincipal,
    *,
    worker_roles: str,
    worker_boundary: iam.ManagedPolicy,
    data_roles: str,
    data_boundary: iam.ManagedPolicy,
    execution_role: iam.IRole,
) -> None:
    """The control plane's grants on the per-Function roles (``worker_roles``, ``data_roles``: ARN
    patterns): each kind created only under its own boundary."""
    # Worker roles, one per Function: created only under the worker boundary, so the control plane
    # cannot mint a broader role.
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:CreateRole", "iam:PutRolePolicy"],
            resources=[worker_roles],
            conditions={"StringEquals": {"iam:PermissionsBoundary": worker_boundary.managed_policy_arn}},
        )
    )
    # Data roles (what user code runs with), one per Function: only under the data boundary.
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:CreateRole", "iam:PutRolePolicy"],
            resources=[data_roles],
            conditions={"StringEquals": {"iam:PermissionsBoundary": data_boundary.managed_policy_arn}},
        )
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:GetRole", "iam:TagRole", "iam:DeleteRolePolicy", "iam:DeleteRole"],
            resources=[worker_roles, data_roles],
        )
    )
    # A data role's trust names its Function's worker role, rewritten when that role is made again.
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["iam:UpdateAssumeRolePolicy"], resources=[data_roles])
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[worker_roles, execution_role.role_arn],
            conditions={
                "StringEquals": {"iam:PassedToService": ["batch.amazonaws.com", "ecs-tasks.amazonaws.com"]}
            },
        )
    )


def data_boundary(scope: Construct, config: GeoBatchConfig, storage: Storage) -> iam.ManagedPolicy:
    """The data roles' permissions boundary: the operator's data bound, never anything else.

    User code runs with its Function's data role (the worker assumes it for the user-code child),
    so this is the most a job's own code can ever do: no job state, queue, metric or control-plane
    object, whatever a data role's own policy says."""
    boundary = iam.ManagedPolicy(
        scope,
        "DataBoundary",
        description="GeoBatch: the most a Function's user code (its data role) may do (boundary)",
    )
    for statement in data_access.denials(storage.bucket.bucket_name, Stack.of(scope).partition):
        boundary.add_statements(iam.PolicyStatement.from_json(statement))
    for statement in data_access.statements(config.data_bound, Stack.of(scope).partition, sid="Bound"):
        boundary.add_statements(iam.PolicyStatement.from_json(statement))
    suppress(
        boundary,
        [
            {
                "id": "AwsSolutions-IAM5",
                "reason": "Permissions boundary of the per-Function data roles: the data locations the "
                "operator allows (context data_access, s3:// prefixes), and explicit denials of "
                "everything that is not S3 and of the stack bucket's control-plane prefixes.",
            }
        ],
    )
    return boundary


def instance_template(scope: Construct) -> ec2.LaunchTemplate:
    """EC2 workers' instances: the instance metadata service (the instance role's credentials)
    out of user code's reach. Batch runs EC2 jobs with host networking, where a hop limit alone
    does not separate a container from the instance, so the image's user (uid 1000: the worker
    and its user code; the worker's own credentials come from the ECS agent, not from IMDS) is
    refused 169.254.169.254 outright (REJECT: an SDK looking there fails at once rather than
    waiting for a timeout); IMDSv2 only, one hop, for everything else."""
    user_data = ec2.UserData.for_linux()
    user_data.add_commands(
        f"iptables --insert OUTPUT 1 --destination 169.254.169.254/32 --match owner "
        f"--uid-owner {WORKER_UID} --jump REJECT"
    )
    multipart = ec2.MultipartUserData()  # Batch merges its own part: it needs MIME multipart
    multipart.add_part(ec2.MultipartBody.from_user_data(user_data))
    return ec2.LaunchTemplate(
        scope,
        "WorkerInstances",
        require_imdsv2=True,
        http_put_response_hop_limit=1,
        user_data=multipart,
    )
