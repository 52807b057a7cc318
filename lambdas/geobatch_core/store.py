"""Markers for conditional store writes, understood by every JobStore/FunctionStore adapter, and
the answers every adapter gives alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.ports import JobPage, JobRows, JobWrite, Key
from geobatch_core.records import JobRecord


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""In an ``expect`` mapping: the attribute must not exist (may be combined with values in a list)."""


@dataclass(frozen=True)
class Increment:
    """In a ``changes`` mapping: add ``by`` to a numeric attribute atomically."""

    by: int = 1


def resent_reference(first: Mapping[str, Any], function_id: str, reference_id: str, fingerprint: str) -> int:
    """A reference used before: the time (ms) of its first use, unless that use was for other jobs
    (``ConflictError``). References written before fingerprints existed carry none: they match any
    resend. Shared by every JobStore so they answer a resend alike."""
    if fingerprint and first.get("fingerprint") not in (None, fingerprint):
        raise errors.ConflictError(
            f"reference_id {reference_id!r} was already used for different jobs of Function "
            f"{function_id}: resend exactly the same jobs, or use a new reference_id"
        )
    return int(first["created_ms"])


def reference_item(function_id: str, reference_id: str, now_ms: int, fingerprint: str) -> dict[str, Any]:
    """The record of a submission reference's first use (every JobStore stores the same): when, for
    which jobs (``fingerprint``, absent when the caller sent none), kept for
    ``layout.REFERENCE_TTL_SECONDS``."""
    item: dict[str, Any] = {
        "function_id": function_id,
        "job_key": f"ref#{reference_id}",
        "created_ms": now_ms,
        layout.JOB_TTL_ATTRIBUTE: now_ms // 1000 + layout.REFERENCE_TTL_SECONDS,
    }
    if fingerprint:
        item["fingerprint"] = fingerprint
    return item


def expired(record: Mapping[str, Any], now_s: float) -> bool:
    """Whether a record's time to live (``expires_at``) has passed. DynamoDB's TTL deletes such a
    record within a day or two; until then, and in every other JobStore, it counts as absent."""
    ttl = record.get(layout.JOB_TTL_ATTRIBUTE)
    return ttl is not None and int(ttl) < now_s


def pending_request(
    scope: str, key: str, fingerprint: str, *, now_s: int, lease_s: int, ttl_s: int
) -> dict[str, Any]:
    """The record an execution claims an Idempotency-Key with (every JobStore stores the same)."""
    return {
        "function_id": f"{layout.REQUEST_PARTITION_PREFIX}{scope}",
        "job_key": key,
        "fingerprint": fingerprint,
        "state": "pending",
        "lease_until": now_s + lease_s,
        layout.JOB_TTL_ATTRIBUTE: now_s + ttl_s,
    }


class TypedJobs:
    """``JobStore``'s job methods, the same for every adapter: its rows (``ports.JobRows``) read as
    ``JobRecord``s and written from them. An adapter implements the rows and inherits this."""

    def put_new_batch(self: JobRows, jobs: Sequence[JobRecord], *, check_existing: bool = True) -> list[str]:
        return self.put_rows([j.to_item() for j in jobs], check_existing=check_existing)

    def get(self: JobRows, function_id: str, job_key: str, *, consistent: bool = False) -> JobRecord:
        return JobRecord.from_item(self.get_row(function_id, job_key, consistent=consistent))

    def transition(
        self: JobRows, function_id: str, job_key: str, **write: Unpack[JobWrite]
    ) -> JobRecord | None:
        JobRecord.check_names("changes", write["changes"])
        JobRecord.check_names("expects", write["expect"])
        row = self.update_row(function_id, job_key, **write)
        return None if row is None else JobRecord.from_item(row)

    def query(self: JobRows, function_id: str, **page: Unpack[JobPage]) -> tuple[list[JobRecord], Key | None]:
        rows, last = self.query_rows(function_id, **page)
        return [JobRecord.from_item(r) for r in rows], last

    def query_index(
        self: JobRows, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[JobRecord], Key | None]:
        rows, last = self.query_index_rows(sort, partition, start=start, limit=limit, descending=descending)
        return [JobRecord.from_item(r) for r in rows], last
