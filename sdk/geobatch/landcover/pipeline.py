"""Non-service parts of the land-cover demo: prepare data and model, run tiles in-process, score results.

The demo runner (elsewhere) submits :func:`geobatch.landcover.job.classify_tile` over ``plan.tile_keys``
through GeoBatch; :func:`run_tiles_in_process` runs the same work with a plain ``multiprocessing.Pool`` as
the "physical best" baseline on one machine.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from geobatch.landcover.classes import CLASS_NAMES, NODATA


@dataclass
class DemoPlan:
    """Everything a run of the demo needs, JSON-friendly (``asdict``)."""

    bucket: str
    product_id: str
    tile_keys: list[str]
    items_uri: str  # per-tile index template (``{tile_id}``), see geobatch.landcover.scenes
    model_uri: str
    truth_uri: str
    scene_ids: list[str]
    area: dict[str, Any]
    resolution: float
    tilesize: int
    pad: int
    cluster_names: dict[int, str] = field(default_factory=dict)
    train_agreement: float = float("nan")
    archive_uri: str = ""  # the ItemCollection of every scene (what a STAC search returned)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DemoPlan:
        """Inverse of :meth:`to_dict`."""
        doc = dict(doc)
        doc["cluster_names"] = {int(k): v for k, v in doc.get("cluster_names", {}).items()}
        return cls(**doc)

    def job_args(self) -> list[tuple[str, str, str, str, str]]:
        """Positional arguments of ``classify_tile`` for every tile."""
        return [(k, self.product_id, self.model_uri, self.items_uri, self.bucket) for k in self.tile_keys]


def _scene_extent(tiles: list[Any], resolution: float, margin_px: int) -> tuple[float, float, int, int]:
    """(centre lon, centre lat, width px, height px) of a scene covering every padded tile plus a margin."""
    from geobatch.tiles import utm_to_lonlat

    (zone,) = {t.zone for t in tiles}
    xmin = min(t.padded_bounds[0] for t in tiles)
    ymin = min(t.padded_bounds[1] for t in tiles)
    xmax = max(t.padded_bounds[2] for t in tiles)
    ymax = max(t.padded_bounds[3] for t in tiles)
    lon, lat = (float(v) for v in utm_to_lonlat(zone, (xmin + xmax) / 2, (ymin + ymax) / 2))
    width = round((xmax - xmin) / resolution) + 2 * margin_px
    height = round((ymax - ymin) / resolution) + 2 * margin_px
    return lon, lat, width, height


def prepare_demo(
    s3_client: Any,
    bucket: str,
    *,
    lon: float = -73.43,
    lat: float = 44.03,
    width_px: int = 1334,
    height_px: int = 1230,
    resolution: float = 10.0,
    tilesize: int = 1024,
    pad: int = 0,
    seed: int = 42,
    margin_px: int = 16,
    product_id: str = "landcover-demo",
    train_tiles: int = 8,
    train_pixels_per_tile: int = 20_000,
) -> DemoPlan:
    """Generate the synthetic archive into S3, index its scenes per tile, train and upload the model.

    The archive holds one scene per date of :data:`~geobatch.landcover.synthetic.DEMO_ACQUISITIONS`
    (two processing baselines, clouds and shadows), covering the demo's tiles plus ``margin_px`` on
    every side. The model is trained the way a real run is
    (:func:`~geobatch.landcover.training.train_from_tiles`: cloud-masked composites of sampled tiles
    read from S3 through GDAL), and names its clusters once.
    """
    area, tiles = _demo_tiles(lon, lat, width_px, height_px, resolution, tilesize, pad)
    index = f"{tilesize}-{pad}"
    scenes, uris, items_uri = _publish_archive(s3_client, bucket, tiles, resolution, margin_px, seed, index)
    model, train_agreement = _train_model(
        s3_client, tiles, items_uri, scenes, seed=seed, n_tiles=train_tiles, pixels=train_pixels_per_tile
    )
    model.metadata.update({"archive": uris["items"], "scenes": [s.scene_id for s in scenes]})
    model_key = f"models/{product_id}/kmeans.json"
    s3_client.put_object(
        Bucket=bucket, Key=model_key, Body=model.to_json().encode(), ContentType="application/json"
    )
    return DemoPlan(
        bucket=bucket,
        product_id=product_id,
        tile_keys=[t.key for t in tiles],
        items_uri=items_uri,
        model_uri=f"s3://{bucket}/{model_key}",
        truth_uri=uris["truth"],
        scene_ids=[s.scene_id for s in scenes],
        area=area,
        resolution=resolution,
        tilesize=tilesize,
        pad=pad,
        cluster_names=model.cluster_names,
        train_agreement=train_agreement,
        archive_uri=uris["items"],
    )


def _demo_tiles(
    lon: float, lat: float, width_px: int, height_px: int, resolution: float, tilesize: int, pad: int
) -> tuple[Any, list[Any]]:
    """The demo area centred on (lon, lat) and its tiles, which must lie in one UTM zone."""
    from geobatch.landcover.regions import demo_area
    from geobatch.tiles import Tile

    area = demo_area(lon, lat, width_px * resolution, height_px * resolution)
    tiles = Tile.from_shape(area, resolution, tilesize, pad)
    if len({t.zone for t in tiles}) != 1:
        raise ValueError("the demo area must lie in one UTM zone (its synthetic scenes are one grid)")
    return area, tiles


def _publish_archive(
    s3_client: Any,
    bucket: str,
    tiles: list[Any],
    resolution: float,
    margin_px: int,
    seed: int,
    index: str,
) -> tuple[list[Any], dict[str, str], str]:
    """The synthetic scenes over ``tiles`` (plus the margin) published to S3, and their per-tile index:
    (scenes, the archive's URIs, the index's URI). The archive's key is a digest of what makes it; the
    index is named ``index`` under it (the tiling, ``{tilesize}-{pad}``)."""
    from geobatch.landcover.archive import archive_digest, publish_scenes
    from geobatch.landcover.scenes import write_tile_index
    from geobatch.landcover.synthetic import DEMO_ACQUISITIONS, make_scenes

    scene_lon, scene_lat, scene_w, scene_h = _scene_extent(tiles, resolution, margin_px)
    root = "synthetic/" + archive_digest(
        lon=scene_lon, lat=scene_lat, w=scene_w, h=scene_h, res=resolution, seed=seed, dates=DEMO_ACQUISITIONS
    )
    scenes = make_scenes(scene_lon, scene_lat, scene_w, scene_h, resolution=resolution, seed=seed)
    uris = publish_scenes(s3_client, bucket, scenes, root)
    all_items = load_items_uri(uris["items"], s3_client)
    items_uri = write_tile_index(s3_client, bucket, f"{root}/index/{index}", tiles, all_items)
    return scenes, uris, items_uri


def _train_model(
    s3_client: Any,
    tiles: list[Any],
    items_uri: str,
    scenes: list[Any],
    *,
    seed: int,
    n_tiles: int,
    pixels: int,
) -> tuple[Any, float]:
    """The model trained the way a real run trains it, and how well it labels one scene's clear pixels."""
    from geobatch.landcover.classifier import agreement
    from geobatch.landcover.scenes import items_for_job
    from geobatch.landcover.training import train_from_tiles

    run = train_from_tiles(
        tiles, lambda t: items_for_job(items_uri, t, s3_client),
        n_tiles=n_tiles, pixels_per_tile=pixels, seed=seed,
    )  # fmt: skip
    model = run.model
    # How well the trained model labels the clear pixels of one scene (fixed class values vs the truth).
    return model, agreement(model.predict(_clear_view(scenes[0])), scenes[0].truth)


def _clear_view(scene: Any) -> np.ndarray:
    """Reflectance of a synthetic scene with its masked (cloud, shadow) pixels NaN."""
    from geobatch.landcover.imagery import SCL_MASKED

    scl10 = np.repeat(np.repeat(scene.scl, 2, axis=0), 2, axis=1)[: scene.shape[0], : scene.shape[1]]
    out: np.ndarray = scene.reflectance()
    out[:, np.isin(scl10, SCL_MASKED)] = np.nan
    return out


def load_items_uri(uri: str, client: Any) -> list[dict[str, Any]]:
    """Items of an ItemCollection in S3 (or a local path)."""
    from geobatch.landcover.imagery import load_items

    return load_items(uri, client)


def _run_one(args: tuple[str, str, str, str, str]) -> dict[str, Any]:
    from geobatch.landcover.job import run_tile

    return run_tile(*args)


def run_tiles_in_process(plan: DemoPlan, processes: int = 2) -> list[dict[str, Any]]:
    """Run every tile of ``plan`` with ``multiprocessing.Pool(processes)``; summaries in tile order."""
    if processes <= 1:
        return [_run_one(a) for a in plan.job_args()]
    with multiprocessing.Pool(processes) as pool:
        return pool.map(_run_one, plan.job_args(), chunksize=1)


def summarize(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over tile summaries: pixel counts and km² per class name (unpadded tiles), stage seconds."""
    counts: dict[str, int] = {}
    area: dict[str, float] = {}
    stages: dict[str, list[float]] = {}
    scenes: set[str] = set()
    for s in summaries:
        for name, v in s["counts"].items():
            counts[name] = counts.get(name, 0) + int(v)
            area[name] = area.get(name, 0.0) + float(s["area_km2"][name])
        for stage, sec in s["seconds"].items():
            stages.setdefault(stage, []).append(float(sec))
        scenes.update(s.get("scenes_used", []))
    pixels = int(sum(s["pixels"] for s in summaries))
    valid = int(sum(s["valid_pixels"] for s in summaries))
    return {
        "tiles": len(summaries),
        "pixels": pixels,
        "valid_pixels": valid,
        "valid_fraction": round(valid / pixels, 4) if pixels else 0.0,
        "scenes_used": sorted(scenes),
        "counts": counts,
        "area_km2": {k: round(v, 3) for k, v in area.items()},
        "seconds_mean": {k: round(float(np.mean(v)), 4) for k, v in stages.items()},
        "seconds_sum": {k: round(float(np.sum(v)), 4) for k, v in stages.items()},
    }


def compare_with_truth(
    bucket: str, product_id: str, truth_uri: str, *, s3_client: Any = None
) -> dict[str, Any]:
    """Agreement of a product's fixed class values with the known land cover, over the unpadded tiles.

    Every product tile is read back from S3, the truth raster is warped (nearest) onto the tile's grid,
    and one confusion matrix (rows: product class, columns: true class) is accumulated over all tiles.
    No matching is involved: value 1 must be water, 2 forest, and so on.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from geobatch.landcover.classifier import confusion
    from geobatch.landcover.gdal_env import rasterio_env
    from geobatch.landcover.imagery import gdal_path
    from geobatch.landcover.imagery import s3_client as make_client
    from geobatch.landcover.product import interior, list_tile_cogs, tile_from_id

    client = s3_client or make_client()
    n = max(CLASS_NAMES)
    total = np.zeros((n, n), dtype=np.int64)
    per_tile: dict[str, float | None] = {}
    with rasterio_env():
        for uri in list_tile_cogs(client, bucket, product_id):
            tile = tile_from_id(uri.rsplit("/", 1)[1].removesuffix(".tif"))
            with rasterio.open(gdal_path(uri)) as src, rasterio.open(gdal_path(truth_uri)) as tsrc:
                pred = src.read(1)
                truth = np.zeros_like(pred)
                reproject(
                    source=rasterio.band(tsrc, 1), destination=truth, src_nodata=NODATA,
                    dst_transform=src.transform, dst_crs=src.crs, dst_nodata=NODATA,
                    resampling=Resampling.nearest,
                )  # fmt: skip
            cm = confusion(interior(tile, pred), interior(tile, truth), n, n)
            per_tile[uri] = float(np.trace(cm) / cm.sum()) if cm.sum() else None
            total += cm
    valid = int(total.sum())
    return {
        "agreement": float(np.trace(total)) / valid if valid else float("nan"),
        "valid_pixels": valid,
        "per_class_agreement": {
            CLASS_NAMES[k + 1]: round(float(total[k, k] / total[:, k].sum()), 4)
            if total[:, k].sum()
            else None
            for k in range(n)
        },
        "per_tile": per_tile,
        "confusion": total.tolist(),
    }
