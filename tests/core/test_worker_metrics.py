"""The worker publishes the job metrics the dashboard plots: one EMF record per ended job."""

from __future__ import annotations

import json
import uuid

import pytest

from geobatch.wire.models import JobBulkCreate
from geobatch_core import layout
from geobatch_core.services import jobs
from geobatch_worker.loop import Worker, WorkerConfig
from tests.core.helpers import ALICE, ready_function

pytestmark = pytest.mark.moto

SOURCE = """
def work(x):
    if x == "boom":
        raise ValueError("boom")
    return x
"""


def emf_records(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def run_jobs(svc, args: list, source: str = SOURCE, name: str = "work", **settings) -> dict:
    function = ready_function(svc, source, name, **settings)
    bulk = JobBulkCreate(
        function_id=function["id"], bulk_args=[[a] for a in args], reference_id=uuid.uuid4().hex
    )
    jobs.submit_jobs(svc, ALICE, bulk)
    config = WorkerConfig(
        function_id=function["id"],
        queue_url=function["queue_url"],
        worker_id="w-1",
        poll_seconds=0,
        idle_seconds=1.5,
    )
    Worker.for_services(config, svc).run()
    return function


def test_each_ended_job_leaves_one_emf_record_with_its_function_id(moto_services, capsys) -> None:
    function = run_jobs(moto_services, ["a", "boom"], retry_count=1, timeout=20)
    records = [r for r in emf_records(capsys.readouterr().out) if r.get("function_id") == function["id"]]
    # "boom" failed twice (one retry): a retried attempt is not an ended job, so two records, not three.
    assert len(records) == 2
    by_metric = {next(k for k in layout.JOB_ENDED_METRICS.values() if k in r): r for r in records}
    assert set(by_metric) == {"JobsSucceeded", "JobsFailed"}
    for name, record in by_metric.items():
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == layout.WORKER_METRICS_NAMESPACE
        assert directive["Dimensions"] == [["function_id"]]
        assert {m["Name"] for m in directive["Metrics"]} == {name, layout.JOB_DURATION_METRIC}
        assert record[name] == 1 and record[layout.JOB_DURATION_METRIC] >= 0
        assert isinstance(record["_aws"]["Timestamp"], int)


def test_a_timed_out_job_is_counted_as_timed_out(moto_services, capsys) -> None:
    slow = "def slow(x):\n    import time\n    time.sleep(30)\n"
    function = run_jobs(moto_services, [1], slow, "slow", timeout=1)
    (record,) = [r for r in emf_records(capsys.readouterr().out) if r.get("function_id") == function["id"]]
    assert record["JobsTimedOut"] == 1 and record[layout.JOB_DURATION_METRIC] >= 1
