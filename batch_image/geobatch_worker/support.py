"""What the worker loop leans on: retries of transient AWS errors, unpacking the code bundle, and
reading the attributes every saved Function or job has."""

from __future__ import annotations

import io
import logging
import random
import time
import zipfile
from pathlib import Path
from typing import Any, TypeVar

from geobatch.wire import errors

log = logging.getLogger("geobatch.worker")

# What AWS answers now and then even after boto's own retries (and what an unreachable endpoint
# becomes): the worker retries these itself and, failing that, leaves the message to come back
# (never dies of them, never loses a job to them).
TRANSIENT = (errors.ThrottledError, errors.ServiceError)
TRANSIENT_TRIES = 5

T = TypeVar("T")


def retry(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call`` with up to TRANSIENT_TRIES tries on throttling/service errors (jittered backoff)."""
    delay = 0.1
    for attempt in range(1, TRANSIENT_TRIES + 1):
        try:
            return call(*args, **kwargs)
        except TRANSIENT as exc:
            if attempt == TRANSIENT_TRIES:
                raise
            log.warning("%s (try %d of %d); retrying", exc.message, attempt, TRANSIENT_TRIES)
            # Jitter, not cryptography.
            time.sleep(delay * random.uniform(1.0, 2.0))  # nosec B311
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def unpack_bundle(data: bytes, target: Path) -> str:
    """Extract a code bundle into ``target``, refusing paths that would land outside it."""
    target.mkdir()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            path = (target / info.filename).resolve()
            if not str(path).startswith(str(target.resolve())):
                raise errors.BadRequestError(f"unsafe path in bundle: {info.filename}")
        archive.extractall(target)
    return str(target)


def required(value: T | None, name: str) -> T:
    """A record's attribute that every saved item has (``services.functions.create_function`` and
    ``services.submission`` write it); ``KeyError`` naming it, as reading the item did, if absent."""
    if value is None:
        raise KeyError(name)
    return value
