"""Benchmark: AWS requests and control-plane cost per job, success path, submission to fetched result.

Run from the repo root: ``.venv/bin/python benchmarks/requests_per_job.py [--jobs 1000]``.

Against moto in-process (``mock_aws``), every AWS request the service makes is counted by service
and operation with a botocore ``before-call`` hook on the boto3 session all stores share:

1. submit — ``services.jobs.submit_jobs`` once per 1,000 jobs (what one ``POST /jobs/bulk`` does);
2. run — the real ``Worker`` (``geobatch_worker.loop``) in this process until the queue is drained
   (a no-op function returning a small value), heartbeats, Function checks and its job metrics
   (CloudWatch PutMetricData, one per worker-minute with ended jobs and one at exit) included;
3. wait — one ``wait_for_completion`` poll (``get_function(statistics=True)``), the one that sees
   the run is done;
4. fetch — the results the way ``Function.iter_results`` gets them: ``list_jobs`` pages of
   ``DEFAULT_PAGE_SIZE`` with ``status == success`` and ``include=result``.

DynamoDB request units are computed from item sizes (``dynamo_size.py``, AWS's rules) on a shadow
copy of each item's size, since moto does not report consumed capacity. Prices: ``prices.py``.
The naive design (one PutItem, SendMessage, S3 PUT each for result and log, a status index,
one API call per job) is a model, printed beside it; it publishes no job metrics (as before they
were counted here: a PutMetricData per job would add $10 per million jobs to it). The tables, the
cost model and the naive design are in ``requests_report.py``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import _common
from _common import ALICE, sized
from aws_meter import Meter
from requests_report import Run, live_log_bound, print_costs, print_requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=sized(1000, 20))
    args = parser.parse_args()
    _common.aws_test_env()
    run = measure(args.jobs)
    aws_total, everything = print_requests(run)
    print_costs(run, aws_total, everything)
    live_log_bound()


def measure(n: int) -> Run:
    """The four phases against moto in-process, every AWS request counted by ``Meter``."""
    import boto3
    from moto import mock_aws

    from geobatch.wire.models import JobStatus
    from geobatch_core import wiring
    from geobatch_core.adapters.environment import provisioned_stores
    from geobatch_core.services import functions as function_service
    from geobatch_core.services.context import Settings
    from geobatch_worker.metrics import JobMetrics, cloudwatch_client

    meter = Meter()
    scaler_invocations = 0
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        meter.register(session)
        stores = provisioned_stores(session)

        def on_submit(_fid: str) -> None:
            nonlocal scaler_invocations
            scaler_invocations += 1  # an async Lambda invoke of the scaler (not an AWS call we make here)

        svc = wiring.compose(
            stores,
            executor=None,  # type: ignore[arg-type]
            builder=None,  # type: ignore[arg-type]
            settings=Settings(queue_prefix="bench"),
            on_submit=on_submit,
        )
        fn = _common.ready_function(svc)

        meter.phase = "submit"
        submit(meter, svc, fn.id, n)

        meter.phase = "run"
        worker = _common.bench_worker(svc, fn, metrics=JobMetrics(cloudwatch_client(session)))
        t0 = time.perf_counter()
        stats = worker.run()
        run_seconds = time.perf_counter() - t0

        meter.phase = "wait"
        done = meter.api_call("wait", function_service.get_function, svc, ALICE, fn.id, statistics=True)
        assert done.job_statistics[JobStatus.SUCCESS.value] == n, done.job_statistics

        meter.phase = "fetch"
        fetched = fetch_results(meter, svc, fn.id)
        assert fetched == n, fetched
    return Run(n, meter, scaler_invocations, run_seconds, stats.claimed)


def submit(meter: Meter, svc: Any, function_id: str, n: int) -> None:
    """One ``POST /jobs/bulk`` per 1,000 jobs."""
    from geobatch.wire import limits
    from geobatch.wire.models import JobBulkCreate
    from geobatch_core.services import jobs as job_service

    for start in range(0, n, limits.MAX_JOBS_PER_REQUEST):
        bulk = JobBulkCreate(
            function_id=function_id,
            bulk_args=[[i] for i in range(start, min(n, start + 1000))],
            reference_id=uuid.uuid4().hex,
        )
        meter.api_call("submit", job_service.submit_jobs, svc, ALICE, bulk)


def fetch_results(meter: Meter, svc: Any, function_id: str) -> int:
    """The results the way ``Function.iter_results`` gets them; how many came."""
    import geobatch as gb
    from geobatch.job import Job
    from geobatch.search import JobSearch  # noqa: F401
    from geobatch.wire.models import JobStatus
    from geobatch_core.services import jobs as job_service

    client = gb.Client("http://127.0.0.1:9")
    search = (
        Job.search(client)
        .param(function_id=function_id)
        .filter(Job.status == JobStatus.SUCCESS)
        .param(include="result")
    )
    params = search.query_params()
    fetched = 0
    cursor = None
    while True:
        page = meter.api_call(
            "fetch",
            job_service.list_jobs,
            svc,
            ALICE,
            function_id=function_id if cursor is None else None,
            filter_json=params.get("filter") if cursor is None else None,
            page_size=int(params["page_size"]),
            cursor=cursor,
            include_result=True,
        )
        fetched += sum(1 for j in page.data if j.result is not None)
        cursor = page.meta.page_cursor
        if not cursor:
            return fetched


if __name__ == "__main__":
    main()
