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
    items_uri: str
    model_uri: str
    truth_uri: str
    scene_id: str
    area: dict[str, Any]
    resolution: float
    tilesize: int
    pad: int
    cluster_names: dict[int, str] = field(default_factory=dict)
    train_agreement: float = float("nan")

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
    train_sample: int = 100_000,
) -> DemoPlan:
    """Generate the synthetic scene into S3, train and upload the KMeans model, and list the area's tiles.

    The scene covers the demo area plus ``margin_px`` on every side; tiles reaching beyond it get nodata
    there (like the edge of a real Sentinel-2 granule). The model's clusters are named after the truth
    classes they match best (Hungarian matching) so products are readable, but labels stay cluster ids.
    """
    from geobatch.landcover.classifier import agreement, match_clusters_to_classes, train_kmeans
    from geobatch.landcover.regions import demo_area
    from geobatch.landcover.synthetic import make_scene, publish_scene
    from geobatch.tiles import Tile, utm_to_lonlat

    area = demo_area(lon, lat, width_px * resolution, height_px * resolution)
    tiles = Tile.from_shape(area, resolution, tilesize, pad)
    zones = {t.zone for t in tiles}
    scene_lon, scene_lat = lon, lat
    scene_w, scene_h = width_px + 2 * margin_px, height_px + 2 * margin_px
    if len(zones) == 1:
        # One scene covering every tile (plus the margin), so no tile of the product is half empty.
        zone = zones.pop()
        xmin = min(t.padded_bounds[0] for t in tiles)
        ymin = min(t.padded_bounds[1] for t in tiles)
        xmax = max(t.padded_bounds[2] for t in tiles)
        ymax = max(t.padded_bounds[3] for t in tiles)
        scene_lon, scene_lat = (float(v) for v in utm_to_lonlat(zone, (xmin + xmax) / 2, (ymin + ymax) / 2))
        scene_w = round((xmax - xmin) / resolution) + 2 * margin_px
        scene_h = round((ymax - ymin) / resolution) + 2 * margin_px
    scene = make_scene(scene_lon, scene_lat, scene_w, scene_h, resolution=resolution, seed=seed)
    uris = publish_scene(s3_client, bucket, scene)

    model, _ = train_kmeans(scene.bands, 5, sample_size=train_sample, seed=seed)
    pred = model.predict(scene.bands)
    mapping = match_clusters_to_classes(pred, scene.truth, model.n_clusters)
    model.cluster_names = {cluster: CLASS_NAMES[cls] for cluster, cls in mapping.items()}
    model.metadata.update(
        {"scene_id": scene.scene_id, "cluster_to_class": {str(k): v for k, v in mapping.items()}}
    )
    model_key = f"models/{product_id}/kmeans.json"
    s3_client.put_object(
        Bucket=bucket, Key=model_key, Body=model.to_json().encode(), ContentType="application/json"
    )

    return DemoPlan(
        bucket=bucket,
        product_id=product_id,
        tile_keys=[t.key for t in tiles],
        items_uri=uris["items"],
        model_uri=f"s3://{bucket}/{model_key}",
        truth_uri=uris["truth"],
        scene_id=scene.scene_id,
        area=area,
        resolution=resolution,
        tilesize=tilesize,
        pad=pad,
        cluster_names=model.cluster_names,
        train_agreement=agreement(pred, scene.truth, mapping),
    )


def _run_one(args: tuple[str, str, str, str, str]) -> dict[str, Any]:
    from geobatch.landcover.job import run_tile

    return run_tile(*args)


def run_tiles_in_process(plan: DemoPlan, processes: int = 2) -> list[dict[str, Any]]:
    """Run every tile of ``plan`` with ``multiprocessing.Pool(processes)``; summaries in tile order."""
    if processes <= 1:
        return [_run_one(a) for a in plan.job_args()]
    with multiprocessing.Pool(processes) as pool:
        return pool.map(_run_one, plan.job_args(), chunksize=1)


def summarize(summaries: list[dict[str, Any]], cluster_names: dict[int, str] | None = None) -> dict[str, Any]:
    """Totals over tile summaries: pixel counts and km² per cluster (named if known), stage seconds."""
    counts: dict[str, int] = {}
    area: dict[str, float] = {}
    stages: dict[str, list[float]] = {}
    for s in summaries:
        names = cluster_names or {int(k): v for k, v in s.get("cluster_names", {}).items()}
        for k, v in s["counts"].items():
            label = names.get(int(k), f"cluster-{k}")
            counts[label] = counts.get(label, 0) + int(v)
            area[label] = area.get(label, 0.0) + float(s["area_km2"][k])
        for stage, sec in s["seconds"].items():
            stages.setdefault(stage, []).append(float(sec))
    return {
        "tiles": len(summaries),
        "pixels": int(sum(s["pixels"] for s in summaries)),
        "valid_pixels": int(sum(s["valid_pixels"] for s in summaries)),
        "counts": counts,
        "area_km2": {k: round(v, 3) for k, v in area.items()},
        "seconds_mean": {k: round(float(np.mean(v)), 4) for k, v in stages.items()},
        "seconds_sum": {k: round(float(np.sum(v)), 4) for k, v in stages.items()},
    }


def compare_with_truth(
    bucket: str, product_id: str, truth_uri: str, *, s3_client: Any = None, n_clusters: int = 5
) -> dict[str, Any]:
    """Agreement of a product with the known land cover, after Hungarian cluster-to-class matching.

    Every product tile is read back from S3 and the truth raster is warped (nearest) onto the tile's grid;
    one confusion matrix is accumulated over all tiles so the matching is global.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from geobatch.landcover.classifier import confusion, match_from_confusion
    from geobatch.landcover.imagery import gdal_path, rasterio_env
    from geobatch.landcover.imagery import s3_client as make_client
    from geobatch.landcover.product import list_tile_cogs

    client = s3_client or make_client()
    n_true = max(CLASS_NAMES) if len(CLASS_NAMES) > 1 else 1
    total = np.zeros((n_clusters, n_true), dtype=np.int64)
    per_tile: dict[str, np.ndarray] = {}
    with rasterio_env():
        for uri in list_tile_cogs(client, bucket, product_id):
            with rasterio.open(gdal_path(uri)) as src:
                pred = src.read(1)
                truth = np.zeros_like(pred)
                with rasterio.open(gdal_path(truth_uri)) as tsrc:
                    reproject(
                        source=rasterio.band(tsrc, 1),
                        destination=truth,
                        src_nodata=NODATA,
                        dst_transform=src.transform,
                        dst_crs=src.crs,
                        dst_nodata=NODATA,
                        resampling=Resampling.nearest,
                    )
            cm = confusion(pred, truth, n_clusters, n_true)
            per_tile[uri] = cm
            total += cm
    mapping = match_from_confusion(total)
    matched = sum(int(total[c - 1, k - 1]) for c, k in mapping.items())
    valid = int(total.sum())
    return {
        "agreement": matched / valid if valid else float("nan"),
        "valid_pixels": valid,
        "mapping": {str(c): CLASS_NAMES[k] for c, k in mapping.items()},
        "per_tile": {
            uri: (sum(int(cm[c - 1, k - 1]) for c, k in mapping.items()) / cm.sum()) if cm.sum() else None
            for uri, cm in per_tile.items()
        },
        "confusion": total.tolist(),
    }
