"""Real imagery loading: STAC items -> windowed COG reads over ``/vsis3/`` -> arrays on a tile's grid.

This is the code a production job runs against the public Sentinel-2 COG archive; locally it runs unchanged
against moto's S3 server, because :func:`gdal_s3_env` points GDAL at whatever ``AWS_ENDPOINT_URL`` says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from geobatch.data_access import gdal_options
from geobatch.landcover.classes import BANDS
from geobatch.tiles import Tile

# Host names to recognise as local (plain-HTTP endpoints are allowed there); nothing binds to them.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"}  # nosec B104


def gdal_s3_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """GDAL config options for ``/vsis3/`` derived from the standard AWS environment variables.

    When ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` points at a local endpoint (moto server), GDAL needs
    the endpoint without scheme, plain HTTP, path-style addressing and explicit credentials/region. Against
    real AWS the result is empty so GDAL keeps its defaults (credential chain, virtual hosting, HTTPS).
    Use through :func:`rasterio_env` (rasterio rejects credential keys passed to ``rasterio.Env``).
    """
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return {}
    url = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    if url.hostname not in _LOCAL_HOSTS:
        return {}
    return {
        "AWS_S3_ENDPOINT": url.netloc,
        "AWS_HTTPS": "NO" if url.scheme == "http" else "YES",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
    }


def rasterio_env(**options: Any) -> Any:
    """``rasterio.Env`` configured by :func:`gdal_s3_env` plus ``options``.

    rasterio refuses AWS credential keys as plain config options (``EnvError``), so the credentials and
    region go through an ``AWSSession`` and the rest (endpoint, HTTPS, addressing) as GDAL options.
    """
    import rasterio
    from rasterio.session import AWSSession

    opts = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", **gdal_s3_env(), **options}
    key = opts.pop("AWS_ACCESS_KEY_ID", None)
    secret = opts.pop("AWS_SECRET_ACCESS_KEY", None)
    region = opts.pop("AWS_REGION", None)
    if key is None:
        return rasterio.Env(**opts)
    session = AWSSession(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
        endpoint_url=opts.get("AWS_S3_ENDPOINT"),
    )
    return rasterio.Env(session=session, **opts)


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
        return (client or s3_client()).get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri.removeprefix("file://")).read_bytes()


def gdal_path(href: str) -> str:
    """GDAL path for an asset href: ``s3://b/k`` -> ``/vsis3/b/k`` (windowed HTTP range reads)."""
    if href.startswith("s3://"):
        bucket, key = split_s3_uri(href)
        return f"/vsis3/{bucket}/{key}"
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    return href


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


def items_for_tile(items: list[dict[str, Any]], tile: Tile) -> list[dict[str, Any]]:
    """Items whose footprint intersects the tile, least cloudy first (then newest)."""
    from shapely.geometry import shape

    footprint = tile.geometry
    hits = [it for it in items if shape(it["geometry"]).intersects(footprint)]
    return sorted(
        hits,
        key=lambda it: (
            it["properties"].get("eo:cloud_cover", 0.0),
            _neg_time(it["properties"].get("datetime")),
        ),
    )


def _neg_time(value: str | None) -> float:
    import datetime as dt

    if not value:
        return 0.0
    return -dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def read_tile(
    tile: Tile,
    items: list[dict[str, Any]],
    bands: tuple[str, ...] = BANDS,
    *,
    resampling: str = "bilinear",
) -> np.ndarray:
    """(len(bands), H, W) uint16 DNs on the tile grid (its CRS, transform and shape); 0 = nodata.

    Items are mosaicked in the order given (first valid pixel wins). Each band is warped straight from the COG
    into the tile array with GDAL's warper, which only fetches the internal blocks (or overview) it needs.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    rows, cols = tile.shape
    out = np.zeros((len(bands), rows, cols), dtype=np.uint16)
    method = Resampling[resampling]
    with rasterio_env():
        for item in items:
            for b, name in enumerate(bands):
                href = item["assets"][name]["href"]
                # Public archives (the Function's data_access.public) are read unsigned.
                with rasterio.Env(**gdal_options(href)), rasterio.open(gdal_path(href)) as src:
                    scratch = np.zeros((rows, cols), dtype=np.uint16)
                    reproject(
                        source=rasterio.band(src, 1),
                        destination=scratch,
                        src_nodata=src.nodata if src.nodata is not None else 0,
                        dst_transform=tile.transform,
                        dst_crs=tile.crs,
                        dst_nodata=0,
                        resampling=method,
                    )
                fill = out[b] == 0
                out[b][fill] = scratch[fill]
            if np.all(out != 0):
                break  # tile fully covered: later items cannot change anything
    return out


def read_tile_from_catalog(
    tile: Tile, items_source: str | dict[str, Any], *, client: Any = None, bands: tuple[str, ...] = BANDS
) -> np.ndarray:
    """Convenience: load the ItemCollection, select items intersecting ``tile`` and read the bands."""
    return read_tile(tile, items_for_tile(load_items(items_source, client), tile), bands)
