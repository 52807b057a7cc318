"""Typed records of the two tables: a Function, a job and its attempts as the services read them.

The stores keep items (``ports.Item``: plain JSON-like mappings, as DynamoDB and SQLite hold them)
and answer records: every Function and job crosses the store boundary (``ports.FunctionStore``,
``ports.JobStore``) as a ``FunctionRecord`` or ``JobRecord``, which name their attributes and
types. This module is the one place that maps between the two: ``from_item`` reads an item as any
store returns it (the DynamoDB adapter after deserializing, SQLite after decoding its JSON, the
in-memory fakes), ``to_item`` gives back exactly that item. The mapping is lossless: an attribute
the record does not name (one the executor or the image builder stored, see
``ports.Executor.register``) rides along in ``extra``, and an optional attribute the item lacks
stays absent rather than becoming a default. A named attribute the item holds as None reads as
None too, but rides in ``extra`` as well, so the item comes back with it: no store holds one
(DynamoDB cannot, SQLite and the fakes drop them like it), but a hand-built item may. A job's
attempt entries (``attempts``, ``earlier_attempts``) are ``AttemptRecord``s, mapped the same way.

Frozen dataclasses with slots, not pydantic models: the worker and the scaler read many records,
and building one is a dict walk with no validation (the items were validated on their way in, by
the wire models). The wire forms (``geobatch.wire.models``) are built from records by
``function_wire`` and the job helpers in ``services.job_wire``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from geobatch.wire.models import Function
from geobatch_core.ports import Item

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


# The metadata key of a field holding a list of entries, naming their record type (a job's attempts).
_ENTRIES = "entries"


def _split(kind: str, item: Mapping[str, Any], names: _Names) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """An item's named attributes (as keywords of its record) and the rest: those the record does
    not name and those it holds as None; ``KeyError`` names a required attribute it lacks (or
    holds as None)."""
    missing = names.required - {k for k, v in item.items() if v is not None}
    if missing:
        raise KeyError(f"{kind} needs {', '.join(sorted(missing))}")
    known = {k: names.read(k, v) for k, v in item.items() if k in names.all and v is not None}
    extra = {k: v for k, v in item.items() if k not in known}
    return known, (MappingProxyType(extra) if extra else _EMPTY)


def _join(record: object, names: _Names, extra: Mapping[str, Any]) -> Item:
    """The item of a record: its set attributes (those left unset stay absent) and its extra ones
    (a None kept there gives way to a value set since, e.g. by ``dataclasses.replace``)."""
    item: Item = {}
    for name in names.order:
        value = getattr(record, name)
        if value is not None:
            item[name] = names.write(name, value)
    for name, value in extra.items():
        item.setdefault(name, value)
    return item


@dataclass(frozen=True)
class _Names:
    order: tuple[str, ...]
    all: frozenset[str]
    required: frozenset[str]
    entries: Mapping[str, Any]  # attribute -> the record type of each entry of its list

    @classmethod
    def of(cls, record: type[Any]) -> _Names:
        named = [f for f in dataclasses.fields(record) if f.name != "extra"]
        required = [f.name for f in named if f.default is dataclasses.MISSING]
        entries = {f.name: f.metadata[_ENTRIES] for f in named if _ENTRIES in f.metadata}
        return cls(
            tuple(f.name for f in named), frozenset(f.name for f in named), frozenset(required), entries
        )

    def read(self, name: str, value: Any) -> Any:
        """An attribute's value in the record: a list of entries becomes a tuple of their records."""
        entry = self.entries.get(name)
        return value if entry is None else tuple(entry.from_item(e) for e in value)

    def write(self, name: str, value: Any) -> Any:
        """An attribute's value in the item: entries' records become the list of their items."""
        return value if name not in self.entries else [e.to_item() for e in value]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt entry of a job, as its writers leave it: the claim (``execution``) starts it
    with ``started``, ``status`` and ``worker_id``; the outcome (``outcome``) ends it with the rest,
    its log inline (``log``) or in the blob store (``log_key``) and its statistics summary and
    series; live logs count their parts on it; a lost worker (``execution``, ``dead_letters``) ends
    it with a reason. ``run`` is set on the entries a rerun keeps in ``earlier_attempts``."""

    number: int | None = None  # within its run, from 1 (a claim's entry has none yet)
    run: int | None = None
    started: str | None = None
    ended: str | None = None
    status: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    runtime: float | None = None
    peak_memory_mb: float | None = None
    cpu_seconds: float | None = None
    log_bytes: int | None = None
    worker_id: str | None = None
    log: str | None = None
    log_key: str | None = None
    statistics: dict[str, Any] | None = None  # the summary (geobatch.wire.statistics.SUMMARY_FIELDS)
    statistics_key: str | None = None
    live_log_parts: int | None = None
    extra: Mapping[str, Any] = field(default_factory=_empty, compare=False)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AttemptRecord:
        """The record of a stored attempt entry."""
        known, extra = _split(cls.__name__, item, _ATTEMPT)
        return cls(**known, extra=extra)

    def to_item(self) -> Item:
        """Exactly the entry this record was read from."""
        return _join(self, _ATTEMPT, self.extra)

    @property
    def index(self) -> int:
        """Its place in its run's ``attempts``, where a write that replaces it puts it."""
        if self.number is None:
            raise ValueError("an attempt entry replaced in place needs its number")
        return self.number - 1


_ATTEMPT = _Names.of(AttemptRecord)


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    """A Function item (``services.functions.create_function`` writes every required attribute)."""

    id: str
    status: str
    owner: str | None = None
    name: str | None = None
    creation_date: str | None = None
    modified_date: str | None = None
    entrypoint: str | None = None
    image: str | None = None
    requirements: list[str] | None = None
    cpus: float | None = None
    memory: int | None = None
    maximum_concurrency: int | None = None
    timeout: int | None = None
    retry_count: int | None = None
    environment: dict[str, str] | None = None
    enabled: bool | None = None
    auto_start: bool | None = None
    data_access: dict[str, Any] | None = None
    queue_url: str | None = None
    dlq_url: str | None = None
    bundle_key: str | None = None
    image_uri: str | None = None
    image_hash: str | None = None
    build_id: str | None = None
    build_started: str | None = None
    status_reason: str | None = None
    job_definition_arn: str | None = None
    active: bool | None = None  # jobs submitted since the last completion event (services.scaling)
    # "<expiry epoch s>:<holder>" while a scaler pass holds it (services.lease)
    scaling_lease: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_empty, compare=False)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> FunctionRecord:
        """The record of a stored Function item; ``KeyError`` when it has no id."""
        known, extra = _split(cls.__name__, item, _FUNCTION)
        return cls(**known, extra=extra)

    def to_item(self) -> Item:
        """Exactly the item this record was read from."""
        return _join(self, _FUNCTION, self.extra)

    @property
    def attempts_allowed(self) -> int:
        """Attempts a job of this Function gets per run (its retries plus the first)."""
        return int(self.retry_count or 0) + 1


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job item: its key, its state-machine attributes and what the worker and listings read."""

    function_id: str
    job_key: str
    status: str
    owner: str | None = None
    creation_date: str | None = None
    payload: str | None = None
    args_key: str | None = None
    environment: dict[str, str] | None = None
    tags: list[str] | None = None
    reference_id: str | None = None
    run: int | None = None
    execution_count: int | None = None
    earlier_executions: int | None = None
    claim_msg: str | None = None
    claim_token: str | None = None
    attempts: tuple[AttemptRecord, ...] | None = field(default=None, metadata={_ENTRIES: AttemptRecord})
    earlier_attempts: tuple[AttemptRecord, ...] | None = field(
        default=None, metadata={_ENTRIES: AttemptRecord}
    )
    retry_at: str | None = None
    lost_reason: str | None = None
    error_reason: str | None = None
    status_reason: str | None = None
    exit_code: int | None = None
    runtime: float | None = None
    last_execution_date: str | None = None
    last_completion_date: str | None = None
    result: bytes | None = None
    result_key: str | None = None
    result_size: int | None = None
    result_meta: dict[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=_empty, compare=False)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobRecord:
        """The record of a stored job item; ``KeyError`` when it lacks its key attributes."""
        known, extra = _split(cls.__name__, item, _JOB)
        return cls(**known, extra=extra)

    def to_item(self) -> Item:
        """Exactly the item this record was read from."""
        return _join(self, _JOB, self.extra)

    @property
    def id(self) -> str:
        """The job's id as the API shows it."""
        return f"{self.function_id}-{self.job_key}"

    @classmethod
    def check_names(cls, kind: str, names: Iterable[str]) -> None:
        """``ValueError`` for an attribute name no ``JobRecord`` has: a job write (its changes, its
        expectations) names only the record's attributes, so a misspelt one fails at once instead
        of landing in ``extra``."""
        unknown = sorted(set(names) - _JOB.all)
        if unknown:
            raise ValueError(f"a job write {kind} {', '.join(unknown)}, which JobRecord does not name")


_FUNCTION = _Names.of(FunctionRecord)
_JOB = _Names.of(JobRecord)


def function_wire(record: FunctionRecord, statistics: dict[str, int] | None = None) -> Function:
    """The wire form of a Function (what ``GET /functions/{id}`` answers)."""
    return Function.model_validate({**record.to_item(), "job_statistics": statistics})
