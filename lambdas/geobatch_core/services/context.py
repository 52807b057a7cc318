"""The ports and settings a core service needs, passed in by handlers, the worker and local mode."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from geobatch.wire.data_access import Bound
from geobatch_core.ports import (
    BlobStore,
    EventPublisher,
    Executor,
    FunctionStore,
    ImageBuilder,
    JobStore,
    Queue,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(nbytes: int = 6) -> str:
    return secrets.token_hex(nbytes)


@dataclass(frozen=True)
class Settings:
    queue_prefix: str = "geobatch"
    lost_worker_seconds: int = 120  # SQS visibility: a worker silent this long is presumed dead
    admins: frozenset[str] = frozenset()
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 900.0
    max_receive_count: int = 50  # beyond retries: only a message that keeps killing workers gets here
    runtime_version: str = "1"  # part of the image hash: bump when the worker runtime changes
    # S3 locations Functions may declare (unbounded unless configured, as in local mode)
    data_bound: Bound = field(default_factory=Bound)


@dataclass
class Services:
    functions: FunctionStore
    jobs: JobStore
    queue: Queue
    blobs: BlobStore
    executor: Executor
    builder: ImageBuilder
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], datetime] = utcnow
    on_submit: Callable[[str], None] | None = None  # wakes the scaler (async Lambda invoke in AWS)
    events: EventPublisher | None = None  # completion events
