"""Scale-plan estimate arithmetic."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from geobatch.landcover.plan import FARGATE_PRICES_USD, estimate, format_plan

pytestmark = pytest.mark.geo


def test_estimate_from_tile_count() -> None:
    est = estimate(
        1000,
        seconds_per_tile=2.0,
        concurrency=100,
        vcpus=1.0,
        memory_gb=2.0,
        worker_startup_seconds=60.0,
        control_plane_usd_per_million_jobs=3.0,
    )
    assert (est.jobs, est.workers, est.waves) == (1000, 100, 10)
    assert est.wall_seconds == 60.0 + 10 * 2.0
    assert est.billed_worker_hours == pytest.approx(100 * 80 / 3600)
    per_hour = 1.0 * FARGATE_PRICES_USD["vcpu_hour"] + 2.0 * FARGATE_PRICES_USD["gb_hour"]
    assert est.compute_usd == pytest.approx(100 * 80 / 3600 * per_hour)
    assert est.control_plane_usd == pytest.approx(0.003)
    assert est.total_usd == pytest.approx(est.compute_usd + est.control_plane_usd)
    assert est.busy_worker_hours == pytest.approx(2000 / 3600)


def test_estimate_from_shape_and_format() -> None:
    est = estimate(box(-73.5, 43.9, -73.3, 44.1), concurrency=1000, seconds_per_tile=1.0)
    assert est.tiles == est.jobs > 0 and est.zones == 1
    assert est.workers == est.jobs  # fewer jobs than concurrency: one wave
    text = format_plan(est)
    assert "tiles / jobs" in text and "total" in text
    assert estimate(0).total_usd == 0.0
