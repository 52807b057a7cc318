"""The rehearsal's cloud: moto's server with IAM enforced (its own process), an admin, the deploy.

``MotoCloud.start`` runs ``tests.rehearsal.iam_server`` on a free 127.0.0.1 port with
``INITIAL_NO_AUTH_ACTION_COUNT=3``: the three free requests create the deploy admin (user, inline
admin policy, access key); every later request is signed with real moto IAM credentials and
authorized. ``deploy`` does what ``cdk deploy`` does for a bootstrapped environment: upload the file
assets where ``*.assets.json`` says, then CloudFormation ``create_stack`` with the synthesized
template (less the resources ``bridges.BRIDGED_TYPES`` creates through their APIs).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-west-2"
ADMIN = "rehearsal-admin"
BOOTSTRAP_QUALIFIER = "hnb659fds"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoCloud:
    endpoint: str
    process: subprocess.Popen[bytes]
    decisions_path: Path
    admin_credentials: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path) -> MotoCloud:
        port = free_port()
        decisions = workdir / "iam-decisions.jsonl"
        decisions.touch()
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "INITIAL_NO_AUTH_ACTION_COUNT": "3",
            "MOTO_ALLOW_NONEXISTENT_REGION": "false",
            "PYTHONPATH": str(ROOT),
        }
        log = open(workdir / "moto-server.log", "wb")  # noqa: SIM115 (lives as long as the server)
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.rehearsal.iam_server", str(port), str(decisions)],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        cloud = cls(f"http://127.0.0.1:{port}", process, decisions)
        cloud._wait_ready()
        cloud._create_admin()
        return cloud

    def _wait_ready(self) -> None:
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                requests.get(f"{self.endpoint}/moto-api/data.json", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def _create_admin(self) -> None:
        """The three unauthenticated requests: user, inline admin policy, access key."""
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName=ADMIN)
        iam.put_user_policy(
            UserName=ADMIN,
            PolicyName="admin",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
        self.admin_credentials = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }

    def session(self, credentials: dict[str, str] | None = None) -> boto3.session.Session:
        return boto3.session.Session(region_name=REGION, **(credentials or self.admin_credentials))

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        return self.session(credentials).client(service, endpoint_url=self.endpoint, config=NO_RETRIES)

    def assume(self, role_arn: str, session_name: str) -> dict[str, str]:
        """Credentials of ``role_arn`` (what Lambda or ECS would hand the code)."""
        creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }

    def decisions(self) -> list[dict[str, Any]]:
        lines = self.decisions_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ------------------------------------------------------------------ assets


def bootstrap(cloud: MotoCloud) -> str:
    """What ``cdk bootstrap`` leaves in an environment that this template needs; returns the bucket."""
    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{ACCOUNT}-{REGION}"
    cloud.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    cloud.client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value="30", Type="String"
    )
    return bucket


def _zip_dir(source: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())


def upload_assets(cloud: MotoCloud, assembly_dir: Path, stack_name: str) -> list[str]:
    """cdk-assets: every file asset to its destination (a directory is zipped). Returns the keys."""
    manifest = json.loads((assembly_dir / f"{stack_name}.assets.json").read_text())
    s3 = cloud.client("s3")
    keys = []
    for asset in manifest["files"].values():
        source = assembly_dir / asset["source"]["path"]
        for destination in asset["destinations"].values():
            bucket = destination["bucketName"].replace("${AWS::AccountId}", ACCOUNT)
            bucket = bucket.replace("${AWS::Region}", REGION)
            if source.is_dir():
                packed = assembly_dir / f"{source.name}.rehearsal.zip"
                if not packed.exists():
                    _zip_dir(source, packed)
                source_file = packed
            else:
                source_file = source
            s3.upload_file(str(source_file), bucket, destination["objectKey"])
            keys.append(destination["objectKey"])
    return keys


def copy_assembly(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    return target
