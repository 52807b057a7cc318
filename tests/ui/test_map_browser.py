"""The map page in headless Chromium against local mode: the demo product beside its reference and
imagery, and a live run whose tiles change colour as jobs finish and fill in a product.

Chromium is Debian's /usr/bin/chromium driven by Playwright (see test_monitor_browser.py). With
``GEOBATCH_DOCS_SCREENSHOTS=1`` the README's pictures are written to docs/img/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import geobatch as gb
from tests.ui.browser import ARTIFACTS, WAIT_MS

pytestmark = [pytest.mark.local, pytest.mark.geo, pytest.mark.timeout(600)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "img"
STATUS_FILL = {"pending": "#9e9e9e", "running": "#1e88e5", "success": "#43a047", "failure": "#e53935"}


def paint_tile(tile_key: str, truth_uri: str, bucket: str, product_id: str, delay: float, fail: bool) -> dict:
    """A job over one DL tile: the reference land cover cut to the tile, published as a product tile."""
    import time

    import boto3
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from geobatch.landcover.gdal_env import rasterio_env
    from geobatch.landcover.imagery import gdal_path
    from geobatch.landcover.product import publish_tile
    from geobatch.tiles import Tile

    time.sleep(delay)
    print(f"painting {tile_key}")
    if fail:
        raise ValueError(f"tile {tile_key}: no clear scene")
    tile = Tile.from_key(tile_key)
    labels = np.zeros(tile.shape, dtype=np.uint8)
    with rasterio_env(), rasterio.open(gdal_path(truth_uri)) as src:
        reproject(rasterio.band(src, 1), labels, src_nodata=0, dst_nodata=0, dst_transform=tile.transform,
                  dst_crs=tile.crs, resampling=Resampling.nearest)  # fmt: skip
    return publish_tile(boto3.client("s3"), bucket, product_id, tile, labels, counts={})


@pytest.fixture(scope="module")
def demo(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The land-cover demo, run once for the module (6 tiles of 256 px)."""
    from geobatch.demo import DemoOptions, run_demo

    options = DemoOptions(
        out_dir=tmp_path_factory.mktemp("demo"), width=600, height=500, tilesize=256, concurrency=2,
        timeout=300, bucket="map-test",
    )  # fmt: skip
    return run_demo(options, api_url=local_stack.api_url, aws_env=local_stack.aws_env(), echo=lambda _: None)


@pytest.fixture
def monitor(local_api: gb.Client, local_stack: Any) -> Iterator[Any]:
    from geobatch.ui.server import MonitorServer

    server = MonitorServer(local_api, aws_env=local_stack.aws_env()).start()
    yield server
    server.shutdown()
    server.server_close()


def shot(page: Any, name: str, docs_name: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    if docs_name and os.environ.get("GEOBATCH_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / docs_name))


# Some tile of a layer has loaded as a 256 px image (a PNG the server rendered).
SOME_LOADED = "[...document.querySelectorAll('.{0} img')].some(i => i.complete && i.naturalWidth === 256{1})"
# Every tile of a layer in view has loaded (Leaflet marks each loaded <img>).
ALL_LOADED = (
    "document.querySelectorAll('.{0} img').length > 0 && "
    "document.querySelectorAll('.{0} img:not(.leaflet-tile-loaded)').length === 0"
)


def wait_js(page: Any, expression: str, timeout: float = WAIT_MS) -> None:
    """Wait until a JS expression is true, polled through CDP (the page's CSP forbids Playwright's
    in-page polling, which evaluates strings; it is the CSP the map must work under)."""
    import time

    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout / 1000:.0f} s: {expression}"
        page.wait_for_timeout(200)


def loaded_tiles(page: Any, container: str) -> int:
    """How many 256 px tiles of a layer the browser has decoded (PNG bytes the server rendered)."""
    script = f"[...document.querySelectorAll('.{container} img')].filter(i => i.naturalWidth === 256).length"
    return int(page.evaluate(script))


def test_the_demo_product_on_the_map_with_legend_opacity_and_a_swipe_comparison(
    browser: Any,
    monitor: Any,
    demo: dict[str, Any],
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1360, "height": 860})
    try:
        page.goto(monitor.url)
        page.get_by_role("link", name="Map").click()  # from the monitor to the map page
        page.get_by_label("Product, COG or STAC imagery").fill(demo["product"])
        page.get_by_role("button", name="Show", exact=True).click()
        legend = page.locator("#legend li")
        expect(legend).to_have_count(5)
        assert [t.split(" ")[1] for t in legend.all_inner_texts()] == [
            "water",
            "forest",
            "cropland",
            "urban",
            "bare",
        ]
        wait_js(page, "document.querySelectorAll('.product-tiles img').length > 0")
        wait_js(page, SOME_LOADED.format("product-tiles", ""))
        assert loaded_tiles(page, "product-tiles") >= 1

        page.get_by_label(re.compile("^Opacity")).fill("60")
        assert page.locator(".product-tiles").evaluate("e => e.style.opacity") == "0.6"
        page.get_by_label(re.compile("^Opacity")).fill("100")

        # The synthetic reference land cover, swiped against the product, with the agreement in view.
        reference = "reference: Reference land cover (synthetic, the scenes' known classes)"
        page.get_by_label("Reference layer").select_option(label=reference)
        swipe = page.get_by_label("Swipe between product and reference")
        expect(swipe).to_be_visible()
        agreement = page.locator("#agreement")
        expect(agreement).to_contain_text("Agreement in view")
        shown = float(re.search(r"([\d.]+)%", agreement.inner_text()).group(1))
        assert 90 <= shown <= 100  # as the demo itself reports (k-means vs the known land cover)
        assert abs(shown - 100 * demo["agreement_with_truth"]) < 3
        wait_js(page, SOME_LOADED.format("reference-tiles", ""))
        swipe.fill("30")
        clip = page.evaluate("document.querySelector('.leaflet-reference-pane').style.clip")
        size = page.locator("#map").bounding_box()
        assert clip.startswith("rect("), clip  # the reference shows right of the handle only
        line = page.locator("#swipe-line").bounding_box()
        assert abs(line["x"] - size["x"] - 0.3 * size["width"]) < 4  # the handle's line sits at 30 %
        shot(page, "map-01-reference", "map-reference.png")

        # The source imagery (false colour from the STAC items) as the reference instead.
        imagery = "imagery: Source imagery (synthetic Sentinel-2 L2A scenes)"
        page.get_by_label("Reference layer").select_option(label=imagery)
        expect(page.get_by_label("Imagery", exact=True)).to_have_value("false-colour")
        wait_js(page, SOME_LOADED.format("reference-tiles", " && i.src.includes('composite=false-colour')"))
        expect(agreement).to_have_text("")  # imagery has no classes to agree with
        swipe.fill("50")
        wait_js(page, ALL_LOADED.format("reference-tiles"))
        shot(page, "map-02-imagery", "map-view.png")
    finally:
        page.close()


def test_map_api_refuses_foreign_pages_and_bad_layers(monitor: Any, demo: dict[str, Any]) -> None:
    import urllib3

    http = urllib3.PoolManager()
    base = monitor.url + "ui-api/map/"
    header = {"X-GeoBatch-UI": "1"}
    assert http.request("GET", base + "config").status == 403  # no header: another site's page
    token = json.loads(http.request("GET", base + "config", headers=header).data)["token"]
    tile = f"tiles/14/4843/5930.png?src={quote(demo['product'])}"
    assert http.request("GET", base + tile).status == 403  # no token
    assert http.request("GET", base + tile + "&t=wrong").status == 403
    ok = http.request("GET", base + tile + f"&t={token}")
    assert ok.status == 200 and ok.headers["Content-Type"] == "image/png" and ok.data.startswith(b"\x89PNG")
    bad = http.request("GET", base + f"layer?src={quote('http://evil.example/x.tif')}", headers=header)
    assert bad.status == 422 and "s3:// URI" in json.loads(bad.data)["message"]
    missing = http.request("GET", base + f"layer?src={quote('s3://map-test/nothing.tif')}", headers=header)
    assert missing.status == 404
    assert http.request("GET", base + "layer", headers=header).status == 422
    typo = http.request("GET", base + f"layer?source={quote(demo['product'])}", headers=header)
    assert typo.status == 422 and "unknown query parameter(s) source" in json.loads(typo.data)["message"]
    assert http.request("GET", base + "tiles/40/0/0.png?src=s3://x/y.tif&t=" + token).status == 422
    assert http.request("GET", monitor.url + "vendor/leaflet/LICENSE").data.startswith(b"BSD 2-Clause")


def test_a_live_run_on_the_map_changes_tile_colours_and_fills_in_its_product(
    browser: Any,
    monitor: Any,
    demo: dict[str, Any],
    local_api: gb.Client,
    local_stack: Any,
) -> None:
    from playwright.sync_api import expect

    from geobatch.ui.runmap import list_jobs

    bucket, product_id = "map-test", f"run-{uuid.uuid4().hex[:6]}"
    keys = _demo_tile_keys(local_stack, demo)
    # Local mode lets a job reach only what its Function declares: the reference (read) and the
    # product's bucket (write).
    access = gb.S3Access(read=[demo["reference"]], write=[f"s3://{bucket}/*"])
    fn = gb.Function(paint_tile, name=f"map-run-{uuid.uuid4().hex[:6]}", client=local_api,
                     maximum_concurrency=2, retry_count=0, data_access=access)  # fmt: skip
    fn.save()
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    try:
        fn.map(None, [dict(tile_key=k, truth_uri=demo["reference"], bucket=bucket, product_id=product_id,
                         delay=1.5, fail=i == 2) for i, k in enumerate(keys)])  # fmt: skip
        page.goto(monitor.url + f"map.html?function={fn.id}")
        tiles = page.locator("path.run-tile")
        expect(tiles).to_have_count(len(keys))
        first = next(j["id"] for j in list_jobs(local_api, fn.id) if j["kwargs"]["tile_key"] == keys[-1])
        last_tile = page.locator(f'path[data-job="{first}"]')
        assert last_tile.get_attribute("data-status") in ("pending", "running")
        assert last_tile.get_attribute("fill") in (STATUS_FILL["pending"], STATUS_FILL["running"])
        page.locator('path[data-status="success"]').first.wait_for()
        expect(page.get_by_label("Product of the run")).to_have_value(
            f"s3://{bucket}/products/{product_id}/collection.json")  # fmt: skip
        shot(page, "run-01-running", "run-map.png")
        expect(last_tile).to_have_attribute("data-status", "success")
        assert last_tile.get_attribute("fill") == STATUS_FILL["success"]
        expect(page.locator('path[data-status="failure"]')).to_have_count(1)
        expect(page.locator("#run-eta")).to_contain_text("all jobs finished")
        assert page.locator("#run-chart rect.bar-success").count() >= 1
        assert page.locator("#run-chart rect.bar-failed").count() >= 1
        wait_js(page, SOME_LOADED.format("run-product-tiles", ""))
        # A click on the failed tile opens its job: reason, attempts, log, and a link to the monitor.
        page.locator('path[data-status="failure"]').click()
        card = page.locator("#job-card")
        expect(card).to_be_visible()
        expect(page.locator("#job-card-fields")).to_contain_text("no clear scene")
        expect(page.locator("#job-card-log")).to_contain_text("painting")
        failed_id = page.locator("#job-card-id").inner_text()
        shot(page, "run-02-done")
        page.get_by_role("link", name="Open in the monitor").click()
        expect(page.locator("#detail-id")).to_have_text(failed_id)
        expect(page.locator("#job-log")).to_contain_text("no clear scene")
    finally:
        page.close()
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)


def _demo_tile_keys(local_stack: Any, demo: dict[str, Any]) -> list[str]:
    """The tile keys of the demo product, from its STAC items."""
    import boto3

    env = local_stack.aws_env()
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    bucket, key = demo["product"][len("s3://") :].split("/", 1)
    prefix = key.rsplit("/", 1)[0] + "/tiles/"
    keys = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        if obj["Key"].endswith(".json"):
            item = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            keys.append(item["properties"]["geobatch:tile_key"])
    return sorted(keys)
