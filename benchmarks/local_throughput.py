"""Benchmark: the k-means land-cover demo over 64 tiles, GeoBatch local mode vs multiprocessing.Pool(2).

Run from the repo root: ``.venv/bin/python benchmarks/local_throughput.py [--rounds 1]``.

Local mode's S3 (moto in its own process, started by ``LocalStack`` on 127.0.0.1, objects kept on
disk) holds the synthetic scene, the model and the product for both runs; Functions, jobs and
queues are local mode's SQLite state. The plan is ``prepare_demo`` over a 3,600 x 3,600 px area (10 m) with
512 px tiles: 64 tiles (1024 px tiles would need a 7,000 px scene: 100 s to prepare and ~50 s per
run, too long for a routine benchmark). Baseline: ``run_tiles_in_process(plan, processes=2)``.
GeoBatch: a Function saved with the SDK from ``geobatch.landcover.job.classify_tile``
(requirements [], maximum_concurrency=2), built and ready BEFORE the clock starts; the clock runs
from ``fn.map`` to the results being fetched (``wait_for_completion`` polling every 0.25 s, then
``fn.results()``). The job records give where the time went: first job started after submit
(scaler + worker start-up), busy span, last end to completion seen, and the control-plane time
per job: (busy span x 2 workers - sum of the jobs' runtimes) / jobs, i.e. claim, record,
acknowledge and hand-over to the runner. A second run of 400 no-op jobs (concurrency 2) gives the
same figure with nothing else in it. Target: ≤ 1.15 x the Pool.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import sized, table

# Smoke: a handful of small tiles and no-op jobs, the same runs and tables.
WIDTH_PX = sized(3600, 256)
TILESIZE = sized(512, 256)
NOOP_JOBS = sized(400, 10)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_geobatch(fn: Any, plan: Any, stack: Any) -> dict[str, Any]:
    t_submit = time.time()
    t0 = time.perf_counter()
    jobs = fn.map(plan.job_args())
    t_mapped = time.perf_counter()
    fn.wait_for_completion(interval=0.25, progress=False)
    t_done = time.perf_counter()
    results = fn.results()
    wall = time.perf_counter() - t0
    run_geobatch.last_results = results  # type: ignore[attr-defined]
    assert len(results) == len(plan.tile_keys), (len(results), fn.job_statistics)
    ids = {j.id.split("-", 1)[1] for j in jobs}
    items, start = [], None
    while True:
        page, start = stack.services.jobs.query(fn.id, start=start, limit=1000, newest_first=False)
        items.extend(i for i in page if i.job_key in ids)
        if not start:
            break
    attempts = [(i.attempts or ())[-1] for i in items]
    started = sorted(_ts(a.started) for a in attempts)
    ended = sorted(_ts(a.ended) for a in attempts)
    return {
        "wall": wall,
        "map": t_mapped - t0,
        "first_start": started[0] - t_submit,
        "second_start": started[1] - t_submit if len(started) > 1 else float("nan"),
        "busy": ended[-1] - started[0],
        "tail": (t_submit + (t_done - t0)) - ended[-1],
        "fetch": wall - (t_done - t0),
        "runtime_sum": sum(float(a.runtime or 0) for a in attempts),
        "workers": len({a.worker_id for a in attempts}),
        "control_ms": ((ended[-1] - started[0]) * 2 - sum(float(a.runtime or 0) for a in attempts))
        / len(attempts)
        * 1000,
    }


def noop(x):
    return x


def run_noops(client: Any, stack: Any, jobs: int = NOOP_JOBS) -> dict[str, Any]:
    """Per-job control-plane time with nothing else in it: no-op jobs, concurrency 2."""
    import geobatch as gb

    fn = gb.Function(noop, name="noop-bench", maximum_concurrency=2, timeout=60, retry_count=0, client=client)
    fn.save()
    while fn.refresh().status not in (gb.FunctionStatus.READY, gb.FunctionStatus.BUILD_FAILED):
        time.sleep(0.1)

    class Plan:
        tile_keys = list(range(jobs))

        def job_args(self) -> list[list[int]]:
            return [[i] for i in self.tile_keys]

    return run_geobatch(fn, Plan(), stack)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    import geobatch as gb
    from geobatch.demo import demo_data_access
    from geobatch.landcover.job import classify_tile
    from geobatch.landcover.pipeline import prepare_demo, run_tiles_in_process
    from geobatch.local.stack import LocalOptions, LocalStack
    from geobatch.wire import env as core_env

    home = Path(tempfile.mkdtemp(prefix="geobatch-bench-"))
    options = LocalOptions(home=home, pip_args="--no-index")
    stack = LocalStack(options).start()
    try:
        stack.wait_ready()
        for key, value in stack.aws_env().items():
            os.environ[key] = value  # the Pool baseline and prepare_demo use the same moto server
        os.environ.pop(core_env.API_URL, None)
        import boto3

        s3 = boto3.client("s3", endpoint_url=stack.moto_url, region_name="us-east-1")
        t = time.perf_counter()
        plan = prepare_demo(s3, "geobatch-local", width_px=WIDTH_PX, height_px=WIDTH_PX, tilesize=TILESIZE)
        prep = time.perf_counter() - t
        client = gb.Client(stack.api_url)
        gb.set_default_client(client)
        fn = gb.Function(
            classify_tile,
            name="kmeans-bench",
            requirements=[],
            maximum_concurrency=2,
            cpus=1,
            memory=4096,
            timeout=900,
            retry_count=0,
            # What the job touches (model, archive, product), as the demo declares it: local mode's
            # jobs reach S3 only through their Function's declared locations.
            data_access=demo_data_access(plan),
            client=client,
        )
        t = time.perf_counter()
        fn.save()
        while fn.refresh().status not in (gb.FunctionStatus.READY, gb.FunctionStatus.BUILD_FAILED):
            time.sleep(0.1)
        assert fn.status == gb.FunctionStatus.READY, fn.status_reason
        build = time.perf_counter() - t
        print(
            f"{len(plan.tile_keys)} tiles of {TILESIZE} px; plan prepared in {prep:.1f} s; Function built in {build:.1f} s"
            f" (not timed); scale_interval {options.scale_interval} s, worker idle {options.worker_idle_seconds} s\n"
        )
        pool_walls, gb_runs = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            summaries = run_tiles_in_process(plan, processes=2)
            pool_walls.append(time.perf_counter() - t)
            assert len(summaries) == len(plan.tile_keys)
            pool_summaries = summaries
            time.sleep(
                options.worker_idle_seconds + 1
            )  # every worker of the last round has left: a cold start
            gb_runs.append(run_geobatch(fn, plan, stack))
            fn.delete_jobs(delete_results=True)  # the next round fetches its own results only
        pool = statistics.median(pool_walls)
        geob = statistics.median(r["wall"] for r in gb_runs)
        rows = [
            [f"multiprocessing.Pool(2) (round {i + 1})", f"{w:.2f}", ""] for i, w in enumerate(pool_walls)
        ]
        rows += [
            [
                f"GeoBatch local, concurrency 2 (round {i + 1})",
                f"{r['wall']:.2f}",
                f"{r['wall'] / pool_walls[i]:.2f}x",
            ]
            for i, r in enumerate(gb_runs)
        ]
        rows.append(["**median ratio**", "", f"**{geob / pool:.2f}x**"])
        print(table(["run", "wall s", "GeoBatch / Pool"], rows, "lrr"))
        r = gb_runs[-1]
        print("\nWhere GeoBatch's time went (last round, seconds):\n")
        print(
            table(
                ["part", "s"],
                [
                    [f"fn.map (1 request, {len(plan.tile_keys)} jobs)", f"{r['map']:.2f}"],
                    ["submit -> first job started (scaler + worker start-up)", f"{r['first_start']:.2f}"],
                    ["submit -> second job started", f"{r['second_start']:.2f}"],
                    ["first start -> last end (busy span)", f"{r['busy']:.2f}"],
                    ["last end -> completion seen by wait_for_completion", f"{r['tail']:.2f}"],
                    ["fetch results (fn.results())", f"{r['fetch']:.2f}"],
                    ["Σ job runtime (runner) / 2 workers", f"{r['runtime_sum'] / 2:.2f}"],
                    ["workers used", str(r["workers"])],
                    ["control plane per job, ms ((busy x 2 - Σ runtime) / jobs)", f"{r['control_ms']:.1f}"],
                ],
            )
        )
        from geobatch.landcover.pipeline import summarize

        ps = summarize(pool_summaries)["seconds_mean"]
        gs = summarize(run_geobatch.last_results)["seconds_mean"]  # type: ignore[attr-defined]
        print("\nPer-tile stage seconds (mean, as run_tile measures them inside the job):\n")
        print(
            table(
                ["stage", "Pool", "GeoBatch"],
                [[k, f"{ps[k]:.3f}", f"{gs.get(k, float('nan')):.3f}"] for k in ps],
            )
        )
        n = run_noops(client, stack)
        print(
            f"\n{NOOP_JOBS} no-op jobs, concurrency 2: {n['wall']:.2f} s from fn.map to results, busy span "
            f"{n['busy']:.2f} s: control plane {n['control_ms']:.1f} ms per job"
        )
        print(
            f"\nTarget GeoBatch <= 1.15 x Pool: {'MET' if geob / pool <= 1.15 else 'MISSED'} ({geob / pool:.2f}x)"
        )
    finally:
        gb.set_default_client(None)
        stack.stop()


if __name__ == "__main__":
    main()
