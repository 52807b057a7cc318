"""Benchmark: worker time that is not the user's function, per job.

Run from the repo root: ``.venv/bin/python benchmarks/worker_overhead.py [--jobs 1000] [--no-moto]``.

1,000 jobs are submitted with ``services.jobs.submit_jobs`` and drained by the real ``Worker``
(``geobatch_worker.loop``) in this process, its user code in the reused child process. Backends:
the in-memory fakes of ``benchmarks/fakes.py`` (the worker's own cost) and moto in-process (adds
moto's and botocore's cost). Cases: a no-op function, and one that sleeps 5 ms (shows that a job
costs its own time plus the overhead, not a polling quantum). The user function measures its own
time and returns it, so overhead = (worker wall − child start-up − Σ user time) / jobs; the start-up
(spawn + imports of the child, once per worker) is reported apart. The breakdown wraps the ports
and the runner with timers.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from collections import defaultdict
from typing import Any

import _common
from _common import ALICE, sized, table

SOURCE = """
import time

def work(i, ms):
    t = time.perf_counter()
    if ms:
        time.sleep(ms / 1000)
    return time.perf_counter() - t
"""


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, obj: Any, method: str, label: str) -> None:
        original = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - t
                self.calls[label] += 1

        setattr(obj, method, timed)


def run_case(svc: Any, jobs: int, ms: float) -> dict[str, Any]:
    from geobatch.wire.codec import decode_result
    from geobatch.wire.models import JobBulkCreate
    from geobatch_core.services import jobs as job_service
    from geobatch_worker import runner as runner_mod

    fn = _common.ready_function(svc, SOURCE, "work", timeout=60)
    for start in range(0, jobs, 1000):
        job_service.submit_jobs(
            svc,
            ALICE,
            JobBulkCreate(
                function_id=fn.id,
                bulk_args=[[i, ms] for i in range(start, min(jobs, start + 1000))],
                reference_id=uuid.uuid4().hex,
            ),
        )
    timers = Timers()
    worker = _common.bench_worker(svc, fn)
    for method, label in (
        ("receive", "sqs receive"),
        ("delete_batch", "sqs delete"),
        ("change_visibility_batch", "sqs visibility"),
    ):
        timers.wrap(worker.queue, method, label)
    timers.wrap(worker.jobs, "transition", "job writes (claim+outcome)")
    timers.wrap(worker.jobs, "get", "job reads")
    timers.wrap(worker.functions, "get", "function reads")
    timers.wrap(worker.blobs, "put", "blob puts")
    timers.wrap(worker.blobs, "get", "blob gets (bundle)")
    startup = [0.0]
    run_total = [0.0]
    original_run = runner_mod.Runner.run

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        fresh = self._process is None
        t = time.perf_counter()
        try:
            return original_run(self, *args, **kwargs)
        finally:
            spent = time.perf_counter() - t
            if fresh:
                startup[0] += spent  # the child's spawn + imports land in its first job
            else:
                run_total[0] += spent

    runner_mod.Runner.run = run
    try:
        t0 = time.perf_counter()
        stats = worker.run()
        wall = time.perf_counter() - t0
    finally:
        runner_mod.Runner.run = original_run
    # Σ user time: each job returned its own duration.
    user = 0.0
    records, start = [], None
    while True:
        page, start = svc.jobs.query(fn.id, start=start, limit=1000, newest_first=False)
        records.extend(page)
        if not start:
            break
    ok = 0
    first_runtime = None
    for job in sorted(records, key=lambda j: j.last_execution_date or ""):
        if job.status == "success":
            ok += 1
            user += float(decode_result(job.result))
            if first_runtime is None:
                first_runtime = float(job.runtime or 0)
    return {
        "stats": stats,
        "wall": wall,
        "user": user,
        "ok": ok,
        "timers": timers,
        "startup": startup[0],
        "runner": run_total[0],
        "first_runtime": first_runtime or 0.0,
    }


def fake_services() -> Any:
    from fakes import FakeBlobStore, FakeFunctionStore, FakeJobStore, FakeQueue

    from geobatch_core import wiring
    from geobatch_core.adapters.environment import Stores
    from geobatch_core.services.context import Settings

    stores = Stores(FakeFunctionStore(), FakeJobStore(), FakeQueue(), FakeBlobStore())
    settings = Settings(queue_prefix="bench", lost_worker_seconds=60)
    return wiring.compose(stores, executor=None, builder=None, settings=settings)  # type: ignore[arg-type]


@contextlib.contextmanager
def moto_services() -> Any:
    import boto3
    from moto import mock_aws

    from geobatch_core import wiring
    from geobatch_core.adapters.environment import provisioned_stores
    from geobatch_core.services.context import Settings

    _common.aws_test_env()
    with mock_aws():
        stores = provisioned_stores(boto3.session.Session(region_name="us-east-1"))
        settings = Settings(queue_prefix="bench", lost_worker_seconds=60)
        yield wiring.compose(stores, executor=None, builder=None, settings=settings)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=sized(1000, 20))
    parser.add_argument("--no-moto", action="store_true")
    args = parser.parse_args()
    cases: list[tuple[str, float, Any]] = [("fake", 0.0, None), ("fake", 5.0, None)]
    if not args.no_moto:
        cases += [("moto", 0.0, None)]
    rows, breakdowns = [], []
    for backend, ms, _ in cases:
        if backend == "fake":
            result = run_case(fake_services(), args.jobs, ms)
        else:
            with moto_services() as svc:
                result = run_case(svc, args.jobs, ms)
        n = result["ok"]
        raw = (result["wall"] - result["user"]) / max(1, n)
        overhead = (result["wall"] - result["startup"] - result["user"]) / max(1, n - 1)
        # The first job pays the child's imports (spawn already done in _ensure_child's start()).
        rows.append(
            [
                backend,
                f"{ms:g} ms",
                f"{n}/{args.jobs}",
                f"{result['wall']:.2f}",
                f"{result['startup'] * 1000:.0f}",
                f"{result['user']:.2f}",
                f"{raw * 1000:.2f}",
                f"{overhead * 1000:.2f}",
                f"{(result['runner'] - result['user']) / max(1, n - 1) * 1000:.2f}",
            ]
        )
        t = result["timers"]
        breakdowns.append((backend, ms, n, t, result))
    print(f"Worker overhead, {args.jobs} jobs, one worker (target < 5 ms/job against the fakes)\n")
    print(
        table(
            [
                "backend",
                "user fn",
                "succeeded",
                "wall s",
                "child start ms",
                "Σ user s",
                "(wall−Σuser)/jobs ms",
                "steady overhead ms/job",
                "of which runner ms/job",
            ],
            rows,
        )
    )
    for backend, ms, n, t, result in breakdowns:
        print(f"\nBreakdown, {backend}, user fn {ms:g} ms (ms per job; calls)")
        parts = [
            [
                "runner (IPC, log capture, checks)",
                f"{(result['runner'] - result['user']) / (n - 1) * 1000:.3f}",
                n,
            ]
        ]
        for label in sorted(t.seconds, key=lambda k: -t.seconds[k]):
            parts.append([label, f"{t.seconds[label] / n * 1000:.3f}", t.calls[label]])
        accounted = (result["runner"] - result["user"]) + sum(t.seconds.values())
        rest = result["wall"] - result["startup"] - result["user"] - accounted  # Σuser includes job 1's (~0)
        parts.append(["rest of the loop", f"{rest / n * 1000:.3f}", ""])
        print(table(["part", "ms/job", "calls"], parts))


if __name__ == "__main__":
    main()
