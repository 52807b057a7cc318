"""Deterministic synthetic Sentinel-2 L2A scenes, published like the public COG archive on AWS.

No real imagery can be downloaded in development, so the demo generates a scene with a known land cover:
smooth noise fields decide forest / cropland / bare fields, a meandering lake runs north-south (Lake
Champlain-like) and a few towns are urban. Each class gets its typical L2A reflectance (see
:mod:`geobatch.landcover.classes`) with texture and per-pixel noise.

Layout written to S3 (that of ``s3://sentinel-cogs`` / ``sentinel-s2-l2a-cogs``)::

    {prefix}/{utm_zone}/{lat_band}/{grid_square}/{year}/{month}/{scene_id}/B03.tif|B04.tif|B08.tif

plus ``truth.tif`` (uint8 class ids) in the same folder. ``truth.tif`` is NOT part of the real layout; it
is the known answer used to score the classifier. A STAC Item per scene (earth-search style, projection
and eo extensions) sits beside the bands, and an ItemCollection (like a STAC API search response) is written
under ``{prefix}/search/``.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from scipy import ndimage

from geobatch.landcover.classes import BANDS, CLASSES, NODATA, colormap
from geobatch.tiles import lonlat_to_utm, utm_to_lonlat, zone_for_lon

DEFAULT_PREFIX = "sentinel-s2-l2a-cogs"
COG_PROFILE: dict[str, Any] = {
    "driver": "COG",
    "blocksize": 512,
    "compress": "DEFLATE",
    "predictor": 2,
    "overviews": "AUTO",
    "resampling": "average",
}
PROJECTION_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
EO_EXT = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
_BAND_INFO = {
    "B03": {"name": "B03", "common_name": "green", "center_wavelength": 0.56},
    "B04": {"name": "B04", "common_name": "red", "center_wavelength": 0.665},
    "B08": {"name": "B08", "common_name": "nir", "center_wavelength": 0.842},
}


@dataclass
class SyntheticScene:
    """An in-memory scene: DNs (3, H, W) in band order B08, B04, B03, truth classes and its grid."""

    scene_id: str
    bands: np.ndarray
    truth: np.ndarray
    crs: str
    transform: Affine
    datetime: dt.datetime
    zone: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.truth.shape[0], self.truth.shape[1]

    def band(self, name: str) -> np.ndarray:
        """One band's (H, W) DNs by name (B03, B04 or B08)."""
        return self.bands[BANDS.index(name)]

    def footprint_lonlat(self) -> dict[str, Any]:
        """GeoJSON Polygon of the scene's outline in lon/lat (edges densified to 5 points per side)."""
        h, w = self.shape
        t = np.linspace(0.0, 1.0, 5)
        cols = np.concatenate([t * w, np.full(5, w), (1 - t) * w, np.zeros(5)])
        rows = np.concatenate([np.zeros(5), t * h, np.full(5, h), (1 - t) * h])
        xs, ys = self.transform @ (cols, rows)  # type: ignore[operator]  # Affine maps arrays too
        lons, lats = utm_to_lonlat(self.zone, np.asarray(xs), np.asarray(ys))
        ring = [[float(a), float(b)] for a, b in zip(lons, lats, strict=True)]
        ring.append(ring[0])
        return {"type": "Polygon", "coordinates": [ring]}


def mgrs_square(zone: int, lat: float, easting: float, northing: float) -> tuple[str, str]:
    """MGRS latitude band letter and 100 km grid-square id (e.g. ``("T", "XP")``) of a UTM position."""
    band = "CDEFGHJKLMNPQRSTUVWXX"[min(max(int((lat + 80) // 8), 0), 20)]
    col_letters = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    col = col_letters[int(easting // 100_000) - 1]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    # Even zones start their row lettering 5 letters later (MGRS "AA" scheme).
    row = rows[(int(northing // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return band, col + row


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Spatially coherent noise in ~[-1, 1]: coarse white noise upsampled with cubic splines (fast)."""
    coarse = rng.standard_normal((shape[0] // cell + 4, shape[1] // cell + 4))
    fine = ndimage.zoom(coarse, cell, order=3)[: shape[0], : shape[1]]
    return fine / (np.abs(fine).max() + 1e-9)


def generate_landcover(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Deterministic uint8 class map (1..5) with a lake, towns, forest patches and agricultural fields."""
    rng = np.random.default_rng(seed)
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w]
    relief = _smooth_noise(rng, shape, 96) + 0.5 * _smooth_noise(rng, shape, 32)
    classes = np.full(shape, 3, dtype=np.uint8)  # cropland by default

    # Agricultural parcels: a jittered grid of fields, each bare soil (ploughed) or crop.
    fh, fw = 40, 60
    warp = 12 * _smooth_noise(rng, shape, 64)
    fr = np.clip((rows + warp) // fh, 0, h // fh + 1).astype(np.intp)
    fc = np.clip((cols - warp) // fw, 0, w // fw + 1).astype(np.intp)
    bare_fields = rng.random((h // fh + 2, w // fw + 2)) < 0.22
    classes[bare_fields[fr, fc]] = 5

    # Forest on the higher ground.
    classes[relief > np.quantile(relief, 0.6)] = 2

    # Towns: a few blobs with ragged edges.
    ragged = _smooth_noise(rng, shape, 8)
    for _ in range(6):
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        radius = rng.uniform(0.04, 0.08) * min(h, w)
        dist = np.hypot(rows - cy, cols - cx)
        classes[dist < radius * (1 + 0.35 * ragged)] = 4

    # A lake/river meandering north-south west of the centre, plus a few ponds in low ground.
    centre = (
        0.35 * w
        + 0.08 * w * np.sin(rows[:, 0] / h * 2 * np.pi * 1.3)
        + 30 * _smooth_noise(rng, (h, 1), 64)[:, 0]
    )
    half_width = 0.025 * w + 0.02 * w * (0.5 + 0.5 * np.sin(rows[:, 0] / h * np.pi * 3))
    classes[np.abs(cols - centre[:, None]) < half_width[:, None]] = 1
    classes[relief < np.quantile(relief, 0.015)] = 1
    return classes


def synthesize_reflectance(classes: np.ndarray, seed: int) -> np.ndarray:
    """(3, H, W) uint16 L2A DNs (B08, B04, B03) for a class map: class means x texture + per-pixel noise."""
    rng = np.random.default_rng(seed + 1)
    # Within-class variability (moisture, density) and sensor noise, strong enough that k-means
    # mislabels a little (about 1-2% of pixels) as it would on real imagery.
    texture = 0.15 * _smooth_noise(rng, classes.shape, 16)
    out = np.empty((len(BANDS), *classes.shape), dtype=np.uint16)
    for b, name in enumerate(BANDS):
        means = np.zeros(max(c.id for c in CLASSES) + 1, dtype=np.float32)
        for c in CLASSES:
            means[c.id] = c.reflectance(name)
        base = means[classes] * (1.0 + texture)
        noisy = base * (1.0 + 0.15 * rng.standard_normal(classes.shape, dtype=np.float32))
        # DN 0 means nodata in L2A, so valid pixels are clipped to >= 1.
        out[b] = np.clip(np.rint(noisy), 1, 10_000).astype(np.uint16)
    return out


def make_scene(
    lon: float,
    lat: float,
    width_px: int,
    height_px: int,
    *,
    resolution: float = 10.0,
    seed: int = 42,
    date: dt.date = dt.date(2024, 7, 15),
) -> SyntheticScene:
    """Scene of ``width_px`` x ``height_px`` at ``resolution`` centred on (lon, lat) in its UTM zone.

    The origin is snapped to the resolution so the scene grid aligns with DL tiles of the same resolution.
    """
    zone = zone_for_lon(lon)
    cx, cy = lonlat_to_utm(zone, lon, lat)
    xmin = np.floor((cx - width_px * resolution / 2) / resolution) * resolution
    ymax = np.floor((cy + height_px * resolution / 2) / resolution) * resolution
    classes = generate_landcover((height_px, width_px), seed)
    bands = synthesize_reflectance(classes, seed)
    band, square = mgrs_square(zone, lat, cx, cy)
    scene_id = f"S2A_{zone}{band}{square}_{date:%Y%m%d}_0_L2A"
    when = dt.datetime(date.year, date.month, date.day, 15, 40, 0, tzinfo=dt.UTC)
    return SyntheticScene(
        scene_id=scene_id,
        bands=bands,
        truth=classes,
        crs=f"EPSG:326{zone:02d}",
        transform=Affine(resolution, 0.0, float(xmin), 0.0, -resolution, float(ymax)),
        datetime=when,
        zone=zone,
    )


def write_cog(
    path: str | Path, data: np.ndarray, crs: str, transform: Affine, *, nodata: int = 0, **extra: Any
) -> None:
    """Write a single-band array as a Cloud-Optimized GeoTIFF (512 blocks, DEFLATE, overviews)."""
    profile = {
        **COG_PROFILE,
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        **extra,
    }
    cmap = profile.pop("colormap", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if cmap:
            # The COG driver writes via an in-memory copy, so the colour map is set before the final copy.
            dst.write_colormap(1, cmap)


def scene_prefix(scene: SyntheticScene, prefix: str = DEFAULT_PREFIX) -> str:
    """S3 folder of a scene in the public archive layout."""
    band, square = scene.scene_id.split("_")[1][-3], scene.scene_id.split("_")[1][-2:]
    return (
        f"{prefix}/{scene.zone}/{band}/{square}/{scene.datetime.year}/{scene.datetime.month}/{scene.scene_id}"
    )


def stac_item(scene: SyntheticScene, bucket: str, folder: str) -> dict[str, Any]:
    """Earth-search-like STAC Item dict (projection + eo extensions) with assets B03/B04/B08 on s3://."""
    import pystac
    from shapely.geometry import shape as to_shape

    geometry = scene.footprint_lonlat()
    h, w = scene.shape
    transform = list(scene.transform)[:6]
    epsg = int(scene.crs.split(":")[1])
    item = pystac.Item(
        id=scene.scene_id,
        geometry=geometry,
        bbox=list(to_shape(geometry).bounds),
        datetime=scene.datetime,
        properties={
            "platform": "sentinel-2a",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": 0.0,
            "proj:epsg": epsg,
            "mgrs:utm_zone": scene.zone,
            "s2:processing_baseline": "05.10",
            "geobatch:synthetic": True,
        },
        stac_extensions=[PROJECTION_EXT, EO_EXT],
        collection="sentinel-2-l2a",
    )
    for name in sorted(BANDS):
        item.add_asset(
            name,
            pystac.Asset(
                href=f"s3://{bucket}/{folder}/{name}.tif",
                media_type=pystac.MediaType.COG,
                roles=["data", "reflectance"],
                title=f"{name} ({_BAND_INFO[name]['common_name']}) - 10m",
                extra_fields={
                    "eo:bands": [_BAND_INFO[name]],
                    "proj:shape": [h, w],
                    "proj:transform": transform,
                    "gsd": abs(scene.transform.a),
                    "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 1e-4, "offset": 0}],
                },
            ),
        )
    return item.to_dict(include_self_link=False)


def publish_scene(
    s3_client: Any, bucket: str, scene: SyntheticScene, *, prefix: str = DEFAULT_PREFIX
) -> dict[str, str]:
    """Write the scene's COGs, truth, STAC Item and ItemCollection to S3; returns their s3:// URIs.

    Files are written to a temporary directory with rasterio, then uploaded with ``put_object`` so they go to
    whatever S3 the client points at (moto server locally, a moto mock in tests, AWS in the cloud).
    """
    folder = scene_prefix(scene, prefix)
    uris: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="geobatch-scene-") as tmp:
        for name in BANDS:
            path = Path(tmp) / f"{name}.tif"
            write_cog(path, scene.band(name), scene.crs, scene.transform)
            key = f"{folder}/{name}.tif"
            s3_client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType="image/tiff")
            uris[name] = f"s3://{bucket}/{key}"
        truth_path = Path(tmp) / "truth.tif"
        # Overview resampling "mode" keeps class ids categorical.
        write_cog(
            truth_path,
            scene.truth,
            scene.crs,
            scene.transform,
            nodata=NODATA,
            resampling="mode",
            colormap=colormap(),
        )
        key = f"{folder}/truth.tif"
        s3_client.put_object(Bucket=bucket, Key=key, Body=truth_path.read_bytes(), ContentType="image/tiff")
        uris["truth"] = f"s3://{bucket}/{key}"

    item = stac_item(scene, bucket, folder)
    item_key = f"{folder}/{scene.scene_id}.json"
    s3_client.put_object(
        Bucket=bucket, Key=item_key, Body=json.dumps(item).encode(), ContentType="application/json"
    )
    uris["item"] = f"s3://{bucket}/{item_key}"

    collection = {
        "type": "FeatureCollection",
        "features": [item],
        "numberReturned": 1,
        "context": {"returned": 1, "matched": 1, "limit": 100},
        "links": [],
    }
    search_key = f"{prefix}/search/{scene.scene_id}.json"
    s3_client.put_object(
        Bucket=bucket,
        Key=search_key,
        Body=json.dumps(collection).encode(),
        ContentType="application/geo+json",
    )
    uris["items"] = f"s3://{bucket}/{search_key}"
    return uris
