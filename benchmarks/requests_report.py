"""The report of ``requests_per_job.py``: its tables, the cost model and the naive design beside it.

``requests_per_job.measure`` leaves a ``Run``; the functions here turn it into the printed tables (requests
by phase, worker housekeeping, DynamoDB units, cost per million jobs beside the naive design's, prices,
live-log bound).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from _common import table
from aws_meter import Meter
from prices import AS_READ, price, table_rows

API_LAMBDA_GB = 1.0  # stacks/api.py: memory_mb=1024
SCALER_LAMBDA_GB = 0.5  # stacks/lambda_factory.py default
AWS_CALL_MS = 10.0  # typical in-region latency of one DynamoDB/SQS/S3 call, for Lambda duration
LAMBDA_BASE_MS = 30.0  # parse + validate + serialize, per API call (estimate)

PHASES = ["submit", "run", "wait", "fetch"]


@dataclass
class Run:
    """What one measured run leaves: the meter, and what the report prints beside it."""

    jobs: int
    meter: Meter
    scaler_invocations: int
    run_seconds: float
    claimed: int


def naive_model(jobs: int) -> dict[str, float]:
    """Per job: one API call to submit, PutItem (+ status-index write), SendMessage, ReceiveMessage,
    a worker GetItem, UpdateItem running and UpdateItem done (each + 2 index writes: the status key
    changes), S3 PUT result + S3 PUT log, DeleteMessage, then one API call per result (GetItem + S3 GET)."""
    per_job_requests = {
        "dynamodb PutItem": 1,
        "dynamodb GetItem": 2,
        "dynamodb UpdateItem": 2,
        "sqs SendMessage": 1,
        "sqs ReceiveMessage": 1,
        "sqs DeleteMessage": 1,
        "s3 PutObject": 2,
        "s3 GetObject": 1,
    }
    return {
        "aws_requests": sum(per_job_requests.values()) * jobs,
        "wru": (1 + 1 + (1 + 2) * 2) * jobs,
        "rru": (0.5 + 0.5) * jobs,
        "sqs_units": 3 * jobs,
        "s3_put": 2 * jobs,
        "s3_get": 1 * jobs,
        "cw_put": 0,  # no job metrics in the model
        "api_calls": 2 * jobs,
        "lambda_gb_s": 2 * jobs * API_LAMBDA_GB * (LAMBDA_BASE_MS + 2 * AWS_CALL_MS) / 1000,
    }


def cost(d: dict[str, float]) -> dict[str, float]:
    return {
        "DynamoDB writes": d["wru"] * price("dynamodb_wru"),
        "DynamoDB reads": d["rru"] * price("dynamodb_rru"),
        "SQS": d["sqs_units"] * price("sqs_request"),
        "S3 PUT": d["s3_put"] * price("s3_put"),
        "S3 GET": d["s3_get"] * price("s3_get"),
        "CloudWatch PutMetricData": d["cw_put"] * price("cloudwatch_request"),
        "Lambda requests": d["api_calls"] * price("lambda_request")
        + d.get("scaler_invocations", 0) * price("lambda_request"),
        "Lambda GB-s": d["lambda_gb_s"] * price("lambda_gb_s"),
        "API Gateway": d["api_calls"] * price("apigw_rest_request"),
    }


def print_requests(run: Run) -> tuple[int, int]:
    """The requests table and the worker's housekeeping; (AWS requests, all requests)."""
    n, meter, phases = run.jobs, run.meter, PHASES
    by_op: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (phase, service, op), count in meter.requests.items():
        if phase in phases:
            by_op[(service, op)][phase] += count
    print(
        f"AWS requests per job, {n} no-op jobs, success path (moto in-process; worker ran {run.run_seconds:.1f} s, {run.claimed} claimed)\n"
    )
    rows = []
    for (service, op), counts in sorted(by_op.items()):
        total = sum(counts.values())
        rows.append([f"{service} {op}", *(counts.get(p, 0) for p in phases), total, f"{total / n:.3f}"])
    totals = [sum(c.get(p, 0) for c in by_op.values()) for p in phases]
    aws_total = sum(totals)
    rows.append(["**AWS requests**", *totals, aws_total, f"**{aws_total / n:.3f}**"])
    api_total = sum(meter.api_calls.values())
    rows.append(
        [
            "API Gateway + Lambda (API calls)",
            *(meter.api_calls.get(p, 0) for p in phases),
            api_total,
            f"{api_total / n:.3f}",
        ]
    )
    scaler = run.scaler_invocations
    rows.append(["scaler Lambda (async invoke on submit)", scaler, 0, 0, 0, scaler, f"{scaler / n:.3f}"])
    everything = aws_total + api_total + scaler
    rows.append(["**all requests**", "", "", "", "", everything, f"**{everything / n:.3f}**"])
    print(table(["request", *phases, "total", "per job"], rows))
    print_housekeeping(meter)
    return aws_total, everything


def print_housekeeping(meter: Meter) -> None:
    hb = sum(
        c for (ph, s, op), c in meter.requests.items() if ph == "run" and op == "ChangeMessageVisibilityBatch"
    )
    fget = sum(
        c for (ph, s, op), c in meter.requests.items() if ph == "run" and s == "dynamodb" and op == "GetItem"
    )
    print(
        f"\nWorker housekeeping in this run: {hb} ChangeMessageVisibilityBatch (heartbeat), {fget} GetItem "
        "(Function checks every 10 s + the start, job checks by the heartbeat). Rates per worker-hour with the"
        " defaults (lost_worker_seconds 120 -> heartbeat every 40 s: 1 ChangeMessageVisibilityBatch + 1 GetItem"
        " of the running job; Function check every 10 s while busy: 1 GetItem): 90 + 90 + 360 = 540 requests"
        f" per worker-hour = {540 / (3600 / 0.30):.3f} per job at 0.30 s per job (benchmarks/tile_compute.py);"
        " an idle worker before exit adds idle_seconds/poll_seconds = 3 empty ReceiveMessage calls."
    )


def measured_units(run: Run, aws_total: int) -> dict[str, float]:
    """The run's billed units, as ``cost`` prices them."""
    meter, phases = run.meter, PHASES
    wru, rru = sum(meter.wru[p] for p in phases), sum(meter.rru[p] for p in phases)
    sqs_units = sum(meter.sqs_units[p] for p in phases)
    s3_put = sum(
        c
        for (ph, s, op), c in meter.requests.items()
        if ph in phases and s == "s3" and op in ("PutObject", "CopyObject", "ListObjectsV2")
    )
    s3_get = sum(
        c
        for (ph, s, op), c in meter.requests.items()
        if ph in phases and s == "s3" and op in ("GetObject", "HeadObject")
    )
    cw_put = sum(
        c
        for (ph, s, op), c in meter.requests.items()
        if ph in phases and s == "cloudwatch" and op == "PutMetricData"
    )
    print(
        f"\nJob metrics in this run: {cw_put} PutMetricData (one per worker-minute in which a job ended, plus one"
        f" at exit; the worker ran {run.run_seconds:.0f} s). benchmarks/worker_metrics.py has the cost by job length."
    )
    lambda_gb_s = sum(
        API_LAMBDA_GB * (LAMBDA_BASE_MS + AWS_CALL_MS * calls) / 1000 for calls in meter.api_aws_calls
    )
    lambda_gb_s += run.scaler_invocations * SCALER_LAMBDA_GB * (LAMBDA_BASE_MS + 4 * AWS_CALL_MS) / 1000
    return {
        "aws_requests": aws_total,
        "wru": wru,
        "rru": rru,
        "sqs_units": sqs_units,
        "s3_put": s3_put,
        "s3_get": s3_get,
        "cw_put": cw_put,
        "api_calls": sum(meter.api_calls.values()),
        "lambda_gb_s": lambda_gb_s,
        "scaler_invocations": run.scaler_invocations,
    }


def print_costs(run: Run, aws_total: int, everything: int) -> None:
    """DynamoDB units, then the cost per million jobs beside the naive design's, and the targets."""
    n = run.jobs
    measured = measured_units(run, aws_total)
    naive = naive_model(n)
    print_dynamodb_units(run.meter)
    print(f"\nControl-plane cost per million jobs, us-east-1 list prices as read {AS_READ}\n")
    mc = cost(measured)
    rows = cost_rows(n, measured, naive, everything)
    print(table(["item", "GeoBatch (measured)", "naive design (model)"], rows))
    scale = 1e6 / n
    print(
        f"\nLambda GB-s estimated as {API_LAMBDA_GB:g} GB x ({LAMBDA_BASE_MS:g} ms + {AWS_CALL_MS:g} ms per AWS call) per API call."
    )
    print("\nPrices (USD per million units):\n")
    print(table(["price", "USD / million", "unit"], table_rows(), "lrl"))
    print(
        f"\nTargets: <= 2.5 AWS requests per job: {'MET' if everything / n <= 2.5 else 'MISSED'} "
        f"({everything / n:.2f} all requests, {aws_total / n:.2f} AWS service requests); "
        f"<= $3 per million jobs: {'MET' if sum(mc.values()) * scale <= 3 else 'MISSED'} (${sum(mc.values()) * scale:.2f})"
    )


def print_dynamodb_units(meter: Meter) -> None:
    """DynamoDB units by phase and the mean size of a finished job's item."""
    print(
        "\nDynamoDB units by phase (computed from item sizes): "
        + ", ".join(f"{p}: {meter.wru[p]} WRU / {meter.rru[p]:g} RRU" for p in PHASES)
    )
    mean_item = sum(s for (t, _), s in meter.sizes.items() if t == "jobs") / max(
        1, sum(1 for (t, _) in meter.sizes if t == "jobs")
    )
    print(f"Mean final job item size: {mean_item:.0f} bytes")


def cost_rows(
    n: int, measured: dict[str, float], naive: dict[str, float], everything: int
) -> list[list[str]]:
    """The cost table: each item per million jobs, measured beside the naive model, then per-job figures."""
    aws_total, wru, rru = measured["aws_requests"], measured["wru"], measured["rru"]
    mc, nc = cost(measured), cost(naive)
    crow = []
    scale = 1e6 / n
    for k in mc:
        crow.append([k, f"{mc[k] * scale:.3f}", f"{nc[k] * scale:.3f}"])
    crow.append(
        [
            "**total $ / million jobs**",
            f"**{sum(mc.values()) * scale:.2f}**",
            f"**{sum(nc.values()) * scale:.2f}**",
        ]
    )
    crow.append(
        [
            "AWS requests per job (no API GW/Lambda)",
            f"{aws_total / n:.2f}",
            f"{naive['aws_requests'] / n:.2f}",
        ]
    )
    crow.append(
        [
            "all requests per job",
            f"{everything / n:.2f}",
            f"{(naive['aws_requests'] + naive['api_calls']) / n:.2f}",
        ]
    )
    crow.append(["WRU per job", f"{wru / n:.2f}", f"{naive['wru'] / n:.2f}"])
    crow.append(["RRU per job", f"{rru / n:.3f}", f"{naive['rru'] / n:.3f}"])
    return crow


def live_log_bound() -> None:
    """What a live log adds to a job that runs long and prints: the schedule of
    ``geobatch_core.services.live_logs`` (a PUT and a conditional write per part, one DeleteObjects
    at the end). The no-op jobs measured above end before the first part, so they ship none."""
    from geobatch_core.services import live_logs

    rows = []
    for seconds in (4, 10, 60, 300, 900, 3600, 86400):
        parts, t = 0, 0.0
        while parts < live_logs.MAX_PARTS and t + live_logs.interval(parts) <= seconds:
            t += live_logs.interval(parts)
            parts += 1
        rows.append([f"{seconds:,} s", str(parts), str(2 * parts + (1 if parts else 0))])
    print("\nLive logs, per attempt of a job that prints all the time (model of the shipping schedule):\n")
    print(table(["job runs", "parts shipped", "extra requests"], rows))
    print(f"\nAt most {2 * live_logs.MAX_PARTS + 1} extra requests per attempt, however long it runs.")
