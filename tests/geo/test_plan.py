"""Scale-plan estimate arithmetic, and its defaults from the stack's context and the land-cover Function."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from shapely.geometry import box

from geobatch.cli import main
from geobatch.landcover.plan import (
    FARGATE_PRICES_USD,
    LOGS_USD_PER_GB,
    S3_PRICES_USD,
    JobTraffic,
    estimate,
    format_plan,
    stack_max_vcpus,
)

pytestmark = pytest.mark.geo  # each test names its suite: most are unit, one runs local mode

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.unit
def test_estimate_from_tile_count() -> None:
    traffic = JobTraffic(own_gets=2, archive_gets=40, puts=2, log_kb=4.0)
    est = estimate(
        1000,
        seconds_per_tile=2.0,
        concurrency=100,
        vcpus=1.0,
        memory_gb=2.0,
        worker_startup_seconds=60.0,
        traffic=traffic,
        control_plane_usd_per_million_jobs=3.0,
    )
    assert (est.jobs, est.workers, est.waves) == (1000, 100, 10)
    assert est.wall_seconds == 60.0 + 10 * 2.0
    assert est.billed_worker_hours == pytest.approx(100 * 80 / 3600)
    per_hour = 1.0 * FARGATE_PRICES_USD["vcpu_hour"] + 2.0 * FARGATE_PRICES_USD["gb_hour"]
    assert est.compute_usd == pytest.approx(100 * 80 / 3600 * per_hour)
    assert est.control_plane_usd == pytest.approx(0.003)
    assert est.s3_requests == 4000 and est.archive_requests == 40_000
    assert est.s3_usd == pytest.approx(
        1000 * (2 * S3_PRICES_USD["get_per_1000"] + 2 * S3_PRICES_USD["put_per_1000"]) / 1000
    )
    assert est.log_gb == pytest.approx(1000 * 4 / 1024 / 1024)
    assert est.logs_usd == pytest.approx(est.log_gb * LOGS_USD_PER_GB)
    assert est.total_usd == pytest.approx(est.compute_usd + est.control_plane_usd + est.s3_usd + est.logs_usd)
    assert est.busy_worker_hours == pytest.approx(2000 / 3600)


@pytest.mark.unit
def test_workers_capped_by_the_stack_vcpus() -> None:
    assert estimate(10_000, max_vcpus=256, vcpus=1.0).workers == 256  # no concurrency given: the stack's cap
    assert estimate(10_000, max_vcpus=256, vcpus=2.0, concurrency=500).workers == 128
    assert estimate(10_000, max_vcpus=256, vcpus=1.0, concurrency=100).workers == 100


@pytest.mark.unit
def test_estimate_from_shape_and_format() -> None:
    est = estimate(box(-73.5, 43.9, -73.3, 44.1), concurrency=1000, seconds_per_tile=1.0)
    assert est.tiles == est.jobs > 0 and est.zones == 1
    assert est.workers == est.jobs  # fewer jobs than concurrency: one wave
    text = format_plan(est)
    assert "tiles / jobs" in text and "S3 requests" in text and "log ingestion" in text and "total" in text
    assert estimate(0).total_usd == 0.0


@pytest.mark.unit
def test_stack_max_vcpus_from_cdk_json(tmp_path: Path) -> None:
    assert (
        stack_max_vcpus(REPO / "cdk.json")
        == json.loads((REPO / "cdk.json").read_text())["context"]["max_vcpus"]
    )
    assert stack_max_vcpus(tmp_path / "missing.json") == 256
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"max_vcpus": 64}}))
    assert stack_max_vcpus(tmp_path / "cdk.json") == 64


@pytest.mark.unit
def test_plan_cli_defaults_are_the_stack_and_the_function(tmp_path: Path) -> None:
    small = tmp_path / "area.json"
    small.write_text(
        json.dumps(
            {"type": "Polygon", "coordinates": [[[-74, 43], [-72, 43], [-72, 45], [-74, 45], [-74, 43]]]}
        )
    )
    cdk = tmp_path / "cdk.json"
    cdk.write_text(json.dumps({"context": {"max_vcpus": 64}}))
    result = CliRunner().invoke(main, ["plan", "--geojson", str(small), "--cdk-json", str(cdk), "--json"])
    assert result.exit_code == 0, result.output
    est = json.loads(result.output)
    assert est["workers"] == 64 and est["max_vcpus"] == 64  # the stack's cap, not a made-up 500
    assert est["vcpus"] == 1.0 and est["memory_gb"] == 4.0  # the demo's land-cover Function's resources
    assert est["resources_from"] == "the demo's land-cover Function"
    assert est["s3_usd"] > 0 and est["logs_usd"] > 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"context": {"max_vcpus": "many"}}))
    result = CliRunner().invoke(main, ["plan", "--geojson", str(small), "--cdk-json", str(bad)])
    assert result.exit_code == 2 and "max_vcpus" in result.output


def _double(x: int) -> int:
    return 2 * x


@pytest.mark.local
def test_plan_reads_the_saved_functions_resources(local_api: Any, tmp_path: Path) -> None:
    """``--function`` takes cpus, memory and maximum_concurrency from the Function as saved (through the
    API, local mode here), not from constants; explicit options still win."""
    import geobatch as gb

    name = f"plan-{uuid.uuid4().hex[:8]}"
    fn = gb.Function(_double, name=name, cpus=2, memory="8GB", maximum_concurrency=40, auto_start=False)
    fn.save()
    try:
        cdk = tmp_path / "cdk.json"
        cdk.write_text(json.dumps({"context": {"max_vcpus": 256}}))
        args = ["plan", "--cdk-json", str(cdk), "--json"]
        est = json.loads(_invoke([*args, "--function", name]))
        assert (est["vcpus"], est["memory_gb"], est["workers"]) == (2.0, 8.0, 40)
        assert est["resources_from"] == f"Function {name}"
        assert json.loads(_invoke([*args, "--function", fn.id]))["memory_gb"] == 8.0  # by id too
        est = json.loads(_invoke([*args, "--function", name, "--concurrency", "500", "--memory-gb", "16"]))
        assert (est["workers"], est["memory_gb"]) == (128, 16.0)  # 256 vCPUs / 2 per job caps the 500
        missing = CliRunner().invoke(main, [*args, "--function", "no-such-function"])
        assert missing.exit_code == 2 and "no saved Function" in missing.output
    finally:
        fn.delete()


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output
