"""Benchmark: one 1024 x 1024 x 3 land-cover tile, timed per stage, through local S3 (moto server).

Run from the repo root: ``.venv/bin/python benchmarks/tile_compute.py``. Stages: load the JSON model,
read the tile's scene list (per-tile index), windowed COG reads over /vsis3/ of every scene it needs
(nir, red, green and the 20 m SCL; clearest first, stopping once every pixel has a clear view), cloud
masking and per-pixel compositing, numpy KMeans predict, COG encode + upload + STAC item. The tile lies
fully inside the synthetic archive (three dates, two processing baselines, clouds). Single process.
"""

from __future__ import annotations

import logging
import os
import socket
import statistics
import time

from _common import sized, table

REPEATS = sized(5, 1)
TILE_PX = sized(1024, 256)  # smoke: a smaller tile through the same stages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        from geobatch.landcover.job import run_tile
        from geobatch.landcover.pipeline import prepare_demo
        from geobatch.tiles import Tile

        client = boto3.client("s3")
        client.create_bucket(Bucket="bench")
        t0 = time.perf_counter()
        # A scene twice the tile's size: the centre tile is entirely inside it (no nodata shortcut).
        scene_px = 2 * TILE_PX
        plan = prepare_demo(
            client,
            "bench",
            width_px=scene_px,
            height_px=scene_px,
            tilesize=TILE_PX,
            margin_px=0,
            train_tiles=2,
        )
        print(f"scene + model prepared in {time.perf_counter() - t0:.1f} s")
        tile = Tile.from_latlon(44.03, -73.43, 10.0, TILE_PX, 0)

        runs = []
        for _ in range(REPEATS + 1):
            runs.append(
                run_tile(tile.key, "bench", plan.model_uri, plan.items_uri, "bench", s3_client=client)
            )
        runs = runs[1:]  # the first run pays imports and GDAL/connection warm-up
        assert runs[0]["valid_fraction"] > 0.9
        stages = ["model", "items", "read", "classify", "write", "total"]
        print(f"tile {tile.key}  ({tile.shape[0]}x{tile.shape[1]}x3, median of {REPEATS} warm runs)")
        used = runs[0]["scenes_used"]
        print(
            f"scenes read {len(used)} of {len(runs[0]['source_items'])}, clear {runs[0]['valid_fraction']:.1%}"
        )
        rows = []
        for stage in stages:
            values = [r["seconds"][stage] for r in runs]
            rows.append([stage, f"{statistics.median(values):.3f}", f"{min(values):.3f}"])
        print(table(["stage", "median s", "min s"], rows))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
