"""Finding the scenes of a tile: a STAC API search (pystac-client), or a per-tile index written at plan time.

:func:`search_scenes` asks a STAC API (earth-search v1 by default) for the Sentinel-2 L2A items
intersecting a geometry in a date window under a cloud-cover limit, following the API's ``next``
links until every page is read. A job can search per tile; for a large run, :func:`write_tile_index`
does it once at plan time and writes one small ItemCollection per tile to S3, so tens of thousands
of jobs each read only their own list (``items_uri`` with a ``{tile_id}`` placeholder).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EARTH_SEARCH_V1 = "https://earth-search.aws.element84.com/v1"
COLLECTION = "sentinel-2-l2a"


@dataclass(frozen=True)
class SceneQuery:
    """What scenes a tile uses: collection, date window (default: last full northern summer), clouds."""

    collection: str = COLLECTION
    start: dt.date | None = None
    end: dt.date | None = None
    max_cloud_cover: float = 10.0
    page_size: int = 100
    max_items: int | None = None

    def window(self, today: dt.date | None = None) -> str:
        """RFC 3339 interval for the search; default 1 June - 31 August of the last full summer."""
        today = today or dt.date.today()
        year = today.year if today >= dt.date(today.year, 9, 1) else today.year - 1
        start = self.start or dt.date(year, 6, 1)
        end = self.end or dt.date(year, 8, 31)
        if end < start:
            raise ValueError(f"date window ends ({end}) before it starts ({start})")
        return f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z"


def search_scenes(
    geometry: Any,
    query: SceneQuery | None = None,
    *,
    url: str = EARTH_SEARCH_V1,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """STAC Item dicts of every page of a search: items intersecting ``geometry`` (GeoJSON or shapely).

    pystac-client pages through the results by following each response's ``rel="next"`` link (GET
    or POST with the body the link gives) until a page has none.
    """
    from pystac_client import Client
    from shapely.geometry import mapping

    q = query or SceneQuery()
    geojson = geometry if isinstance(geometry, dict) else mapping(geometry)
    client = Client.open(url)
    search = client.search(
        collections=[q.collection],
        intersects=geojson,
        datetime=q.window(today),
        query={"eo:cloud_cover": {"lt": q.max_cloud_cover}},
        limit=q.page_size,
        max_items=q.max_items,
    )
    return [item.to_dict(transform_hrefs=False) for item in search.items()]


def tile_index_key(prefix: str, tile_key: str) -> str:
    """S3 key of one tile's scene list under ``prefix``."""
    from geobatch.landcover.product import tile_id

    return f"{prefix.rstrip('/')}/{tile_id(tile_key)}.json"


def write_tile_index(
    s3_client: Any,
    bucket: str,
    prefix: str,
    tiles: Iterable[Any],
    items: list[dict[str, Any]],
) -> str:
    """One ItemCollection per tile (its items in compositing order) under ``s3://bucket/prefix/``.

    ``items`` is the result of one search over the whole area (or any list of items). Returns the
    ``items_uri`` template jobs take: ``s3://bucket/prefix/{tile_id}.json``.
    """
    from geobatch.landcover.imagery import items_for_tile

    for tile in tiles:
        hits = items_for_tile(items, tile)
        body = json.dumps({"type": "FeatureCollection", "features": hits, "links": []}).encode()
        key = tile_index_key(prefix, tile.key)
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/geo+json")
    return f"s3://{bucket}/{prefix.rstrip('/')}/{{tile_id}}.json"


def items_for_job(items_uri: str, tile: Any, client: Any = None) -> list[dict[str, Any]]:
    """The items one job composites, in order, from whichever source ``items_uri`` names.

    - ``…{tile_id}…``: the per-tile index written by :func:`write_tile_index`;
    - ``http(s)://…`` (a STAC API root): :func:`search_scenes` over the tile, default query;
    - anything else: an ItemCollection (s3:// or local), filtered to the tile.
    """
    from geobatch.landcover.imagery import items_for_tile, load_items
    from geobatch.landcover.product import tile_id

    if "{tile_id}" in items_uri:
        uri = items_uri.format(tile_id=tile_id(tile.key))
        try:
            return items_for_tile(load_items(uri, client), tile)
        except (FileNotFoundError, KeyError) as exc:
            raise FileNotFoundError(f"no scene index for tile {tile.key} at {uri}: was it planned?") from exc
    if items_uri.startswith(("http://", "https://")):
        return items_for_tile(search_scenes(tile.padded_geometry, url=items_uri), tile)
    return items_for_tile(load_items(items_uri, client), tile)
