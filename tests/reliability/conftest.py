"""Fixtures of the reliability suite: core services on moto with short leases and backoffs."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from geobatch_core.services.context import Settings
from tests.reliability.faults import Serialized, SerializedQueue


@pytest.fixture
def fast_services(moto_services: Any) -> Any:
    """moto-backed services whose leases (8 s) and backoffs (≥1 s) let a few hundred jobs with crashes,
    retries and lost workers finish in minutes. Shorter leases lose to a loaded 2-core machine,
    which can starve a heartbeat thread for seconds (5 s did once: a hanging job's worker was
    declared lost before the job's timeout ended it)."""
    moto_services.settings = Settings(queue_prefix="rel", lost_worker_seconds=8, retry_base_seconds=0.5)
    lock = threading.RLock()  # DynamoDB semantics on moto: see faults.Serialized
    moto_services.jobs = Serialized(moto_services.jobs, lock)
    moto_services.functions = Serialized(moto_services.functions, lock)
    moto_services.queue = SerializedQueue(moto_services.queue, threading.Lock())  # see SerializedQueue
    return moto_services


def with_settings(svc: Any, **changes: Any) -> Any:
    """The same ports with other settings (e.g. a queue with a low max receive count)."""
    return dataclasses.replace(svc, settings=dataclasses.replace(svc.settings, **changes))
