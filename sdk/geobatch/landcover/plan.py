"""Scale planning: how many jobs a shape makes, how long they take and what they cost on Fargate.

Model: one job per tile; ``workers`` run jobs back to back, so wall time is
``startup + ceil(jobs / workers) * seconds_per_tile``; every worker is billed (per second) for the whole wall
time, since Fargate bills running tasks, idle or not. Workers are capped by the stack's compute
environment (``max_vcpus`` in ``cdk.json``'s context) divided by the job's vCPUs. The control plane
(queue, API, job records), the job's own S3 requests and its log ingestion are separate per-job costs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# AWS list prices, us-east-1, read from the AWS pricing pages in 2026.
FARGATE_PRICES_USD: dict[str, float] = {"vcpu_hour": 0.04048, "gb_hour": 0.004445}
S3_PRICES_USD: dict[str, float] = {"get_per_1000": 0.0004, "put_per_1000": 0.005}
LOGS_USD_PER_GB = 0.50  # CloudWatch Logs ingestion (standard class)
# Measured, not the $3 target: benchmarks/requests_per_job.py (with the workers' job metrics).
DEFAULT_CONTROL_PLANE_USD_PER_MILLION_JOBS = 6.92

#: The stack's default when cdk.json does not say (stacks/config.py).
DEFAULT_MAX_VCPUS = 256
#: Resources of the land-cover Function the demo saves (``geobatch demo``).
LANDCOVER_CPUS = 1.0
LANDCOVER_MEMORY_MB = 4096


@dataclass(frozen=True)
class JobTraffic:
    """What one land-cover job asks of S3 and CloudWatch Logs (defaults: a 1024 px tile, 2 scenes).

    GETs in the job's own bucket: the model and the tile's scene list. Archive GETs (the public
    ``sentinel-cogs`` bucket is paid by its owner, so they cost the run nothing): per scene and asset
    (nir, red, green, scl) one header read plus about one merged range request per row of 512 px
    blocks the tile touches. PUTs: the COG and its STAC Item.
    """

    own_gets: int = 2
    archive_gets: int = 40
    puts: int = 2
    log_kb: float = 4.0

    @classmethod
    def for_tile(cls, tilesize: int = 1024, scenes: int = 2, log_kb: float = 4.0) -> JobTraffic:
        """Traffic of a tile of ``tilesize`` px composited from ``scenes`` scenes (4 assets each)."""
        block_rows = math.ceil(tilesize / 512) + 1
        return cls(archive_gets=scenes * 4 * (1 + block_rows), log_kb=log_kb)


@dataclass(frozen=True)
class PlanEstimate:
    """Result of :func:`estimate` (all costs in USD, times in seconds)."""

    tiles: int
    jobs: int
    zones: int
    workers: int
    waves: int
    seconds_per_tile: float
    wall_seconds: float
    busy_worker_hours: float
    billed_worker_hours: float
    vcpus: float
    memory_gb: float
    max_vcpus: int
    compute_usd: float
    control_plane_usd: float
    s3_requests: int
    archive_requests: int
    s3_usd: float
    log_gb: float
    logs_usd: float
    total_usd: float
    usd_per_tile: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def stack_max_vcpus(cdk_json: str | Path = "cdk.json") -> int:
    """``max_vcpus`` from a cdk.json's context (the deployed compute environment's cap), else the default."""
    path = Path(cdk_json)
    if not path.is_file():
        return DEFAULT_MAX_VCPUS
    value = json.loads(path.read_text()).get("context", {}).get("max_vcpus", DEFAULT_MAX_VCPUS)
    return int(value)


def _count_tiles(shape: Any, resolution: float, tilesize: int, pad: int) -> tuple[int, int]:
    if isinstance(shape, int):
        return shape, 0
    from geobatch.tiles import Tile

    zone_set: set[int] = set()
    tiles = 0
    for t in Tile.iter_from_shape(shape, resolution, tilesize, pad):
        tiles += 1
        zone_set.add(t.zone)
    return tiles, len(zone_set)


def estimate(
    shape: Any,
    *,
    resolution: float = 10.0,
    tilesize: int = 1024,
    pad: int = 0,
    seconds_per_tile: float = 1.0,
    concurrency: int | None = None,
    vcpus: float = LANDCOVER_CPUS,
    memory_gb: float = LANDCOVER_MEMORY_MB / 1024,
    max_vcpus: int = DEFAULT_MAX_VCPUS,
    worker_startup_seconds: float = 60.0,
    traffic: JobTraffic | None = None,
    control_plane_usd_per_million_jobs: float = DEFAULT_CONTROL_PLANE_USD_PER_MILLION_JOBS,
    prices: dict[str, float] | None = None,
) -> PlanEstimate:
    """Estimate jobs, wall time and cost to process ``shape`` (GeoJSON/shapely, or an int tile count).

    ``concurrency`` is the Function's ``maximum_concurrency`` (None: as many as the stack allows);
    the stack allows ``floor(max_vcpus / vcpus)`` workers at once.
    """
    tiles, zones = _count_tiles(shape, resolution, tilesize, pad)
    p = prices or FARGATE_PRICES_USD
    jobs = tiles
    cap = max(1, math.floor(max_vcpus / vcpus))
    limit = cap if concurrency is None else min(concurrency, cap)
    workers = max(1, min(limit, jobs)) if jobs else 0
    waves = math.ceil(jobs / workers) if workers else 0
    wall = (worker_startup_seconds + waves * seconds_per_tile) if jobs else 0.0
    billed_hours = workers * wall / 3600.0
    compute = billed_hours * (vcpus * p["vcpu_hour"] + memory_gb * p["gb_hour"])
    control = jobs / 1e6 * control_plane_usd_per_million_jobs
    t = traffic or JobTraffic.for_tile(tilesize + 2 * pad)
    s3_usd = (
        jobs * (t.own_gets * S3_PRICES_USD["get_per_1000"] + t.puts * S3_PRICES_USD["put_per_1000"]) / 1000
    )
    log_gb = jobs * t.log_kb / 1024 / 1024
    total = compute + control + s3_usd + log_gb * LOGS_USD_PER_GB
    return PlanEstimate(
        tiles=tiles, jobs=jobs, zones=zones, workers=workers, waves=waves,
        seconds_per_tile=seconds_per_tile, wall_seconds=wall,
        busy_worker_hours=jobs * seconds_per_tile / 3600.0, billed_worker_hours=billed_hours,
        vcpus=vcpus, memory_gb=memory_gb, max_vcpus=max_vcpus,
        compute_usd=compute, control_plane_usd=control,
        s3_requests=jobs * (t.own_gets + t.puts), archive_requests=jobs * t.archive_gets, s3_usd=s3_usd,
        log_gb=log_gb, logs_usd=log_gb * LOGS_USD_PER_GB,
        total_usd=total, usd_per_tile=total / jobs if jobs else 0.0,
    )  # fmt: skip


def format_plan(plan: PlanEstimate) -> str:
    """Human-readable multi-line summary of an estimate."""
    hours, rem = divmod(plan.wall_seconds, 3600)
    minutes, seconds = divmod(rem, 60)
    return "\n".join(
        [
            f"tiles / jobs        {plan.tiles:,} / {plan.jobs:,}"
            + (f" in {plan.zones} UTM zones" if plan.zones else ""),
            f"workers             {plan.workers:,} x ({plan.vcpus:g} vCPU, {plan.memory_gb:g} GB)"
            f", {plan.waves:,} waves (stack max_vcpus {plan.max_vcpus:,})",
            f"per tile            {plan.seconds_per_tile:.2f} s",
            f"wall time           {int(hours)}h {int(minutes):02d}m {seconds:04.1f}s",
            f"worker hours        {plan.busy_worker_hours:,.2f} busy, {plan.billed_worker_hours:,.2f} billed",
            f"compute (Fargate)   ${plan.compute_usd:,.2f}",
            f"control plane       ${plan.control_plane_usd:,.4f}",
            f"S3 requests         ${plan.s3_usd:,.4f}  ({plan.s3_requests:,} own-bucket GET/PUT;"
            f" {plan.archive_requests:,} archive GETs, free to the requester)",
            f"log ingestion       ${plan.logs_usd:,.4f}  ({plan.log_gb:,.3f} GB)",
            f"total               ${plan.total_usd:,.2f}  (${plan.usd_per_tile:.6f} per tile)",
        ]
    )
