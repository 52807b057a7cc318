"""Wire models: the one definition of every request and response body.

The API Lambda validates requests and serialises responses with these classes, the worker
reads jobs with them, and the SDK parses API responses with them. This module holds the jobs'
models and is the import path of them all: the Functions' models (``wire.functions``), the field
types and checks (``wire.fields``) and the status enums (``wire.status``) are re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from geobatch.wire import limits
from geobatch.wire.fields import (
    FARGATE_MEMORY,
    SUPPORTED_IMAGES,
    Cpus,
    Environment,
    Memory,
    Name,
    Tag,
    WireModel,
    check_environment,
    check_image,
    check_requirement,
    check_resources,
    check_timeout,
    parse_cpus,
    parse_memory,
)
from geobatch.wire.functions import (
    DATA_POLICY_CHARS,
    Function,
    FunctionCreate,
    FunctionCreated,
    FunctionSettings,
    FunctionUpdate,
    S3Access,
    S3Uri,
)
from geobatch.wire.statistics import StatisticsSummary
from geobatch.wire.status import RERUNNABLE, TERMINAL, FunctionStatus, JobStatus

__all__ = [
    "DATA_POLICY_CHARS",
    "FARGATE_MEMORY",
    "RERUNNABLE",
    "SUPPORTED_IMAGES",
    "TERMINAL",
    "Attempt",
    "Cpus",
    "Environment",
    "FailureGroup",
    "FailureSummary",
    "Function",
    "FunctionCreate",
    "FunctionCreated",
    "FunctionPage",
    "FunctionSettings",
    "FunctionStatus",
    "FunctionUpdate",
    "Job",
    "JobBulkCreate",
    "JobIds",
    "JobPage",
    "JobQuery",
    "JobSpec",
    "JobStatus",
    "JobTags",
    "LogLine",
    "Memory",
    "Meta",
    "Name",
    "ResultBody",
    "S3Access",
    "S3Uri",
    "Tag",
    "WireModel",
    "check_image",
    "check_requirement",
    "check_resources",
    "check_timeout",
    "parse_cpus",
    "parse_memory",
]


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

    _env = field_validator("environment")(classmethod(lambda cls, v: check_environment(v)))


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
            check_environment(env)
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
