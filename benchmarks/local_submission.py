"""Benchmark: submitting a CONUS-sized map to local mode, time per bulk of 1,000 jobs.

Run from the repo root: ``.venv/bin/python benchmarks/local_submission.py [--jobs 80000]``.

Local mode as ``geobatch local up`` runs it (``LocalStack`` in this process, a fresh home: SQLite
state, S3 on disk), a Function saved with ``auto_start=False`` so it stays stopped and no worker
competes with the submission, then ``fn.map`` one bulk of 1,000 ``(tile key, "landcover-v1")``
argument tuples at a time (the SDK's own bulk size), timing each request end to end: SDK encoding
and signing, the API handler, the job writes and the queue sends. The cost per job must be flat:
the last bulks no slower than the first (moto's SQS, the previous backend, took 11.8 s for the
first bulk and 94.8 s for the fifth).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 (puts the packages on sys.path)
from _common import sized, table

BULK = 1000


def keep(x, tag):
    return x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=sized(80_000, 5_000))
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    import geobatch as gb
    from geobatch.local.stack import LocalOptions, LocalStack

    home = Path(tempfile.mkdtemp(prefix="geobatch-submit-"))
    stack = LocalStack(LocalOptions(home=home, pip_args="--no-index")).start()
    try:
        stack.wait_ready()
        client = gb.Client(stack.api_url)
        fn = gb.Function(keep, name="submit-bench", auto_start=False, client=client)
        fn.save()
        while fn.refresh().status not in (gb.FunctionStatus.STOPPED, gb.FunctionStatus.BUILD_FAILED):
            time.sleep(0.1)
        seconds: list[float] = []
        for start in range(0, args.jobs, BULK):
            bulk = [
                (f"32618:1024:10:0:{i % 400}:{i // 400}", "landcover-v1") for i in range(start, start + BULK)
            ]
            t = time.perf_counter()
            submitted = fn.map(bulk)
            seconds.append(time.perf_counter() - t)
            assert submitted.is_success and len(submitted) == BULK
        stats = fn.refresh().job_statistics
        assert stats.get("pending", 0) == len(seconds) * BULK, stats
        shown = sorted(
            {0, 1, 4, 9, *range(19, len(seconds), 20), len(seconds) - 1} & set(range(len(seconds)))
        )
        rows = [[str(i + 1), f"{seconds[i]:.2f}", f"{seconds[i] / BULK * 1000:.2f}"] for i in shown]
        first, last = statistics.median(seconds[:5]), statistics.median(seconds[-5:])
        print(
            f"{len(seconds) * BULK:,} jobs in bulks of {BULK:,} to local mode (SQLite state), stopped Function\n"
        )
        print(table(["bulk", "s", "ms per job"], rows, "rrr"))
        print(
            f"\ntotal {sum(seconds):.1f} s, {sum(seconds) / len(seconds) / BULK * 1000:.2f} ms per job; "
            f"median of the last 5 bulks / first 5: {last / first:.2f}x (flat: about 1)"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
