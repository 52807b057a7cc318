"""Benchmark: milliseconds per 256×256 map tile of a land-cover product, served from local S3 (moto server).

Run from the repo root: ``.venv/bin/python benchmarks/map_tiles.py``. The product is four 1024 px
class COGs at 10 m (the demo's layout, written by ``publish_tile``); every map tile over it at each
zoom is requested three ways:

- cold: a new map service (first open of each COG over /vsis3/, header and blocks fetched);
- warm render: COGs open and their blocks in GDAL's cache, but the PNG cache emptied, so each tile
  is sampled and encoded again (what a new tile of an area being looked at costs);
- warm cached: the same tiles again (the PNG cache answers).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import statistics
import time
from typing import Any

from _common import sized, table

ZOOMS = sized((11, 13, 15, 17), (15,))
TILES_PER_ZOOM = sized(24, 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tiles_over(bbox: tuple[float, ...], z: int, limit: int = TILES_PER_ZOOM) -> list[tuple[int, int, int]]:
    n = 2**z

    def xy(lon: float, lat: float) -> tuple[int, int]:
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    x0, y0 = xy(bbox[0], bbox[3])
    x1, y1 = xy(bbox[2], bbox[1])
    out = [(z, x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def _publish(s3: Any) -> tuple[str, tuple[float, ...]]:
    import numpy as np

    from geobatch.landcover.product import publish_tile
    from geobatch.landcover.synthetic import generate_landcover
    from geobatch.tiles import Tile

    centre = Tile.from_latlon(44.03, -73.43, resolution=10.0, tilesize=1024, pad=0)
    _, _, zone, ti, tj = centre.key.split(":")[1:]
    tiles = [
        Tile.from_key(f"1024:0:10.0:{zone}:{int(ti) + di}:{int(tj) + dj}") for di in (0, 1) for dj in (0, 1)
    ]
    s3.create_bucket(Bucket="bench")
    for i, tile in enumerate(tiles):
        publish_tile(s3, "bench", "bench-product", tile, generate_landcover(tile.shape, seed=i), counts={})
    bounds = np.asarray([t.geometry.bounds for t in tiles])
    bbox = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    return "s3://bench/products/bench-product/collection.json", bbox


def _time(service: Any, uri: str, tiles: list[tuple[int, int, int]]) -> list[float]:
    out = []
    for z, x, y in tiles:
        t = time.perf_counter()
        service.tile(uri, z, x, y)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from geobatch.ui.mapservice import MapService, TileCache

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}  # fmt: skip
    os.environ.update({**aws, "AWS_DEFAULT_REGION": "us-east-1"})
    s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"])
    uri, bbox = _publish(s3)
    rows = []
    for z in ZOOMS:
        tiles = _tiles_over(bbox, z)
        cold_service = MapService(aws)
        cold = _time(cold_service, uri, tiles)
        cold_service.cache = TileCache()
        warm = _time(cold_service, uri, tiles)
        cached = _time(cold_service, uri, tiles)
        cold_service.close()
        rows.append([z, len(tiles), f"{statistics.median(cold):.1f}", f"{statistics.median(warm):.1f}",
                     f"{max(warm):.1f}", f"{statistics.median(cached):.3f}"])  # fmt: skip
    server.stop()
    print("ms per 256×256 map tile of a 4-tile land-cover product (1024 px COGs, 10 m) in local S3")
    print(
        table(
            ["zoom", "tiles", "cold median", "warm render median", "warm render max", "cached median"], rows
        )
    )


if __name__ == "__main__":
    main()
