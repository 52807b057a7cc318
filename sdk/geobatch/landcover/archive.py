"""The synthetic archive in S3: scenes as COGs with earth-search v1 STAC Items, plus the known land cover.

Item shape follows Element84 earth-search v1, collection ``sentinel-2-l2a`` (see
``tests/geo/fixtures/`` for real items): assets keyed by common name (``nir``, ``red``, ``green``,
``scl``) pointing at ``B08.tif``/``B04.tif``/``B03.tif``/``SCL.tif``, each with ``eo:bands``,
``proj:shape``/``proj:transform`` and ``raster:bands`` (scale 0.0001 and offset -0.1 from baseline
04.00 on, offset 0 before), acquisition ``datetime``, ``s2:processing_baseline``, ``eo:cloud_cover``.

Layout (in the bucket)::

    synthetic/{digest}/sentinel-s2-l2a-cogs/{zone}/{band}/{square}/{year}/{month}/{scene_id}/B08.tif …
    synthetic/{digest}/truth.tif       the known land cover (uint8 class values; not part of any archive)
    synthetic/{digest}/search.json     ItemCollection of every scene, as a STAC API search returns it

``digest`` is a hash of what the scenes were generated from (centre, size, resolution, seed, dates),
so two demos over different areas or sizes never overwrite each other's imagery or truth, and the same
demo twice writes the same objects.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from geobatch.landcover.assets import BOA_ADD_OFFSET_DN, L2A_SCALE
from geobatch.landcover.classes import NODATA, colormap
from geobatch.landcover.synthetic import SyntheticScene

ARCHIVE_PREFIX = "sentinel-s2-l2a-cogs"
COG_PROFILE: dict[str, Any] = {
    "driver": "COG",
    "blocksize": 512,
    "compress": "DEFLATE",
    "predictor": 2,
    "overviews": "AUTO",
    "resampling": "average",
}
EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
# asset key -> (file, eo:bands entry); as in earth-search v1.
_BAND_ASSETS: dict[str, tuple[str, dict[str, Any]]] = {
    "nir": ("B08", {"name": "nir", "common_name": "nir", "description": "NIR 1 (band 8)",
                    "center_wavelength": 0.842, "full_width_half_max": 0.145}),
    "red": ("B04", {"name": "red", "common_name": "red", "description": "Red (band 4)",
                    "center_wavelength": 0.665, "full_width_half_max": 0.038}),
    "green": ("B03", {"name": "green", "common_name": "green", "description": "Green (band 3)",
                      "center_wavelength": 0.56, "full_width_half_max": 0.045}),
}  # fmt: skip


def archive_digest(**params: Any) -> str:
    """Short stable hash of the generation parameters (the archive's folder name)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_cog(
    path: str | Path, data: np.ndarray, crs: str, transform: Affine, *, nodata: int = 0, **extra: Any
) -> None:
    """Write a single-band array as a Cloud-Optimized GeoTIFF (512 blocks, DEFLATE, overviews)."""
    import rasterio

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


def scene_folder(scene: SyntheticScene, root: str) -> str:
    """S3 folder of a scene in the public archive layout, under ``root``."""
    band, square = scene.mgrs
    when = scene.datetime
    return f"{root}/{ARCHIVE_PREFIX}/{scene.zone}/{band}/{square}/{when.year}/{when.month}/{scene.scene_id}"


def _asset(
    href: str, title: str, shape: tuple[int, int], transform: Affine, raster: dict[str, Any]
) -> dict[str, Any]:
    return {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "title": title,
        "proj:shape": list(shape),
        "proj:transform": list(transform)[:6],
        "raster:bands": [raster],
        "roles": ["data", "reflectance"],
    }


def _properties(scene: SyntheticScene, folder: str) -> dict[str, Any]:
    acq = scene.acquisition
    band, square = scene.mgrs
    stamp = scene.datetime.strftime("%Y%m%dT%H%M%S")
    return {
        "platform": acq.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": round(scene.cloud_cover, 6),
        "proj:epsg": int(scene.crs.split(":")[1]),
        "mgrs:utm_zone": scene.zone,
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{scene.zone}{band}{square}",
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": acq.baseline,
        "s2:product_uri": f"S2{acq.platform[-1].upper()}_MSIL2A_{stamp}_N{acq.baseline.replace('.', '')}"
        f"_R000_T{scene.zone}{band}{square}_{stamp}.SAFE",
        "s2:sequence": "0",
        "datetime": scene.datetime.isoformat().replace("+00:00", "Z"),
        "earthsearch:s3_path": folder,
        "earthsearch:boa_offset_applied": acq.has_offset,
        "geobatch:synthetic": True,
    }


def stac_item(scene: SyntheticScene, folder_uri: str) -> dict[str, Any]:
    """earth-search v1-shaped STAC Item dict of a scene whose files live under ``folder_uri``."""
    from shapely.geometry import shape as to_shape

    geometry = scene.footprint_lonlat()
    offset = BOA_ADD_OFFSET_DN * L2A_SCALE if scene.acquisition.has_offset else 0.0
    assets: dict[str, Any] = {}
    for key, (file, eo_band) in _BAND_ASSETS.items():
        raster = {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": 10,
                  "scale": L2A_SCALE, "offset": offset}  # fmt: skip
        assets[key] = {
            **_asset(f"{folder_uri}/{file}.tif", f"{eo_band['description']} - 10m", scene.shape,
                     scene.transform, raster),
            "eo:bands": [eo_band],
            "gsd": abs(scene.transform.a),
        }  # fmt: skip
    scl_transform = scene.transform @ Affine.scale(2)
    scl_raster = {"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}
    assets["scl"] = _asset(
        f"{folder_uri}/SCL.tif", "Scene classification map (SCL)", scene.scl.shape, scl_transform, scl_raster
    )
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": EXTENSIONS,
        "id": scene.scene_id,
        "geometry": geometry,
        "bbox": list(to_shape(geometry).bounds),
        "properties": _properties(scene, folder_uri),
        "links": [],
        "assets": assets,
        "collection": "sentinel-2-l2a",
    }


def _put(client: Any, bucket: str, key: str, body: bytes, content_type: str) -> str:
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return f"s3://{bucket}/{key}"


def publish_scenes(s3_client: Any, bucket: str, scenes: list[SyntheticScene], root: str) -> dict[str, Any]:
    """Write every scene's COGs and Item, the truth and the ItemCollection under ``root`` in ``bucket``.

    Files are written with rasterio to a temporary directory, then uploaded with ``put_object`` so they go
    to whatever S3 the client points at (moto server locally, AWS in the cloud). Returns the URIs
    (``items``, ``truth``, ``scenes``: {scene id: item URI}).
    """
    items: list[dict[str, Any]] = []
    uris: dict[str, Any] = {"scenes": {}}
    with tempfile.TemporaryDirectory(prefix="geobatch-scene-") as tmp:
        for scene in scenes:
            folder = scene_folder(scene, root)
            for key, (file, _) in _BAND_ASSETS.items():
                path = Path(tmp) / f"{file}.tif"
                write_cog(path, scene.band(key), scene.crs, scene.transform)
                _put(s3_client, bucket, f"{folder}/{file}.tif", path.read_bytes(), "image/tiff")
            path = Path(tmp) / "SCL.tif"
            write_cog(path, scene.scl, scene.crs, scene.transform @ Affine.scale(2), resampling="nearest")
            _put(s3_client, bucket, f"{folder}/SCL.tif", path.read_bytes(), "image/tiff")
            item = stac_item(scene, f"s3://{bucket}/{folder}")
            items.append(item)
            body = json.dumps(item).encode()
            uris["scenes"][scene.scene_id] = _put(
                s3_client, bucket, f"{folder}/{scene.scene_id}.json", body, "application/json"
            )
        truth = scenes[0]
        path = Path(tmp) / "truth.tif"
        # Overview resampling "mode" keeps class values categorical.
        write_cog(path, truth.truth, truth.crs, truth.transform, nodata=NODATA, resampling="mode",
                  colormap=colormap())  # fmt: skip
        uris["truth"] = _put(s3_client, bucket, f"{root}/truth.tif", path.read_bytes(), "image/tiff")
    collection = {
        "type": "FeatureCollection",
        "features": items,
        "numberReturned": len(items),
        "context": {"returned": len(items), "matched": len(items), "limit": 100},
        "links": [],
    }
    body = json.dumps(collection).encode()
    uris["items"] = _put(s3_client, bucket, f"{root}/search.json", body, "application/geo+json")
    return uris
