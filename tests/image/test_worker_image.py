"""The worker image, built and run: a k-means land-cover tile job succeeds inside it (issue 12, point 4).

AWS is moto's server on 127.0.0.1. The control plane is the deployed composition
(``services_from_env``: DynamoDB, SQS, S3, the Batch executor, the CodeBuild builder, ECR), driven
through its services: save a Function with the demo's requirements, upload its bundle, build,
submit the tiles, scale. Two AWS parts moto cannot play are played here, each by the real thing
on this machine:

- CodeBuild: ``scripts/build_image.sh`` (what ``make image`` runs) builds ``batch_image/Dockerfile``
  with the requirements the build was started with, tagged with the build's image tag; the build's
  end is reported through ``finish_build``, as the build_events Lambda does.
- AWS Batch: for the worker job the scaler submitted, a container of that image runs the job
  definition's command with the job definition's environment (plus the endpoint and test
  credentials, which Batch would give as a role), as the image's unprivileged user, host network.

Opt-in (marker ``image``, ``make rehearse-image``): a cold build takes about ten minutes here.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from geobatch.bundle import make_bundle
from geobatch.demo import DEMO_REQUIREMENTS
from geobatch.landcover.job import classify_tile
from geobatch.landcover.pipeline import DemoPlan, prepare_demo
from geobatch.wire import env
from geobatch.wire.codec import decode_result
from geobatch.wire.models import FunctionCreate, JobBulkCreate
from geobatch_core.adapters import provision
from geobatch_core.adapters.codebuild import encode_requirements
from geobatch_core.adapters.s3 import make_client as make_s3_client
from geobatch_core.services import functions, jobs, scaling
from geobatch_core.services.context import Services
from geobatch_core.wiring import services_from_env
from tests.image import containers
from tests.infra import moto_resources

pytestmark = [pytest.mark.image, pytest.mark.timeout(containers.GUARD_SECONDS * 2)]

ALICE = "arn:aws:iam::123456789012:user/alice"
REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/geobatch-images"
LOCAL_REPOSITORY = "localhost/geobatch-worker"
DATA = "landcover-data"  # the user's bucket: model, STAC items, scenes and the product


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (containers.ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def pinned_demo_requirements() -> list[str]:
    """The demo Function's requirements at this project's versions (a reproducible build)."""
    pins = _constraints()
    return [f"{name}=={pins[name]}" for name in DEMO_REQUIREMENTS]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    reason = containers.can_build()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's Batch would try to start submitted jobs in Docker; here the test plays Batch.
    config = json.dumps({"batch": {"use_docker": False}}).encode()
    request = urllib.request.Request(f"{endpoint}/moto-api/config", data=config, method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(env.AWS_ENDPOINT_URL, endpoint)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> dict[str, str]:
    """The stack's resources on moto; returns the control plane's environment (as the stack sets it)."""
    session = boto3.session.Session()
    provision.create_tables(session.client("dynamodb"), "functions", "jobs")
    provision.create_bucket(make_s3_client(session), "geobatch-bucket")
    iam = session.client("iam")
    roles = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for name in ("worker", "worker-execution")
    }
    session.client("ecr").create_repository(repositoryName=REPOSITORY.partition("/")[2])
    moto_resources.codebuild_project(session, "geobatch-images")
    return {
        env.FUNCTIONS_TABLE: "functions",
        env.JOBS_TABLE: "jobs",
        env.BUCKET: "geobatch-bucket",
        env.QUEUE_PREFIX: "geobatch",
        env.LOST_WORKER_SECONDS: "120",
        env.BATCH_JOB_QUEUE: moto_resources.batch_job_queue(session),
        env.BATCH_JOB_DEFINITION_PREFIX: "geobatch",
        env.BATCH_PLATFORM: "FARGATE",
        env.WORKER_ROLE_ARN: roles["worker"],
        env.WORKER_EXECUTION_ROLE_ARN: roles["worker-execution"],
        env.CODEBUILD_PROJECT: "geobatch-images",
        env.ECR_REPOSITORY_URI: REPOSITORY,
    }


@pytest.fixture(scope="module")
def plan(moto_endpoint: str) -> DemoPlan:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DATA)
    return prepare_demo(s3, DATA, margin_px=64, train_sample=50_000)


def play_codebuild(svc: Services, item: dict[str, Any], workdir: Path) -> str:
    """Build the image CodeBuild was asked for; returns the local image it made."""
    tag = item["image_uri"].rpartition(":")[2]
    assert tag == item["image_hash"]  # the ECR tag is the recipe's hash
    requirements = workdir / "requirements.txt"
    requirements.write_bytes(base64.b64decode(encode_requirements(item["requirements"])))
    image = f"{LOCAL_REPOSITORY}:{tag}"
    log = containers.build(image, requirements)
    functions.finish_build(svc, item["id"], succeeded=True, image_uri=item["image_uri"], log=log)
    return image


def play_batch(image: str, job_definition_arn: str, job_queue: str, moto_endpoint: str) -> tuple[str, str]:
    """Run the submitted worker job's container; returns (its output, the uid it ran as)."""
    batch = boto3.client("batch")
    definition = batch.describe_job_definitions(jobDefinitions=[job_definition_arn])["jobDefinitions"][0]
    container = definition["containerProperties"]
    assert container["image"].startswith(REPOSITORY + ":")
    assert container["image"].rpartition(":")[2] == image.rpartition(":")[2]
    submitted = batch.list_jobs(
        jobQueue=job_queue, filters=[{"name": "JOB_DEFINITION", "values": [job_definition_arn]}]
    )["jobSummaryList"]
    assert len(submitted) == 1, submitted  # the scaler started one worker (maximum_concurrency=1)
    environment = {item["name"]: item["value"] for item in container["environment"]}
    environment.update(
        {
            # What Batch and the job's role would give the container:
            "AWS_BATCH_JOB_ID": submitted[0]["jobId"],
            env.AWS_REGION: "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            env.AWS_ENDPOINT_URL: moto_endpoint,
            # The worker leaves once the queue stays empty this long (60 s by default).
            env.WORKER_IDLE_SECONDS: "5",
            env.WORKER_POLL_SECONDS: "1",
        }
    )
    user = containers.image_user(image)
    assert user == "geobatch"
    with containers.Container(image, user) as worker:
        uid = worker.run(["id", "-u"], {})
        assert uid.returncode == 0, uid.stderr
        proc = worker.run(container["command"], environment)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output, uid.stdout.strip()


def test_kmeans_tile_job_runs_inside_the_built_image(
    stack: dict[str, str], plan: DemoPlan, moto_endpoint: str, tmp_path: Path
) -> None:
    svc = services_from_env(stack)
    requirements = pinned_demo_requirements()
    spec = FunctionCreate(
        name="landcover-kmeans",
        requirements=requirements,
        cpus=1,
        memory=4096,
        maximum_concurrency=1,
        retry_count=0,
        timeout=600,
    )
    function_id = functions.create_function(svc, ALICE, spec).function.id
    item = svc.functions.get(function_id)
    svc.blobs.put(item["bundle_key"], make_bundle(classify_tile, requirements=requirements).data)
    assert functions.bundle_uploaded(svc, ALICE, function_id).status == "building"

    image = play_codebuild(svc, svc.functions.get(function_id), tmp_path)
    item = svc.functions.get(function_id)
    assert item["status"] == "ready" and item["job_definition_arn"]

    tile_key = plan.tile_keys[0]
    args = [tile_key, plan.product_id, plan.model_uri, plan.items_uri, plan.bucket]
    page = jobs.submit_jobs(
        svc, ALICE, JobBulkCreate(function_id=function_id, bulk_args=[args], reference_id="tile-0")
    )
    assert scaling.scale_function(svc, svc.functions.get(function_id)) == 1

    output, uid = play_batch(image, item["job_definition_arn"], stack[env.BATCH_JOB_QUEUE], moto_endpoint)
    assert uid == "1000"
    job = jobs.get_job(svc, ALICE, page.data[0].id)
    assert job.status == "success", (job.status_reason, output[-4000:])
    assert functions.job_statistics(svc, function_id)["success"] == 1
    body = jobs.job_result(svc, ALICE, job.id)
    summary = decode_result(base64.b64decode(body.data or ""))
    assert summary["tile_key"] == tile_key and summary["valid_fraction"] > 0.5
    assert set(summary["cluster_names"].values()) == set(plan.cluster_names.values())
    # The product's COG and STAC Item are in the user's bucket, where the job wrote them.
    s3 = boto3.client("s3")
    for uri in (summary["cog"], summary["item"]):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert bucket == DATA and s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    log = "".join(line.log for line in jobs.job_log(svc, ALICE, job.id))
    assert "Traceback" not in log
