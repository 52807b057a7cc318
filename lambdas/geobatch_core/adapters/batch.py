"""AWS Batch executor: one job definition per Function, workers are (array) jobs in one job queue.

A worker is a container that pulls the Function's jobs from its SQS queue until the queue stays
empty, so Batch jobs here are *workers*, not GeoBatch jobs: GeoBatch job state lives in DynamoDB
and the SQS message visibility timeout (``LOST_WORKER_SECONDS``) is what re-delivers a job whose
worker died. The scaler calls ``running_workers`` and ``start_workers`` to keep
``min(maximum_concurrency, pending jobs)`` workers alive.

The "Batch Job State Change" events the workers' ends send are read in ``adapters.batch_events``.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from geobatch.wire import env
from geobatch.wire.errors import BadRequestError, NotFoundError
from geobatch_core import layout
from geobatch_core.adapters.aws_errors import ErrorMap, error_code
from geobatch_core.adapters.worker_roles import WorkerRoles
from geobatch_core.records import FunctionRecord
from geobatch_core.services.pacing import SubmitPacer, submit_paced

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_batch.type_defs import JobSummaryTypeDef

Platform = Literal["FARGATE", "EC2"]

ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED")
WORKER_COMMAND = ["python", "-m", "geobatch_worker"]
# Batch array jobs have 2..10,000 children; a single worker is submitted as a plain job.
MAX_ARRAY_SIZE = 10_000
# A worker runs many GeoBatch jobs one after the other. Batch kills a container at its attempt
# timeout, so a worker has a lifetime budget instead: past it, it claims no new job, hands its
# unstarted messages back and exits; the scaler starts its replacement. The attempt timeout is that
# budget plus one job timeout (the last job claimed may run that long) plus a margin for container
# start, bundle download and settling messages: a backstop against a stuck container only.
WORKER_LIFETIME_SECONDS = 4 * 3600
ATTEMPT_MARGIN_SECONDS = 900
MAX_ATTEMPT_SECONDS = 14 * 86_400
# Batch does not give EC2 containers the region (Fargate does); the worker's boto3 needs it.
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
# AWS Batch answers ClientException both for a missing resource and for a rejected request.
BATCH_ERRORS = ErrorMap(
    "AWS Batch", not_found=frozenset({"ClientException"}), rejected=frozenset({"ClientException"})
)
_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


def _is_throttle(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in BATCH_ERRORS.throttled


def worker_job_name(function_id: str) -> str:
    """Batch job name of a Function's workers (letters, digits, '-' and '_', at most 128)."""
    return _JOB_NAME_BAD.sub("-", f"geobatch-{function_id}")[:128]


def attempt_timeout_seconds(function_timeout: int | None) -> int:
    """Batch attempt timeout of a worker: its lifetime budget + one job timeout + a margin."""
    seconds = WORKER_LIFETIME_SECONDS + int(function_timeout or 0) + ATTEMPT_MARGIN_SECONDS
    return min(seconds, MAX_ATTEMPT_SECONDS)


STATES_CACHE_SECONDS = 5.0


class BatchExecutor:
    """``ports.Executor`` on AWS Batch (Fargate or EC2 compute environments)."""

    def __init__(
        self,
        batch_client: BatchClient,
        *,
        job_queue: str,
        job_definition_prefix: str,
        worker_role_arn: str | None = None,
        execution_role_arn: str,
        environment: Mapping[str, str],
        platform: Platform = "FARGATE",
        assign_public_ip: bool = True,
        roles: WorkerRoles | None = None,
        log_group: str | None = None,
        pacer: SubmitPacer | None = None,
    ) -> None:
        if roles is None and not worker_role_arn:
            raise ValueError("give worker_role_arn (one shared role) or roles (a role per Function)")
        if platform not in ("FARGATE", "EC2"):
            raise ValueError(f"platform must be FARGATE or EC2, not {platform!r}")
        self._batch = batch_client
        self.job_queue = job_queue
        self.job_definition_prefix = job_definition_prefix
        self.worker_role_arn = worker_role_arn
        self.execution_role_arn = execution_role_arn
        self.environment = dict(environment)
        self.platform: Platform = platform
        self.assign_public_ip = assign_public_ip
        self.roles = roles
        self.log_group = log_group  # the stack's worker log group (with retention); None: /aws/batch/job
        self._states_cache: dict[str, tuple[float, dict[str, int]]] = {}
        self.pacer = pacer  # the account-wide SubmitJob budget (services.pacing); None: unpaced

    # ------------------------------------------------------------------ Executor protocol

    def register(self, function: FunctionRecord) -> Mapping[str, Any]:
        """Register (a new revision of) the Function's job definition; returns its ARN."""
        name = layout.job_definition_name(self.job_definition_prefix, function.id)
        roles = self.roles.ensure(function) if self.roles is not None else None
        request = self.job_definition(
            function,
            role_arn=roles.worker if roles is not None else self.worker_role_arn,
            data_role_arn=roles.data if roles is not None else None,
        )
        try:
            response = self._batch.register_job_definition(**request)
        except (ClientError, BotoCoreError) as exc:
            raise BATCH_ERRORS.error(exc, f"registering job definition {name}") from exc
        return {"job_definition_arn": response["jobDefinitionArn"]}

    def running_workers(self, function: FunctionRecord) -> int:
        """Workers submitted and not finished: plain jobs count 1, array jobs count their active children."""
        return sum(self._current_states(function).values())

    def worker_states(self, function: FunctionRecord) -> dict[str, int]:
        """Active workers by AWS Batch status (RUNNABLE = waiting for capacity, RUNNING, ...).

        Pending jobs' reasons are read on every GET of a pending job (a monitor polls every few
        seconds), so the answer is reused for a few seconds per Function: Batch's List/Describe
        APIs are rate-limited per account. The scaler counts with ``running_workers``, never cached.
        """
        now = time.monotonic()
        cached = self._states_cache.get(function.id)
        if cached is not None and now - cached[0] < STATES_CACHE_SECONDS:
            return dict(cached[1])
        states = self._current_states(function)
        self._states_cache[function.id] = (now, states)
        return dict(states)

    def _current_states(self, function: FunctionRecord) -> dict[str, int]:
        states: dict[str, int] = {}
        array_parents: list[str] = []
        for summary in self._list_worker_jobs(function.id):
            array = summary.get("arrayProperties") or {}
            if "index" in array:  # a child listed on its own: its parent is counted instead
                continue
            status = summary.get("status")
            if status is None or status not in ACTIVE_STATUSES:
                continue
            if "size" in array:
                array_parents.append(summary["jobId"])
            else:
                states[status] = states.get(status, 0) + 1
        for child_status, count in self._active_children(array_parents).items():
            states[child_status] = states.get(child_status, 0) + count
        return states

    def start_workers(self, function: FunctionRecord, count: int) -> None:
        """Submit ``count`` workers: one array job, or a plain job when ``count`` is 1."""
        if count <= 0:
            return
        definition = function.job_definition_arn or layout.job_definition_name(
            self.job_definition_prefix, function.id
        )
        request: dict[str, Any] = {
            "jobName": worker_job_name(function.id),
            "jobQueue": self.job_queue,
            "jobDefinition": definition,
            "propagateTags": True,
            "tags": {"geobatch:function": function.id},
        }
        remaining = count
        try:
            while remaining > 0:
                size = min(remaining, MAX_ARRAY_SIZE)
                if size >= 2:
                    request["arrayProperties"] = {"size": size}
                else:
                    request.pop("arrayProperties", None)
                submit_paced(self.pacer, functools.partial(self._batch.submit_job, **request), _is_throttle)
                remaining -= size
        except (ClientError, BotoCoreError) as exc:
            raise BATCH_ERRORS.error(exc, f"submitting {count} workers of Function {function.id}") from exc

    def stop_workers(self, function: FunctionRecord) -> None:
        """Best effort: terminate every active worker job (terminating an array parent stops its children)."""
        for summary in self._list_worker_jobs(function.id):
            if summary.get("status") not in ACTIVE_STATUSES or "index" in (
                summary.get("arrayProperties") or {}
            ):
                continue
            try:
                self._batch.terminate_job(jobId=summary["jobId"], reason="GeoBatch: Function stopped")
            except ClientError:
                continue  # already finished or gone: nothing to stop

    def release(self, function: FunctionRecord) -> None:
        """The Function is deleted: its job definition and its worker role go too."""
        self.deregister(function)
        if self.roles is not None:
            self.roles.delete(function.id)

    def deregister(self, function: FunctionRecord) -> None:
        """Deregister the Function's job definition (when the Function is deleted); missing is fine."""
        arn = function.job_definition_arn
        if not arn:
            return
        try:
            self._batch.deregister_job_definition(jobDefinition=arn)
        except ClientError as exc:
            error = BATCH_ERRORS.error(exc, f"deregistering {arn}")
            if not isinstance(error, NotFoundError | BadRequestError):
                raise error from exc

    # ------------------------------------------------------------------ helpers

    def job_definition(
        self, function: FunctionRecord, *, role_arn: str | None = None, data_role_arn: str | None = None
    ) -> dict[str, Any]:
        """The ``register_job_definition`` request of a Function (pure; the tests check it).
        ``data_role_arn``: the role the worker assumes for its user code (``WorkerRoles``)."""
        function_id = function.id
        region = str(self._batch.meta.region_name)
        environment = {
            **dict.fromkeys(REGION_VARIABLES, region),
            **self.environment,
            env.WORKER_FUNCTION_ID: function_id,
            env.WORKER_LIFETIME_SECONDS: str(WORKER_LIFETIME_SECONDS),
            env.WORKER_QUEUE_URL: function.queue_url or "",
            env.WORKER_MEMORY_LIMIT_MB: str(int(function.memory or 0)),
        }
        if data_role_arn:
            environment[env.WORKER_DATA_ROLE_ARN] = data_role_arn
        cpus = float(function.cpus or 0)
        vcpu = f"{cpus:g}" if self.platform == "FARGATE" else str(max(1, math.ceil(cpus)))
        container: dict[str, Any] = {
            "image": function.image_uri,
            "command": WORKER_COMMAND,
            "jobRoleArn": role_arn or self.worker_role_arn,
            "executionRoleArn": self.execution_role_arn,
            "resourceRequirements": [
                {"type": "VCPU", "value": vcpu},
                {"type": "MEMORY", "value": str(int(function.memory or 0))},
            ],
            "environment": [{"name": k, "value": str(v)} for k, v in sorted(environment.items())],
            "logConfiguration": self._log_configuration(region),
        }
        if self.platform == "FARGATE":
            container["networkConfiguration"] = {
                "assignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED"
            }
            container["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
            container["runtimePlatform"] = {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
        return {
            "jobDefinitionName": layout.job_definition_name(self.job_definition_prefix, function_id),
            "type": "container",
            "platformCapabilities": [self.platform],
            "containerProperties": container,
            # SQS re-delivers the GeoBatch jobs of a failed worker; a Batch retry would only duplicate it.
            "retryStrategy": {"attempts": 1},
            "timeout": {"attemptDurationSeconds": attempt_timeout_seconds(function.timeout)},
            "propagateTags": True,
            "tags": {"geobatch:function": function_id},
        }

    def _log_configuration(self, region: str) -> dict[str, Any]:
        """awslogs into the stack's log group; without options Batch writes to /aws/batch/job, a group
        no stack owns (created on first use, never expiring)."""
        if not self.log_group:
            return {"logDriver": "awslogs"}
        options = {
            "awslogs-group": self.log_group,
            "awslogs-region": region,
            "awslogs-stream-prefix": "worker",
        }
        return {"logDriver": "awslogs", "options": options}

    def _list_worker_jobs(self, function_id: str) -> Iterator[JobSummaryTypeDef]:
        """Every job of the Function in the queue (with a filter, Batch lists all statuses)."""
        try:
            paginator = self._batch.get_paginator("list_jobs")
            pages = paginator.paginate(
                jobQueue=self.job_queue,
                filters=[{"name": "JOB_NAME", "values": [worker_job_name(function_id)]}],
            )
            for page in pages:
                yield from page.get("jobSummaryList", [])
        except (ClientError, BotoCoreError) as exc:
            raise BATCH_ERRORS.error(exc, f"listing the workers of Function {function_id}") from exc

    def _active_children(self, array_job_ids: list[str]) -> dict[str, int]:
        """Active children of array jobs by status (``describe_jobs`` takes 100 ids at a time)."""
        total: dict[str, int] = {}
        for start in range(0, len(array_job_ids), 100):
            try:
                jobs = self._batch.describe_jobs(jobs=array_job_ids[start : start + 100])["jobs"]
            except (ClientError, BotoCoreError) as exc:
                raise BATCH_ERRORS.error(exc, "describing array jobs") from exc
            for job in jobs:
                if job.get("status") not in ACTIVE_STATUSES:
                    continue
                array = job.get("arrayProperties") or {}
                summary = array.get("statusSummary") or {}
                if summary and sum(summary.values()) > 0:
                    for status in ACTIVE_STATUSES:
                        if summary.get(status):
                            total[status] = total.get(status, 0) + int(summary[status])
                else:  # children not created yet: all of them are still to come
                    total["SUBMITTED"] = total.get("SUBMITTED", 0) + int(array.get("size", 1))
        return total
