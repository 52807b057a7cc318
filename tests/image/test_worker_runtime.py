"""The worker image as AWS Batch runs it: its packages, its command, its user, containment, SIGTERM.

A Function without requirements gets the worker-only image (``harness.play_codebuild``: the build
script, what CodeBuild's buildspec runs). Its workers are started as Batch starts them (the image's
entrypoint + the job definition's command, the job definition's environment, the image's user)
against moto's server, and run probe jobs:

- the image installs exactly the worker's closure at constraints.txt's versions (``pip freeze``);
- the process Batch starts is ``python -m geobatch_worker``, once (not entrypoint + command twice);
- a job runs as uid 1000 without the worker's ``GEOBATCH_*`` names (tables, bucket, queue) and
  cannot write the code or the installed packages (in the image that is the containment: the
  mount seal is local mode's);
- ``geobatch_worker.contain``'s seal either holds or says it is not there, as documented, and agrees
  with whether a user namespace can be made in the container;
- SIGTERM (what ``docker stop``/Batch send to the container's process) while a job runs: the job
  finishes and succeeds, the worker exits 0 without starting the other one, and a later worker
  runs that one: each job ran exactly once.

Opt-in (marker ``image``, ``make rehearse-image``). Last run here (1 December 2026): the
worker-only image is 291 MB (the Debian base 248 MB); in buildah's chroot container
``unshare(CLONE_NEWUSER)`` is refused, so the seal reports itself missing; the module takes about
half a minute once the image is built.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest

from geobatch.bundle import make_bundle
from geobatch.wire import env
from geobatch.wire.codec import decode_result
from geobatch.wire.models import FunctionCreate, JobBulkCreate, S3Access
from geobatch_core.adapters.batch import WORKER_COMMAND
from geobatch_core.records import FunctionRecord
from geobatch_core.services import functions, jobs, scaling
from geobatch_core.services.context import Services
from geobatch_core.wiring import services_from_env
from stacks.requirements import canonical, worker_requirements
from tests.image import containers
from tests.image.harness import ALICE, batch_environment, image_of, job_log, play_codebuild, worker_job
from tests.support import wait_until

pytestmark = [pytest.mark.image, pytest.mark.timeout(containers.GUARD_SECONDS * 2)]

PROBES = "probe-data"  # the probe jobs' bucket: started/<key> and release/<key> markers


class Probe(NamedTuple):
    """The probe Function as the store reads it back, and the local image it runs on."""

    function: FunctionRecord
    local_image: str


def probe(action: str, key: str = "") -> dict:  # (shipped as source: no typing names)
    """The probe Function (shipped as source: everything it uses is imported here)."""
    import os
    import pathlib
    import pwd
    import subprocess  # nosec B404
    import sys
    import time

    import boto3

    import geobatch_worker

    s3 = boto3.client("s3")
    if action == "hold":  # says it started, then waits for the test's release
        s3.put_object(Bucket="probe-data", Key=f"started/{key}", Body=b"")
        while True:
            try:
                s3.head_object(Bucket="probe-data", Key=f"release/{key}")
                return {"held": key}
            except s3.exceptions.ClientError:
                time.sleep(0.2)

    def write(directory: str) -> str:
        target = pathlib.Path(directory) / f".probe-{os.getpid()}"
        try:
            target.write_text("planted")
        except OSError as exc:
            return str(exc.strerror)
        target.unlink()
        return "written"

    places = {
        "code": str(pathlib.Path(geobatch_worker.__file__).resolve().parents[1]),
        "site-packages": str(pathlib.Path(boto3.__file__).resolve().parents[1]),
        "prefix": sys.prefix,
        "tmp": "/tmp",  # nosec B108
    }
    unshare = "import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(libc.unshare(0x10000000))"
    userns = subprocess.run([sys.executable, "-c", unshare], capture_output=True, text=True)  # nosec B603
    return {
        "uid": os.getuid(),
        "user": pwd.getpwuid(os.getuid()).pw_name,
        "geobatch_names": sorted(k for k in os.environ if k.startswith("GEOBATCH_")),
        "aws_names": sorted(k for k in os.environ if k.startswith("AWS_")),
        "writes": {name: write(path) for name, path in places.items()},
        "user_namespace": userns.stdout.strip() == "0",
    }


@pytest.fixture(scope="module")
def svc(stack: dict[str, str]) -> Services:
    boto3.client("s3").create_bucket(Bucket=PROBES)
    return services_from_env(stack)


@pytest.fixture(scope="module")
def probe_function(svc: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    """The probe Function, ready, on the worker-only image it was built (its record + ``local_image``)."""
    spec = FunctionCreate(
        name="probe",
        cpus=1,
        memory=2048,
        maximum_concurrency=1,
        retry_count=0,
        timeout=900,
        data_access=S3Access(read=[f"s3://{PROBES}/*"], write=[f"s3://{PROBES}/*"]),  # its data role
    )
    function_id = functions.create_function(svc, ALICE, spec).function.id
    created = svc.functions.get(function_id)
    svc.blobs.put(str(created.bundle_key), make_bundle(probe).data)
    assert functions.bundle_uploaded(svc, ALICE, function_id).status == "building"
    image, _ = play_codebuild(svc, svc.functions.get(function_id), tmp_path_factory.mktemp("probe"))
    ready = svc.functions.get(function_id)
    assert ready.status == "ready" and ready.job_definition_arn
    yield Probe(ready, image)


@pytest.fixture(scope="module")
def container(probe_function: Probe) -> Iterator[containers.Container]:
    image = probe_function.local_image
    user = containers.image_user(image)
    assert user == "geobatch"
    with containers.Container(image, user) as running:
        yield running


def _pins(freeze: str) -> list[str]:
    """``pip freeze`` lines with PEP 503 names (it prints pydantic_core as its metadata spells it)."""
    return sorted(
        f"{canonical(name)}=={version}" for name, _, version in (p.partition("==") for p in freeze.split())
    )


def test_the_image_holds_exactly_the_worker_closure(container: containers.Container) -> None:
    frozen = container.run(["python", "-m", "pip", "freeze"], {})
    assert frozen.returncode == 0, frozen.stdout
    assert _pins(frozen.stdout) == sorted(worker_requirements())
    kept = container.run(["cat", "/opt/geobatch/worker-constraints.txt"], {})
    assert _pins(kept.stdout) == sorted(worker_requirements())  # what Function layers are held to
    check = container.run(["python", "-m", "pip", "check"], {})
    assert check.returncode == 0, check.stdout


def test_batch_starts_the_worker_once(container: containers.Container, probe_function: Probe) -> None:
    """Batch's ``command`` replaces the image's CMD and follows its ENTRYPOINT (Docker's rules)."""
    definition = boto3.client("batch").describe_job_definitions(
        jobDefinitions=[str(probe_function.function.job_definition_arn)]
    )["jobDefinitions"][0]
    command = definition["containerProperties"]["command"]
    assert containers.container_argv(container.config, command) == WORKER_COMMAND
    assert containers.container_argv(container.config, None) == WORKER_COMMAND  # `docker run <image>`


def test_seal_holds_or_says_it_is_not_there(container: containers.Container) -> None:
    """``python -m geobatch_worker.contain`` (local mode's seal) in the image: the path it seals is
    read-only, or, without user namespaces, it says so and runs the command anyway (as documented)."""
    write = "open('/tmp/sealed/planted', 'w').write('x')"
    script = (
        f'mkdir -p /tmp/sealed && python -m geobatch_worker.contain --ro /tmp/sealed -- python -c "{write}"'
    )
    sealed = container.run(["sh", "-c", script], {})
    userns = container.run(["python", "-c", _UNSHARE], {})
    if userns.stdout.strip() == "0":
        assert sealed.returncode != 0 and "Read-only file system" in sealed.stdout, sealed.stdout
    else:
        assert sealed.returncode == 0, sealed.stdout
        assert "[geobatch] not contained: user namespaces are not available" in sealed.stdout


_UNSHARE = "import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(libc.unshare(0x10000000))"


def _started(key: str) -> bool:
    s3 = boto3.client("s3")
    try:
        s3.head_object(Bucket=PROBES, Key=f"started/{key}")
    except s3.exceptions.ClientError:
        return False
    return True


def _release(key: str) -> None:
    boto3.client("s3").put_object(Bucket=PROBES, Key=f"release/{key}", Body=b"")


def _result(svc: Services, job_id: str) -> Any:
    return decode_result(base64.b64decode(jobs.job_result(svc, ALICE, job_id).data or ""))


def test_sigterm_finishes_the_running_job_and_hands_back_the_rest(
    svc: Services,
    stack: dict[str, str],
    probe_function: Probe,
    container: containers.Container,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    function_id = probe_function.function.id
    bulk = JobBulkCreate(
        function_id=function_id, bulk_args=[["hold", "a"], ["hold", "b"]], reference_id="held"
    )
    submitted = [jobs.get_job(svc, ALICE, job.id) for job in jobs.submit_jobs(svc, ALICE, bulk).data]
    held = {job.args[1]: job.id for job in submitted if job.args}
    assert set(held) == {"a", "b"}, submitted
    assert scaling.scale_function(svc, svc.functions.get(function_id)) == 1
    definition, batch_job_id = worker_job(
        str(probe_function.function.job_definition_arn), stack[env.BATCH_JOB_QUEUE]
    )
    image_of(definition, probe_function.local_image)
    environment = batch_environment(definition, batch_job_id, moto_endpoint)

    worker = container.start(definition["command"], environment)

    def started_or_exited() -> str | None:
        if worker.popen.poll() is not None:
            reasons = [jobs.get_job(svc, ALICE, job_id).status_reason for job_id in held.values()]
            raise AssertionError(
                f"the worker exited before a job started: {reasons}\n{worker.wait()[-6000:]}"
            )
        return next((k for k in held if _started(k)), None)

    first = wait_until(started_or_exited, "a held job to start", poll=0.5)
    worker.terminate()  # as `docker stop` does, while the job runs
    _release(first)
    output = worker.wait()
    assert worker.popen.returncode == 0, output[-6000:]
    assert "SIGTERM: finishing the current job" in output
    other = next(key for key in held if key != first)
    done = jobs.get_job(svc, ALICE, held[first])
    assert done.status == "success" and _result(svc, done.id) == {"held": first}, (done.status_reason, output)
    waiting = jobs.get_job(svc, ALICE, held[other])
    assert waiting.status == "pending" and waiting.execution_count == 0 and not _started(other)

    # The next worker (Batch starts one for the pending job) runs it, and the inspection probe.
    _release(other)
    inspect = jobs.submit_jobs(
        svc, ALICE, JobBulkCreate(function_id=function_id, bulk_args=[["inspect"]], reference_id="inspect")
    ).data[0]
    second = container.run(definition["command"], {**environment, "AWS_BATCH_JOB_ID": f"{batch_job_id}-next"})
    assert second.returncode == 0, second.stdout[-6000:]
    for job_id in (held[first], held[other], inspect.id):
        job = jobs.get_job(svc, ALICE, job_id)
        assert job.status == "success" and job.execution_count == 1, (job_id, job.status_reason)
    assert functions.job_statistics(svc, function_id)["success"] == 3

    found = _result(svc, inspect.id)
    assert (found["uid"], found["user"]) == (1000, "geobatch")
    # None of the worker's own GEOBATCH_* names (tables, bucket, queue) reach the job; it has its own
    # (who it is, its attempt, its unsigned locations: jobrun.job_environment).
    control_plane = {name for name in environment if name.startswith("GEOBATCH_")}
    assert {env.JOBS_TABLE, env.BUCKET, env.WORKER_QUEUE_URL} <= control_plane
    assert not control_plane & set(found["geobatch_names"]), found["geobatch_names"]
    assert "GEOBATCH_JOB_ID" in found["geobatch_names"]
    # Its AWS credentials are its data role's, served by the worker on loopback, never the worker's
    # own (here the test's static keys, which Batch's task role would be: credentials.py).
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in found["aws_names"]
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(found["aws_names"])
    # The code and the installed packages are root's: the job cannot plant code in them.
    assert found["writes"] == {
        "code": "Permission denied",
        "site-packages": "Permission denied",
        "prefix": "Permission denied",
        "tmp": "written",
    }
    log = job_log(svc, inspect.id)
    assert "Traceback" not in log and "not read-only" not in log  # no seal tried in the image (AWS mode)
