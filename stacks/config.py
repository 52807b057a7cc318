"""Typed deployment settings read from CDK context (``cdk.json`` or ``-c key=value``).

Every setting has a default so ``cdk synth`` works with no context at all; a bad value fails
synthesis with a message naming the key and the allowed values, rather than a confusing
CloudFormation error at deploy time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from constructs import Node

from geobatch.wire import data_access

COMPUTE_TYPES = ("FARGATE", "FARGATE_SPOT", "EC2", "SPOT")
# CloudWatch Logs accepts only these retention values (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_STAGE_RE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_VPC_RE = re.compile(r"^vpc-[0-9a-f]{8,17}$")
# The worker boundary is a managed policy (6,144 characters; its own statements take about 1,500),
# and the bound also travels in the API Lambda's environment (4 KB for all variables).
MAX_BOUNDARY_DATA_CHARS = 2500


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key and what is allowed."""


@dataclass(frozen=True)
class GeoBatchConfig:
    """Deployment settings; see ``from_context`` for the context keys."""

    stage: str = "dev"
    compute_type: str = "FARGATE"
    max_vcpus: int = 256
    vpc_id: str | None = None
    log_retention_days: int = 30
    result_retention_days: int = 0  # 0 = keep results forever
    admin_principals: tuple[str, ...] = field(default_factory=tuple)
    alarm_email: str | None = None
    lost_worker_seconds: int = 120
    architecture: str = "x86_64"  # of the Lambdas (the pip bundling platform follows it)
    versioned_bucket: bool = False  # S3 versioning of the data bucket
    # Who owns what a request creates: "role" (every session of an assumed role shares the role's
    # Functions) or "session" (each role session is its own owner, e.g. each IAM Identity Center user
    # of one permission set).
    ownership: str = "role"
    # S3 locations (s3:// patterns) a Function may declare to read / write: the worker boundary's bound.
    data_read: tuple[str, ...] = field(default_factory=tuple)
    data_write: tuple[str, ...] = field(default_factory=tuple)
    # API Gateway logs through one CloudWatch role per account and region (AWS::ApiGateway::Account).
    # True: this stack sets it to a role of its own (retained on destroy); false: the account has one.
    api_gateway_account: bool = True
    # Concurrent executions reserved for the scaler (1: passes never overlap); 0 reserves none, for
    # accounts whose Lambda concurrency quota (10 in some new accounts) leaves nothing to reserve.
    scaler_reserved_concurrency: int = 1

    def __post_init__(self) -> None:
        self.validate()

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"

    @property
    def name_prefix(self) -> str:
        """Prefix of runtime-created resources (SQS queues, job definitions); IAM is scoped to it."""
        return f"geobatch-{self.stage}"

    @property
    def is_fargate(self) -> bool:
        return self.compute_type in ("FARGATE", "FARGATE_SPOT")

    def validate(self) -> None:
        if not _STAGE_RE.match(self.stage):
            raise ConfigError(f"context 'stage'={self.stage!r}: use 1-16 lowercase letters, digits or '-'")
        if self.compute_type not in COMPUTE_TYPES:
            raise ConfigError(
                f"context 'compute_type'={self.compute_type!r}: use one of {', '.join(COMPUTE_TYPES)}"
            )
        if not 1 <= self.max_vcpus <= 100_000:
            raise ConfigError(f"context 'max_vcpus'={self.max_vcpus}: use an integer from 1 to 100000")
        if self.vpc_id is not None and not _VPC_RE.match(self.vpc_id):
            raise ConfigError(
                f"context 'vpc_id'={self.vpc_id!r}: expected an id like 'vpc-0123456789abcdef0'"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ConfigError(
                f"context 'log_retention_days'={self.log_retention_days}: CloudWatch allows "
                f"{', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        if self.result_retention_days < 0:
            raise ConfigError("context 'result_retention_days' must be >= 0 (0 keeps results forever)")
        for arn in self.admin_principals:
            if not _ARN_RE.match(arn):
                raise ConfigError(f"context 'admin_principals': {arn!r} is not an IAM or STS principal ARN")
        if self.alarm_email is not None and not _EMAIL_RE.match(self.alarm_email):
            raise ConfigError(f"context 'alarm_email'={self.alarm_email!r} is not an email address")
        if not 30 <= self.lost_worker_seconds <= 43_200:
            raise ConfigError(
                f"context 'lost_worker_seconds'={self.lost_worker_seconds}: "
                "use 30-43200 (SQS visibility timeout limits)"
            )
        if self.ownership not in ("role", "session"):
            raise ConfigError(f"context 'ownership'={self.ownership!r}: use role or session")
        if self.scaler_reserved_concurrency not in (0, 1):
            raise ConfigError(
                f"context 'scaler_reserved_concurrency'={self.scaler_reserved_concurrency}: use 1 "
                "(one scaler pass at a time) or 0 (reserve none)"
            )
        if self.architecture not in ("x86_64", "arm64"):
            raise ConfigError(f"context 'architecture'={self.architecture!r}: use x86_64 or arm64")
        self._validate_data_access()

    def _validate_data_access(self) -> None:
        for kind, uris in (("read", self.data_read), ("write", self.data_write)):
            if len(uris) > data_access.MAX_LOCATIONS:
                raise ConfigError(
                    f"context 'data_access.{kind}' has {len(uris)} locations; at most "
                    f"{data_access.MAX_LOCATIONS}: use prefixes (s3://bucket/prefix/*)"
                )
            for index, uri in enumerate(uris):
                try:
                    data_access.parse(uri)
                except ValueError as exc:
                    raise ConfigError(f"context 'data_access.{kind}[{index}]': {exc}") from None
        size = data_access.policy_chars(data_access.statements(self.data_bound, "aws"))
        if size > MAX_BOUNDARY_DATA_CHARS:
            raise ConfigError(
                f"context 'data_access' needs {size} characters of IAM policy; the worker boundary "
                f"(a managed policy, 6,144 at most) has room for {MAX_BOUNDARY_DATA_CHARS}: "
                "name fewer locations, e.g. whole buckets (s3://bucket/*)"
            )

    @property
    def data_bound(self) -> dict[str, list[str]]:
        """The bound as the API Lambda reads it (``env.DATA_ACCESS``) and the boundary grants it."""
        return {
            "read": [data_access.normalise(u) for u in self.data_read],
            "write": [data_access.normalise(u) for u in self.data_write],
        }

    @classmethod
    def from_context(cls, node: Node) -> GeoBatchConfig:
        """Read every setting from ``node``'s context; values given with ``-c`` arrive as strings."""

        def get(key: str) -> Any:
            return node.try_get_context(key)

        return cls(
            stage=_str(get("stage"), "stage") or "dev",
            compute_type=(_str(get("compute_type"), "compute_type") or "FARGATE").upper(),
            max_vcpus=_int(get("max_vcpus"), "max_vcpus", 256),
            vpc_id=_str(get("vpc_id"), "vpc_id") or None,
            log_retention_days=_int(get("log_retention_days"), "log_retention_days", 30),
            result_retention_days=_int(get("result_retention_days"), "result_retention_days", 0),
            admin_principals=_list(get("admin_principals"), "admin_principals"),
            alarm_email=_str(get("alarm_email"), "alarm_email") or None,
            lost_worker_seconds=_int(get("lost_worker_seconds"), "lost_worker_seconds", 120),
            architecture=_str(get("architecture"), "architecture") or "x86_64",
            versioned_bucket=_bool(get("versioned_bucket"), "versioned_bucket", False),
            ownership=_str(get("ownership"), "ownership") or "role",
            **_data_access(get("data_access")),
            api_gateway_account=_bool(get("api_gateway_account"), "api_gateway_account", True),
            scaler_reserved_concurrency=_int(
                get("scaler_reserved_concurrency"), "scaler_reserved_concurrency", 1
            ),
        )


def _data_access(value: Any) -> dict[str, tuple[str, ...]]:
    """``{"read": [...], "write": [...]}`` (a JSON string with ``-c``) → data_read / data_write."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict) or set(value) - {"read", "write"}:
        raise ConfigError(
            'context \'data_access\' must be an object {"read": ["s3://bucket/prefix/*", ...], '
            '"write": [...]} (only the keys read and write)'
        )
    return {
        "data_read": _list(value.get("read"), "data_access.read"),
        "data_write": _list(value.get("write"), "data_access.write"),
    }


def _str(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"context {key!r} must be a string, got {value!r}")
    return value.strip()


def _int(value: Any, key: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ConfigError(f"context {key!r} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context {key!r} must be an integer, got {value!r}") from None


def _bool(value: Any, key: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"context {key!r} must be true or false, got {value!r}")


def _list(value: Any, key: str) -> tuple[str, ...]:
    """A JSON list, or a comma-separated string (as ``-c admin_principals=arn1,arn2`` gives)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [v for v in text.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"context {key!r} must be a list of strings, got {value!r}")
    return tuple(v.strip() for v in value if v.strip())
