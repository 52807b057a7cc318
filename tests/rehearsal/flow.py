"""The control-plane flow as a user and AWS drive it, against the deployed stack.

API calls are API Gateway REST proxy events (IAM identity) to the deployed API Lambda; the build's
end is the EventBridge event CodeBuild emits, to the build-events Lambda; the scaler gets what the
API's asynchronous invoke sends it. The worker runs ``python -m geobatch_worker`` with its job
definition's environment and its job role's credentials, as Batch would start the container.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from geobatch.bundle import make_bundle
from geobatch.wire import env
from tests.conftest import apigw_event
from tests.rehearsal import jobs
from tests.rehearsal.cloud import REGION, MotoCloud
from tests.rehearsal.lambda_runtime import Invocation

ROOT = Path(__file__).resolve().parents[2]
INFRA_EVENTS = ROOT / "tests" / "infra" / "events"
OWNER = "arn:aws:iam::123456789012:user/alice"


def api_call(api: Any, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = api.invoke(apigw_event(method, path, principal=OWNER, **kwargs)).ok()
    body = response.get("body") or ""
    try:
        return int(response["statusCode"]), json.loads(body)
    except ValueError:
        return int(response["statusCode"]), body


def build_event(function_id: str, image_tag: str, project: str, status: str = "SUCCEEDED") -> dict[str, Any]:
    name = "codebuild_build_succeeded.json" if status == "SUCCEEDED" else "codebuild_build_failed.json"
    event = copy.deepcopy(json.loads((INFRA_EVENTS / name).read_text()))
    event["detail"]["project-name"] = project
    event["region"] = REGION
    for variable in event["detail"]["additional-information"]["environment"]["environment-variables"]:
        if variable["name"] == "GEOBATCH_FUNCTION_ID":
            variable["value"] = function_id
        if variable["name"] == "GEOBATCH_IMAGE_TAG":
            variable["value"] = image_tag
    return event


@dataclass
class SavedFunction:
    id: str
    bundle_key: str
    image_hash: str
    item: dict[str, Any]


def save_function(
    api: Any,
    build_events: Any,
    project: str,
    name: str,
    *,
    code: Any = jobs.double,
    data_access: dict[str, list[str]] | None = None,
) -> tuple[SavedFunction, Invocation]:
    """create → PUT the bundle to its presigned URL → bundle uploaded (build starts) → build succeeded."""
    spec: dict[str, Any] = {"name": name, "retry_count": 0}
    if data_access is not None:
        spec["data_access"] = data_access
    status, created = api_call(api, "POST", "/functions", body=spec)
    assert status == 201, created
    function_id = created["function"]["id"]
    bundle = make_bundle(code)
    upload = requests.put(created["bundle_upload_url"], data=bundle.data, timeout=30)
    assert upload.status_code == 200, f"bundle upload refused: {upload.status_code} {upload.text[:500]}"
    status, building = api_call(api, "POST", f"/functions/{function_id}/bundle")
    assert status == 200 and building["status"] == "building", building
    finished = build_events.invoke(build_event(function_id, building["image_hash"], project))
    status, ready = api_call(api, "GET", f"/functions/{function_id}")
    assert status == 200, ready
    saved = SavedFunction(
        id=function_id,
        bundle_key=f"bundles/{function_id}.zip",
        image_hash=building["image_hash"],
        item=ready,
    )
    return saved, finished


def container_environment(definition: dict[str, Any]) -> dict[str, str]:
    """A job definition's container environment, by name."""
    return {e["name"]: e["value"] for e in definition["containerProperties"].get("environment", [])}


def data_role(definition: dict[str, Any]) -> str:
    """The role the Function's user code runs with (named in its job definition)."""
    return container_environment(definition)[env.WORKER_DATA_ROLE_ARN]


def job_definition(cloud: MotoCloud, name: str) -> dict[str, Any]:
    definitions = cloud.client("batch").describe_job_definitions(jobDefinitionName=name, status="ACTIVE")
    active = sorted(definitions["jobDefinitions"], key=lambda d: d["revision"])
    assert active, f"no active job definition {name}"
    return dict(active[-1])


@dataclass
class WorkerRun:
    returncode: int
    output: str


def run_worker(cloud: MotoCloud, definition: dict[str, Any], batch_job_id: str) -> WorkerRun:
    """The container Batch would start: the definition's command and environment, the job role's
    credentials (Fargate's task role), the region Fargate injects."""
    container = definition["containerProperties"]
    credentials = cloud.assume(container["jobRoleArn"], f"worker-{batch_job_id.replace(':', '-')}")
    command = list(container["command"])
    assert command[:3] == ["python", "-m", "geobatch_worker"], command
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        **container_environment(definition),
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": credentials["aws_session_token"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": cloud.endpoint,
        "AWS_BATCH_JOB_ID": batch_job_id,
        # Test-time knobs only: stop polling once the queue is empty instead of idling for a minute.
        "GEOBATCH_WORKER_IDLE_SECONDS": "2",
        "GEOBATCH_WORKER_POLL_SECONDS": "1",
    }
    completed = subprocess.run(
        [sys.executable, *command[1:]],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return WorkerRun(completed.returncode, completed.stdout + completed.stderr)


@dataclass
class OneJob:
    function: SavedFunction
    submitted: dict[str, Any]
    definition: dict[str, Any]
    run: WorkerRun


def run_one_job(
    cloud: MotoCloud,
    stack: Any,
    lambdas: Any,
    name: str,
    *,
    code: Any,
    args: list[Any],
    data_access: dict[str, list[str]] | None = None,
) -> OneJob:
    """Save a Function (built), submit one job through the API and run a worker for it, as Batch would."""
    function, built = save_function(
        lambdas.api,
        lambdas.build_events,
        stack.bridged_name("AWS::CodeBuild::Project"),
        name,
        code=code,
        data_access=data_access,
    )
    built.ok()
    status, submitted = api_call(
        lambdas.api, "POST", "/jobs", body={"function_id": function.id, "args": args}
    )
    assert status == 201, submitted
    prefix = lambdas.api.environment["GEOBATCH_BATCH_JOB_DEFINITION_PREFIX"]
    definition = job_definition(cloud, f"{prefix}-{function.id}")
    return OneJob(function, submitted, definition, run_worker(cloud, definition, f"{name}-job:0"))
