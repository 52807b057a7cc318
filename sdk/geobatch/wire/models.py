"""Wire models: the one definition of every request and response body.

The API Lambda validates requests and serialises responses with these classes, the worker
reads jobs with them, and the SDK parses API responses with them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from geobatch.wire import data_access, limits
from geobatch.wire.statistics import StatisticsSummary


class JobStatus(StrEnum):
    """Status of a job, as in the Descartes Labs compute client."""

    PENDING = "pending"
    RUNNING = "running"
    CANCEL = "cancel"
    CANCELING = "canceling"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CANCELED = "canceled"

    @classmethod
    def terminal(cls) -> list[JobStatus]:
        return [cls.SUCCESS, cls.FAILURE, cls.TIMEOUT, cls.CANCELED]

    @classmethod
    def outstanding(cls) -> list[JobStatus]:
        return [cls.PENDING, cls.RUNNING, cls.CANCEL, cls.CANCELING]

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(JobStatus.terminal())
RERUNNABLE = frozenset({JobStatus.FAILURE, JobStatus.TIMEOUT, JobStatus.CANCELED})


class FunctionStatus(StrEnum):
    """Status of a Function's image and dispatch, as in the Descartes Labs compute client."""

    AWAITING_BUNDLE = "awaiting_bundle"
    BUILDING = "building"
    BUILD_FAILED = "build_failed"
    READY = "ready"
    STOPPED = "stopped"


# --------------------------------------------------------------------------- resources

# Fargate task sizes: memory (MB) allowed for each vCPU count (AWS Batch on Fargate refuses any other
# pair at job submission, long after the Function was saved). 0.25 vCPU allows 512, 1024 and 2048 only.
FARGATE_MEMORY: dict[float, Sequence[int]] = {
    0.25: (512, 1024, 2048),
    0.5: range(1024, 4097, 1024),
    1.0: range(2048, 8193, 1024),
    2.0: range(4096, 16385, 1024),
    4.0: range(8192, 30721, 1024),
    8.0: range(16384, 61441, 4096),
    16.0: range(32768, 122881, 8192),
}
# Base images the worker runtime supports: geobatch_core needs Python 3.11 or newer (StrEnum,
# datetime.UTC), so a python3.10 image would build and then fail at the worker's first import.
SUPPORTED_IMAGES = ("python3.11", "python3.12", "python3.13")
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mb|mi|mib|m|gb|gi|gib|g)?\s*$", re.IGNORECASE)


def parse_memory(value: Any) -> int:
    """Memory in MB from an int or a string such as ``"512MB"``, ``"2GB"``, ``"1Gi"``, ``"1024Mi"``."""
    if isinstance(value, bool):
        raise ValueError("memory must be a number of MB or a string like '2GB'")
    if isinstance(value, int | float):
        return _memory_in_range(value)
    if isinstance(value, str):
        match = _MEMORY_RE.match(value)
        if match:
            number, unit = float(match.group(1)), (match.group(2) or "mb").lower()
            return _memory_in_range(number * 1024 if unit.startswith("g") else number)
    raise ValueError(
        f"memory {value!r} is not understood: give MB as an int, or a string like '512MB', '2GB', '1Gi'"
    )


def _memory_in_range(number: float) -> int:
    # inf, nan and 1e309 are numbers JSON can carry; none is an amount of memory.
    if not math.isfinite(number) or not 0 < number <= limits.MAX_MEMORY_MB:
        raise ValueError(f"memory {number:g} MB is out of range: give 1 to {limits.MAX_MEMORY_MB} MB")
    return int(number)


def parse_cpus(value: Any) -> float:
    """vCPUs from a number or a string such as ``"2vCPU"``."""
    if isinstance(value, bool):
        raise ValueError("cpus must be a number")
    if isinstance(value, str):
        digits = re.sub(r"[^0-9.]", "", value)
        if not digits:
            raise ValueError(f"cpus {value!r} is not a number: use one of {sorted(FARGATE_MEMORY)}")
        value = float(digits)
    return float(value)


def check_resources(cpus: float, memory: int) -> None:
    if cpus not in FARGATE_MEMORY:
        raise ValueError(
            f"cpus={cpus:g} is not allowed: use one of {', '.join(f'{c:g}' for c in FARGATE_MEMORY)}"
        )
    allowed = FARGATE_MEMORY[cpus]
    if memory not in allowed:
        choices = (
            f"use {allowed.start}-{allowed.stop - 1} MB in steps of {allowed.step} MB"
            if isinstance(allowed, range)
            else f"Fargate allows only {', '.join(map(str, allowed))} MB"
        )
        raise ValueError(f"memory={memory} MB does not fit cpus={cpus:g}: {choices}")


def check_image(image: str) -> str:
    if image not in SUPPORTED_IMAGES:
        raise ValueError(
            f"image {image!r} is not supported: the worker runtime needs Python 3.11 or newer; "
            f"use one of {', '.join(SUPPORTED_IMAGES)}"
        )
    return image


def check_timeout(timeout: int | None) -> int | None:
    if timeout is not None and timeout > limits.MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"timeout={timeout} s is over the {limits.MAX_TIMEOUT_SECONDS} s maximum: a job's queue message "
            "can be held at most 12 hours from its receipt (SQS), so a longer job would be retried while "
            "it still runs; split the work into shorter jobs"
        )
    return timeout


def check_requirement(line: str) -> str:
    """Accept PEP 508 requirements, comments and pip options, as a requirements.txt would."""
    stripped = line.strip()
    if (
        not stripped
        or stripped.startswith(("#", "-"))
        or stripped.startswith(("https://", "http://", "git+"))
    ):
        return stripped
    try:
        Requirement(stripped)
    except InvalidRequirement as exc:
        raise ValueError(f"requirement {line!r} does not parse: {exc}") from None
    return stripped


Memory = Annotated[int, BeforeValidator(parse_memory)]
Cpus = Annotated[float, BeforeValidator(parse_cpus)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Tag = Annotated[str, Field(min_length=1, max_length=limits.MAX_TAG_CHARS)]
Environment = dict[str, str]


def _check_environment(env: Environment | None) -> Environment | None:
    if env is None:
        return None
    if len(env) > limits.MAX_ENV_VARS:
        raise ValueError(f"environment has {len(env)} variables; at most {limits.MAX_ENV_VARS} are allowed")
    size = sum(len(k) + len(v) for k, v in env.items())
    if size > limits.MAX_ENV_BYTES:
        raise ValueError(f"environment is {size} bytes; at most {limits.MAX_ENV_BYTES} are allowed")
    for key in env:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ValueError(f"environment variable name {key!r} is invalid: use letters, digits and _")
        if "\x00" in env[key]:
            raise ValueError(
                f"environment variable {key!r} holds a NUL character, which no process environment can "
                "carry: remove it"
            )
        if key.startswith(("GEOBATCH_", "AWS_")):
            raise ValueError(
                f"environment variable {key!r} is reserved (GEOBATCH_* and AWS_* are set by GeoBatch)"
            )
    return env


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


S3Uri = Annotated[str, AfterValidator(data_access.normalise)]
# The declared statements' share of the worker role's inline policy (IAM allows 10,240 characters).
DATA_POLICY_CHARS = 7000


class S3Access(WireModel):
    """The S3 locations a Function's jobs may use; its worker role allows exactly these.

    Each entry is ``s3://bucket/*``, ``s3://bucket/prefix/*`` or ``s3://bucket/key``. ``read``
    locations are read with the worker role's credentials (s3:GetObject, s3:ListBucket under the
    prefix); ``write`` locations get s3:PutObject. ``public`` locations are public archives read
    unsigned (as they are meant to be read): the worker names them to user code in
    ``GEOBATCH_UNSIGNED_S3`` (see ``env.UNSIGNED_S3``). A deployed stack accepts only ``read`` and
    ``write`` locations inside what its operator allows (cdk.json context ``data_access``).
    """

    read: list[S3Uri] = Field(default_factory=list, max_length=data_access.MAX_LOCATIONS)
    write: list[S3Uri] = Field(default_factory=list, max_length=data_access.MAX_LOCATIONS)
    public: list[S3Uri] = Field(default_factory=list, max_length=data_access.MAX_LOCATIONS)

    @model_validator(mode="after")
    def _fits_a_role_policy(self) -> S3Access:
        size = data_access.policy_chars(data_access.statements(self.model_dump(), "aws"))
        if size > DATA_POLICY_CHARS:
            raise ValueError(
                f"data_access needs {size} characters of IAM policy; at most {DATA_POLICY_CHARS} fit in a "
                "worker role: name fewer, shorter locations (s3://bucket/prefix/* covers many keys)"
            )
        return self


class FunctionSettings(WireModel):
    """The settings a user may change after creation (all optional in an update)."""

    name: Name | None = None
    cpus: Cpus | None = None
    memory: Memory | None = None
    maximum_concurrency: int | None = Field(default=None, ge=1, le=limits.MAX_CONCURRENCY)
    timeout: int | None = Field(default=None, ge=1, json_schema_extra={"maximum": limits.MAX_TIMEOUT_SECONDS})
    retry_count: int | None = Field(default=None, ge=0, le=limits.MAX_RETRY_COUNT)
    environment: Environment | None = None
    enabled: bool | None = None
    auto_start: bool | None = None
    data_access: S3Access | None = None  # an update replaces the whole declaration

    _env = field_validator("environment")(classmethod(lambda cls, v: _check_environment(v)))
    _timeout = field_validator("timeout")(classmethod(lambda cls, v: check_timeout(v)))


class FunctionCreate(FunctionSettings):
    """Body of ``POST /functions``."""

    name: Name
    entrypoint: str = Field(
        default="__gbentry__:main",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
        description="module:attribute of the callable inside the bundle",
    )
    requirements: list[str] = Field(default_factory=list, max_length=limits.MAX_REQUIREMENTS)
    image: str = Field(default="python3.11", json_schema_extra={"enum": list(SUPPORTED_IMAGES)})

    _image = field_validator("image")(classmethod(lambda cls, v: check_image(v)))

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, value: list[str]) -> list[str]:
        return [r for r in (check_requirement(line) for line in value) if r]

    @model_validator(mode="after")
    def _resources(self) -> FunctionCreate:
        check_resources(
            self.cpus if self.cpus is not None else limits.DEFAULT_CPUS,
            self.memory if self.memory is not None else limits.DEFAULT_MEMORY_MB,
        )
        return self


class FunctionUpdate(FunctionSettings):
    """Body of ``PATCH /functions/{id}``: only the fields to change. ``status`` starts or stops."""

    status: Literal[FunctionStatus.READY, FunctionStatus.STOPPED] | None = None


class Function(WireModel):
    """A saved Function, as the API returns it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    owner: str
    status: FunctionStatus
    creation_date: datetime
    modified_date: datetime
    entrypoint: str
    image: str
    requirements: list[str]
    cpus: float
    memory: int
    maximum_concurrency: int
    timeout: int
    retry_count: int
    environment: Environment = Field(default_factory=dict)
    enabled: bool = True
    auto_start: bool = True
    data_access: S3Access = Field(default_factory=S3Access)
    image_uri: str | None = None
    image_hash: str | None = None
    build_id: str | None = None
    status_reason: str | None = None
    job_statistics: dict[str, int] | None = None


class FunctionCreated(WireModel):
    """Response of ``POST /functions``: upload the zip to ``bundle_upload_url`` with HTTP PUT."""

    function: Function
    bundle_upload_url: str


# --------------------------------------------------------------------------- jobs


class JobSpec(WireModel):
    """Body of ``POST /jobs``: one call of a Function."""

    function_id: str = Field(min_length=1, max_length=64)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    environment: Environment | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=limits.MAX_TAGS)
    reference_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$"
    )

    _env = field_validator("environment")(classmethod(lambda cls, v: _check_environment(v)))


class JobBulkCreate(WireModel):
    """Body of ``POST /jobs/bulk``: up to 1000 calls.

    Resending the same ``reference_id`` creates nothing new."""

    function_id: str = Field(min_length=1, max_length=64)
    bulk_args: list[list[Any]] | None = Field(default=None, max_length=limits.MAX_JOBS_PER_REQUEST)
    bulk_kwargs: list[dict[str, Any]] | None = Field(default=None, max_length=limits.MAX_JOBS_PER_REQUEST)
    bulk_environments: list[Environment | None] | None = Field(
        default=None, max_length=limits.MAX_JOBS_PER_REQUEST
    )
    tags: list[Tag] = Field(default_factory=list, max_length=limits.MAX_TAGS)
    reference_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")

    @model_validator(mode="after")
    def _lengths(self) -> JobBulkCreate:
        lengths = {
            name: len(value)
            for name, value in (
                ("bulk_args", self.bulk_args),
                ("bulk_kwargs", self.bulk_kwargs),
                ("bulk_environments", self.bulk_environments),
            )
            if value is not None
        }
        if not lengths:
            raise ValueError("give bulk_args and/or bulk_kwargs: one entry per job")
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"bulk_args, bulk_kwargs and bulk_environments must have the same length, got {lengths}"
            )
        if next(iter(lengths.values())) == 0:
            raise ValueError("a bulk submission needs at least one job")
        for env in self.bulk_environments or []:
            _check_environment(env)
        return self

    @property
    def count(self) -> int:
        for value in (self.bulk_args, self.bulk_kwargs, self.bulk_environments):
            if value is not None:
                return len(value)
        return 0


class Attempt(WireModel):
    """One execution of a job."""

    model_config = ConfigDict(extra="ignore")

    number: int
    run: int = Field(default=0, description="the run (0, then 1 after the first rerun, ...) it belongs to")
    started: datetime | None = None
    ended: datetime | None = None
    status: JobStatus | None = None
    exit_code: int | None = None
    reason: str | None = None
    runtime: float | None = None
    peak_memory_mb: float | None = None
    cpu_seconds: float | None = None
    log_bytes: int = 0
    worker_id: str | None = None
    statistics: StatisticsSummary | None = Field(
        default=None,
        description="peaks of the attempt's CPU/memory/network series (GET /jobs/{id}/statistics)",
    )


class JobTags(WireModel):
    """Body of ``PATCH /jobs/{id}``."""

    tags: list[Tag] = Field(max_length=limits.MAX_TAGS)


class Job(WireModel):
    """A job, as the API returns it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    function_id: str
    creation_date: datetime
    status: JobStatus
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    environment: Environment | None = None
    tags: list[str] = Field(default_factory=list)
    error_reason: str | None = None
    status_reason: str | None = None
    execution_count: int = 0
    exit_code: int | None = None
    runtime: float | None = None
    last_execution_date: datetime | None = None
    last_completion_date: datetime | None = None
    reference_id: str | None = None
    run: int = 0
    attempts: list[Attempt] = Field(default_factory=list)
    has_result: bool = False
    result_size: int | None = None
    result: str | None = Field(default=None, description="base64 of the stored result, when asked for")


class Meta(WireModel):
    page_cursor: str | None = None
    total: int | None = None


class JobPage(WireModel):
    data: list[Job]
    meta: Meta = Field(default_factory=Meta)


class FunctionPage(WireModel):
    data: list[Function]
    meta: Meta = Field(default_factory=Meta)


class JobQuery(WireModel):
    """Body of ``POST /jobs/cancel|rerun|delete``: jobs chosen by filter (and optional ids)."""

    filter: list[Any] = Field(default_factory=list)
    function_id: str | None = None
    job_ids: list[str] | None = Field(default=None, max_length=limits.MAX_BULK_OPERATION)
    delete_results: bool = False
    page_cursor: str | None = None


class JobIds(WireModel):
    """Response of bulk operations: the jobs changed; follow ``page_cursor`` for more."""

    job_ids: list[str]
    page_cursor: str | None = None


class ResultBody(WireModel):
    """Response of ``GET /jobs/{id}/result``: the bytes inline (base64) or a short-lived URL."""

    job_id: str
    size: int
    data: str | None = None
    url: str | None = None


class LogLine(WireModel):
    date: datetime
    log: str


class FailureGroup(WireModel):
    """Failed jobs that share a cause, with one example to look at."""

    cause: str
    kind: Literal["exception", "out_of_memory", "timeout", "worker_lost", "other"]
    count: int
    example_job_id: str
    example_reason: str | None = None


class FailureSummary(WireModel):
    """Response of ``GET /functions/{id}/failures``: failures grouped by cause, largest first."""

    function_id: str
    failed: int
    groups: list[FailureGroup]
