"""The scaler on moto: workers up to min(concurrency, outstanding), and one completion event per run."""

from __future__ import annotations

import uuid

import pytest

from geobatch.wire.models import JobBulkCreate
from geobatch_core.adapters.events import LogPublisher
from geobatch_core.services import jobs, scaling
from geobatch_worker.loop import Worker, WorkerConfig
from tests.core.helpers import ALICE, ready_function

pytestmark = pytest.mark.moto

SOURCE = """
def noop(x):
    return x
"""


class CountingExecutor:
    """Records what the scaler asks for; the real executors are tested on their own."""

    def __init__(self):
        self.started = 0

    def register(self, function):
        return {}

    def running_workers(self, function):
        return self.started

    def worker_states(self, function):
        return {"RUNNING": self.started}

    def start_workers(self, function, count):
        self.started += count

    def stop_workers(self, function):
        self.started = 0

    def release(self, function):
        pass


def test_workers_never_exceed_concurrency_and_completion_is_announced_once(moto_services):
    svc = moto_services
    function = ready_function(svc, SOURCE, "noop", maximum_concurrency=3)
    svc.executor = CountingExecutor()
    svc.events = LogPublisher()
    bulk = JobBulkCreate(function_id=function.id, bulk_args=[[i] for i in range(12)], reference_id="r1")
    jobs.submit_jobs(svc, ALICE, bulk)
    function = svc.functions.get(function.id)
    assert function.active is True
    assert scaling.scale_function(svc, function) == 3
    assert scaling.scale_function(svc, function) == 0  # already at maximum_concurrency
    assert svc.executor.started == 3
    assert svc.events.published == []  # work outstanding: nothing to announce

    Worker.for_services(
        WorkerConfig(function.id, function.queue_url, "w", idle_seconds=0.5, poll_seconds=0), svc
    ).run()
    scaling.scale_function(svc, svc.functions.get(function.id))
    scaling.scale_function(svc, svc.functions.get(function.id))
    assert len(svc.events.published) == 1
    detail_type, detail = svc.events.published[0]
    assert detail_type == scaling.COMPLETED
    assert detail["function_id"] == function.id and detail["job_statistics"]["success"] == 12

    # A new batch starts a new busy period, announced again when it is done.
    bulk = JobBulkCreate(function_id=function.id, bulk_args=[[1]], reference_id=str(uuid.uuid4()))
    jobs.submit_jobs(svc, ALICE, bulk)
    assert svc.functions.get(function.id).active is True


def test_overlapping_scaler_passes_never_exceed_maximum_concurrency(api):
    """Two scaler invocations at once (a submit's and the schedule's): the second one runs while the
    first is between counting the running workers and starting the missing ones, the worst moment.
    Without the lease both would see 0 running and start 3 each."""
    from geobatch_ops import scaler
    from tests.conftest import FakeLambdaContext

    svc = api.services
    function = ready_function(svc, SOURCE, "noop", maximum_concurrency=3)
    executor = CountingExecutor()
    svc.executor = executor
    bulk = JobBulkCreate(function_id=function.id, bulk_args=[[i] for i in range(12)], reference_id="r1")
    jobs.submit_jobs(svc, ALICE, bulk)
    counted = executor.running_workers
    overlapped = []

    def running_workers(fn):
        running = counted(fn)
        if not overlapped:
            overlapped.append(scaler.handler({"function_id": fn.id}, FakeLambdaContext()))
        return running

    executor.running_workers = running_workers  # type: ignore[method-assign]
    first = scaler.handler({"function_id": function.id}, FakeLambdaContext())
    assert overlapped == [{"started": {}, "dead_letters": 0}]  # the overlapping pass kept out
    assert first["started"] == {function.id: 3}
    assert executor.started == 3
    # The lease is released: the next pass scales again (nothing missing now).
    assert scaler.handler({"function_id": function.id}, FakeLambdaContext())["started"] == {function.id: 0}


class BrokenFor(CountingExecutor):
    """Counts workers per Function; starting them fails for one (its environment is gone, as a
    local image's can be)."""

    def __init__(self, broken_id):
        super().__init__()
        self.broken_id = broken_id
        self.by_function: dict[str, int] = {}

    def running_workers(self, function):
        return self.by_function.get(function.id, 0)

    def start_workers(self, function, count):
        if function.id == self.broken_id:
            raise FileNotFoundError("no such file or directory: .../envs/gone/bin/python")
        self.by_function[function.id] = self.running_workers(function) + count


def test_one_functions_failure_does_not_starve_the_others(moto_services):
    from geobatch_ops import scaler

    svc = moto_services
    svc.events = LogPublisher()
    broken = ready_function(svc, SOURCE, "noop", maximum_concurrency=2)
    healthy = ready_function(svc, SOURCE, "noop", maximum_concurrency=2)
    for function in (broken, healthy):
        bulk = JobBulkCreate(function_id=function.id, bulk_args=[[1], [2]], reference_id="r")
        jobs.submit_jobs(svc, ALICE, bulk)
    svc.executor = BrokenFor(broken.id)
    report = scaler.run_pass(svc)
    assert report.started.get(healthy.id) == 2  # scaled whichever came first in the pass
    assert list(report.failed) == [broken.id] and "FileNotFoundError" in report.failed[broken.id]
