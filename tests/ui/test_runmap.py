"""Which ground a job works on (tile key, bbox, GeoJSON), and a run's progress over time."""

from __future__ import annotations

import datetime

import pytest

from geobatch.tiles import Tile
from geobatch.ui.runmap import job_geometry, product_hint, progress

pytestmark = pytest.mark.unit

KEY = "1024:0:10.0:18:12:476"


def test_a_tile_key_in_kwargs_or_args_gives_the_tiles_footprint() -> None:
    expected = [[round(x, 7), round(y, 7)] for x, y in Tile.from_key(KEY).geometry.exterior.coords]
    assert job_geometry(None, {"tile_key": KEY})["coordinates"][0] == expected
    assert (
        job_geometry([KEY, "landcover-x", "s3://b/m.json", "s3://b/i", "b"], None)["coordinates"][0]
        == expected
    )
    assert job_geometry([], {"dltile": KEY}) is not None


def test_bbox_and_geojson_arguments() -> None:
    box = job_geometry(None, {"bbox": [-73.5, 44.0, -73.4, 44.1]})
    assert box == {
        "type": "Polygon",
        "coordinates": [[[-73.5, 44.0], [-73.4, 44.0], [-73.4, 44.1], [-73.5, 44.1], [-73.5, 44.0]]],
    }
    point = {"type": "Point", "coordinates": [-73.4, 44.0]}
    assert job_geometry(None, {"geometry": point}) == point
    assert job_geometry([{"type": "Feature", "geometry": point, "properties": {}}], None) == point
    assert job_geometry([[-73.5, 44.0, -73.4, 44.1]], None)["type"] == "Polygon"


def test_jobs_without_ground_are_not_drawn() -> None:
    assert job_geometry([1, 2, 3], {"x": "y"}) is None
    assert job_geometry(None, {"bbox": [10, 5, 0, 1]}) is None  # west > east: not a bbox
    assert job_geometry(None, {"bbox": [True, 0, 1, 1]}) is None
    assert job_geometry(["1024:0:10.0:99:0:0"], None) is None  # zone 99 does not exist
    assert job_geometry(None, {"geometry": {"type": "Nope", "coordinates": []}}) is None


def test_the_land_cover_job_names_its_product() -> None:
    job = {"args": [KEY, "landcover-1", "s3://b/model.json", "s3://b/idx/{tile_id}.json", "demo-bucket"]}
    assert product_hint(job) == "s3://demo-bucket/products/landcover-1/collection.json"
    assert product_hint({"kwargs": {"product_id": "p", "bucket": "b"}}) == "s3://b/products/p/collection.json"
    assert product_hint({"args": [1, 2]}) is None


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


def _job(status: str, ended: str | None) -> dict:
    return {"status": status, "last_completion_date": ended}


def test_progress_counts_per_minute_and_projects_an_eta() -> None:
    base = 1_700_000_000 - 1_700_000_000 % 60  # the start of a minute
    ended = [
        ("success", 5),
        ("success", 20),
        ("failure", 70),
        ("timeout", 80),
        ("success", 130),
        ("canceled", 140),
    ]
    jobs = [_job(status, _iso(base + s)) for status, s in ended]
    jobs += [_job("running", None), _job("pending", None), _job("pending", None)]
    p = progress(jobs, now=base + 150)  # 30 s into the third minute
    assert [(b["success"], b["failed"], b["canceled"]) for b in p["per_minute"]] == [
        (2, 0, 0),
        (0, 2, 0),
        (1, 0, 1),
    ]
    assert p["outstanding"] == 3
    # 6 jobs over 2.5 minutes: 2.4 per minute; 3 outstanding: 75 s.
    assert p["rate_per_minute"] == 2.4
    assert p["eta_seconds"] == 75.0
    assert progress([_job("pending", None)], now=base)["eta_seconds"] is None  # nothing finished yet
    assert progress([_job("success", _iso(base))], now=base + 10)["eta_seconds"] == 0.0


def test_a_basemap_must_be_an_https_tile_url_and_only_its_origin_is_allowed_images() -> None:
    from click.testing import CliRunner

    from geobatch.cli import main
    from geobatch.ui.mapview import MapRoutes

    bad = CliRunner().invoke(
        main, ["ui", "--no-browser", "--api-url", "http://127.0.0.1:9", "--basemap", "http://x/t.png"]
    )
    assert bad.exit_code == 2 and "basemap must be an https:// tile URL" in bad.output
    assert "img-src 'self' data:;" in MapRoutes(None).csp()  # no basemap: nothing from elsewhere
    osm = MapRoutes(None, basemap="https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tile.openstreetmap.org;" in osm.csp()
