"""Benchmark: what the workers' job metrics cost (CloudWatch PutMetricData and custom metrics).

Run from the repo root: ``.venv/bin/python benchmarks/worker_metrics.py [--jobs 300]``.

1. Measured: the real ``Worker`` against moto in-process runs ``--jobs`` jobs that sleep
   ``--job-seconds`` each, with its job metrics flushed every ``--flush-seconds`` (the worker's
   minute, scaled down so the run stays short); every CloudWatch request is counted with a botocore
   ``before-call`` hook, and what moto's CloudWatch then holds is read back (nothing lost or doubled).
2. Model: a worker sends one PutMetricData per minute in which at least one job ended, plus one at
   exit, whatever the number of jobs; per job that is min(1, job seconds / 60). Each Function with
   jobs ending is 4 custom metrics (3 counts + duration, dimension ``function_id``), billed by the
   hour in which they receive data.
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections import Counter
from typing import Any

import _common
from _common import ALICE, sized, table
from prices import AS_READ, price

SOURCE = """
def nap(seconds):
    import time
    time.sleep(seconds)
    return seconds
"""
HOURS_PER_MONTH = 730


def measured(jobs: int, job_seconds: float, flush_seconds: float) -> list[list[Any]]:
    import boto3
    from moto import mock_aws

    from geobatch.wire.models import JobBulkCreate
    from geobatch_core import layout, wiring
    from geobatch_core.adapters.environment import provisioned_stores
    from geobatch_core.services import jobs as job_service
    from geobatch_core.services.context import Settings
    from geobatch_worker.loop import Worker, WorkerConfig
    from geobatch_worker.metrics import JobMetrics, cloudwatch_client
    from tests.support import worker_metric

    requests: Counter[str] = Counter()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        session.events.register("before-call.cloudwatch", lambda model, **_: requests.update([model.name]))
        svc = wiring.compose(
            provisioned_stores(session),
            executor=None,  # type: ignore[arg-type]
            builder=None,  # type: ignore[arg-type]
            settings=Settings(queue_prefix="bench"),
        )
        fn = _common.ready_function(svc, SOURCE, "nap")
        bulk = JobBulkCreate(
            function_id=fn.id, bulk_args=[[job_seconds]] * jobs, reference_id=uuid.uuid4().hex
        )
        job_service.submit_jobs(svc, ALICE, bulk)
        cloudwatch = cloudwatch_client(session)
        metrics = JobMetrics(cloudwatch, interval=flush_seconds)
        config = WorkerConfig(
            function_id=fn.id,
            queue_url=fn.queue_url,
            worker_id="bench",
            idle_seconds=0.0,
            poll_seconds=0,
        )
        t0 = time.perf_counter()
        stats = Worker.for_services(config, svc, metrics=metrics).run()
        seconds = time.perf_counter() - t0
        points = worker_metric(cloudwatch, fn.id, layout.JOB_ENDED_METRICS["success"])
        published = sum(p["Sum"] for p in points)
    put = requests["PutMetricData"]
    windows = math.ceil(seconds / flush_seconds)
    return [
        ["jobs run (acknowledged)", f"{stats.acked:,}"],
        ["worker run time", f"{seconds:.1f} s"],
        [f"flush windows of {flush_seconds:g} s in the run", f"{windows}"],
        ["PutMetricData requests", f"{put}"],
        ["expected: ≤ windows + 1 (the exit flush)", "yes" if put <= windows + 1 else "NO"],
        ["PutMetricData per job", f"{put / max(1, stats.acked):.4f}"],
        ["JobsSucceeded read back from CloudWatch (moto)", f"{published:,.0f}"],
        ["data points dropped", f"{metrics.dropped}"],
    ]


def model() -> list[list[str]]:
    """PutMetricData per job and $ per million jobs by job length (one Function per worker)."""
    per_request = price("cloudwatch_request")
    rows = []
    for seconds in (0.3, 3.2, 30, 60, 300, 900):
        per_job = min(1.0, seconds / 60)
        rows.append(
            [
                f"{seconds:g} s",
                f"{60 / seconds:,.1f}" if seconds < 60 else "≤ 1",
                f"{per_job:.3f}",
                f"{per_job * 1e6 * per_request:,.2f}",
                f"{1e6 * per_request:,.2f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=sized(300, 20))
    parser.add_argument("--job-seconds", type=float, default=0.02)
    parser.add_argument("--flush-seconds", type=float, default=1.0)
    args = parser.parse_args()
    _common.aws_test_env()
    print(
        f"Worker job metrics, measured: {args.jobs} jobs of {args.job_seconds:g} s, flush every "
        f"{args.flush_seconds:g} s (the worker's 60 s, scaled down), real Worker on moto in-process\n"
    )
    print(table(["measure", "value"], measured(args.jobs, args.job_seconds, args.flush_seconds)))
    print(f"\nModel at the worker's 60 s flush, us-east-1 prices as read {AS_READ}:\n")
    print(
        table(
            [
                "job length",
                "jobs per worker-minute",
                "PutMetricData per job",
                "$ / million jobs",
                "one request per job",
            ],
            model(),
        )
    )
    metric_hour = 4 * price("cloudwatch_metric_month") / HOURS_PER_MONTH
    print(
        f"\nPlus one PutMetricData per worker at exit. Custom metrics: 4 per Function with jobs ending (JobsSucceeded,"
        f" JobsFailed, JobsTimedOut, JobDuration; a status no job ended in is not sent, not billed), billed by the"
        f" hour in which they receive data: ${metric_hour:.4f} per Function-hour, ${4 * price('cloudwatch_metric_month'):.2f}"
        " per Function-month of continuous work. Against the ~$6.87 control plane per million jobs"
        " (requests_per_job.py): negligible for short jobs, up to $10 per million jobs of a minute or more"
        " (a minute of a 1 vCPU / 2 GB Fargate task is about $0.0008 at list price, $800 per million)."
    )


if __name__ == "__main__":
    main()
