"""Model: wall time and AWS cost of a GeoBatch run from job count, job time, concurrency and start-up.

Run from the repo root: ``.venv/bin/python benchmarks/scaling_model.py [--local-per-job S --local-wall S]``.

A small event simulation: the SDK submits 1,000 jobs per request (``submit_s`` each, sequential);
the scaler runs on each submit and every ``scaler_period`` and asks for
``min(concurrency, outstanding jobs) − workers`` new workers; a worker starts ``start_latency`` after
it is asked for, then takes jobs one after another (``per_job + overhead`` each) until none is left.
The end is seen by ``wait_for_completion`` on its next poll; then results are fetched.
Cost = jobs × measured $ per million (benchmarks/requests_per_job.py) + worker housekeeping
(540 requests per worker-hour) + the completion polls, each of which Queries the Function's counter
items (``job_statistics``, benchmarks/counts.py): 1 RRU and one request per poll, at any job count
(it used to Query every job item: ⌈N·item_bytes / 4 KB⌉ RRU and ⌈N·item_bytes / 1 MB⌉ requests).
The local check feeds the model local mode's parameters and compares with benchmark 4's wall time.
"""

from __future__ import annotations

import argparse
import heapq
import math
from dataclasses import dataclass

import _common  # noqa: F401
from _common import table
from prices import price

PER_MILLION_USD = 6.92  # benchmarks/requests_per_job.py, latest run (with the job metrics)
REQUESTS_PER_JOB = 5.40  # same
HOUSEKEEPING_PER_WORKER_HOUR = 540


@dataclass
class Params:
    jobs: int
    per_job: float
    concurrency: int
    start_latency: float
    scaler_period: float
    overhead: float = 0.02  # AWS: 2 conditional writes + amortized SQS, ~10 ms each way
    submit_s: float = 1.5  # one 1,000-job request: 40 BatchWriteItem + 100 SendMessageBatch
    poll: float = 10.0
    fetch_page_s: float = 0.3


def simulate(p: Params) -> dict[str, float]:
    batches = math.ceil(p.jobs / 1000)
    arrivals = [(min(p.jobs, (b + 1) * 1000) - b * 1000, (b + 1) * p.submit_s) for b in range(batches)]
    done_submitting = arrivals[-1][1]
    events: list[tuple[float, int, str]] = []
    for count, t in arrivals:
        heapq.heappush(events, (t, 0, f"arrive:{count}"))
        heapq.heappush(events, (t, 1, "scale"))  # the submit wakes the scaler
    t = p.scaler_period
    while t < done_submitting + p.start_latency + p.jobs * (p.per_job + p.overhead) / 1 + p.scaler_period:
        heapq.heappush(events, (t, 1, "scale"))
        t += p.scaler_period
        if t > 10 * 86400:
            break
    workers = 0  # asked for or running
    running = 0
    last_end = 0.0
    first_start = None
    pending_jobs = 0
    worker_seconds = 0.0
    while events:
        now, _, kind = heapq.heappop(events)
        if kind.startswith("arrive"):
            pending_jobs += int(kind.split(":")[1])
        elif kind == "scale":
            if pending_jobs == 0 and running == 0 and now > done_submitting:
                continue
            want = min(p.concurrency, pending_jobs + running)
            for _ in range(max(0, want - workers)):
                workers += 1
                heapq.heappush(events, (now + p.start_latency, 2, "start"))
        elif kind in ("start", "free"):
            if kind == "start":
                running += 1
                first_start = now if first_start is None else first_start
            if pending_jobs > 0:
                pending_jobs -= 1
                end = now + p.per_job + p.overhead
                worker_seconds += p.per_job + p.overhead
                last_end = max(last_end, end)
                heapq.heappush(events, (end, 3, "free"))
            else:
                running -= 1
                workers -= 1
        if not events and pending_jobs:
            heapq.heappush(events, (now + p.scaler_period, 1, "scale"))
    seen = last_end + p.poll / 2
    wall = seen + math.ceil(p.jobs / 100) * p.fetch_page_s
    polls = seen / p.poll
    poll_rru = 1.0  # the counter items: one strongly consistent Query of ~2 KB (benchmarks/counts.py)
    poll_requests = 1 + 2
    hours = worker_seconds / 3600
    cost_jobs = p.jobs * PER_MILLION_USD / 1e6
    cost_polls = polls * (
        poll_rru * price("dynamodb_rru")
        + price("apigw_rest_request")
        + price("lambda_request")
        + (0.03 + 0.01 * poll_requests) * price("lambda_gb_s")
    )
    # Per worker-hour: 90 ChangeMessageVisibilityBatch + 90 job GetItem (0.5 RRU) + 360 Function GetItem (1 RRU).
    cost_house = hours * (90 * price("sqs_request") + (90 * 0.5 + 360) * price("dynamodb_rru"))
    return {
        "wall": wall,
        "first_start": first_start or 0.0,
        "last_end": last_end,
        "worker_hours": hours,
        "requests": p.jobs * REQUESTS_PER_JOB + polls * poll_requests + hours * HOUSEKEEPING_PER_WORKER_HOUR,
        "cost_jobs": cost_jobs,
        "cost_polls": cost_polls,
        "cost_house": cost_house,
        "cost": cost_jobs + cost_polls + cost_house,
        "polls": polls,
        "poll_requests": poll_requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--local-per-job",
        type=float,
        default=0.62,
        help="mean job runtime in local mode (benchmark 4: Σ runtime / jobs)",
    )
    parser.add_argument(
        "--local-wall", type=float, default=23.27, help="benchmark 4's measured GeoBatch wall time"
    )
    parser.add_argument(
        "--local-start", type=float, default=1.12, help="benchmark 4: submit -> first job started"
    )
    args = parser.parse_args()
    conus = 78_899
    scenarios = [
        ("CONUS, 0.30 s/job, 500 workers, Fargate", Params(conus, 0.30, 500, 60, 60)),
        ("CONUS, 0.30 s/job, 1000 workers, Fargate", Params(conus, 0.30, 1000, 60, 60)),
        ("CONUS, 30 s/job (real S2 reads), 500 workers", Params(conus, 30.0, 500, 60, 60)),
        ("CONUS, 30 s/job, 1000 workers", Params(conus, 30.0, 1000, 60, 60)),
        ("CONUS, 0.30 s/job, 5 workers (default concurrency)", Params(conus, 0.30, 5, 60, 60)),
    ]
    rows = []
    for name, p in scenarios:
        r = simulate(p)
        rows.append(
            [
                name,
                f"{r['wall'] / 60:.1f}",
                f"{r['first_start']:.0f}",
                f"{r['worker_hours']:.1f}",
                f"{r['requests'] / 1e3:,.0f}k",
                f"{r['polls']:.0f} x {r['poll_requests']}",
                f"{r['cost_jobs']:.3f}",
                f"{r['cost_polls']:.3f}",
                f"{r['cost_house']:.4f}",
                f"{r['cost']:.3f}",
            ]
        )
    print("CONUS run (78,899 jobs): modelled wall time and control-plane cost (compute not included)\n")
    print(
        table(
            [
                "scenario",
                "wall min",
                "first job s",
                "worker-h",
                "AWS requests",
                "polls x req",
                "$ jobs",
                "$ polls",
                "$ housekeeping",
                "$ total",
            ],
            rows,
        )
    )
    local = Params(
        64,
        args.local_per_job,
        2,
        args.local_start,
        0.5,
        overhead=0.002,
        submit_s=0.16,
        poll=0.25,
        fetch_page_s=0.3,
    )
    r = simulate(local)
    print(
        "\nLocal-mode check (64 jobs, concurrency 2, worker start from benchmark 4, scale interval 0.5 s, poll 0.25 s)\n"
    )
    print(
        table(
            ["", "wall s"],
            [
                ["model", f"{r['wall']:.2f}"],
                ["measured (benchmark 4)", f"{args.local_wall:.2f}"],
                ["model / measured", f"{r['wall'] / args.local_wall:.2f}"],
            ],
        )
    )


if __name__ == "__main__":
    main()
