"""Idempotency-Key: a write request retried after a lost answer is carried out once.

Stripe's model. The SDK sends one random key per logical write call and the same key on each of
its retries. The first request with a key claims it (a conditional put in the Jobs table, under a
partition of the caller's own), runs, and stores its answer; a retry with the same key and the
same request (method, path, query and body) gets that answer replayed (header
``Idempotent-Replayed: true``); the same key with a different request is a 409. A retry that
arrives while the first execution still runs gets a 409 ``request_in_progress`` with
``Retry-After`` (the SDK waits and tries again). Keys expire after a day.

An answer of 429 or 5xx is not stored: the key is released, so the retry runs again (every write
is safe to run again after such a failure: submissions dedupe by reference, state changes are
conditional). An answer too large to store (a big bulk submission) is not stored either; its
retry runs again, which the submission's reference makes a replay.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from geobatch.wire import errors, limits
from geobatch_api import context, identity

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEY = re.compile(r"^[\x21-\x7e]{1,%s}$" % limits.IDEMPOTENCY_KEY_CHARS)  # noqa: UP031 (regex braces)
Resolve = Callable[[], dict[str, Any]]
logger = Logger(service="geobatch-api")


@dataclass(frozen=True)
class Execute:
    """The key is ours: run the request and store its answer."""


@dataclass(frozen=True)
class Replay:
    """The key's request already ran: answer what it answered."""

    response: dict[str, Any]


@dataclass(frozen=True)
class Refuse:
    """The key cannot be used for this request now (reused for another one, or still running)."""

    error: errors.GeoBatchError
    retry_after: int | None = None


Decision = Execute | Replay | Refuse


def _header(event: Mapping[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def fingerprint(event: Mapping[str, Any]) -> str:
    query = event.get("multiValueQueryStringParameters") or {}
    canonical = json.dumps(
        [event.get("httpMethod"), event.get("path"), sorted(query.items()), event.get("body") or ""],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _stored(response: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer as a record to store, or None when it must not be replayed."""
    status = int(response.get("statusCode", 200))
    if status == 429 or status >= 500:
        return None
    body = str(response.get("body") or "").encode("utf-8", "surrogatepass")
    packed: bytes | None = zlib.compress(body, 6)
    if len(packed or b"") > limits.IDEMPOTENT_RESPONSE_BYTES:
        packed = None  # kept as done without an answer: a retry runs again, a misuse is still refused
    headers = {**(response.get("headers") or {})}
    headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items() if v})
    return {
        "status": status,
        "content_type": headers.get("Content-Type", "application/json"),
        "base64": bool(response.get("isBase64Encoded")),
        "body": packed,
    }


def _replayed(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": int(record["status"]),
        "headers": {
            "Content-Type": record.get("content_type") or "application/json",
            REPLAYED_HEADER: "true",
        },
        "body": zlib.decompress(bytes(record["body"])).decode("utf-8", "surrogatepass"),
        "isBase64Encoded": bool(record.get("base64")),
    }


def decide(record: Mapping[str, Any] | None, print_: str, key: str) -> Decision:
    if record is None:
        return Execute()
    if record.get("fingerprint") != print_:
        return Refuse(
            errors.ConflictError(
                f"Idempotency-Key {key!r} was already used for a different request: "
                "use a new key for each distinct request"
            )
        )
    if record.get("state") == "done" and record.get("body") is not None:
        return Replay(_replayed(record))
    if record.get("state") == "done":
        return Execute()  # its answer was too large to keep: run again (a resent bulk replays)
    return Refuse(
        errors.RequestInProgressError(
            f"a request with Idempotency-Key {key!r} is still being carried out: retry in a few seconds"
        ),
        retry_after=2,
    )


def error_response(exc: errors.GeoBatchError, retry_after: int | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return {"statusCode": exc.status, "headers": headers, "body": json.dumps(exc.to_body())}


def run_once(event: Mapping[str, Any], resolve: Resolve) -> dict[str, Any]:
    """``resolve()`` the request, at most once per Idempotency-Key (see the module docstring)."""
    key = _header(event, HEADER)
    if key is None or str(event.get("httpMethod", "")).upper() not in WRITE_METHODS:
        return resolve()
    if not _KEY.match(key):
        return error_response(
            errors.BadRequestError(
                f"Idempotency-Key must be 1-{limits.IDEMPOTENCY_KEY_CHARS} printable ASCII characters "
                "without spaces (e.g. a UUID)"
            )
        )
    try:
        scope = hashlib.sha256(identity.principal_of_event(event).encode()).hexdigest()[:32]
    except errors.GeoBatchError:
        return resolve()  # unsigned: the route answers 403 itself
    print_ = fingerprint(event)
    jobs = context.services().jobs
    clock = context.services().clock
    try:
        record = jobs.claim_request(
            scope,
            key,
            print_,
            now_s=int(clock().timestamp()),
            lease_s=limits.IDEMPOTENCY_LEASE_SECONDS,
            ttl_s=limits.IDEMPOTENCY_KEY_SECONDS,
        )
    except errors.GeoBatchError as exc:
        return error_response(exc)  # nothing ran: the SDK retries 503 with the same key
    decision = decide(record, print_, key)
    if isinstance(decision, Replay):
        return decision.response
    if isinstance(decision, Refuse):
        return error_response(decision.error, decision.retry_after)
    response = resolve()
    stored = _stored(response)
    try:
        if stored is None:
            jobs.release_request(scope, key)
        else:
            jobs.complete_request(scope, key, print_, stored)
    except errors.GeoBatchError as exc:
        # The request ran: answer it. A retry finds the key pending until the lease ends, then runs
        # again, which every write tolerates.
        logger.warning("idempotency record not updated", extra={"error": exc.message})
    return response
