"""Scene finding: a paged STAC API search (against a small stand-in on 127.0.0.1) and the per-tile index."""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from geobatch.landcover.scenes import SceneQuery, items_for_job, search_scenes, write_tile_index
from geobatch.tiles import Tile
from tests.geo.helpers import REAL_2023, fixture_item

pytestmark = [pytest.mark.geo, pytest.mark.moto]

PAGE = 2


class _StacApi(BaseHTTPRequestHandler):
    """Landing page at ``/`` and ``POST /search`` returning ``PAGE`` items per page with ``next`` links.

    The next link carries the page token in its POST body, as stac-fastapi and earth-search do.
    """

    items: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "":
            self.send_error(404)
            return
        self._send(
            {
                "type": "Catalog", "id": "stand-in", "stac_version": "1.0.0", "description": "test STAC API",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/item-search#query",
                ],
                "links": [
                    {"rel": "self", "href": self.root, "type": "application/json"},
                    {"rel": "root", "href": self.root, "type": "application/json"},
                    {"rel": "search", "href": f"{self.root}/search", "method": "POST",
                     "type": "application/geo+json"},
                ],
            }
        )  # fmt: skip

    def do_POST(self) -> None:
        if self.path != "/search":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        start = int(body.get("token", "0"))
        page = self.items[start : start + PAGE]
        links = []
        if start + PAGE < len(self.items):
            links.append({"rel": "next", "href": f"{self.root}/search", "method": "POST", "merge": True,
                          "body": {"token": str(start + PAGE)}})  # fmt: skip
        self._send({"type": "FeatureCollection", "features": page, "links": links,
                    "numberMatched": len(self.items), "numberReturned": len(page)})  # fmt: skip


@pytest.fixture
def stac_api() -> Iterator[str]:
    real = fixture_item(REAL_2023)
    items = []
    for day in range(5):
        item = copy.deepcopy(real)
        item["id"] = f"S2A_39QTA_2023062{day}_0_L2A"
        item["properties"]["datetime"] = f"2023-06-2{day}T07:24:41.632000Z"
        item["properties"]["eo:cloud_cover"] = float(day)
        items.append(item)
    _StacApi.items, _StacApi.requests = items, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StacApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_search_follows_every_next_link(stac_api: str) -> None:
    tile = Tile.from_latlon(18.5, 48.7, 10.0, 1024, 0)
    query = SceneQuery(max_cloud_cover=20.0, page_size=PAGE)
    items = search_scenes(tile.padded_geometry, query, url=stac_api, today=dt.date(2024, 3, 1))
    assert [it["id"] for it in items] == [it["id"] for it in _StacApi.items]  # 5 items over 3 pages
    assert [r.get("token") for r in _StacApi.requests] == [None, "2", "4"]
    first = _StacApi.requests[0]
    assert first["collections"] == ["sentinel-2-l2a"] and first["limit"] == PAGE
    assert first["datetime"] == "2023-06-01T00:00:00Z/2023-08-31T23:59:59Z"  # last full summer
    assert first["query"] == {"eo:cloud_cover": {"lt": 20.0}}
    assert first["intersects"]["type"] == "Polygon"
    # The next pages repeat the query (merge: true) with the server's token.
    assert all(
        r["datetime"] == first["datetime"] and r["intersects"] == first["intersects"]
        for r in _StacApi.requests
    )
    # A job given the API URL searches for its own tile and composites the clearest scene first.
    chosen = items_for_job(stac_api, tile)
    assert chosen[0]["id"] == "S2A_39QTA_20230620_0_L2A" and len(chosen) == 5


def test_summer_window_and_bad_window() -> None:
    assert SceneQuery().window(dt.date(2025, 9, 1)).startswith("2025-06-01")
    assert SceneQuery().window(dt.date(2025, 8, 31)).startswith("2024-06-01")
    custom = SceneQuery(start=dt.date(2023, 5, 1), end=dt.date(2023, 5, 31))
    assert custom.window() == "2023-05-01T00:00:00Z/2023-05-31T23:59:59Z"
    with pytest.raises(ValueError, match="before it starts"):
        SceneQuery(start=dt.date(2023, 5, 2), end=dt.date(2023, 5, 1)).window()


@mock_aws
def test_tile_index_written_once_read_per_tile() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="index")
    real = fixture_item(REAL_2023)
    inside = Tile.from_latlon(18.5, 48.7, 10.0, 1024, 0)
    outside = Tile.from_latlon(40.0, 48.7, 10.0, 1024, 0)  # same zone, far north of the granule
    template = write_tile_index(s3, "index", "runs/r1", [inside, outside], [real])
    assert template == "s3://index/runs/r1/{tile_id}.json"
    assert [it["id"] for it in items_for_job(template, inside, s3)] == [real["id"]]
    assert items_for_job(template, outside, s3) == []
