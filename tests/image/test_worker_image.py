"""The worker image, built and run: a k-means land-cover tile job succeeds inside it (issue 12, point 4).

AWS is moto's server on 127.0.0.1 (``conftest.py``). The control plane is the deployed composition
(``services_from_env``: DynamoDB, SQS, S3, the Batch executor, the CodeBuild builder, ECR), driven
through its services: save a Function with the demo's requirements, upload its bundle, build,
submit the tiles, scale. CodeBuild and AWS Batch are played by the real thing on this machine
(``harness.py``): ``scripts/build_image.sh`` builds the image, and a container of it runs the job
definition's command (composed with the image's entrypoint as Docker composes it) and environment
as the image's unprivileged user.

Opt-in (marker ``image``, ``make rehearse-image``). Measured figures go to
``test-artifacts/image/kmeans.json``; the README's "worker image offline" paragraph quotes them.
Last run here (1 December 2026, buildah on 2 loaded cores, Debian base cached, after merging the
data role): build 63 s with cached layers (454 s for a new worker layer plus this Function's
layer), image 728 MB, the tile job ``success`` with a valid fraction of 0.993.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest

from geobatch.bundle import make_bundle
from geobatch.demo import DEMO_REQUIREMENTS, demo_data_access
from geobatch.landcover.job import classify_tile
from geobatch.landcover.pipeline import DemoPlan, prepare_demo
from geobatch.wire import env
from geobatch.wire.codec import decode_result
from geobatch.wire.models import FunctionCreate, JobBulkCreate
from geobatch_core.adapters.batch import WORKER_COMMAND
from geobatch_core.services import functions, jobs, scaling
from geobatch_core.wiring import services_from_env
from stacks.requirements import constraints
from tests.image import containers
from tests.image.harness import ALICE, batch_environment, image_of, job_log, play_codebuild, worker_job

pytestmark = [pytest.mark.image, pytest.mark.timeout(containers.GUARD_SECONDS * 2)]

DATA = "landcover-data"  # the user's bucket: model, STAC items, scenes and the product
ARTIFACTS = containers.ROOT / "test-artifacts" / "image"


def pinned_demo_requirements() -> list[str]:
    """The demo Function's requirements at this project's versions (a reproducible build)."""
    pins = constraints()
    return [f"{name}=={pins[name]}" for name in DEMO_REQUIREMENTS]


@pytest.fixture(scope="module")
def plan(moto_endpoint: str) -> DemoPlan:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DATA)
    # 50,000 training pixels, as before prepare_demo sampled them per tile (its train_sample is gone).
    return prepare_demo(s3, DATA, margin_px=64, train_tiles=4, train_pixels_per_tile=12_500)


def play_batch(image: str, job_definition_arn: str, job_queue: str, moto_endpoint: str) -> tuple[str, str]:
    """Run the submitted worker job's container; returns (its output, the uid it ran as)."""
    container, batch_job_id = worker_job(job_definition_arn, job_queue)
    image_of(container, image)
    user = containers.image_user(image)
    assert user == "geobatch"
    with containers.Container(image, user) as worker:
        # What Batch starts: the image's entrypoint + the job definition's command, exactly the worker.
        assert containers.container_argv(worker.config, container["command"]) == WORKER_COMMAND
        uid = worker.run(["id", "-u"], {})
        assert uid.returncode == 0, uid.stdout
        proc = worker.run(container["command"], batch_environment(container, batch_job_id, moto_endpoint))
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
        data_access=demo_data_access(plan),  # what its data role allows (the demo's declaration)
    )
    function_id = functions.create_function(svc, ALICE, spec).function.id
    created = svc.functions.get(function_id)
    svc.blobs.put(str(created.bundle_key), make_bundle(classify_tile, requirements=requirements).data)
    assert functions.bundle_uploaded(svc, ALICE, function_id).status == "building"

    image, build_seconds = play_codebuild(svc, svc.functions.get(function_id), tmp_path)
    ready = svc.functions.get(function_id)
    assert ready.status == "ready" and ready.job_definition_arn

    tile_key = plan.tile_keys[0]
    args = [tile_key, plan.product_id, plan.model_uri, plan.items_uri, plan.bucket]
    page = jobs.submit_jobs(
        svc, ALICE, JobBulkCreate(function_id=function_id, bulk_args=[args], reference_id="tile-0")
    )
    assert scaling.scale_function(svc, svc.functions.get(function_id)) == 1

    output, uid = play_batch(image, ready.job_definition_arn, stack[env.BATCH_JOB_QUEUE], moto_endpoint)
    assert uid == "1000"
    job = jobs.get_job(svc, ALICE, page.data[0].id)
    assert job.status == "success", (job.status_reason, output[-4000:])
    assert functions.job_statistics(svc, function_id)["success"] == 1
    body = jobs.job_result(svc, ALICE, job.id)
    summary = decode_result(base64.b64decode(body.data or ""))
    assert summary["tile_key"] == tile_key and summary["valid_fraction"] > 0.5
    # The tile's pixels are counted by the classes the model named (the summary's counts are by name).
    assert sum(summary["counts"].values()) == summary["valid_pixels"]
    assert set(summary["counts"]) <= set(plan.cluster_names.values())
    # The product's COG and STAC Item are in the user's bucket, where the job wrote them.
    s3 = boto3.client("s3")
    for uri in (summary["cog"], summary["item"]):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert bucket == DATA and s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    log = job_log(svc, job.id)
    assert "Traceback" not in log
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figures = {"image": image, "build_seconds": round(build_seconds), "bytes": containers.image_size(image)}
    figures |= {"job": job.status, "valid_fraction": summary["valid_fraction"], "tile_key": tile_key}
    (ARTIFACTS / "kmeans.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"image rehearsal: {figures}")
