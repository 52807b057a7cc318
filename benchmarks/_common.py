"""Shared helpers of the benchmarks: a ready Function through the real services, bundles, tables."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
for sub in ("lambdas", "batch_image", "sdk", "benchmarks", "."):
    if str((ROOT / sub).resolve()) not in sys.path:
        sys.path.insert(0, str((ROOT / sub).resolve()))

from run_all import SMOKE  # noqa: E402  (the smoke switch; run_all names it for the tests)

from tests import moto_transactions  # noqa: E402  (needs the path above)

moto_transactions.install()  # moto's transactions at DynamoDB's cost: no whole-table copies

ALICE = "arn:aws:iam::123456789012:user/alice"

T = TypeVar("T")


def sized(full: T, smoke: T) -> T:
    """``full``, the size the published figures come from; ``smoke`` under ``GEOBATCH_BENCH_SMOKE=1``
    (small enough to run in seconds, still through every table and backend of the script)."""
    return smoke if os.environ.get(SMOKE, "") not in ("", "0") else full


NOOP_SOURCE = """
def noop(i):
    return i
"""


def ready_function(svc: Any, source: str = NOOP_SOURCE, name: str = "noop", **settings: Any) -> Any:
    """A Function through the real services with its bundle uploaded, marked ready (the image build
    is not what these benchmarks measure); the tests' helper (tests/support.py): its record."""
    from tests.support import ready_function as ready

    return ready(svc, source, name, ALICE, build=False, image_uri="local", **settings)


def bench_worker(svc: Any, fn: Any, **options: Any) -> Any:
    """The real ``Worker`` for ``fn``'s queue, in this process: it exits as soon as the queue is empty
    (``options``: the worker's other collaborators, e.g. ``metrics``)."""
    from geobatch_worker.loop import Worker, WorkerConfig

    config = WorkerConfig(
        function_id=fn.id, queue_url=fn.queue_url, worker_id="bench", idle_seconds=0.0, poll_seconds=0
    )
    return Worker.for_services(config, svc, **options)


def aws_test_env() -> None:
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "GEOBATCH_API_URL"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )


def table(headers: list[str], rows: list[list[Any]], aligns: str | None = None) -> str:
    """A GitHub-markdown table (pastes straight into README.md)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    aligns = aligns or "l" + "r" * (len(headers) - 1)

    def fmt(row: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, aligns, strict=True)
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1))
            for w, a in zip(widths, aligns, strict=True)
        )
        + "|"
    )
    return "\n".join([fmt(headers), sep, *(fmt(r) for r in cells)])
