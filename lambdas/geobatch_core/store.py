"""Markers for conditional store writes, understood by every JobStore/FunctionStore adapter, and
the answers every adapter gives alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geobatch.wire import errors
from geobatch_core import layout


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
