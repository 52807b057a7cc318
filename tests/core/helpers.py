"""Test helpers: bundles and ready Functions on moto, built through the real services."""

from __future__ import annotations

import io
import textwrap
import time
import zipfile
from typing import Any

from geobatch.wire.models import FunctionCreate, FunctionStatus
from geobatch_core.services import functions
from geobatch_core.services.context import Services

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def bundle(source: str, name: str = "main") -> bytes:
    """A code bundle as the SDK makes it: the function's source plus ``main = name``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("__gbentry__.py", textwrap.dedent(source) + f"\n\nmain = {name}\n")
    return buf.getvalue()


def wait_status(
    svc: Services, function_id: str, *wanted: FunctionStatus, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = svc.functions.get(function_id)
        if item["status"] in {w.value for w in wanted}:
            return item
        time.sleep(0.05)
    raise AssertionError(f"Function {function_id} never reached {wanted}: {item['status']}")


def ready_function(
    svc: Services, source: str, name: str, principal: str = ALICE, **settings: Any
) -> dict[str, Any]:
    created = functions.create_function(svc, principal, FunctionCreate(name=name, **settings))
    function_id = created.function.id
    svc.blobs.put(f"bundles/{function_id}.zip", bundle(source, name))
    functions.bundle_uploaded(svc, principal, function_id)
    return wait_status(svc, function_id, FunctionStatus.READY)
