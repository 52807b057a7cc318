"""The two AWS parts moto cannot play, played on this machine for the image tests.

- CodeBuild: ``scripts/build_image.sh`` (what ``make image`` runs) builds ``batch_image/Dockerfile``
  with the requirements the build was started with, tagged with the build's image tag; the build's
  end is reported through ``finish_build``, as the build_events Lambda does.
- AWS Batch: for the worker job the scaler submitted, a container of that image runs the job
  definition's command with the job definition's environment (plus the endpoint and test
  credentials, which Batch would give as a role), as the image's user, host network.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import boto3

from geobatch.wire import env
from geobatch_core.adapters.codebuild import encode_requirements
from geobatch_core.records import FunctionRecord
from geobatch_core.services import functions, jobs
from geobatch_core.services.context import Services
from tests.image import containers

ALICE = "arn:aws:iam::123456789012:user/alice"
REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/geobatch-images"
LOCAL_REPOSITORY = "localhost/geobatch-worker"


def play_codebuild(svc: Services, function: FunctionRecord, workdir: Path) -> tuple[str, float]:
    """Build the image CodeBuild was asked for; returns the local image it made and the seconds taken."""
    image_uri = function.image_uri or ""
    tag = image_uri.rpartition(":")[2]
    assert tag == function.image_hash  # the ECR tag is the recipe's hash
    requirements = workdir / "requirements.txt"
    requirements.write_bytes(base64.b64decode(encode_requirements(function.requirements or [])))
    image = f"{LOCAL_REPOSITORY}:{tag}"
    started = time.monotonic()
    log = containers.build(image, requirements)
    seconds = time.monotonic() - started
    functions.finish_build(svc, function.id, succeeded=True, image_uri=image_uri, log=log)
    return image, seconds


def worker_job(job_definition_arn: str, job_queue: str) -> tuple[dict[str, Any], str]:
    """The registered job definition's container properties and the one worker job submitted with it."""
    batch = boto3.client("batch")
    definition = batch.describe_job_definitions(jobDefinitions=[job_definition_arn])["jobDefinitions"][0]
    container = definition["containerProperties"]
    assert container["image"].startswith(REPOSITORY + ":")
    listed = batch.list_jobs(
        jobQueue=job_queue, filters=[{"name": "JOB_DEFINITION", "values": [job_definition_arn]}]
    )["jobSummaryList"]
    # (moto's ListJobs ignores the filter: the queue's other Functions' workers are left out here)
    submitted = [job for job in listed if job.get("jobDefinition") == job_definition_arn]
    assert len(submitted) == 1, submitted  # the scaler started one worker (maximum_concurrency=1)
    return container, str(submitted[0]["jobId"])


def batch_environment(container: dict[str, Any], batch_job_id: str, moto_endpoint: str) -> dict[str, str]:
    """The job definition's environment plus what Batch and the job's role would give the container."""
    environment = {item["name"]: item["value"] for item in container["environment"]}
    environment.update(
        {
            "AWS_BATCH_JOB_ID": batch_job_id,
            env.AWS_REGION: "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            env.AWS_ENDPOINT_URL: moto_endpoint,
            # The worker leaves once the queue stays empty this long (60 s by default).
            env.WORKER_IDLE_SECONDS: "5",
            env.WORKER_POLL_SECONDS: "1",
        }
    )
    return environment


def image_of(container: dict[str, Any], image: str) -> None:
    """The job definition names the image that was built (the same tag)."""
    assert container["image"].rpartition(":")[2] == image.rpartition(":")[2]


def job_log(svc: Services, job_id: str) -> str:
    """The whole log of a job's last attempt (``job_log`` answers a page and the next offset)."""
    text, offset = "", 0
    while offset is not None:
        lines, offset = jobs.job_log(svc, ALICE, job_id, offset=offset)
        text += "".join(line.log + "\n" for line in lines)
    return text
