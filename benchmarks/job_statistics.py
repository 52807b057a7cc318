"""Benchmark: what ``Job.statistics`` costs per job, and how close its figures are.

Run from the repo root: ``.venv/bin/python benchmarks/job_statistics.py``.

The real ``Worker`` runs jobs on moto in-process (``mock_aws``) with the default 5 s sampling;
the blob store is wrapped to count the requests and bytes the series adds. Three tables:

1. cost per job by job length: rows sampled, bytes of the stored object (one S3 PUT per attempt),
   bytes the summary adds to the job item (DynamoDB), $ per million jobs for the PUTs (a job
   shorter than one interval has one row, kept in its summary: no PUT);
2. the sampler's own CPU per row (the /proc reads of one row, the tree walk is the runner's anyway);
3. accuracy: a job holding 300 MB and a busy loop, with the load average of the machine (a busy
   loop gets one core only on an idle machine; its own getrusage figure is printed beside it).
"""

from __future__ import annotations

import json
import os
import time
import timeit
import uuid
from typing import Any

import _common
from _common import ALICE, sized, table
from prices import price

SOURCE = """
def work(kind, seconds):
    import time
    if kind == "sleep":
        time.sleep(seconds)
    elif kind == "memory":
        block = b"\\x01" * (300 * 1024 * 1024)
        time.sleep(seconds)
        return len(block)
    elif kind == "busy":
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    return None
"""
# Job lengths against the 5 s sampling; smoke: one job under one interval (no PUT), one over.
LENGTHS = sized([1.0, 6.0, 16.0], [1.0, 6.0])
ACCURACY_SECONDS = sized(6.0, 1.0)


class CountingBlobs:
    """The blob store, counting puts of statistics objects and their bytes."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.puts: list[tuple[str, int]] = []

    def put(self, key: str, data: bytes, **kwargs: Any) -> Any:
        self.puts.append((key, len(data)))
        return self._inner.put(key, data, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def services() -> Any:
    import boto3

    from geobatch_core.adapters import provision
    from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore
    from geobatch_core.adapters.s3 import S3BlobStore
    from geobatch_core.adapters.s3 import make_client as make_s3_client
    from geobatch_core.adapters.sqs import SqsQueue
    from geobatch_core.services.context import Services, Settings

    session = boto3.session.Session(region_name="us-east-1")
    dynamodb = session.client("dynamodb")
    s3 = make_s3_client(session)
    provision.create_tables(dynamodb, "functions", "jobs")
    provision.create_bucket(s3, "bucket")

    class NoExecutor:
        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    return Services(
        functions=DynamoFunctionStore(dynamodb, "functions"),
        jobs=DynamoJobStore(dynamodb, "jobs"),
        queue=SqsQueue(session.client("sqs")),
        blobs=CountingBlobs(S3BlobStore(s3, "bucket")),
        executor=NoExecutor(),  # type: ignore[arg-type]
        builder=None,  # type: ignore[arg-type]
        settings=Settings(queue_prefix="bench", lost_worker_seconds=30),
    )


def run_jobs(svc: Any, args: list[list[Any]]) -> list[Any]:
    from geobatch.wire.models import JobBulkCreate
    from geobatch_core.services import jobs as job_service
    from geobatch_worker.loop import Worker, WorkerConfig

    fn = _common.ready_function(svc, SOURCE, "work", timeout=120)
    page = job_service.submit_jobs(
        svc, ALICE, JobBulkCreate(function_id=fn.id, bulk_args=args, reference_id=uuid.uuid4().hex)
    )
    config = WorkerConfig(
        function_id=fn.id, queue_url=fn.queue_url, worker_id="bench", idle_seconds=0.0, poll_seconds=0
    )
    Worker.for_services(config, svc).run()
    records = []
    for job in page.data:
        function_id, _, key = job.id.rpartition("-")
        records.append(svc.jobs.get(function_id, key, consistent=True))
    return records


def cost_table(svc: Any) -> str:
    from geobatch.wire import statistics

    before = len(svc.blobs.puts)
    records = run_jobs(svc, [["sleep", s] for s in LENGTHS])
    sizes = dict(svc.blobs.puts[before:])
    rows = []
    for seconds, record in zip(LENGTHS, records, strict=True):
        attempt = (record.attempts or ())[-1]
        key = attempt.statistics_key
        extra = len(json.dumps(attempt.statistics, separators=(",", ":"))) + len(key or "")
        puts = 1 if key else 0
        rows.append(
            [
                f"{seconds:g} s",
                attempt.statistics["samples"],
                sizes.get(key, 0),
                extra,
                puts,
                f"{puts * price('s3_put') * 1e6:.2f}",
            ]
        )
    full = [[float(i * 5), 12.5, 1234.5, 123456789, 12345678] for i in range(statistics.MAX_SAMPLES)]
    doc = statistics.to_document(full, statistics.summarize(full, 5.0, None))
    rows.append(
        [
            "any longer (bounded)",
            statistics.MAX_SAMPLES,
            len(json.dumps(doc, separators=(",", ":"))),
            extra,
            1,
            f"{price('s3_put') * 1e6:.2f}",
        ]
    )
    return table(
        [
            "job length",
            "rows",
            "object bytes",
            "item bytes added",
            "S3 PUT / attempt",
            "$ / M attempts (PUTs)",
        ],
        rows,
    )


def overhead_table() -> str:
    from geobatch_worker import sampler

    pid = os.getpid()
    n = 2000
    per_cpu = timeit.timeit(lambda: sampler.cpu_seconds([pid]), number=n) / n
    per_net = timeit.timeit(lambda: sampler.network_bytes(pid), number=n) / n
    per_row = per_cpu + per_net
    return table(
        ["part of one row", "µs"],
        [
            ["CPU times (/proc/<pid>/stat, per process)", f"{per_cpu * 1e6:.0f}"],
            ["network counters (/proc/<pid>/net/dev)", f"{per_net * 1e6:.0f}"],
            ["one row, 1 process", f"{per_row * 1e6:.0f}"],
            ["share of one core at a row per 5 s", f"{per_row / 5 * 100:.4f} %"],
        ],
    )


def accuracy_table(svc: Any) -> str:
    load = os.getloadavg()[0]
    memory, busy = run_jobs(svc, [["memory", ACCURACY_SECONDS], ["busy", ACCURACY_SECONDS]])
    m, b = memory.attempts[-1], busy.attempts[-1]
    own = 100 * b.cpu_seconds / b.runtime
    held, loop = f"holds 300 MB ({ACCURACY_SECONDS:g} s)", f"busy loop ({ACCURACY_SECONDS:g} s)"
    return table(
        ["job", "figure", "value", "expected"],
        [
            [held, "memory_peak_mb", m.statistics["memory_peak_mb"], "~300 + interpreter"],
            [loop, "cpu_peak_percent", b.statistics["cpu_peak_percent"], "~100 when idle"],
            [loop, "cpu_mean_percent", b.statistics["cpu_mean_percent"], "same as below"],
            [loop, "getrusage share (child's own)", f"{own:.1f}", ""],
            ["machine", "load average (1 min)", f"{load:.1f}", "2 cores"],
        ],
    )


def main() -> None:
    _common.aws_test_env()
    from moto import mock_aws

    with mock_aws():
        svc = services()
        t0 = time.perf_counter()
        print("### Job.statistics: cost per job (default sampling every 5 s)\n")
        print(cost_table(svc))
        print("\n### Sampler CPU per row\n")
        print(overhead_table())
        print("\n### Accuracy\n")
        print(accuracy_table(svc))
        print(f"\n(ran {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
