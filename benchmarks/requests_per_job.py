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
were counted here: a PutMetricData per job would add $10 per million jobs to it).
"""

from __future__ import annotations

import argparse
import math
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import _common
from _common import ALICE, table
from dynamo_size import item_size, read_units, write_units
from prices import AS_READ, price, table_rows

API_LAMBDA_GB = 1.0  # stacks/api.py: memory_mb=1024
SCALER_LAMBDA_GB = 0.5  # stacks/lambda_factory.py default
AWS_CALL_MS = 10.0  # typical in-region latency of one DynamoDB/SQS/S3 call, for Lambda duration
LAMBDA_BASE_MS = 30.0  # parse + validate + serialize, per API call (estimate)

KEYS = {"jobs": ("function_id", "job_key"), "functions": ("id",)}


class Meter:
    """Counts requests by (phase, service, operation) and computes DynamoDB units and SQS chunks."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.wru: Counter[str] = Counter()
        self.rru: Counter[str] = Counter()
        self.sqs_units: Counter[str] = Counter()
        self.sizes: dict[tuple[str, tuple[str, ...]], int] = {}
        # Transactional updates of job items: charged when the store reads the job back (a
        # transaction returns no item, so its size after the write is known only then).
        self.unpriced: dict[tuple[str, tuple[str, ...]], tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.api_calls: Counter[str] = Counter()
        self.api_aws_calls: list[int] = []

    def register(self, session: Any) -> None:
        session.events.register("before-parameter-build", self._params)
        session.events.register("before-call", self._before)
        session.events.register("after-call.dynamodb", self._after_dynamo)

    def _params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _key(self, table: str, typed: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        names = KEYS.get(table, ())
        return table, tuple(str(next(iter(typed[n].values()))) for n in names if n in typed)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        op = model.name
        params = context.get("bench_params", {})
        with self.lock:
            self.requests[(self.phase, service, op)] += 1
            if service == "sqs":
                if op == "SendMessageBatch":
                    payload = sum(len(e["MessageBody"].encode()) for e in params.get("Entries", []))
                    self.sqs_units[self.phase] += max(1, math.ceil(payload / 65536))
                else:
                    self.sqs_units[self.phase] += 1

    def _after_dynamo(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op = model.name
        params = context.get("bench_params", {})
        failed = "Error" in parsed
        with self.lock:
            phase = self.phase
            if op == "PutItem":
                key = self._key(params["TableName"], params["Item"])
                before = self.sizes.get(key, 0)
                size = item_size(params["Item"])
                self.wru[phase] += write_units(before, 0 if failed else size)
                if not failed:
                    self.sizes[key] = size
            elif op == "UpdateItem":
                key = self._key(params["TableName"], params["Key"])
                before = self.sizes.get(key, 0)
                after = item_size(parsed["Attributes"]) if "Attributes" in parsed else 0
                self.wru[phase] += write_units(before, after)
                if after:
                    self.sizes[key] = after
            elif op == "DeleteItem":
                key = self._key(params["TableName"], params["Key"])
                self.wru[phase] += write_units(self.sizes.pop(key, 0))
            elif op == "BatchWriteItem":
                for table, requests in params["RequestItems"].items():
                    for r in requests:
                        if "PutRequest" in r:
                            key = self._key(table, r["PutRequest"]["Item"])
                            size = item_size(r["PutRequest"]["Item"])
                            self.wru[phase] += write_units(self.sizes.get(key, 0), size)
                            self.sizes[key] = size
                        else:
                            key = self._key(table, r["DeleteRequest"]["Key"])
                            self.wru[phase] += write_units(self.sizes.pop(key, 0))
            elif op == "TransactWriteItems":
                self._transaction(phase, params["TransactItems"], failed)
            elif op == "GetItem":
                key = self._key(params["TableName"], params["Key"])
                if key in self.unpriced and "Item" in parsed:
                    written_in, before = self.unpriced.pop(key)
                    self.sizes[key] = item_size(parsed["Item"])
                    self.wru[written_in] += 2 * write_units(before, self.sizes[key])
                self.rru[phase] += read_units(
                    self.sizes.get(key, 0), consistent=bool(params.get("ConsistentRead"))
                )
            elif op == "Query":
                table = params["TableName"]
                total = 0
                for raw in parsed.get("Items", []):
                    total += self.sizes.get(self._key(table, raw), item_size(raw))
                self.rru[phase] += read_units(total, consistent=bool(params.get("ConsistentRead")))
            elif op == "BatchGetItem":
                for table, request in params["RequestItems"].items():
                    for k in request["Keys"]:
                        self.rru[phase] += read_units(
                            self.sizes.get(self._key(table, k), 0), consistent=False
                        )
            elif op == "Scan":
                total = sum(item_size(raw) for raw in parsed.get("Items", []))
                self.rru[phase] += read_units(total, consistent=False)

    def _transaction(self, phase: str, items: list[dict[str, Any]], failed: bool) -> None:
        """A transactional write costs twice a standard one, per item (2 WRU per started KB)."""
        for entry in items:
            ((kind, body),) = entry.items()
            key = self._key(body["TableName"], body.get("Key") or body["Item"])
            before = self.sizes.get(key, 0)
            if kind == "Put":
                size = item_size(body["Item"])
                self.wru[phase] += 2 * write_units(before, 0 if failed else size)
                if not failed:
                    self.sizes[key] = size
            elif kind == "Delete":
                self.wru[phase] += 2 * write_units(before)
                if not failed:
                    self.sizes.pop(key, None)
            elif kind == "Update" and not failed and not key[1][-1].startswith("~"):
                self.unpriced[key] = (phase, before)
            else:  # a counter item (well under 1 KB), a condition check, or a canceled update
                self.wru[phase] += 2 * write_units(before)

    def api_call(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One API Gateway request + one API Lambda invocation; remembers its AWS calls."""
        before = sum(self.requests.values())
        out = fn(*args, **kwargs)
        self.api_calls[self.phase] += 1
        self.api_aws_calls.append(sum(self.requests.values()) - before)
        return out


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    n = args.jobs
    _common.aws_test_env()
    import boto3
    from moto import mock_aws

    import geobatch as gb
    from geobatch.job import Job
    from geobatch.search import JobSearch  # noqa: F401
    from geobatch.wire import limits
    from geobatch.wire.models import JobBulkCreate, JobStatus
    from geobatch_core import wiring
    from geobatch_core.adapters.environment import provisioned_stores
    from geobatch_core.services import functions as function_service
    from geobatch_core.services import jobs as job_service
    from geobatch_core.services.context import Settings
    from geobatch_worker.loop import Worker, WorkerConfig
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
        for start in range(0, n, limits.MAX_JOBS_PER_REQUEST):
            bulk = JobBulkCreate(
                function_id=fn["id"],
                bulk_args=[[i] for i in range(start, min(n, start + 1000))],
                reference_id=uuid.uuid4().hex,
            )
            meter.api_call("submit", job_service.submit_jobs, svc, ALICE, bulk)

        meter.phase = "run"
        worker = Worker.for_services(
            WorkerConfig(
                function_id=fn["id"],
                queue_url=fn["queue_url"],
                worker_id="bench",
                idle_seconds=0.0,
                poll_seconds=0,
            ),
            svc,
            metrics=JobMetrics(cloudwatch_client(session)),
        )
        t0 = time.perf_counter()
        stats = worker.run()
        run_seconds = time.perf_counter() - t0

        meter.phase = "wait"
        done = meter.api_call("wait", function_service.get_function, svc, ALICE, fn["id"], statistics=True)
        assert done.job_statistics[JobStatus.SUCCESS.value] == n, done.job_statistics

        meter.phase = "fetch"
        client = gb.Client("http://127.0.0.1:9")
        search = (
            Job.search(client)
            .param(function_id=fn["id"])
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
                function_id=fn["id"] if cursor is None else None,
                filter_json=params.get("filter") if cursor is None else None,
                page_size=int(params["page_size"]),
                cursor=cursor,
                include_result=True,
            )
            fetched += sum(1 for j in page.data if j.result is not None)
            cursor = page.meta.page_cursor
            if not cursor:
                break
        assert fetched == n, fetched

    phases = ["submit", "run", "wait", "fetch"]
    by_op: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (phase, service, op), count in meter.requests.items():
        if phase in phases:
            by_op[(service, op)][phase] += count
    print(
        f"AWS requests per job, {n} no-op jobs, success path (moto in-process; worker ran {run_seconds:.1f} s, {stats.claimed} claimed)\n"
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
    rows.append(
        [
            "scaler Lambda (async invoke on submit)",
            scaler_invocations,
            0,
            0,
            0,
            scaler_invocations,
            f"{scaler_invocations / n:.3f}",
        ]
    )
    everything = aws_total + api_total + scaler_invocations
    rows.append(["**all requests**", "", "", "", "", everything, f"**{everything / n:.3f}**"])
    print(table(["request", *phases, "total", "per job"], rows))

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
        f" at exit; the worker ran {run_seconds:.0f} s). benchmarks/worker_metrics.py has the cost by job length."
    )
    lambda_gb_s = sum(
        API_LAMBDA_GB * (LAMBDA_BASE_MS + AWS_CALL_MS * calls) / 1000 for calls in meter.api_aws_calls
    )
    lambda_gb_s += scaler_invocations * SCALER_LAMBDA_GB * (LAMBDA_BASE_MS + 4 * AWS_CALL_MS) / 1000
    measured = {
        "aws_requests": aws_total,
        "wru": wru,
        "rru": rru,
        "sqs_units": sqs_units,
        "s3_put": s3_put,
        "s3_get": s3_get,
        "cw_put": cw_put,
        "api_calls": api_total,
        "lambda_gb_s": lambda_gb_s,
        "scaler_invocations": scaler_invocations,
    }
    naive = naive_model(n)
    print(
        "\nDynamoDB units by phase (computed from item sizes): "
        + ", ".join(f"{p}: {meter.wru[p]} WRU / {meter.rru[p]:g} RRU" for p in phases)
    )
    mean_item = sum(s for (t, _), s in meter.sizes.items() if t == "jobs") / max(
        1, sum(1 for (t, _) in meter.sizes if t == "jobs")
    )
    print(f"Mean final job item size: {mean_item:.0f} bytes")

    print(f"\nControl-plane cost per million jobs, us-east-1 list prices as read {AS_READ}\n")
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
    print(table(["item", "GeoBatch (measured)", "naive design (model)"], crow))
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
    live_log_bound()


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


if __name__ == "__main__":
    main()
