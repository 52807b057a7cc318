"""Land-cover pipeline on synthetic Sentinel-2 data, through the real S3/GDAL path (moto server)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.errors

from geobatch.landcover.classifier import KMeansModel, agreement, match_clusters_to_classes, train_kmeans
from geobatch.landcover.imagery import gdal_path, gdal_s3_env, load_items, rasterio_env, read_tile
from geobatch.landcover.job import classify_tile
from geobatch.landcover.pipeline import (
    DemoPlan,
    compare_with_truth,
    prepare_demo,
    run_tiles_in_process,
    summarize,
)
from geobatch.landcover.product import mosaic_preview, write_collection
from geobatch.landcover.synthetic import make_scene, mgrs_square
from geobatch.tiles import Tile

pytestmark = pytest.mark.geo

SCENES = "scenes"
PRODUCTS = "products"


@pytest.fixture(scope="module")
def plan(moto_s3: dict[str, Any]) -> DemoPlan:
    client = moto_s3["client"]
    for bucket in (SCENES, PRODUCTS):
        client.create_bucket(Bucket=bucket)
    return prepare_demo(client, SCENES, margin_px=64, train_sample=50_000)


def _epsg(item: pystac.Item) -> int:
    """EPSG of an item whatever projection-extension version pystac migrated it to."""
    from pystac.extensions.projection import ProjectionExtension

    return int(ProjectionExtension.ext(item).epsg or 0)


def _read_truth_on(tile: Tile, truth_uri: str) -> np.ndarray:
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    out = np.zeros(tile.shape, dtype=np.uint8)
    with rasterio_env(), rasterio.open(gdal_path(truth_uri)) as src:
        reproject(
            rasterio.band(src, 1),
            out,
            dst_transform=tile.transform,
            dst_crs=tile.crs,
            src_nodata=0,
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
    return out


def test_plan_layout(plan: DemoPlan, moto_s3: dict[str, Any]) -> None:
    assert plan.scene_id == "S2A_18TXP_20240715_0_L2A"
    assert plan.items_uri.startswith("s3://scenes/sentinel-s2-l2a-cogs/search/")
    assert "/18/T/XP/2024/7/S2A_18TXP_20240715_0_L2A/truth.tif" in plan.truth_uri
    assert 2 <= len(plan.tile_keys) <= 9 and all(k.startswith("1024:0:10.0:18:") for k in plan.tile_keys)
    assert plan.train_agreement >= 0.9
    assert set(plan.cluster_names.values()) == {"water", "forest", "cropland", "urban", "bare"}
    items = load_items(plan.items_uri)
    assert items[0]["properties"]["proj:epsg"] == 32618
    item = pystac.Item.from_dict(items[0])
    assert _epsg(item) == 32618
    assert set(item.assets) == {"B03", "B04", "B08"}
    assert item.assets["B04"].href.endswith("/S2A_18TXP_20240715_0_L2A/B04.tif")
    assert DemoPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_mgrs_square() -> None:
    assert mgrs_square(18, 44.03, 625_500, 4_876_000) == ("T", "XP")


def test_run_full_tile(plan: DemoPlan, moto_s3: dict[str, Any]) -> None:
    centre = Tile.from_latlon(44.03, -73.43, plan.resolution, plan.tilesize, plan.pad)
    assert centre.key in plan.tile_keys
    summary = classify_tile(centre.key, "demo", plan.model_uri, plan.items_uri, PRODUCTS)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["tile_key"] == centre.key
    assert summary["source_items"] == [plan.scene_id]
    assert sum(summary["counts"].values()) == summary["valid_pixels"] > 100_000
    assert sum(summary["area_km2"].values()) == pytest.approx(summary["valid_pixels"] * 1e-4)
    assert set(summary["seconds"]) >= {"model", "read", "classify", "write", "total"}

    with rasterio_env(), rasterio.open(gdal_path(summary["cog"])) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.overviews(1), "COG must have overviews"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.crs.to_epsg() == 32618
        assert src.transform.almost_equals(centre.transform)
        assert (src.height, src.width) == centre.shape
        assert src.dtypes[0] == "uint8" and src.nodata == 0
        assert src.colormap(1)[0][3] == 0
        labels = src.read(1)
    truth = _read_truth_on(centre, plan.truth_uri)
    assert np.array_equal(labels == 0, truth == 0)  # nodata exactly where the scene ends
    assert agreement(labels, truth) >= 0.9

    doc = json.loads(
        moto_s3["client"]
        .get_object(Bucket=PRODUCTS, Key=summary["item"][len("s3://products/") :])["Body"]
        .read()
    )
    item = pystac.Item.from_dict(doc)
    assert item.id == centre.key.replace(":", "_")
    assert item.bbox == pytest.approx(list(centre.geometry.bounds))
    assert doc["properties"]["proj:epsg"] == 32618 and _epsg(item) == 32618
    assert item.properties["proj:shape"] == [1024, 1024]
    assert item.properties["proj:transform"] == pytest.approx(list(centre.transform)[:6])
    assert item.assets["classification"].href == summary["cog"]


def test_small_tiles_pool_compare_and_preview(plan: DemoPlan, moto_s3: dict[str, Any], tmp_path: Any) -> None:
    centre = Tile.from_latlon(44.03, -73.43, plan.resolution, plan.tilesize, plan.pad)
    small = [t.key for t in centre.subtile(4)[5:7]]  # two 256-px tiles inside the scene
    small_plan = dataclasses.replace(plan, tile_keys=small, product_id="small", bucket=PRODUCTS)
    summaries = run_tiles_in_process(small_plan, processes=2)
    assert [s["tile_key"] for s in summaries] == small
    assert all(s["valid_fraction"] == 1.0 for s in summaries)
    totals = summarize(summaries)
    assert totals["tiles"] == 2 and totals["valid_pixels"] == 2 * 256 * 256
    assert set(totals["counts"]) <= {"water", "forest", "cropland", "urban", "bare"}

    collection = write_collection(moto_s3["client"], PRODUCTS, "small")
    assert collection["geobatch:item_count"] == 2
    assert pystac.Collection.from_dict(collection).id == "small"

    scores = compare_with_truth(PRODUCTS, "small", plan.truth_uri)
    assert scores["agreement"] >= 0.9 and scores["valid_pixels"] == 2 * 256 * 256

    png = mosaic_preview(PRODUCTS, "small", tmp_path / "preview.png", max_size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        src = rasterio.open(png)
    with src:
        assert src.count == 4 and src.width <= 300 and src.height <= 300 and src.read(4).max() == 255


def test_read_tile_window_matches_scene(plan: DemoPlan) -> None:
    # The tile grid and the scene grid are aligned, so warping must return the scene's pixels unchanged:
    # compare with a plain window read of each band's COG.
    from rasterio.windows import from_bounds

    tile = Tile.from_latlon(44.03, -73.43, 10.0, 128, 0)
    items = load_items(plan.items_uri)
    arr = read_tile(tile, items)
    (item,) = items
    with rasterio_env():
        for b, band in enumerate(("B08", "B04", "B03")):
            with rasterio.open(gdal_path(item["assets"][band]["href"])) as src:
                window = from_bounds(*tile.bounds, transform=src.transform).round_offsets().round_lengths()
                assert np.array_equal(arr[b], src.read(1, window=window))


def test_classifier_json_round_trip_matches_sklearn(tmp_path: Any) -> None:
    scene = make_scene(-73.43, 44.03, 400, 300, seed=3)
    model, km = train_kmeans(scene.bands, 5, sample_size=20_000, seed=1)
    path = tmp_path / "model.json"
    model.save(path)
    text = path.read_text()
    assert json.loads(text)["format"] == "geobatch.landcover.kmeans"
    loaded = KMeansModel.load(path)
    pred = loaded.predict(scene.bands)
    assert pred.shape == scene.truth.shape and pred.dtype == np.uint8
    from geobatch.landcover.classifier import features

    x = (features(scene.bands).astype(np.float64) - model.mean) / model.scale
    expected = km.predict(x).reshape(pred.shape) + 1
    assert np.mean(pred == expected) > 0.9999
    # nodata: any band zero -> class 0
    bands = scene.bands.copy()
    bands[1, :10, :10] = 0
    assert (loaded.predict(bands)[:10, :10] == 0).all()
    mapping = match_clusters_to_classes(pred, scene.truth)
    assert sorted(mapping) == [1, 2, 3, 4, 5] and sorted(mapping.values()) == [1, 2, 3, 4, 5]
    assert agreement(pred, scene.truth, mapping) >= 0.9
    with pytest.raises(ValueError):
        KMeansModel.from_dict({**model.to_dict(), "version": 99})


def test_agreement_hungarian() -> None:
    truth = np.array([[1, 1, 2, 2], [3, 3, 0, 4]])
    pred = np.array([[5, 5, 1, 1], [2, 2, 3, 4]])
    mapping = match_clusters_to_classes(pred, truth)
    assert mapping[5] == 1 and mapping[1] == 2 and mapping[2] == 3
    assert agreement(pred, truth) == 1.0


def test_gdal_s3_env() -> None:
    local = gdal_s3_env(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5123",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    assert local == {
        "AWS_S3_ENDPOINT": "127.0.0.1:5123",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "eu-west-1",
    }
    assert gdal_s3_env({}) == {}
    assert gdal_s3_env({"AWS_ENDPOINT_URL": "https://s3.us-east-1.amazonaws.com"}) == {}
    s3_specific = gdal_s3_env(
        {"AWS_ENDPOINT_URL": "https://x.example", "AWS_ENDPOINT_URL_S3": "http://localhost:9"}
    )
    assert s3_specific["AWS_S3_ENDPOINT"] == "localhost:9" and s3_specific["AWS_ACCESS_KEY_ID"] == "testing"
