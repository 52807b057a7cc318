"""Real imagery: STAC items -> windowed COG reads -> cloud-masked surface reflectance on a tile's grid.

This is the code a production job runs against the public Sentinel-2 L2A archive (earth-search v1
items, COGs in ``sentinel-cogs``); locally it runs unchanged against moto's S3 server, because the GDAL
settings (:mod:`geobatch.landcover.gdal_env`) point GDAL at whatever ``AWS_ENDPOINT_URL`` says.

:func:`read_tile` is the public entry point: it returns float32 reflectance with every masked pixel
NaN, the valid mask, and which scenes the pixels came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from geobatch.landcover.assets import find_asset, radiometry
from geobatch.landcover.classes import BANDS
from geobatch.landcover.gdal_env import (  # noqa: F401  (re-exported: the names callers know)
    buckets_of,
    ensure_env,
    gdal_options,
    gdal_s3_env,
    rasterio_env,
)
from geobatch.tiles import Tile

#: Scene classification (SCL) values that are not a clear view of the ground: nodata, saturated or
#: defective, cloud shadow, cloud medium and high probability, thin cirrus. Dark area pixels (2),
#: vegetation, bare, water, unclassified (7) and snow (11) are kept.
SCL_MASKED: tuple[int, ...] = (0, 1, 3, 8, 9, 10)


@dataclass
class TileRead:
    """What :func:`read_tile` returns: reflectance, validity and where each pixel came from."""

    reflectance: np.ndarray  # (len(bands), H, W) float32, NaN where masked
    valid: np.ndarray  # (H, W) bool: every band finite, scene clear there
    source: np.ndarray  # (H, W) int16: index into ``scenes`` of the scene each pixel came from, -1 none
    scenes: list[str] = field(default_factory=list)  # ids of the items read, in compositing order
    bands: tuple[str, ...] = BANDS

    @property
    def valid_fraction(self) -> float:
        """Fraction of the tile's pixels with a clear, valid observation."""
        return float(self.valid.mean()) if self.valid.size else 0.0

    @property
    def scenes_used(self) -> list[str]:
        """Ids of the scenes that supplied at least one pixel, in compositing order."""
        used = set(np.unique(self.source[self.source >= 0]).tolist())
        return [s for i, s in enumerate(self.scenes) if i in used]

    def __iter__(self) -> Any:
        """Unpacks as ``(reflectance, valid)``."""
        return iter((self.reflectance, self.valid))


def s3_client() -> Any:
    """boto3 S3 client honouring ``AWS_ENDPOINT_URL`` (boto3 reads it natively)."""
    import boto3

    return boto3.client("s3")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    url = urlparse(uri)
    if url.scheme != "s3" or not url.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return url.netloc, url.path.lstrip("/")


def read_bytes(uri: str, client: Any = None) -> bytes:
    """Bytes of an ``s3://`` object or a local path/``file://`` URI."""
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri)
        s3 = client or s3_client()
        try:
            data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return data
        except s3.exceptions.NoSuchKey:
            raise FileNotFoundError(f"no such object: {uri}") from None
    return Path(uri.removeprefix("file://")).read_bytes()


def gdal_path(href: str) -> str:
    """GDAL path for an asset href: ``s3://b/k`` -> ``/vsis3/b/k``, ``https://…`` -> ``/vsicurl/https://…``."""
    if href.startswith("s3://"):
        bucket, key = split_s3_uri(href)
        return f"/vsis3/{bucket}/{key}"
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    return href.removeprefix("file://")


def load_items(
    source: str | dict[str, Any] | list[dict[str, Any]], client: Any = None
) -> list[dict[str, Any]]:
    """STAC Item dicts from an ItemCollection / search response (s3:// URI, local path, dict or list)."""
    doc: Any = json.loads(read_bytes(source, client)) if isinstance(source, str) else source
    if isinstance(doc, list):
        return list(doc)
    if doc.get("type") == "Feature":
        return [doc]
    return list(doc.get("features", []))


def clearest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compositing order: least cloudy first (``eo:cloud_cover``), then newest, then id."""
    from geobatch.landcover.assets import acquired

    def key(it: dict[str, Any]) -> tuple[float, float, str]:
        when = acquired(it)
        return (
            float(it.get("properties", {}).get("eo:cloud_cover", 0.0)),
            -when.timestamp() if when else 0.0,
            str(it.get("id")),
        )

    return sorted(items, key=key)


def items_for_tile(items: list[dict[str, Any]], tile: Tile) -> list[dict[str, Any]]:
    """Items whose footprint intersects the tile's raster, in compositing order (:func:`clearest_first`)."""
    from shapely.geometry import shape

    footprint = tile.padded_geometry
    return clearest_first([it for it in items if shape(it["geometry"]).intersects(footprint)])


def _warp(href: str, tile: Tile, dtype: str, resampling: str) -> tuple[np.ndarray, Any]:
    """One asset's first band on the tile grid (DNs, nodata kept); returns (array, the file's nodata).

    Sentinel-2 grids and DL tiles of the same zone are pixel-aligned (both on a 10 m lattice), so the
    usual case is a windowed read and an index lookup (:func:`_aligned_read`), exact and without the
    warper; anything else (another zone, a rotated or finer grid) goes through GDAL's warper.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    with rasterio.open(gdal_path(href)) as src:
        nodata = src.nodata if src.nodata is not None else 0
        out = _aligned_read(src, tile, dtype, nodata, resampling)
        if out is None:
            out = np.zeros(tile.shape, dtype=dtype)
            reproject(
                source=rasterio.band(src, 1),
                destination=out,
                src_nodata=nodata,
                dst_transform=tile.transform,
                dst_crs=tile.crs,
                dst_nodata=nodata,
                resampling=Resampling[resampling],
            )
    return out, nodata


def _aligned_read(src: Any, tile: Tile, dtype: str, nodata: Any, resampling: str) -> np.ndarray | None:
    """The tile's pixels by index from a same-CRS north-up grid at the tile's or a coarser resolution.

    Each tile pixel takes the source pixel under its centre: exact when the grids coincide (any
    resampling gives the same), nearest-neighbour otherwise (only allowed when asked for). None when
    the grids do not allow it.
    """
    from rasterio.windows import Window

    t, res = src.transform, tile.resolution
    if src.crs is None or src.crs.to_epsg() != tile.epsg or t.b or t.d or abs(t.a + t.e) > 1e-9:
        return None
    xmin, _, _, ymax = tile.padded_bounds
    step = t.a / res
    coincide = step == 1 and float((xmin - t.c) / res).is_integer() and float((t.f - ymax) / res).is_integer()
    if step < 1 or (resampling != "nearest" and not coincide):
        return None
    rows, cols = tile.shape
    ci = np.floor((xmin + (np.arange(cols) + 0.5) * res - t.c) / t.a).astype(np.int64)
    ri = np.floor((t.f - (ymax - (np.arange(rows) + 0.5) * res)) / t.a).astype(np.int64)
    cok, rok = (ci >= 0) & (ci < src.width), (ri >= 0) & (ri < src.height)
    out = np.full(tile.shape, nodata, dtype=dtype)
    if not cok.any() or not rok.any():
        return out
    c0, c1, r0, r1 = int(ci[cok].min()), int(ci[cok].max()), int(ri[rok].min()), int(ri[rok].max())
    data = src.read(1, window=Window(c0, r0, c1 - c0 + 1, r1 - r0 + 1))
    out[np.ix_(rok, cok)] = data[np.ix_(ri[rok] - r0, ci[cok] - c0)]
    return out


def read_scene(
    tile: Tile, item: dict[str, Any], bands: tuple[str, ...] = BANDS, *, resampling: str = "bilinear"
) -> np.ndarray:
    """(len(bands), H, W) float32 reflectance of one item on the tile grid; NaN where nodata or not clear.

    Bands are found by common name or v0 key, scaled by their own ``raster:bands`` (or the baseline
    rule), and masked by the item's SCL (nearest resampling: SCL is categorical and 20 m).
    """
    out = np.empty((len(bands), *tile.shape), dtype=np.float32)
    for b, band in enumerate(bands):
        _, asset = find_asset(item, band)
        dn, nodata = _warp(asset["href"], tile, "uint16", resampling)
        refl = radiometry(item, asset).apply(dn)
        refl[dn == nodata] = np.nan  # the file's own nodata too, in case the item does not state it
        out[b] = refl
    try:
        _, scl_asset = find_asset(item, "scl")
    except KeyError:
        return out  # no scene classification: only nodata is masked
    scl, _ = _warp(scl_asset["href"], tile, "uint8", "nearest")
    out[:, np.isin(scl, SCL_MASKED)] = np.nan
    return out


def read_tile(
    tile: Tile,
    items: list[dict[str, Any]],
    bands: tuple[str, ...] = BANDS,
    *,
    resampling: str = "bilinear",
) -> TileRead:
    """Cloud-masked surface reflectance of ``tile`` composited from ``items``: the clearest scene wins.

    ``items`` are STAC Item dicts (earth-search v1 or v0 naming) in compositing order, usually from
    :func:`items_for_tile`. Per pixel, the first item with a clear, valid observation in *every* band
    supplies *all* bands (a pixel never mixes NIR from one date with red from another). Returns a
    :class:`TileRead`: ``reflectance`` (len(bands), H, W) float32 with NaN where no scene is clear,
    ``valid`` (H, W) bool, ``source`` (index into ``scenes`` per pixel) and the scene ids; it also
    unpacks as ``reflectance, valid = read_tile(...)``. Reading stops once every pixel is filled.
    """
    out = np.full((len(bands), *tile.shape), np.nan, dtype=np.float32)
    source = np.full(tile.shape, -1, dtype=np.int16)
    hrefs = [a.get("href", "") for it in items for a in it.get("assets", {}).values()]
    with ensure_env(read_buckets=buckets_of(hrefs)):
        for i, item in enumerate(items):
            scene = read_scene(tile, item, bands, resampling=resampling)
            take = (source < 0) & np.all(np.isfinite(scene), axis=0)
            out[:, take] = scene[:, take]
            source[take] = i
            if np.all(source >= 0):
                break  # every pixel has its clearest observation: later items cannot change anything
    return TileRead(
        reflectance=out, valid=source >= 0, source=source, scenes=[str(it["id"]) for it in items], bands=bands
    )


def read_tile_from_catalog(
    tile: Tile, items_source: str | dict[str, Any], *, client: Any = None, bands: tuple[str, ...] = BANDS
) -> TileRead:
    """Convenience: load the ItemCollection, select items intersecting ``tile`` and read the bands."""
    return read_tile(tile, items_for_tile(load_items(items_source, client), tile), bands)
