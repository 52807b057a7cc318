"""What a local-mode daemon does at start with what its predecessor left: the scaling lease it held
is released, and a build it was running is started again (no thread is left to end it).

The daemon's own step (``LocalStack._recover_after_restart``) over the in-memory stores; the builder
records what it is asked to build (the local builder itself is tested in test_local_builder.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fakes import FakeBlobStore, FakeFunctionStore, FakeJobStore, FakeQueue
from geobatch.local.stack import LocalOptions, LocalStack
from geobatch_core.records import FunctionRecord
from geobatch_core.services.lease import LEASE_ATTRIBUTE
from tests.support import ALICE, compose_stores

pytestmark = pytest.mark.unit


class RecordingBuilder:
    def __init__(self) -> None:
        self.started: list[tuple[FunctionRecord, str, str]] = []

    def start_build(self, function: FunctionRecord, *, bundle_key: str, image_hash: str) -> Mapping[str, Any]:
        self.started.append((function, bundle_key, image_hash))
        return {}

    def image_uri(self, image_hash: str) -> str:
        return f"local://{image_hash}"

    def existing_image(self, image_hash: str) -> str | None:
        return None


def test_a_restarted_daemon_releases_the_old_lease_and_resumes_the_build(tmp_path: Path) -> None:
    functions = FakeFunctionStore()
    for function_id, status, image_hash in (("b1", "building", "h1"), ("r1", "ready", None)):
        functions.put_new(
            FunctionRecord(
                id=function_id,
                owner=ALICE,
                status=status,
                bundle_key=f"bundles/{function_id}.zip",
                image_hash=image_hash,
            )
        )
        functions.update(function_id, {LEASE_ATTRIBUTE: "9999999999:old-daemon"})
    functions.put_new(FunctionRecord(id="b2", owner=ALICE, status="building"))  # its build never began
    builder = RecordingBuilder()
    stack = LocalStack(LocalOptions(home=tmp_path))
    stack.services = compose_stores(functions, FakeJobStore(), FakeQueue(), FakeBlobStore(), builder=builder)

    stack._recover_after_restart()

    for function_id in ("b1", "r1"):
        assert functions.get(function_id).scaling_lease is None, function_id
    ((function, bundle_key, image_hash),) = builder.started
    assert (function.id, bundle_key, image_hash) == ("b1", "bundles/b1.zip", "h1")
