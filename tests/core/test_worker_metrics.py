"""The worker publishes the job metrics the dashboard plots: PutMetricData into moto's CloudWatch.

What the dashboard searches is checked against ``layout`` in tests/infra/test_alarm_namespaces.py;
these tests check that what the worker publishes is that: the names, the namespace, the one
dimension, statistic sets of the right values.
"""

from __future__ import annotations

import json
import logging
import signal
import uuid
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from geobatch.wire.models import JobBulkCreate
from geobatch_core import layout
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services import jobs
from geobatch_worker.loop import Worker, WorkerConfig
from geobatch_worker.metrics import JobMetrics, cloudwatch_client
from tests.conftest import REGION
from tests.core.helpers import ALICE, ready_function
from tests.support import worker_metric

pytestmark = pytest.mark.moto

SOURCE = """
def work(x):
    if x == "boom":
        raise ValueError("boom")
    return x
"""
NAMESPACE = layout.WORKER_METRICS_NAMESPACE


def submit(svc: Any, args: list, source: str = SOURCE, name: str = "work", **settings: Any) -> FunctionRecord:
    function = ready_function(svc, source, name, **settings)
    bulk = JobBulkCreate(
        function_id=function.id, bulk_args=[[a] for a in args], reference_id=uuid.uuid4().hex
    )
    jobs.submit_jobs(svc, ALICE, bulk)
    return function


def worker(svc: Any, function: FunctionRecord, metrics: JobMetrics) -> Worker:
    config = WorkerConfig(
        function_id=function.id,
        queue_url=function.queue_url,
        worker_id="w-1",
        poll_seconds=0,
        idle_seconds=1.5,
    )
    return Worker.for_services(config, svc, metrics=metrics)


def statistics(cloudwatch: Any, function_id: str, metric: str) -> dict[str, float]:
    """The metric's statistics over the last hour, as the dashboard's SEARCH would read them."""
    points = worker_metric(cloudwatch, function_id, metric, "SampleCount", "Sum", "Minimum", "Maximum")
    assert len(points) == 1, points
    return {k: points[0][k] for k in ("SampleCount", "Sum", "Minimum", "Maximum")}


def job_records(svc: Any, function_id: str) -> list[JobRecord]:
    records, _ = svc.jobs.query(function_id, start=None, limit=100, newest_first=False, consistent=True)
    return records


def job_runtimes(svc: Any, function_id: str) -> list[float]:
    """The last runtime of each of the Function's jobs that ended (what the job records)."""
    ended = ("success", "failure", "timeout")
    return [float(j.runtime) for j in job_records(svc, function_id) if j.status in ended]


def published(cloudwatch: Any) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    metrics = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    return {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics}


@pytest.fixture
def cloudwatch(moto_services: Any) -> Any:
    """moto's CloudWatch, through the client the worker makes (inside the fixture's mock_aws)."""
    return cloudwatch_client(boto3.session.Session(region_name=REGION))


def test_ended_jobs_are_published_per_function_with_their_statistics(moto_services, cloudwatch) -> None:
    svc = moto_services
    function = submit(svc, ["a", "b", "boom"], retry_count=1, timeout=20)
    metrics = JobMetrics(cloudwatch)
    worker(svc, function, metrics).run()
    fid = function.id
    dimension = ((layout.WORKER_METRICS_DIMENSION, fid),)
    assert published(cloudwatch) == {
        ("JobsSucceeded", dimension),
        ("JobsFailed", dimension),
        ("JobDuration", dimension),
    }
    assert {name for name, _ in published(cloudwatch)} <= set(layout.worker_metric_names())
    # "boom" failed twice (one retry): a retried attempt is not an ended job, so one failure.
    assert statistics(cloudwatch, fid, "JobsSucceeded") == {
        "SampleCount": 2,
        "Sum": 2,
        "Minimum": 1,
        "Maximum": 1,
    }
    assert statistics(cloudwatch, fid, "JobsFailed") == {
        "SampleCount": 1,
        "Sum": 1,
        "Minimum": 1,
        "Maximum": 1,
    }
    duration = statistics(cloudwatch, fid, "JobDuration")
    runtimes = job_runtimes(svc, fid)  # each ended job's last runtime, as the job records it
    assert duration["SampleCount"] == 3
    assert duration["Sum"] == pytest.approx(sum(runtimes), abs=0.01)
    assert duration["Minimum"] == pytest.approx(min(runtimes), abs=0.01)
    assert duration["Maximum"] == pytest.approx(max(runtimes), abs=0.01)
    assert metrics.dropped == 0


def test_a_timed_out_job_is_counted_as_timed_out(moto_services, cloudwatch) -> None:
    slow = "def slow(x):\n    import time\n    time.sleep(30)\n"
    function = submit(moto_services, [1], slow, "slow", timeout=1)
    worker(moto_services, function, JobMetrics(cloudwatch)).run()
    assert statistics(cloudwatch, function.id, "JobsTimedOut")["Sum"] == 1
    assert statistics(cloudwatch, function.id, "JobDuration")["Minimum"] >= 1


def test_a_minute_of_jobs_is_one_request_of_statistic_sets(cloudwatch) -> None:
    metrics = JobMetrics(cloudwatch)  # not started: flushed by hand, as the thread does every minute
    for i in range(200):
        metrics.record("f1", "success" if i % 4 else "failure", runtime=i / 10)
    metrics.record("f1", "canceled", runtime=1.0)  # not a measure of the work: not counted
    assert metrics.flush() == 3  # JobsSucceeded, JobsFailed, JobDuration
    assert metrics.requests == 1
    assert metrics.flush() == 0 and metrics.requests == 1  # nothing new: no request
    assert statistics(cloudwatch, "f1", "JobsSucceeded")["Sum"] == 150
    assert statistics(cloudwatch, "f1", "JobsFailed")["SampleCount"] == 50
    duration = statistics(cloudwatch, "f1", "JobDuration")
    assert duration == {"SampleCount": 200, "Sum": pytest.approx(1990.0), "Minimum": 0.0, "Maximum": 19.9}


def test_the_publishing_thread_and_the_last_flush_send_each_job_once(cloudwatch) -> None:
    metrics = JobMetrics(cloudwatch, interval=0.001)  # flushes as often as it can while jobs end
    metrics.start()
    for _ in range(300):
        metrics.record("f2", "success", runtime=0.5)
    metrics.close()
    assert statistics(cloudwatch, "f2", "JobsSucceeded")["Sum"] == 300  # none lost, none doubled
    assert statistics(cloudwatch, "f2", "JobDuration")["Sum"] == pytest.approx(150.0)
    assert metrics.dropped == 0


def test_sigterm_publishes_the_jobs_that_ended_before_the_worker_exits(moto_services, cloudwatch) -> None:
    """The job "stop" sends the worker its SIGTERM (as AWS Batch does when it stops a container):
    the worker finishes that job, hands the rest back and publishes what ended on its way out."""
    svc = moto_services
    stopper = (
        "def work(x):\n"
        "    import os, signal\n"
        "    if x == 'stop':\n"
        "        os.kill(os.getppid(), signal.SIGTERM)\n"
        "    return x\n"
    )
    function = submit(svc, ["stop", "b", "c", "d", "e", "f"], stopper)
    w = worker(svc, function, JobMetrics(cloudwatch))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        w.install_signal_handlers()  # the real handler, in the main thread, as the container runs it
        w.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    records = {json.loads(j.payload)["args"][0]: j for j in job_records(svc, function.id)}
    ended = [j for j in records.values() if j.status == "success"]
    assert {j.status for j in records.values()} <= {"success", "pending"}
    # "stop" ended, and no job started after it: the worker stopped on its signal.
    assert records["stop"].status == "success"
    assert max(ended, key=lambda j: j.last_execution_date) is records["stop"]
    assert statistics(cloudwatch, function.id, "JobsSucceeded")["Sum"] == len(ended)


def refusing(client: Any, code: str, status: int, times: int) -> Stubber:
    """CloudWatch answering ``code`` to the next ``times`` PutMetricData requests."""
    stubber = Stubber(client)
    for _ in range(times):
        stubber.add_client_error("put_metric_data", service_error_code=code, http_status_code=status)
    stubber.activate()
    return stubber


@pytest.mark.parametrize(("code", "status", "tries"), [("Throttling", 400, 3), ("AccessDenied", 403, 1)])
def test_a_refusing_cloudwatch_is_tried_a_bounded_number_of_times_then_dropped(
    cloudwatch, caplog, code, status, tries
) -> None:
    stubber = refusing(cloudwatch, code, status, tries)
    metrics = JobMetrics(cloudwatch, backoff_seconds=0.001)
    metrics.record("f3", "success", runtime=1.0)
    with caplog.at_level(logging.WARNING, logger="geobatch.worker"):
        assert metrics.flush() == 0
    stubber.assert_no_pending_responses()  # retried while worth it, and no more
    assert metrics.requests == tries and metrics.dropped == 2
    assert "dropped 2 data points" in caplog.text


def test_an_unreachable_cloudwatch_fails_no_job(moto_services, caplog) -> None:
    svc = moto_services
    function = submit(svc, ["a", "b", "boom"], retry_count=0)
    unreachable = boto3.session.Session(region_name=REGION).client(
        "cloudwatch", endpoint_url="http://127.0.0.1:9", config=cloudwatch_client_config()
    )
    metrics = JobMetrics(unreachable, backoff_seconds=0.001)
    with caplog.at_level(logging.WARNING, logger="geobatch.worker"):
        stats = worker(svc, function, metrics).run()
    statuses = sorted(j.status for j in job_records(svc, function.id))
    assert statuses == ["failure", "success", "success"]
    assert stats.acked == 3 and stats.retried == 0
    assert metrics.dropped == 3 and metrics.requests == 3  # the exit flush, tried three times
    assert "job metrics: dropped 3 data points" in caplog.text


def cloudwatch_client_config() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
