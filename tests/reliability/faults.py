"""Fault-injecting wrappers around the REAL (moto-backed) ports, for the reliability suite.

Each wrapper forwards to the real adapter and, at a seeded rate, fails the call *before* it reaches
AWS the way the adapters report AWS failures (``ThrottledError`` / ``ServiceError``), or answers a
claim's conditional write as if another writer had won. A per-worker ``KillSwitch`` turns every
later call of that worker into ``WorkerKilled``, which is how a SIGKILL looks from the outside: the
worker's cleanup (returning messages, extending leases, acks) never reaches the queue.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geobatch.wire import errors
from geobatch.wire.models import JobStatus
from geobatch_core.records import JobRecord


class WorkerKilled(BaseException):
    """The simulated worker container is gone: nothing it does any more reaches AWS."""


class KillSwitch:
    """Kills (every later call raises) or pauses (every call waits) one worker's AWS calls.

    A pause is how ``kill -STOP`` looks from AWS: each of the worker's threads stops at its next
    call (claims, records, lease extensions, acks), while its user-code child runs on as a real
    process does when only the worker's own pid is stopped."""

    def __init__(self) -> None:
        self.dead = False
        self._running = threading.Event()
        self._running.set()

    def kill(self) -> None:
        self.dead = True
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        self._running.wait()
        if self.dead:
            raise WorkerKilled()


@dataclass
class FaultPlan:
    """What to break, how often, and a tally of what was broken (seeded: a run can be replayed)."""

    seed: int
    throttle_rate: float = 0.0  # ThrottledError before a store/queue call
    service_error_rate: float = 0.0  # ServiceError before a store/queue call
    claim_conflict_rate: float = 0.0  # a claim's conditional write answers "condition failed"
    kinds: dict[str, str] = field(default_factory=dict)  # job_key -> kind, for the kill triggers
    killed_once: set[str] = field(default_factory=set)
    resumed_unclaimed: set[str] = field(default_factory=set)  # stop_mid jobs nobody took over
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.injected[what] += n

    def maybe_fail(self, where: str) -> None:
        with self.lock:
            roll = self.rng.random()
        if roll < self.throttle_rate:
            self.count(f"throttled: {where}")
            raise errors.ThrottledError(f"injected: {where} throttled")
        if roll < self.throttle_rate + self.service_error_rate:
            self.count(f"service error: {where}")
            raise errors.ServiceError(f"injected: {where} failed")

    def roll(self, rate: float) -> bool:
        with self.lock:
            return self.rng.random() < rate

    def first_time(self, job_key: str) -> bool:
        """True once per job: the kill triggers fire on the first attempt only (unless 'always')."""
        with self.lock:
            if job_key in self.killed_once:
                return False
            self.killed_once.add(job_key)
            return True


class _Wrapper:
    def __init__(
        self, wrapped: Any, plan: FaultPlan, switch: KillSwitch | None, name: str, *, faults: bool = True
    ):
        self._faults = faults
        self._wrapped = wrapped
        self._plan = plan
        self._switch = switch or KillSwitch()
        self._name = name

    def _call(self, method: str, *args: Any, inject: bool = True, **kwargs: Any) -> Any:
        self._switch.check()
        if inject and self._faults:
            self._plan.maybe_fail(f"{self._name}.{method}")
        return getattr(self._wrapped, method)(*args, **kwargs)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        return lambda *a, **k: self._call(method, *a, **k)


class FaultyJobStore(_Wrapper):
    """``faults=False``: only the write serialisation (for the API side racing the workers)."""

    def __init__(
        self, wrapped: Any, plan: FaultPlan, switch: KillSwitch | None = None, *, faults: bool = True
    ):
        super().__init__(wrapped, plan, switch, "jobs", faults=faults)

    def transition(self, function_id: str, job_key: str, **kw: Any) -> Any:
        self._switch.check()
        changes: Mapping[str, Any] = kw["changes"]
        kind = self._plan.kinds.get(job_key, "")
        if (
            kind == "die_done"
            and changes.get("status") == JobStatus.SUCCESS.value
            and self._plan.first_time(job_key)
        ):
            # Killed after the result and log are in S3, before the job is marked done.
            self._plan.count("worker killed before marking success")
            self._switch.kill()
            raise WorkerKilled()
        if self._faults:
            self._plan.maybe_fail("jobs.transition")
        if (
            self._faults
            and changes.get("status") == JobStatus.RUNNING.value
            and self._plan.roll(self._plan.claim_conflict_rate)
        ):
            self._plan.count("conditional check failed: claim")
            return None
        return self._wrapped.transition(function_id, job_key, **kw)


class Serialized:
    """One call at a time into a moto-backed store.

    moto's in-process DynamoDB is not thread-safe: a conditional UpdateItem is not atomic (two threads
    can both pass the same condition) and a read can iterate an item while another thread changes it.
    DynamoDB does neither, so the suite serialises its calls to get DynamoDB's semantics, and what it
    finds are GeoBatch's races, not moto's."""

    def __init__(self, wrapped: Any, lock: threading.Lock):
        self._wrapped = wrapped
        self._lock = lock

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self._wrapped, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return target(*args, **kwargs)

        return call


class SerializedQueue(Serialized):
    """One call at a time into moto's in-process SQS, which is not thread-safe either: a receive
    iterates the queue's set of in-flight messages while another thread's receive or delete changes
    it ("Set changed size during iteration", seen in the fault mix). SQS answers each call
    atomically, so serialising calls keeps its semantics. A long poll is not held under the lock (it
    would stall every other worker's deletes): it is short polls, outside the lock between them,
    until a message is there or the wait is over, as SQS's long poll answers."""

    def receive(self, queue_url: str, *, wait_seconds: int, **kwargs: Any) -> Any:
        deadline = time.monotonic() + wait_seconds
        while True:
            with self._lock:
                got = self._wrapped.receive(queue_url, wait_seconds=0, **kwargs)
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(0.05)


class FaultyQueue(_Wrapper):
    def __init__(self, wrapped: Any, plan: FaultPlan, switch: KillSwitch | None = None):
        super().__init__(wrapped, plan, switch, "queue")


class FaultyBlobStore(_Wrapper):
    def __init__(self, wrapped: Any, plan: FaultPlan, switch: KillSwitch | None = None):
        super().__init__(wrapped, plan, switch, "blobs")


class FaultyFunctionStore(_Wrapper):
    def __init__(self, wrapped: Any, plan: FaultPlan, switch: KillSwitch | None = None):
        super().__init__(wrapped, plan, switch, "functions")


class HalfWritingJobStore(_Wrapper):
    """The API Lambda times out after writing the first ``written`` jobs of a bulk submission."""

    def __init__(self, wrapped: Any, plan: FaultPlan, written: int):
        super().__init__(wrapped, plan, None, "jobs")
        self._written = written

    def put_new_batch(self, jobs: Sequence[JobRecord], *, check_existing: bool = True) -> list[str]:
        self._wrapped.put_new_batch(jobs[: self._written], check_existing=check_existing)
        self._plan.count("API timed out after writing part of a bulk submission")
        raise errors.ServiceError("injected: Lambda timed out mid-submission")


class HalfSendingQueue(_Wrapper):
    """The API Lambda times out after sending the first batch of a submission's messages."""

    def __init__(self, wrapped: Any, plan: FaultPlan):
        super().__init__(wrapped, plan, None, "queue")

    def send_batch(self, queue_url: str, bodies: Any, *, delay_seconds: int = 0) -> None:
        self._wrapped.send_batch(queue_url, bodies[:10], delay_seconds=delay_seconds)
        self._plan.count("API timed out after sending part of a submission's messages")
        raise errors.ServiceError("injected: Lambda timed out mid-send")
