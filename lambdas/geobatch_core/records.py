"""Typed records of the two tables: a Function and a job as the services read them.

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
(DynamoDB cannot, SQLite and the fakes drop them like it), but a hand-built item may.

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


def _split(kind: str, item: Mapping[str, Any], names: _Names) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """An item's named attributes (as keywords of its record) and the rest: those the record does
    not name and those it holds as None; ``KeyError`` names a required attribute it lacks (or
    holds as None)."""
    missing = names.required - {k for k, v in item.items() if v is not None}
    if missing:
        raise KeyError(f"{kind} needs {', '.join(sorted(missing))}")
    known = {k: v for k, v in item.items() if k in names.all and v is not None}
    extra = {k: v for k, v in item.items() if k not in known}
    return known, (MappingProxyType(extra) if extra else _EMPTY)


def _join(record: object, names: _Names, extra: Mapping[str, Any]) -> Item:
    """The item of a record: its set attributes (those left unset stay absent) and its extra ones
    (a None kept there gives way to a value set since, e.g. by ``dataclasses.replace``)."""
    item: Item = {}
    for name in names.order:
        value = getattr(record, name)
        if value is not None:
            item[name] = value
    for name, value in extra.items():
        item.setdefault(name, value)
    return item


@dataclass(frozen=True)
class _Names:
    order: tuple[str, ...]
    all: frozenset[str]
    required: frozenset[str]

    @classmethod
    def of(cls, record: type[Any]) -> _Names:
        named = [f for f in dataclasses.fields(record) if f.name != "extra"]
        required = [f.name for f in named if f.default is dataclasses.MISSING]
        return cls(tuple(f.name for f in named), frozenset(f.name for f in named), frozenset(required))


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
    attempts: list[dict[str, Any]] | None = None
    earlier_attempts: list[dict[str, Any]] | None = None
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
