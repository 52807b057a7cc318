"""Benchmark: what one ``job_statistics`` call costs at 1k, 10k, 100k and 1M jobs (flat), and what
keeping the counts costs per job.

Run from the repo root: ``.venv/bin/python benchmarks/counts.py [--moto 1000,10000]``.

``job_statistics`` is every poll of ``wait_for_completion`` and of the web monitor, the scaler's
completion check and ``functions list --statistics``. It reads the Function's counter items (one
strongly consistent Query of at most ``layout.COUNT_SHARDS`` small items), which the JobStore moves
in the same transaction as every job write (``geobatch_core.adapters.dynamodb_counts``).

1. read cost, moto (``mock_aws``): the real ``DynamoJobStore``; N jobs written by ``put_new_batch``
   (the counted transactions) and a tenth moved on by ``transition``; the call metered with a
   botocore hook: requests, bytes of the items DynamoDB returns (``dynamo_size``, AWS's rules), RRU.
2. read cost, fakes (``benchmarks/fakes.py``) at sizes moto cannot hold: the fake keeps the counter
   items exactly as the adapter does; to bound memory at 1M, job items are dropped once counted
   (``job_statistics`` never reads them).
3. before: the Query of every job item this replaces (``projection`` does not lower RRU): the
   jobs' bytes (N x the mean finished job item that ``requests_per_job.py`` measures), ⌈bytes / 4 KB⌉
   RRU, ⌈bytes / 1 MB⌉ requests.
4. write cost per job (moto, metered as ``requests_per_job.py`` meters): submit, claim, success,
   with transactions (2 WRU per started KB per item, a counter item per change, the read-back)
   beside the same writes without them.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import _common
from _common import sized, table
from dynamo_size import item_size, read_units, write_units
from prices import price

from geobatch_core.records import JobRecord

FID = "bench-fn"
# The mean final job item (requests_per_job.py) when the counters replaced the scan: what the
# "before" columns price each scanned job at.
SCAN_ITEM_BYTES = 603
# Smoke: 11,000 still goes past one 10,000-job batch of fake_read (the job items dropped).
SIZES = sized([1_000, 10_000, 100_000, 1_000_000], [1_000, 11_000])
WRITE_JOBS = sized(500, 20)


def _job(i: int) -> JobRecord:
    return JobRecord(
        function_id=FID,
        job_key=f"{i:011x}abcdef01{i % 4096:03x}",
        owner="arn:aws:iam::123456789012:user/alice",
        status="pending",
        creation_date="2026-01-01T00:00:00.000Z",
        tags=["tile", "landcover-v1"],
        reference_id=f"ref-{i // 1000}",
        run=0,
        execution_count=0,
        payload=f'{{"args":["{i}","landcover-v1"],"kwargs":{{}}}}',
    )


def _move_some(store: Any, n: int) -> None:
    for i in range(0, n, 10):  # a tenth of the jobs run, half of those succeed
        key = _job(i).job_key
        store.transition(FID, key, changes={"status": "running"}, expect={"status": "pending"})
        if i % 20 == 0:
            store.transition(
                FID, key, changes={"status": "success"}, expect={"status": ["running", "cancel"]}
            )


def moto_read(n: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from geobatch_core.adapters import provision
    from geobatch_core.adapters.dynamodb import DynamoJobStore
    from geobatch_core.services import counters

    _common.aws_test_env()
    with mock_aws():
        client = boto3.session.Session(region_name="us-east-1").client("dynamodb")
        provision.create_tables(client, "functions", "jobs")
        store = DynamoJobStore(client, "jobs")
        for start in range(0, n, 1000):
            store.put_new_batch([_job(i) for i in range(start, min(n, start + 1000))], check_existing=False)
        _move_some(store, n)
        calls: list[tuple[str, dict[str, Any]]] = []

        def record(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            calls.append((model.name, parsed))

        client.meta.events.register("after-call.dynamodb", record)
        stats = counters.job_statistics(store, FID)
    assert sum(stats.values()) == n, stats
    returned = sum(item_size(i) for _, parsed in calls for i in parsed.get("Items", []))
    return {"requests": len(calls), "bytes": returned, "rru": read_units(returned, consistent=True)}


def _typed(job: JobRecord) -> dict[str, Any]:
    """The job's item as DynamoDB types it (what ``item_size`` sizes)."""
    from geobatch_core.adapters.dynamodb_items import serialize

    return serialize(job.to_item())


def fake_read(n: int) -> dict[str, Any]:
    from fakes import FakeJobStore

    from geobatch_core.adapters.dynamodb_items import serialize

    store = FakeJobStore()
    for start in range(0, n, 10_000):
        store.put_new_batch([_job(i) for i in range(start, min(n, start + 10_000))], check_existing=False)
        if start + 10_000 < n:
            store.items.clear()  # keep only the counter items: 1M job items do not fit beside 8 agents
            store._keys.clear()
    _move_some_present(store)
    calls_before = store.calls
    counts = store.counts(FID)
    assert sum(counts.by_status.values()) == n, counts
    items = [serialize({"function_id": FID, "job_key": "~count#00", **c}) for c in store.counter_items(FID)]
    returned = sum(item_size(i) for i in items)
    return {
        "requests": store.calls - calls_before,
        "bytes": returned,
        "rru": read_units(returned, consistent=True),
    }


def _move_some_present(store: Any) -> None:
    for _, key in list(store.items)[::10]:
        store.transition(FID, key, changes={"status": "running"}, expect={"status": "pending"})


def scan_cost(n: int, item_bytes: float) -> dict[str, Any]:
    total = n * item_bytes
    return {
        "requests": max(1, math.ceil(total / 1_048_576)),
        "bytes": total,
        "rru": read_units(int(total), consistent=True),
    }


def write_cost(n: int = WRITE_JOBS) -> list[list[str]]:
    """WRU/RRU per job of submit, claim and success, with the counting transactions and without."""
    import boto3
    from moto import mock_aws
    from requests_per_job import Meter

    from geobatch_core.adapters import provision
    from geobatch_core.adapters.dynamodb import DynamoJobStore

    _common.aws_test_env()
    meter = Meter()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        meter.register(session)
        client = session.client("dynamodb")
        provision.create_tables(client, "functions", "jobs")
        store = DynamoJobStore(client, "jobs")
        sizes: dict[str, list[int]] = {}
        meter.phase = "submit"
        store.put_new_batch([_job(i) for i in range(n)], check_existing=False)
        sizes["submit"] = [item_size(_typed(_job(i))) for i in range(n)]
        for phase, changes, expect in (
            (
                "claim",
                {"status": "running", "claim_token": "t" * 24, "execution_count": 1},
                {"status": "pending"},
            ),
            (
                "success",
                {"status": "success", "result": '"ok"', "runtime": 1.5},
                {"status": ["running", "cancel"]},
            ),
        ):
            meter.phase = phase
            for i in range(n):
                store.transition(FID, _job(i).job_key, changes=changes, expect=expect)
            meter.phase = "measure"
            sizes[phase] = [item_size(_typed(store.get(FID, _job(i).job_key))) for i in range(n)]
    rows = []
    previous = [0] * n
    for phase in ("submit", "claim", "success"):
        plain = sum(write_units(b, a) for b, a in zip(previous, sizes[phase], strict=True)) / n
        previous = sizes[phase]
        wru, rru = meter.wru[phase] / n, meter.rru[phase] / n
        dollars = (wru - plain) * price("dynamodb_wru") + rru * price("dynamodb_rru")
        rows.append([phase, f"{plain:.2f}", f"{wru:.2f}", f"{rru:.2f}", f"{dollars * 1e6:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moto", default=sized("1000,10000", "200"), help="job counts to run against moto")
    args = parser.parse_args()
    moto_sizes = [int(s) for s in args.moto.split(",") if s]
    rows = []
    item_bytes = SCAN_ITEM_BYTES  # a poll near the end of a run reads finished jobs (with attempts)
    for n in moto_sizes:
        got = moto_read(n)
        rows.append(_row(f"{n:,}", "moto", got, scan_cost(n, item_bytes)))
    for n in SIZES:
        rows.append(_row(f"{n:,}", "fakes", fake_read(n), scan_cost(n, item_bytes)))
    print(
        "job_statistics: one call (strongly consistent), counter items vs the scan of every job it replaces\n"
    )
    headers = [
        "jobs",
        "store",
        "requests",
        "bytes read",
        "RRU",
        "before: requests",
        "before: MB read",
        "before: RRU",
    ]
    print(table(headers, rows, "llrrrrrr"))
    print(f"\n(before: {item_bytes:.0f} B per job item, the mean finished job of requests_per_job.py)\n")
    print(
        f"write cost per job of keeping the counts (moto, {WRITE_JOBS} jobs; $ per million jobs, us-east-1):\n"
    )
    headers = ["write", "WRU without counts", "WRU with counts", "RRU (read-back)", "extra $ / 1M jobs"]
    print(table(headers, write_cost()))


def _row(n: str, store: str, got: dict[str, Any], before: dict[str, Any]) -> list[Any]:
    return [
        n,
        store,
        got["requests"],
        f"{got['bytes']:,}",
        f"{got['rru']:g}",
        f"{before['requests']:,}",
        f"{before['bytes'] / 1e6:,.1f}",
        f"{before['rru']:,.0f}",
    ]


if __name__ == "__main__":
    main()
