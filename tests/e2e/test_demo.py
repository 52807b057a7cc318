"""The demo end to end on local mode: v1 archive → index → model → one job per tile → product."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import rasterio
import rasterio.errors
from click.testing import CliRunner

from geobatch.cli import main
from geobatch.demo import DemoOptions, run_demo
from geobatch.local import stop_background

pytestmark = [pytest.mark.local, pytest.mark.geo, pytest.mark.timeout(600)]


def test_demo_classifies_every_tile_and_agrees_with_the_truth(local_stack, tmp_path):
    options = DemoOptions(
        out_dir=tmp_path, width=600, height=500, tilesize=256, concurrency=2, timeout=300, bucket="demo-test"
    )
    report = run_demo(
        options, api_url=local_stack.api_url, aws_env=local_stack.aws_env(), echo=lambda _: None
    )
    assert report["tiles"] >= 6
    assert report["jobs"] == {"success": report["tiles"]}
    # Scenes with clouds and shadows, from two processing baselines and three dates: masked, composited,
    # decoded each with its own offset, and still classified like the known land cover.
    assert report["scenes"] == [
        "S2B_18TXP_20210712_0_L2A",
        "S2A_18TXP_20230717_0_L2A",
        "S2B_18TXP_20240721_0_L2A",
    ]
    assert len(report["scenes_used"]) >= 2 and 0.95 < report["valid_fraction"] < 1.0
    assert report["agreement_with_truth"] >= 0.9
    assert set(report["class_area_km2"]) == {"water", "forest", "cropland", "urban", "bare"}
    # Areas count each tile once (no pad here): at most the tiles' area.
    assert sum(report["class_area_km2"].values()) <= report["tiles"] * (256 * 10) ** 2 / 1e6 + 1e-6
    assert json.loads((tmp_path / "summary.json").read_text()) == report
    _check_product(local_stack.aws_env(), report["product"], tmp_path)
    with warnings.catch_warnings():  # a PNG has no georeferencing, and needs none
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(report["preview_png"]) as png:
            rgba = png.read()
    colours = {tuple(px) for px in rgba.reshape(rgba.shape[0], -1).T[::97]}
    assert len(colours) >= 5  # the five classes show (plus perhaps nodata)
    assert np.mean(rgba[3] > 0) > 0.9  # the scene covers the tiles: the preview is not half empty


def test_the_demo_product_stays_readable_after_the_demo_and_local_down(daemon_home, tmp_path):
    """`make demo`, then `geobatch preview` of the collection it printed: local mode's S3 is on disk."""
    runner = CliRunner()
    args = ["demo", "--width", "600", "--height", "500", "--tilesize", "256", "--timeout", "300"]
    ran = runner.invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert ran.exit_code == 0, ran.output
    collection = re.search(r"product\s+(s3://\S+/collection\.json)", ran.output)
    assert collection, ran.output
    assert stop_background(daemon_home)  # the demo leaves local mode running; stop it anyway
    out = tmp_path / "again.png"
    previewed = runner.invoke(main, ["preview", collection.group(1), str(out)])
    assert previewed.exit_code == 0, previewed.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(out) as png:
            rgba = png.read()
    assert len({tuple(px) for px in rgba.reshape(rgba.shape[0], -1).T[::97]}) >= 5


def test_plan_estimates_a_conus_run():
    result = CliRunner().invoke(main, ["plan", "--concurrency", "500", "--seconds-per-tile", "30", "--json"])
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.output)
    assert 78_000 < estimate["tiles"] < 80_000
    assert estimate["workers"] == 256  # 500 asked, but the stack (cdk.json max_vcpus) runs 256 at once
    assert estimate["total_usd"] > estimate["control_plane_usd"] > 0
    bad = CliRunner().invoke(main, ["plan", "--geojson", "/nonexistent.json"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def _check_product(aws_env, collection_uri, tmp_path):
    """The demo's product passes STAC validation (core, projection, raster, classification) and its
    tiles are valid COGs, read back from local mode's S3."""
    import boto3

    from tests.geo.helpers import check_cog, stac_validate

    s3 = boto3.client(
        "s3",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=aws_env.get("AWS_REGION", "us-east-1"),
    )
    bucket, key = collection_uri[len("s3://") :].split("/", 1)
    collection = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert stac_validate(collection)
    prefix = key.rsplit("/", 1)[0]
    item_links = [link["href"] for link in collection["links"] if link["rel"] == "item"]
    assert item_links
    for href in item_links:
        item = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/{href[2:]}")["Body"].read())
        assert stac_validate(item)
        assert (
            item["assets"]["classification"]["classification:classes"]
            == collection["summaries"]["classification:classes"]
        )
    cog = tmp_path / "tile.tif"
    cog.write_bytes(s3.get_object(Bucket=bucket, Key=f"{prefix}/{item_links[0][2:-5]}.tif")["Body"].read())
    check_cog(cog)
