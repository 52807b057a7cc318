"""Wire models of Functions: their settings, data access, create / update bodies and responses.

Imported through ``geobatch.wire.models``, which re-exports them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from geobatch.wire import data_access, limits
from geobatch.wire.fields import (
    SUPPORTED_IMAGES,
    Cpus,
    Environment,
    Memory,
    Name,
    WireModel,
    check_environment,
    check_image,
    check_requirement,
    check_resources,
    check_timeout,
)
from geobatch.wire.status import FunctionStatus

S3Uri = Annotated[str, AfterValidator(data_access.normalise)]
# The declared statements' share of the data role's inline policy (IAM allows 10,240 characters).
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

    _env = field_validator("environment")(classmethod(lambda cls, v: check_environment(v)))
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
