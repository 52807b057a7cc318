"""Benchmark: ``Function.map`` over the CONUS tile keys — HTTP requests and the SDK's own CPU time.

Run from the repo root: ``.venv/bin/python benchmarks/submission.py``.

The keys are the 1024 px / 10 m cover of the CONUS outline (``geobatch.tiles.Tile.from_shape`` over
``geobatch.landcover.regions.conus_geojson``), truncated to 78,899 (Descartes Labs' count), with the
arguments of the design's example ``(tile.key, "landcover-v1")``. The server is a small HTTP server on
127.0.0.1 in ANOTHER process: it answers ``POST /jobs/bulk`` with exactly what the API answers
(``services.jobs.submit_jobs`` over the in-memory fakes of ``benchmarks/fakes.py``, serialized like
the API's ``created()``), and counts requests and bytes. The SDK's CPU time is
``time.process_time()`` in this (client) process around ``fn.map`` — building, validating,
encoding, signing (SigV4 hashes each body), sending, and parsing the 1,000-job answers — so the
server's time is excluded by construction. Targets: ≤ 80 requests, < 5 s of SDK CPU.
"""

from __future__ import annotations

import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import _common
from _common import ALICE, sized, table

FUNCTION_ID = "0123456789ab"
TILES = sized(78_899, 2_000)  # smoke: two requests
API_GATEWAY_MAX = 10 * 1024 * 1024
LAMBDA_MAX = 6 * 1024 * 1024


def _function() -> Any:
    from geobatch_core.records import FunctionRecord

    return FunctionRecord(
        id=FUNCTION_ID,
        owner=ALICE,
        name="kmeans-conus",
        status="ready",
        creation_date="2025-06-01T00:00:00.000Z",
        modified_date="2025-06-01T00:00:00.000Z",
        entrypoint="__gbentry__:main",
        image="python3.11",
        requirements=["scikit-learn"],
        cpus=1.0,
        memory=2048,
        maximum_concurrency=500,
        timeout=900,
        retry_count=3,
        environment={},
        enabled=True,
        auto_start=True,
        queue_url="fake://q",
        dlq_url="fake://q-dlq",
        bundle_key=f"bundles/{FUNCTION_ID}.zip",
        image_uri="local",
    )


def serve(port_out: Any, stats: Any) -> None:
    """Server process: the real submit service over fakes, behind a minimal HTTP handler."""
    import _common  # noqa: F401
    from fakes import FakeBlobStore, FakeFunctionStore, FakeJobStore, FakeQueue

    from geobatch.wire.models import JobBulkCreate
    from geobatch_core import wiring
    from geobatch_core.adapters.environment import Stores
    from geobatch_core.services import jobs as job_service

    queue = FakeQueue()
    queue.create("q", max_receive_count=5, visibility_seconds=60)
    stores = Stores(FakeFunctionStore(), FakeJobStore(), queue, FakeBlobStore())
    svc = wiring.compose(stores, executor=None, builder=None)  # type: ignore[arg-type]
    svc.functions.put_new(_function())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bulk = JobBulkCreate.model_validate_json(body)
            out = job_service.submit_jobs(svc, ALICE, bulk).model_dump_json().encode()
            with stats.get_lock():
                stats[0] += 1
                stats[1] += len(body)
                stats[2] = max(stats[2], len(body))
                stats[3] = max(stats[3], len(out))
                stats[4] += bulk.count
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    _common.aws_test_env()
    import geobatch as gb
    from geobatch.landcover.regions import conus_geojson
    from geobatch.tiles import Tile
    from geobatch_core.services.functions import to_wire

    t = time.perf_counter()
    tiles = Tile.from_shape(conus_geojson(), 10.0, 1024, 0)
    cover_s = time.perf_counter() - t
    keys = [tile.key for tile in tiles][:TILES]
    args = [(key, "landcover-v1") for key in keys]

    ctx = multiprocessing.get_context("spawn")
    port_q = ctx.Queue()
    stats = ctx.Array("d", 5)
    server = ctx.Process(target=serve, args=(port_q, stats), daemon=True)
    server.start()
    try:
        port = port_q.get(timeout=60)
        client = gb.Client(f"http://127.0.0.1:{port}", region="us-east-1")
        fn = gb.Function._from_wire(to_wire(_function()).model_dump(mode="json"), client)
        client._get_credentials()  # boto3 session + credential chain: once per program, not per request
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = fn.map(args)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert result.is_success and len(result) == len(args), (
            len(result),
            result.errors if hasattr(result, "errors") else "",
        )
        assert len({job.id for job in result}) == len(args)
    finally:
        server.kill()
        server.join(5)
    requests, sent, max_req, max_resp, jobs = (int(v) for v in stats[:])
    print(
        f"fn.map over {len(args):,} CONUS tile keys ({len(tiles):,} in the cover, computed in {cover_s:.1f} s, not counted)\n"
    )
    print(
        table(
            ["measure", "value", "target"],
            [
                ["HTTP requests (POST /jobs/bulk)", f"{requests}", "<= 80"],
                ["jobs per request", f"{jobs / requests:,.0f}", "1,000"],
                ["jobs created (server count)", f"{jobs:,}", f"{len(args):,}"],
                ["request bytes total", f"{sent / 1e6:.2f} MB", ""],
                ["largest request body", f"{max_req / 1e3:.0f} kB", "< 6 MiB (Lambda), < 10 MiB (API GW)"],
                ["largest response body", f"{max_resp / 1e3:.0f} kB", "< 6 MiB (Lambda response)"],
                ["SDK CPU time (client process)", f"{cpu:.2f} s", "< 5 s"],
                ["SDK CPU per request", f"{cpu / requests * 1000:.1f} ms", ""],
                ["wall time (incl. server)", f"{wall:.2f} s", ""],
            ],
            "lrl",
        )
    )
    print(
        f"\nTargets: requests <= 80: {'MET' if requests <= 80 else 'MISSED'}; SDK CPU < 5 s: {'MET' if cpu < 5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
