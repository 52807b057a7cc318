"""User code in AWS runs with its Function's data role, never its worker's task role (issue 15, items 7
and 10): the roles' policies (pure, decided by the rehearsal's IAM evaluator), the roles as the control
plane makes them (moto's IAM), the loopback credentials endpoint as botocore's own container
provider reads it, the child's environment, and the worker parent's ``/proc`` after it hid its keys."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest
from botocore.credentials import ContainerProvider
from botocore.exceptions import ClientError, CredentialRetrievalError
from moto import mock_aws

from geobatch_core.adapters.worker_roles import WorkerRoles, data_trust
from geobatch_core.records import FunctionRecord
from geobatch_worker import credentials
from geobatch_worker.contain import Containment
from tests.rehearsal.policy_eval import Check, decide, evaluate, statements

ACCOUNT = "123456789012"
FID = "0123456789ab"
BUCKET = "geobatch-state"
JOBS = f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/jobs"
FUNCTION = FunctionRecord(
    id=FID,
    status="ready",
    queue_url=f"https://sqs.us-west-2.amazonaws.com/{ACCOUNT}/geobatch-dev-{FID}",
    data_access={"read": ["s3://user-data/inputs/*"], "write": ["s3://user-data/products/*"]},
)
ROOT = Path(__file__).resolve().parents[2]


def _roles(iam=None, **kwargs) -> WorkerRoles:
    return WorkerRoles(
        iam,
        name_prefix="geobatch-dev",
        permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/worker-boundary",
        functions_table_arn=f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/functions",
        jobs_table_arn=JOBS,
        bucket=BUCKET,
        **kwargs,
    )


# --------------------------------------------------------------------------- the policies (pure)

ATTEMPTS = {  # what a hostile job would do with the worker role's credentials
    "update its job item": Check("dynamodb:UpdateItem", JOBS, {"dynamodb:leadingkeys": [FID]}),
    "read its args": Check("s3:GetObject", f"arn:aws:s3:::{BUCKET}/args/{FID}/job.json"),
    "read its bundle": Check("s3:GetObject", f"arn:aws:s3:::{BUCKET}/bundles/{FID}.zip"),
    "write its result": Check("s3:PutObject", f"arn:aws:s3:::{BUCKET}/results/{FID}/job"),
    "write its log": Check("s3:PutObject", f"arn:aws:s3:::{BUCKET}/logs/{FID}/job"),
    "alarm metrics": Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": ["GeoBatch"]}),
    "worker metrics": Check("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": ["GeoBatch/Workers"]}),
    "receive its queue": Check("sqs:ReceiveMessage", f"arn:aws:sqs:us-west-2:{ACCOUNT}:geobatch-dev-{FID}"),
    "assume a role": Check("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/geobatch/geobatch-dev-fn-{FID}"),
}


@pytest.mark.unit
def test_the_worker_role_could_forge_job_state_the_data_role_cannot() -> None:
    roles = _roles()
    worker = statements([roles.policy(FUNCTION)])
    data = statements([roles.data_policy(FUNCTION)])
    # What the worker parent needs stays with the worker role (so user code must not hold it) ...
    for what in ("update its job item", "read its args", "write its result", "worker metrics"):
        assert decide(worker, ATTEMPTS[what]) == "allow", what
    # ... and none of it, nor anything else of the control plane's, is the data role's: denied outright.
    for what, check in ATTEMPTS.items():
        assert decide(data, check) == "deny", what


@pytest.mark.unit
def test_the_data_role_allows_exactly_the_declared_data() -> None:
    data = statements([_roles().data_policy(FUNCTION)])
    assert decide(data, Check("s3:GetObject", "arn:aws:s3:::user-data/inputs/tile.tif")) == "allow"
    assert decide(data, Check("s3:PutObject", "arn:aws:s3:::user-data/products/v1/tile.tif")) == "allow"
    assert decide(data, Check("s3:GetObject", "arn:aws:s3:::user-data/secret.txt")) == "neutral"
    assert decide(data, Check("s3:PutObject", "arn:aws:s3:::user-data/inputs/forged.tif")) == "neutral"
    # A bound that named the stack bucket would still not reach the control plane's objects.
    wide = dataclasses.replace(
        FUNCTION, data_access={"read": [f"s3://{BUCKET}/*"], "write": [f"s3://{BUCKET}/*"]}
    )
    wide_data = statements([_roles().data_policy(wide)])
    assert decide(wide_data, Check("s3:GetObject", f"arn:aws:s3:::{BUCKET}/shared/x")) == "allow"
    assert decide(wide_data, ATTEMPTS["read its args"]) == "deny"


@pytest.mark.unit
def test_the_worker_role_may_assume_its_own_data_role_only_and_only_it_is_trusted() -> None:
    roles = _roles()
    worker = statements([roles.policy(FUNCTION)])
    own = roles.data_role_arn(FID)
    assert own == f"arn:aws:iam::{ACCOUNT}:role/geobatch/geobatch-dev-data-{FID}"
    assert decide(worker, Check("sts:AssumeRole", own)) == "allow"
    other = roles.data_role_arn("ba9876543210")
    assert decide(worker, Check("sts:AssumeRole", other)) == "neutral"
    worker_arn = f"arn:aws:iam::{ACCOUNT}:role/geobatch/{roles.role_name(FID)}"
    trust = statements([data_trust(worker_arn)])
    assert decide(trust, Check("sts:AssumeRole", own, principal=worker_arn)) == "allow"
    stranger = f"arn:aws:iam::{ACCOUNT}:role/geobatch/{roles.role_name('ba9876543210')}"
    assert decide(trust, Check("sts:AssumeRole", own, principal=stranger)) == "neutral"


@pytest.mark.unit
def test_no_boundary_or_policy_lets_the_data_role_past_its_denials() -> None:
    everything = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    data = statements([_roles().data_policy(FUNCTION)])
    for what, check in ATTEMPTS.items():
        assert not evaluate(everything + data, everything, [], check).allowed, what


# --------------------------------------------------------------------------- the roles in IAM


@pytest.mark.moto
def test_the_control_plane_makes_and_removes_both_roles_each_under_its_boundary() -> None:
    with mock_aws():
        iam = boto3.client("iam", region_name="us-west-2")
        doc = json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        )
        worker_boundary = iam.create_policy(PolicyName="worker", PolicyDocument=doc)["Policy"]["Arn"]
        data_boundary = iam.create_policy(PolicyName="data", PolicyDocument=doc)["Policy"]["Arn"]
        roles = _roles(iam, data_boundary_arn=data_boundary)
        roles.permissions_boundary_arn = worker_boundary
        made = roles.ensure(FUNCTION)
        worker = iam.get_role(RoleName=roles.role_name(FID))["Role"]
        data = iam.get_role(RoleName=roles.data_role_name(FID))["Role"]
        assert (made.worker, made.data) == (worker["Arn"], data["Arn"]) and data[
            "Arn"
        ] == roles.data_role_arn(FID)
        assert worker["PermissionsBoundary"]["PermissionsBoundaryArn"] == worker_boundary
        assert data["PermissionsBoundary"]["PermissionsBoundaryArn"] == data_boundary
        assert data["AssumeRolePolicyDocument"] == data_trust(worker["Arn"])
        inline = iam.get_role_policy(RoleName=data["RoleName"], PolicyName="function-data")["PolicyDocument"]
        assert inline == roles.data_policy(FUNCTION)
        assert roles.ensure(FUNCTION) == made  # saving again updates both in place
        roles.delete(FID)
        for name in (roles.role_name(FID), roles.data_role_name(FID)):
            with pytest.raises(iam.exceptions.NoSuchEntityException):
                iam.get_role(RoleName=name)
        roles.delete(FID)  # gone already: nothing to do


class _NotPropagatedYet:
    """moto's IAM, except that the first data role's trust naming a just-made worker role is refused
    as IAM does until the new role has propagated ("Invalid principal in policy")."""

    def __init__(self, iam):
        self._iam, self.refused = iam, 0

    def __getattr__(self, name):
        return getattr(self._iam, name)

    def create_role(self, **kwargs):
        if "-data-" in kwargs["RoleName"] and not self.refused:
            self.refused += 1
            error = {"Error": {"Code": "MalformedPolicyDocument", "Message": "Invalid principal in policy"}}
            raise ClientError(error, "CreateRole")
        return self._iam.create_role(**kwargs)


@pytest.mark.moto
def test_a_trust_refused_while_the_worker_role_propagates_is_tried_again() -> None:
    with mock_aws():
        iam = _NotPropagatedYet(boto3.client("iam", region_name="us-west-2"))
        slept: list[float] = []
        roles = _roles(iam, sleep=slept.append)
        made = roles.ensure(FUNCTION)
        assert iam.refused == 1 and slept == [2.0]
        assert iam.get_role(RoleName=roles.data_role_name(FID))["Role"]["Arn"] == made.data


# --------------------------------------------------------------------------- the endpoint


def _data_role(iam) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    return iam.create_role(RoleName="data", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


@pytest.mark.moto
def test_botocores_container_provider_reads_the_data_role_from_the_loopback_endpoint() -> None:
    with mock_aws():
        role = _data_role(boto3.client("iam", region_name="us-west-2"))
        source = credentials.DataRoleCredentials(
            boto3.client("sts", region_name="us-west-2"), role, "user-job"
        )
        server = credentials.CredentialServer(source)
        try:
            names = server.child_environ()
            assert names["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
            loaded = ContainerProvider(environ=names).load()
            frozen = loaded.get_frozen_credentials()
            assert frozen.access_key == source.current()["AccessKeyId"] and frozen.token
            assert loaded._expiry_time is not None  # refreshable: the SDK asks again before it expires
            with pytest.raises(CredentialRetrievalError):  # the path alone is not enough
                ContainerProvider(environ={**names, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "guess"}).load()
        finally:
            server.close()


@pytest.mark.moto
def test_a_session_near_its_expiry_is_assumed_again_else_reused() -> None:
    with mock_aws():
        role = _data_role(boto3.client("iam", region_name="us-west-2"))
        sts = boto3.client("sts", region_name="us-west-2")
        cached = credentials.DataRoleCredentials(sts, role, "user-job")
        assert cached.current() == cached.current() and cached.assumed == 1
        # A margin longer than a session (an hour): every session is "near its expiry".
        expiring = credentials.DataRoleCredentials(sts, role, "user-job", refresh_margin=3601)
        first, second = expiring.current(), expiring.current()
        assert expiring.assumed == 2 and first["AccessKeyId"] != second["AccessKeyId"]


# --------------------------------------------------------------------------- the child's environment

TASK_ROLE = {
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/task-role",
    "AWS_ACCESS_KEY_ID": "ASIATASKROLE",
    "AWS_SECRET_ACCESS_KEY": "task-secret",
    "AWS_SESSION_TOKEN": "task-token",
    "AWS_PROFILE": "worker",
}


@pytest.mark.moto
def test_the_child_gets_the_data_roles_endpoint_and_nothing_of_the_task_role(tmp_path) -> None:
    with mock_aws():
        role = _data_role(boto3.client("iam", region_name="us-west-2"))
        environ = {
            "PATH": "/usr/bin",
            "AWS_DEFAULT_REGION": "us-west-2",
            "GEOBATCH_JOBS_TABLE": "jobs",
            "GEOBATCH_WORKER_DATA_ROLE_ARN": role,
            **TASK_ROLE,
        }
        contained = Containment(FUNCTION, environ, workdir=str(tmp_path), worker_id="batch-job:3")
        try:
            child = contained.environ
            assert not set(child) & {*TASK_ROLE, "GEOBATCH_JOBS_TABLE", "GEOBATCH_WORKER_DATA_ROLE_ARN"}
            assert not any(v in json.dumps(child) for v in TASK_ROLE.values())
            assert child["AWS_DEFAULT_REGION"] == "us-west-2"
            assert contained.credentials is not None
            frozen = ContainerProvider(environ=child).load().get_frozen_credentials()
            assert frozen.access_key not in (TASK_ROLE["AWS_ACCESS_KEY_ID"],)
        finally:
            contained.close()


@pytest.mark.unit
def test_without_a_data_role_the_child_gets_no_credentials_at_all(tmp_path) -> None:
    contained = Containment(FUNCTION, {"PATH": "/usr/bin", **TASK_ROLE}, workdir=str(tmp_path))
    assert contained.credentials is None
    assert not [k for k in contained.environ if k.startswith("AWS_")]


# --------------------------------------------------------------------------- the parent's /proc

HIDE = textwrap.dedent(
    """
    import ctypes, os, sys
    from geobatch_worker.credentials import hide_task_credentials
    hide_task_credentials()
    shown = open("/proc/self/environ", "rb").read()
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    print(os.getpid(), "shown" if b"task-secret" in shown else "hidden", secret, dumpable, flush=True)
    sys.stdin.readline()
    """
)


@pytest.mark.unit
def test_the_worker_parent_keeps_its_keys_in_memory_only_and_closes_its_proc(tmp_path) -> None:
    pythonpath = os.pathsep.join(str(ROOT / p) for p in ("batch_image", "sdk", "lambdas"))
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": pythonpath, **TASK_ROLE}
    worker = subprocess.Popen(
        [sys.executable, "-c", HIDE], env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        pid, shown, secret, dumpable = worker.stdout.readline().split()
        # Re-executed: its /proc/<pid>/environ names none of the keys, its os.environ has them back.
        assert (shown, secret) == ("hidden", "task-secret")
        # Undumpable: /proc/<pid>/environ, mem and ptrace need CAP_SYS_PTRACE, which a job (the image's
        # unprivileged user) lacks.
        assert dumpable == "0"
        if os.geteuid() != 0:  # as such a user, see it refused (root may read it regardless)
            probe = subprocess.run(
                [sys.executable, "-c", f"open('/proc/{pid}/environ', 'rb').read()"],
                capture_output=True,
                text=True,
            )
            assert probe.returncode != 0 and "PermissionError" in probe.stderr, probe.stderr
    finally:
        worker.communicate("\n", timeout=30)
