"""A background bulk cancel of 10k and 100k pending jobs: pages, store requests per page and the
control plane's own time per page, through the real ``services.operations`` on the in-memory
stores of ``fakes.py``; with the DynamoDB cost of a page (a Query, then a conditional UpdateItem
per job) from ``dynamo_size``. Run: ``.venv/bin/python benchmarks/operations.py``.
"""

from __future__ import annotations

import dataclasses
import time

import _common
from dynamo_size import item_size, read_units, write_units
from fakes import FakeBlobStore, FakeFunctionStore, FakeJobStore, FakeQueue
from listing import NoWorkers, job_items
from prices import price

from geobatch.wire.models import JobQuery
from geobatch_core.adapters.dynamodb_items import serialize
from geobatch_core.records import FunctionRecord
from geobatch_core.services import operations
from tests.support import compose_stores


def run(n: int) -> list[str]:
    jobs = FakeJobStore()
    items = [
        dataclasses.replace(j, function_id="fn0", status="pending", runtime=None, last_completion_date=None)
        for j in job_items(n)
    ]
    jobs.put_new_batch(items, check_existing=False)
    functions = FakeFunctionStore()
    functions.put_new(
        FunctionRecord(id="fn0", owner=_common.ALICE, status="stopped", creation_date="2025-12-01")
    )
    svc = compose_stores(functions, jobs, FakeQueue(), FakeBlobStore(), executor=NoWorkers())
    op = operations.start(svc, _common.ALICE, "cancel", JobQuery(function_id="fn0"))
    assert isinstance(op, operations.Operation)
    jobs.calls = 0
    started = time.perf_counter()
    pages = 0
    while not operations.get_operation(svc, _common.ALICE, op.id).state.is_final:
        pages += operations.run_operations(svc, seconds=600, max_pages=1)
    seconds = time.perf_counter() - started
    done = operations.get_operation(svc, _common.ALICE, op.id)
    size = item_size(serialize(items[0].to_item()))
    rru_page = read_units(size * 1000, consistent=False)
    wru_page = 1000 * write_units(size) * 2  # the table's item and its owner-created index copy
    cost = (rru_page * price("dynamodb_rru") + wru_page * price("dynamodb_wru")) * pages
    return [
        f"{n:,}",
        f"{pages}",
        f"{done.changed:,}",
        f"{jobs.calls / pages:,.0f}",
        f"{1000 * seconds / pages:,.0f}",
        f"{rru_page:.0f} RRU + {wru_page:,} WRU",
        f"${cost:.4f}",
    ]


def main() -> None:
    # Smoke: two full pages of 1,000 and a part page.
    rows = [run(n) for n in _common.sized((10_000, 100_000), (2_500,))]
    headers = [
        "pending jobs",
        "pages",
        "canceled",
        "store requests / page",
        "ms / page (fakes)",
        "DynamoDB / page",
        "DynamoDB cost",
    ]
    print(_common.table(headers, rows, "lrrrrrr"))
    print(
        "\nA page is one Query of 1,000 jobs and one conditional UpdateItem per job (plus the operation's"
        "\nprogress write); each update also writes the job's copy in the owner-created index. The fakes' time is the control plane's own (predicate, state machine); in AWS"
        "\neach UpdateItem adds a round trip (a few ms), so a 20 s pass budget applies a few pages."
    )


if __name__ == "__main__":
    main()
