"""Land-cover pipeline on synthetic Sentinel-2 data, through the real S3/GDAL path (moto server)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import warnings
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.errors

from geobatch.landcover.classifier import KMeansModel, agreement, match_clusters_to_classes, train_kmeans
from geobatch.landcover.gdal_env import gdal_options
from geobatch.landcover.imagery import gdal_path, gdal_s3_env, load_items, rasterio_env, read_tile
from geobatch.landcover.job import classify_tile
from geobatch.landcover.pipeline import (
    DemoPlan,
    compare_with_truth,
    prepare_demo,
    run_tiles_in_process,
    summarize,
)
from geobatch.landcover.product import (
    CLASSIFICATION_EXT,
    PROJECTION_EXT,
    RASTER_EXT,
    mosaic_preview,
    write_collection,
)
from geobatch.landcover.synthetic import Acquisition, make_scene, mgrs_square
from geobatch.tiles import Tile
from tests.geo.helpers import check_cog, stac_validate

pytestmark = [pytest.mark.geo, pytest.mark.moto]

SCENES = "scenes"
PRODUCTS = "products"


@pytest.fixture(scope="module")
def plan(moto_s3: dict[str, Any]) -> DemoPlan:
    client = moto_s3["client"]
    for bucket in (SCENES, PRODUCTS):
        client.create_bucket(Bucket=bucket)
    # 2 x 2 tiles of 512 px: small enough to generate quickly, large enough for overviews.
    return prepare_demo(
        client, SCENES, width_px=600, height_px=500, tilesize=512, margin_px=64, train_tiles=4
    )


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


def _get_json(client: Any, uri: str) -> dict[str, Any]:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _download(client: Any, uri: str, path: Any) -> Any:
    bucket, key = uri[len("s3://") :].split("/", 1)
    path.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    return path


def test_plan_layout_is_a_v1_archive(plan: DemoPlan, moto_s3: dict[str, Any]) -> None:
    assert plan.scene_ids == [
        "S2B_18TXP_20210712_0_L2A",
        "S2A_18TXP_20230717_0_L2A",
        "S2B_18TXP_20240721_0_L2A",
    ]
    assert plan.items_uri.startswith("s3://scenes/synthetic/") and "{tile_id}" in plan.items_uri
    assert plan.truth_uri.endswith("/truth.tif") and plan.truth_uri.startswith("s3://scenes/synthetic/")
    assert 2 <= len(plan.tile_keys) <= 9 and all(k.startswith("512:0:10.0:18:") for k in plan.tile_keys)
    assert plan.train_agreement >= 0.9
    assert set(plan.cluster_names.values()) == {"water", "forest", "cropland", "urban", "bare"}
    items = load_items(plan.archive_uri)
    by_id = {it["id"]: it for it in items}
    old, new = by_id["S2B_18TXP_20210712_0_L2A"], by_id["S2A_18TXP_20230717_0_L2A"]
    assert old["properties"]["s2:processing_baseline"] == "03.01"
    assert new["properties"]["s2:processing_baseline"] == "05.09"
    assert old["assets"]["nir"]["raster:bands"][0]["offset"] == 0.0
    assert new["assets"]["nir"]["raster:bands"][0] == pytest.approx(
        {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": 10,
         "scale": 0.0001, "offset": -0.1}
    )  # fmt: skip
    assert new["properties"]["datetime"] == "2023-07-17T15:42:07.361000Z"  # acquisition, not processing
    assert all(0 < it["properties"]["eo:cloud_cover"] < 30 for it in items)
    item = pystac.Item.from_dict(new)
    assert _epsg(item) == 32618
    assert {"nir", "red", "green", "scl"} <= set(item.assets)
    assert item.assets["nir"].extra_fields["eo:bands"][0]["common_name"] == "nir"
    assert item.assets["red"].href.endswith("/S2A_18TXP_20230717_0_L2A/B04.tif")
    assert item.assets["scl"].extra_fields["proj:transform"][0] == 20
    assert DemoPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_demos_of_other_areas_do_not_overwrite_each_other(plan: DemoPlan, moto_s3: dict[str, Any]) -> None:
    other = prepare_demo(
        moto_s3["client"],
        SCENES,
        width_px=200,
        height_px=200,
        tilesize=128,
        product_id="other",
        train_tiles=2,
    )
    # Same centre point, other size: other archive folder, so the first demo's truth is still its own.
    assert other.truth_uri != plan.truth_uri and other.items_uri != plan.items_uri
    assert other.scene_ids == plan.scene_ids  # the same dates over the same place keep their real ids
    centre = Tile.from_latlon(44.03, -73.43, 10.0, 512, 0)
    truth = _read_truth_on(centre, plan.truth_uri)
    assert (truth > 0).all()  # still the large scene's truth, covering the whole tile


def test_mgrs_square() -> None:
    assert mgrs_square(18, 44.03, 625_500, 4_876_000) == ("T", "XP")


def test_run_full_tile(plan: DemoPlan, moto_s3: dict[str, Any], tmp_path: Any) -> None:
    centre = Tile.from_latlon(44.03, -73.43, plan.resolution, plan.tilesize, plan.pad)
    assert centre.key in plan.tile_keys
    summary = classify_tile(centre.key, "demo", plan.model_uri, plan.items_uri, PRODUCTS)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["tile_key"] == centre.key
    assert set(summary["scenes_used"]) <= set(summary["source_items"]) == set(plan.scene_ids)
    assert len(summary["scenes_used"]) >= 2  # clouds on the clearest date: others fill in
    assert 0.97 <= summary["valid_fraction"] < 1.0  # a few pixels are cloudy or shadowed on every date
    assert sum(summary["counts"].values()) == summary["valid_pixels"] > 0.97 * 512 * 512
    assert sum(summary["area_km2"].values()) == pytest.approx(summary["valid_pixels"] * 1e-4)
    assert set(summary["counts"]) == {"water", "forest", "cropland", "urban", "bare"}
    assert set(summary["seconds"]) >= {"model", "read", "classify", "write", "total"}

    check_cog(_download(moto_s3["client"], summary["cog"], tmp_path / "tile.tif"))
    with rasterio_env(), rasterio.open(gdal_path(summary["cog"])) as src:
        assert src.block_shapes[0] == (256, 256) and src.overviews(1) == [2]
        assert src.crs.to_epsg() == 32618
        assert src.transform.almost_equals(centre.transform)
        assert (src.height, src.width) == centre.shape
        assert src.dtypes[0] == "uint8" and src.nodata == 0
        assert src.colormap(1)[0][3] == 0 and src.colormap(1)[1][:3] == (31, 120, 180)  # 1 is water's blue
        labels = src.read(1)
    truth = _read_truth_on(centre, plan.truth_uri)
    assert agreement(labels, truth) >= 0.9  # fixed class values, compared as they are
    assert np.mean(labels[truth == 1] == 1) > 0.95  # water is 1

    doc = _get_json(moto_s3["client"], summary["item"])
    checked = stac_validate(doc)  # core, projection, raster and classification, each schema offline
    assert {PROJECTION_EXT, RASTER_EXT, CLASSIFICATION_EXT} <= set(checked)
    assert any(uri.endswith("/item.json") for uri in checked)
    item = pystac.Item.from_dict(doc)
    assert item.id == centre.key.replace(":", "_")
    assert item.bbox == pytest.approx(list(centre.padded_geometry.bounds))
    assert doc["properties"]["proj:epsg"] == 32618 and _epsg(item) == 32618
    assert item.properties["proj:shape"] == [512, 512]
    assert item.properties["proj:transform"] == pytest.approx(list(centre.transform)[:6])
    assert item.assets["classification"].href == summary["cog"]
    assert item.datetime is None  # a composite of several dates: the span of their acquisitions
    assert doc["properties"]["start_datetime"] < doc["properties"]["end_datetime"]
    assert doc["properties"]["start_datetime"].startswith(("2021-07-12", "2023-07-17"))
    assert {link["rel"] for link in doc["links"]} >= {"self", "root", "collection"}
    assert next(x for x in doc["links"] if x["rel"] == "self")["href"] == summary["item"]
    assert doc["stac_extensions"] == [PROJECTION_EXT, RASTER_EXT, CLASSIFICATION_EXT]
    assert CLASSIFICATION_EXT.endswith("/classification/v2.0.0/schema.json")


def test_products_of_two_runs_write_the_same_class_values(plan: DemoPlan, moto_s3: dict[str, Any]) -> None:
    from geobatch.landcover.classifier import KMeansModel
    from geobatch.landcover.scenes import items_for_job
    from geobatch.landcover.training import train_from_tiles

    client = moto_s3["client"]
    tiles = [Tile.from_key(k) for k in plan.tile_keys]
    other = train_from_tiles(tiles, lambda t: items_for_job(plan.items_uri, t, client), n_tiles=2, seed=99)
    first = KMeansModel.from_json(
        client.get_object(Bucket=SCENES, Key=plan.model_uri.split("/", 3)[3])["Body"].read()
    )
    assert other.model.classes != first.classes  # the clusters came out in another order
    client.put_object(Bucket=SCENES, Key="models/other.json", Body=other.model.to_json().encode())
    small = Tile.from_latlon(44.03, -73.43, 10.0, 256, 0)
    runs = []
    for product, model_uri in (("run-a", plan.model_uri), ("run-b", "s3://scenes/models/other.json")):
        summary = classify_tile(small.key, product, model_uri, plan.archive_uri, PRODUCTS)
        with rasterio_env(), rasterio.open(gdal_path(summary["cog"])) as src:
            runs.append(src.read(1))
    a, b = runs
    assert np.mean(a == b) > 0.98
    truth = _read_truth_on(small, plan.truth_uri)
    for labels in runs:
        assert agreement(labels, truth) >= 0.9
        assert np.mean(labels[truth == 1] == 1) > 0.95


def test_small_tiles_pool_compare_and_preview(plan: DemoPlan, moto_s3: dict[str, Any], tmp_path: Any) -> None:
    centre = Tile.from_latlon(44.03, -73.43, plan.resolution, plan.tilesize, plan.pad)
    small = [t.key for t in centre.subtile(2)[1:3]]  # two 256-px tiles inside the scene
    # Tiles of another size than the plan's: no per-tile index, so the jobs filter the whole archive.
    small_plan = dataclasses.replace(
        plan, tile_keys=small, product_id="small", bucket=PRODUCTS, items_uri=plan.archive_uri
    )
    summaries = run_tiles_in_process(small_plan, processes=2)
    assert [s["tile_key"] for s in summaries] == small
    assert all(s["valid_fraction"] > 0.95 for s in summaries)
    totals = summarize(summaries)
    assert totals["tiles"] == 2 and totals["pixels"] == 2 * 256 * 256
    assert totals["valid_pixels"] == sum(s["valid_pixels"] for s in summaries)
    assert set(totals["counts"]) <= {"water", "forest", "cropland", "urban", "bare"}

    collection = write_collection(moto_s3["client"], PRODUCTS, "small")
    assert collection["geobatch:item_count"] == 2
    checked = stac_validate(collection)
    assert CLASSIFICATION_EXT in checked and any(uri.endswith("/collection.json") for uri in checked)
    assert pystac.Collection.from_dict(collection).id == "small"
    item = _get_json(moto_s3["client"], summaries[0]["item"])
    assert (
        collection["summaries"]["classification:classes"]
        == item["assets"]["classification"]["classification:classes"]
    )
    interval = collection["extent"]["temporal"]["interval"][0]
    assert interval[0].startswith("2021-07-12") or interval[0].startswith("2023-07-17")

    scores = compare_with_truth(PRODUCTS, "small", plan.truth_uri)
    assert scores["agreement"] >= 0.9 and scores["valid_pixels"] == totals["valid_pixels"]

    png = mosaic_preview(PRODUCTS, "small", tmp_path / "preview.png", max_size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        src = rasterio.open(png)
    with src:
        assert src.count == 4 and src.width <= 300 and src.height <= 300 and src.read(4).max() == 255


def test_padded_tiles_count_their_area_once(plan: DemoPlan, moto_s3: dict[str, Any]) -> None:
    base = Tile.from_latlon(44.03, -73.43, 10.0, 256, 0)
    west, east = (Tile(zone=base.zone, ti=base.ti + d, tj=base.tj, tilesize=256, pad=32) for d in (0, 1))
    padded = dataclasses.replace(
        plan, tile_keys=[west.key, east.key], product_id="padded", bucket=PRODUCTS, items_uri=plan.archive_uri
    )
    summaries = run_tiles_in_process(padded, processes=1)
    totals = summarize(summaries)
    tiles_km2 = 2 * (256 * 10.0) ** 2 / 1e6
    assert sum(totals["area_km2"].values()) <= tiles_km2 + 1e-9  # the pads' overlap is not counted twice
    assert sum(totals["area_km2"].values()) > 0.95 * tiles_km2
    doc = _get_json(moto_s3["client"], summaries[0]["item"])
    # The item's footprint is the raster's: padded.
    assert doc["bbox"] == pytest.approx(list(west.padded_geometry.bounds))
    assert pystac.Item.from_dict(doc).geometry == dict(
        type="Polygon", coordinates=[[list(c) for c in west.padded_geometry.exterior.coords]]
    )
    scores = compare_with_truth(PRODUCTS, "padded", plan.truth_uri)
    assert scores["valid_pixels"] == totals["valid_pixels"]


def test_read_tile_window_matches_scene(plan: DemoPlan) -> None:
    # The tile grid and the scene grid are aligned, so each pixel must be exactly its scene's pixel,
    # decoded with that scene's offset: compare with a plain window read of that scene's COG.
    from rasterio.windows import from_bounds

    from geobatch.landcover.assets import radiometry
    from geobatch.landcover.scenes import items_for_job

    tile = Tile.from_latlon(44.03, -73.43, 10.0, 128, 0)
    items = items_for_job(plan.archive_uri, tile)
    with pytest.raises(FileNotFoundError, match=r"no scene index for tile 128:0:10\.0:18"):
        items_for_job(plan.items_uri, tile)  # the per-tile index has only the plan's tiles
    read = read_tile(tile, items)
    with rasterio_env():
        for i, item in enumerate(items):
            here = read.source == i
            for b, band in enumerate(("nir", "red", "green")):
                asset = item["assets"][band]
                with rasterio.open(gdal_path(asset["href"])) as src:
                    window = (
                        from_bounds(*tile.bounds, transform=src.transform).round_offsets().round_lengths()
                    )
                    expected = radiometry(item, asset).apply(src.read(1, window=window))
                assert np.array_equal(read.reflectance[b][here], expected[here])


def test_classifier_json_round_trip_matches_sklearn(tmp_path: Any) -> None:
    scene = make_scene(
        -73.43, 44.03, 400, 300, seed=3, acquisition=Acquisition(dt.date(2024, 7, 1), cloud_fraction=0)
    )
    refl = scene.reflectance()
    model, km = train_kmeans(refl, 5, sample_size=20_000, seed=1)
    path = tmp_path / "model.json"
    model.save(path)
    text = path.read_text()
    assert json.loads(text)["format"] == "geobatch.landcover.kmeans"
    loaded = KMeansModel.load(path)
    pred = loaded.predict_clusters(refl)
    assert pred.shape == scene.truth.shape and pred.dtype == np.uint8
    from geobatch.landcover.classifier import features

    x = (features(refl).astype(np.float64) - model.mean) / model.scale
    expected = km.predict(x).reshape(pred.shape) + 1
    assert np.mean(pred == expected) > 0.9999
    # nodata: any band NaN -> class 0
    bands = refl.copy()
    bands[1, :10, :10] = np.nan
    assert (loaded.predict(bands)[:10, :10] == 0).all()
    clear = ~np.isnan(refl).any(axis=0)
    mapping = match_clusters_to_classes(pred * clear, scene.truth)
    assert sorted(mapping) == [1, 2, 3, 4, 5] and sorted(mapping.values()) == [1, 2, 3, 4, 5]
    # The Hungarian matching against the truth and the naming rule on the centres agree.
    assert mapping == loaded.classes
    with pytest.raises(ValueError):
        KMeansModel.from_dict({**model.to_dict(), "version": 99})


def test_agreement_hungarian() -> None:
    truth = np.array([[1, 1, 2, 2], [3, 3, 0, 4]])
    pred = np.array([[5, 5, 1, 1], [2, 2, 3, 4]])
    mapping = match_clusters_to_classes(pred, truth)
    assert mapping[5] == 1 and mapping[1] == 2 and mapping[2] == 3
    assert agreement(pred, truth, mapping) == 1.0
    assert agreement(pred, truth) == pytest.approx(1 / 7)  # compared as they are: only the 4 matches


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


def test_gdal_options_for_public_and_own_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    public = gdal_options({}, read_buckets={"sentinel-cogs"})
    assert public["AWS_NO_SIGN_REQUEST"] == "YES" and public["AWS_REGION"] == "us-west-2"
    assert public["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert public["GDAL_HTTP_MERGE_CONSECUTIVE_RANGES"] == "YES" and int(public["GDAL_HTTP_MAX_RETRY"]) > 0
    assert public["VSI_CACHE"] == "TRUE"
    mixed = gdal_options({}, read_buckets={"sentinel-cogs", "my-products"})
    assert "AWS_NO_SIGN_REQUEST" not in mixed  # one private bucket: requests are signed
    local = gdal_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, read_buckets={"sentinel-cogs"})
    # A local stand-in of the archive (moto) is read unsigned too, at the local endpoint and region.
    assert local["AWS_S3_ENDPOINT"] == "127.0.0.1:9" and local["AWS_NO_SIGN_REQUEST"] == "YES"
    assert local["AWS_REGION"] == "us-east-1"
    own = gdal_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, read_buckets={"my-products"})
    assert "AWS_NO_SIGN_REQUEST" not in own
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with rasterio_env(read_buckets={"sentinel-cogs"}) as env:  # what a job reading only the archive gets
        assert env.session.get_credential_options() == {
            "AWS_NO_SIGN_REQUEST": "YES",
            "AWS_REGION": "us-west-2",
        }
        assert rasterio.env.getenv()["GDAL_HTTP_MERGE_CONSECUTIVE_RANGES"] == "YES"
