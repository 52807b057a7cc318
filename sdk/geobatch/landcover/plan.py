"""Scale planning: how many jobs a shape makes, how long they take and what they cost on Fargate.

Model: one job per tile; ``concurrency`` workers each run jobs back to back, so wall time is
``startup + ceil(jobs / workers) * seconds_per_tile``; every worker is billed (per second) for the whole wall
time, since Fargate bills running tasks, idle or not. The control plane (queue, API, job records) is a
separate per-job cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# AWS Fargate on-demand, Linux/x86, us-east-1, read from the AWS Fargate pricing page in 2026.
FARGATE_PRICES_USD: dict[str, float] = {"vcpu_hour": 0.04048, "gb_hour": 0.004445}
DEFAULT_CONTROL_PLANE_USD_PER_MILLION_JOBS = 3.0


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
    compute_usd: float
    control_plane_usd: float
    total_usd: float
    usd_per_tile: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def estimate(
    shape: Any,
    *,
    resolution: float = 10.0,
    tilesize: int = 1024,
    pad: int = 0,
    seconds_per_tile: float = 1.0,
    concurrency: int = 100,
    vcpus: float = 1.0,
    memory_gb: float = 2.0,
    worker_startup_seconds: float = 60.0,
    control_plane_usd_per_million_jobs: float = DEFAULT_CONTROL_PLANE_USD_PER_MILLION_JOBS,
    prices: dict[str, float] | None = None,
) -> PlanEstimate:
    """Estimate jobs, wall time and cost to process ``shape`` (GeoJSON/shapely, or an int tile count)."""
    if isinstance(shape, int):
        tiles, zones = shape, 0
    else:
        from geobatch.tiles import Tile

        zone_set: set[int] = set()
        tiles = 0
        for t in Tile.iter_from_shape(shape, resolution, tilesize, pad):
            tiles += 1
            zone_set.add(t.zone)
        zones = len(zone_set)
    p = prices or FARGATE_PRICES_USD
    jobs = tiles
    workers = max(1, min(concurrency, jobs)) if jobs else 0
    waves = math.ceil(jobs / workers) if workers else 0
    wall = (worker_startup_seconds + waves * seconds_per_tile) if jobs else 0.0
    billed_hours = workers * wall / 3600.0
    busy_hours = jobs * seconds_per_tile / 3600.0
    compute = billed_hours * (vcpus * p["vcpu_hour"] + memory_gb * p["gb_hour"])
    control = jobs / 1e6 * control_plane_usd_per_million_jobs
    total = compute + control
    return PlanEstimate(
        tiles=tiles,
        jobs=jobs,
        zones=zones,
        workers=workers,
        waves=waves,
        seconds_per_tile=seconds_per_tile,
        wall_seconds=wall,
        busy_worker_hours=busy_hours,
        billed_worker_hours=billed_hours,
        vcpus=vcpus,
        memory_gb=memory_gb,
        compute_usd=compute,
        control_plane_usd=control,
        total_usd=total,
        usd_per_tile=total / jobs if jobs else 0.0,
    )


def format_plan(plan: PlanEstimate) -> str:
    """Human-readable multi-line summary of an estimate."""
    hours, rem = divmod(plan.wall_seconds, 3600)
    minutes, seconds = divmod(rem, 60)
    return "\n".join(
        [
            f"tiles / jobs        {plan.tiles:,} / {plan.jobs:,}"
            + (f" in {plan.zones} UTM zones" if plan.zones else ""),
            f"workers             {plan.workers:,} x ({plan.vcpus:g} vCPU, {plan.memory_gb:g} GB)"
            f", {plan.waves:,} waves",
            f"per tile            {plan.seconds_per_tile:.2f} s",
            f"wall time           {int(hours)}h {int(minutes):02d}m {seconds:04.1f}s",
            f"worker hours        {plan.busy_worker_hours:,.2f} busy, {plan.billed_worker_hours:,.2f} billed",
            f"compute (Fargate)   ${plan.compute_usd:,.2f}",
            f"control plane       ${plan.control_plane_usd:,.4f}",
            f"total               ${plan.total_usd:,.2f}  (${plan.usd_per_tile:.6f} per tile)",
        ]
    )
