"""Land-cover products in S3: per-tile COG + STAC Item, a STAC Collection, and a colour PNG preview.

Layout (in ``bucket``)::

    products/{product_id}/tiles/{tile_id}.tif    uint8 class values (1 water … 5 bare), nodata 0, colours
    products/{product_id}/tiles/{tile_id}.json   STAC Item (projection, raster, classification)
    products/{product_id}/collection.json        STAC Collection linking the items

``tile_id`` is the tile key made path-safe (``1024:0:10.0:18:12:476`` -> ``1024_0_10.0_18_12_476``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from geobatch.landcover.classes import NODATA, colormap, stac_classes
from geobatch.tiles import Tile

PROJECTION_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
RASTER_EXT = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
CLASSIFICATION_EXT = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"


def tile_id(tile_key: str) -> str:
    """Path- and STAC-id-safe version of a tile key (reversible: keys contain no ``_``)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", tile_key)


def tile_from_id(tid: str) -> Tile:
    """Inverse of :func:`tile_id`."""
    return Tile.from_key(tid.replace("_", ":"))


def product_prefix(product_id: str) -> str:
    """S3 prefix of a product."""
    return f"products/{product_id}"


def interior(tile: Tile, raster: np.ndarray) -> np.ndarray:
    """The unpadded part of a tile raster: what the tile alone covers (pads overlap the neighbours)."""
    p = tile.pad
    return raster[..., p : p + tile.tilesize, p : p + tile.tilesize]


def write_class_cog(path: str | Path, labels: np.ndarray, tile: Tile) -> None:
    """Write (H, W) uint8 class values on ``tile``'s grid as a COG with nodata 0, overviews and colours."""
    import rasterio

    rows, cols = tile.shape
    if labels.shape != (rows, cols):
        raise ValueError(f"labels shape {labels.shape} != tile shape {(rows, cols)}")
    profile = {
        "driver": "COG",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "uint8",
        "crs": tile.crs,
        "transform": tile.transform,
        "nodata": NODATA,
        "blocksize": 256 if max(rows, cols) <= 512 else 512,
        "compress": "DEFLATE",
        "overviews": "AUTO",
        # "mode" keeps overview pixels categorical (no averaged class values).
        "resampling": "mode",
        "overview_resampling": "mode",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels.astype(np.uint8, copy=False), 1)
        # The COG driver builds the file by copying an in-memory dataset on close, colour map included.
        dst.write_colormap(1, colormap())


def _polygon(geom: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(c) for c in geom.exterior.coords]]}


def _times(acquired: list[dt.datetime]) -> tuple[dt.datetime | None, dict[str, str]]:
    """(datetime, {start_datetime, end_datetime}) of a composite of scenes acquired at ``acquired``."""
    if not acquired:
        return dt.datetime.now(dt.UTC), {}  # no clear scene: nothing was observed, only processed
    first, last = min(acquired), max(acquired)
    if first == last:
        return first, {}
    return None, {"start_datetime": first.isoformat(), "end_datetime": last.isoformat()}


def tile_item(
    tile: Tile,
    product_id: str,
    href: str,
    *,
    counts: dict[int, int] | None = None,
    acquired: list[dt.datetime] | None = None,
    self_href: str | None = None,
    root_href: str | None = None,
    extra_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """STAC Item dict for one classified tile.

    Geometry and bbox are the padded raster's footprint; ``datetime`` is the acquisition time of the
    scene the pixels came from (several scenes: ``start_datetime``/``end_datetime`` span them); the
    classification asset lists the fixed classes, the same list as the collection's.
    """
    import pystac

    geom = tile.padded_geometry
    when, span = _times(acquired or [])
    item = pystac.Item(
        id=tile_id(tile.key),
        geometry=_polygon(geom),
        bbox=list(geom.bounds),
        datetime=when,
        properties={
            **span,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "proj:epsg": tile.epsg,
            "proj:transform": list(tile.transform)[:6],
            "proj:shape": list(tile.shape),
            "proj:bbox": list(tile.padded_bounds),
            "geobatch:tile_key": tile.key,
            **(extra_properties or {}),
        },
        stac_extensions=[PROJECTION_EXT, RASTER_EXT, CLASSIFICATION_EXT],
        collection=product_id,
    )
    item.add_asset("classification", _classification_asset(tile, href, counts))
    doc = item.to_dict(include_self_link=False, transform_hrefs=False)
    doc["links"] = _item_links(self_href, root_href or "../collection.json")
    return doc


def _classification_asset(tile: Tile, href: str, counts: dict[int, int] | None) -> Any:
    """The item's COG asset: the fixed classes, the raster band and the pixel count per class."""
    import pystac

    extra: dict[str, Any] = {
        "classification:classes": stac_classes(),
        "raster:bands": [{"nodata": NODATA, "data_type": "uint8", "spatial_resolution": tile.resolution}],
    }
    if counts is not None:
        extra["geobatch:pixel_counts"] = {str(k): int(v) for k, v in counts.items()}
    return pystac.Asset(href=href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra)


def _item_links(self_href: str | None, collection: str) -> list[dict[str, str]]:
    return [
        *([{"rel": "self", "href": self_href, "type": "application/geo+json"}] if self_href else []),
        {"rel": "root", "href": collection, "type": "application/json"},
        {"rel": "parent", "href": collection, "type": "application/json"},
        {"rel": "collection", "href": collection, "type": "application/json"},
    ]


def publish_tile(
    s3_client: Any,
    bucket: str,
    product_id: str,
    tile: Tile,
    labels: np.ndarray,
    *,
    counts: dict[int, int] | None = None,
    acquired: list[dt.datetime] | None = None,
    extra_properties: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Write the tile COG and its STAC Item to S3; returns {"cog": s3 uri, "item": s3 uri}."""
    tid = tile_id(tile.key)
    prefix = product_prefix(product_id)
    cog_key, item_key = f"{prefix}/tiles/{tid}.tif", f"{prefix}/tiles/{tid}.json"
    with tempfile.TemporaryDirectory(prefix="geobatch-tile-") as tmp:
        path = Path(tmp) / f"{tid}.tif"
        write_class_cog(path, labels, tile)
        s3_client.put_object(Bucket=bucket, Key=cog_key, Body=path.read_bytes(), ContentType="image/tiff")
    cog_uri = f"s3://{bucket}/{cog_key}"
    item = tile_item(
        tile,
        product_id,
        cog_uri,
        counts=counts,
        acquired=acquired,
        self_href=f"s3://{bucket}/{item_key}",
        root_href=f"s3://{bucket}/{prefix}/collection.json",
        extra_properties=extra_properties,
    )
    s3_client.put_object(
        Bucket=bucket, Key=item_key, Body=json.dumps(item).encode(), ContentType="application/geo+json"
    )
    return {"cog": cog_uri, "item": f"s3://{bucket}/{item_key}"}


def _list_keys(s3_client: Any, bucket: str, prefix: str, suffix: str) -> list[str]:
    keys: list[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffix))
    return sorted(keys)


def _item_times(props: dict[str, Any]) -> list[dt.datetime]:
    values = [props.get(k) for k in ("datetime", "start_datetime", "end_datetime")]
    return [dt.datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values if v]


def _extent(
    s3_client: Any, bucket: str, item_keys: list[str]
) -> tuple[list[float], list[dt.datetime | None]]:
    """The union of the items' bboxes and of their acquisition times (open-ended from now if none)."""
    bboxes: list[list[float]] = []
    times: list[dt.datetime] = []
    for key in item_keys:
        doc = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
        bboxes.append(doc["bbox"])
        times.extend(_item_times(doc["properties"]))
    if bboxes:
        arr = np.asarray(bboxes)
        bbox = [
            float(arr[:, 0].min()),
            float(arr[:, 1].min()),
            float(arr[:, 2].max()),
            float(arr[:, 3].max()),
        ]
    else:
        bbox = [-180.0, -90.0, 180.0, 90.0]
    interval: list[dt.datetime | None] = (
        [min(times), max(times)] if times else [dt.datetime.now(dt.UTC), None]
    )
    return bbox, interval


def write_collection(
    s3_client: Any,
    bucket: str,
    product_id: str,
    *,
    description: str = "GeoBatch land-cover classification",
    extra_links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Build/refresh ``collection.json`` from the product's item JSONs.

    Extent: union of the item bboxes and acquisition times. The classes are the items' fixed list
    (``summaries`` carry the same ``classification:classes`` as every item's asset). ``extra_links``
    name related data, e.g. the source imagery (``derived_from``) and a reference land cover
    (``geobatch:reference``), which the map view offers for comparison.
    """
    import pystac

    prefix = f"{product_prefix(product_id)}/tiles/"
    item_keys = _list_keys(s3_client, bucket, prefix, ".json")
    bbox, interval = _extent(s3_client, bucket, item_keys)
    collection = pystac.Collection(
        id=product_id,
        description=description,
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([interval])),
        license="proprietary",
        stac_extensions=[CLASSIFICATION_EXT],
        summaries=pystac.Summaries({"classification:classes": stac_classes()}),
    )
    doc = collection.to_dict(include_self_link=False, transform_hrefs=False)
    self_href = f"s3://{bucket}/{product_prefix(product_id)}/collection.json"
    doc["links"] = [
        {"rel": "self", "href": self_href, "type": "application/json"},
        {"rel": "root", "href": self_href, "type": "application/json"},
        *(
            {"rel": "item", "href": "./tiles/" + key.rsplit("/", 1)[1], "type": "application/geo+json"}
            for key in item_keys
        ),
        *(extra_links or []),
    ]
    doc["geobatch:item_count"] = len(item_keys)
    s3_client.put_object(
        Bucket=bucket,
        Key=f"{product_prefix(product_id)}/collection.json",
        Body=json.dumps(doc).encode(),
        ContentType="application/json",
    )
    return doc


def list_tile_cogs(s3_client: Any, bucket: str, product_id: str) -> list[str]:
    """s3:// URIs of every tile COG of a product."""
    keys = _list_keys(s3_client, bucket, f"{product_prefix(product_id)}/tiles/", ".tif")
    return [f"s3://{bucket}/{k}" for k in keys]


def mosaic_preview(
    bucket: str, product_id: str, out_png: str | Path, max_size: int = 1024, *, s3_client: Any = None
) -> Path:
    """Mosaic every tile of a product into one RGBA PNG (colour map applied), at most ``max_size`` px a side.

    Tiles are warped (nearest) into the CRS of the first tile, so products spanning several UTM zones work
    (the steps: :mod:`geobatch.landcover.preview`).
    """
    from geobatch.landcover.gdal_env import rasterio_env
    from geobatch.landcover.imagery import s3_client as make_client
    from geobatch.landcover.preview import mosaic, mosaic_grid, write_rgba_png

    client = s3_client or make_client()
    uris = list_tile_cogs(client, bucket, product_id)
    if not uris:
        raise FileNotFoundError(f"no tiles under s3://{bucket}/{product_prefix(product_id)}/tiles/")
    with rasterio_env():
        canvas = mosaic(uris, mosaic_grid(uris, max_size))
    return write_rgba_png(canvas, out_png)
