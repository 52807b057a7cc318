"""Cost of one page of a sorted job listing, from 1k to 1M jobs: store requests, items read, read
request units and response bytes, through the real ``services.jobs.list_jobs``.

Against the in-memory stores of ``fakes.py`` (checked against moto and SQLite by the state contract
tests) at 1k, 10k and 100k jobs, and moto's DynamoDB at 1k; the 1M row is the cost model (the
measured per-page reads, which do not depend on the number of jobs, times the measured item size),
since a million items do not fit the benchmark machine's memory in the fakes. RRU follow AWS's
rules (``dynamo_size``): each Query rounds the summed size of the items it read up to 4 KB,
eventually consistent (half a unit). Run: ``.venv/bin/python benchmarks/listing.py``.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import ALICE, aws_test_env, sized, table
from dynamo_size import item_size, read_units
from fakes import FakeBlobStore, FakeFunctionStore, FakeJobStore, FakeQueue

from geobatch_core.adapters.dynamodb_items import serialize
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services import jobs as job_service
from geobatch_core.services.context import Services
from tests.support import compose_stores

FUNCTIONS = 4
PAGE = 100
LISTINGS = {
    "all Functions, time order": {},
    "all Functions, newest first": {"sort": "-creation_date"},
    "one Function, -runtime": {"function_id": "fn0", "sort": "-runtime"},
    "one Function, last_completion_date": {"function_id": "fn0", "sort": "last_completion_date"},
    "one Function, key order": {"function_id": "fn0"},
}


class Counting:
    """A JobStore that counts the listing's reads: requests, items, RRU."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.requests = self.items = 0
        self.rru = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _count(self, jobs: list[JobRecord]) -> None:
        self.requests += 1
        self.items += len(jobs)
        self.rru += read_units(sum(item_size(serialize(j.to_item())) for j in jobs), consistent=False)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        items, last = self._inner.query(*args, **kwargs)
        self._count(items)
        return items, last

    def query_index(self, *args: Any, **kwargs: Any) -> Any:
        items, last = self._inner.query_index(*args, **kwargs)
        self._count(items)
        return items, last


def job_items(n: int, seed: int = 7) -> list[JobRecord]:
    """Jobs as submission writes them, nine in ten finished (with a runtime and a completion)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        created = f"2026-01-01T00:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
        job = JobRecord(
            function_id=f"fn{i % FUNCTIONS}",
            job_key=f"{1_700_000_000_000 + i:011x}{i:011x}",
            owner=ALICE,
            status="pending",
            creation_date=created,
            tags=["tile", "landcover-v1"],
            reference_id=f"ref-{i // 1000}",
            run=0,
            execution_count=0,
            payload=json.dumps({"args": [f"tile-{i}", "landcover-v1"], "kwargs": {}}),
        )
        if rng.random() < 0.9:
            job = dataclasses.replace(
                job,
                status="success",
                execution_count=1,
                runtime=round(rng.uniform(5, 900), 3),
                last_completion_date=f"2026-01-02T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00.000Z",
            )
        out.append(job)
    return out


class NoWorkers:
    """No executor is measured here: a pending job's page asks it for its workers once."""

    def worker_states(self, function: Any) -> dict[str, int]:
        return {}


def services(jobs: Any, functions: Any) -> Services:
    for f in range(FUNCTIONS):
        functions.put_new(
            FunctionRecord(
                id=f"fn{f}", owner=ALICE, status="ready", creation_date=f"2025-12-0{f + 1}T00:00:00Z"
            )
        )
    svc: Services = compose_stores(functions, jobs, FakeQueue(), FakeBlobStore(), executor=NoWorkers())
    return svc


def measure(svc: Services, counting: Counting, query: dict[str, Any], deep: int = 5) -> list[float]:
    """Reads of the first page and of page ``deep`` (after following the cursor)."""
    cursor, rows = None, []
    for number in range(1, deep + 1):
        counting.requests = counting.items = 0
        counting.rru = 0.0
        page = job_service.list_jobs(svc, ALICE, page_size=PAGE, cursor=cursor, **({} if cursor else query))
        if number in (1, deep):
            size = len(page.model_dump_json())
            rows.append([counting.requests, counting.items, counting.rru, size, len(page.data)])
        cursor = page.meta.page_cursor
    return [sum(r[i] for r in rows) / len(rows) for i in range(5)]


def run_fakes(n: int) -> dict[str, list[float]]:
    store = FakeJobStore()
    store.put_new_batch(job_items(n), check_existing=False)
    counting = Counting(store)
    svc = services(counting, FakeFunctionStore())
    return {name: measure(svc, counting, query) for name, query in LISTINGS.items()}


def run_moto(n: int) -> dict[str, list[float]]:
    import boto3
    from moto import mock_aws

    from geobatch_core.adapters import provision
    from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore

    aws_test_env()
    with mock_aws():
        client = boto3.session.Session(region_name="us-east-1").client("dynamodb")
        provision.create_tables(client, "functions", "jobs")
        store = DynamoJobStore(client, "jobs")
        store.put_new_batch(job_items(n), check_existing=False)
        counting = Counting(store)
        svc = services(counting, DynamoFunctionStore(client, "functions"))
        return {name: measure(svc, counting, query) for name, query in LISTINGS.items()}


def main() -> None:
    results: list[tuple[str, int, dict[str, list[float]]]] = []
    moto_jobs = sized(1000, 200)  # smoke: still two pages of all Functions
    results.append(("moto", moto_jobs, run_moto(moto_jobs)))
    for n in sized((1000, 10_000, 100_000), (1000, 2000)):
        results.append(("fakes", n, run_fakes(n)))
        print(f"measured {n} jobs", flush=True)
    per_item = results[-1][2]
    results.append(("model", 1_000_000, per_item))  # the reads per page do not depend on the size
    rows = []
    for name in LISTINGS:
        for backend, n, measured in results:
            requests, items, rru, size, count = measured[name]
            rows.append(
                [
                    name,
                    backend,
                    f"{n:,}",
                    f"{requests:.0f}",
                    f"{items:.0f}",
                    f"{rru:.1f}",
                    f"{size / 1000:.1f}",
                    f"{count:.0f}",
                ]
            )
    headers = [
        "listing (page of 100)",
        "store",
        "jobs",
        "requests",
        "items read",
        "RRU",
        "KB answered",
        "jobs on page",
    ]
    print(table(headers, rows, "lllrrrrr"))
    print("\nAveraged over the first page and the fifth (reached by following the cursor).")


if __name__ == "__main__":
    main()
