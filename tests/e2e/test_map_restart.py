"""The map page of `geobatch ui` against local mode keeps drawing after `local down` / `local up`:
local mode's S3 comes back on another port, and the map follows it (as the SDK's client does)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import urllib3

import geobatch as gb
from geobatch.local import stop_background
from geobatch.ui import png
from tests.e2e.conftest import daemon_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]

KEY = "256:0:10.0:18:49:1904"


def _s3(state: dict) -> object:
    import boto3

    env = state["aws_env"]
    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="local",
        aws_secret_access_key="local", region_name="us-east-1",
    )  # fmt: skip


def test_the_map_follows_local_mode_to_its_new_s3_port(daemon_home: Path, tmp_path: Path) -> None:
    from geobatch.landcover.product import write_class_cog
    from geobatch.tiles import Tile
    from geobatch.ui.server import MonitorServer

    state = daemon_up(daemon_home)
    tile = Tile.from_key(KEY)
    path = tmp_path / "classes.tif"
    write_class_cog(path, np.full(tile.shape, 4, dtype=np.uint8), tile)
    s3 = _s3(state)
    s3.create_bucket(Bucket="map-restart")  # type: ignore[attr-defined]
    s3.put_object(Bucket="map-restart", Key="c.tif", Body=path.read_bytes())  # type: ignore[attr-defined]
    server = MonitorServer(gb.Client()).start()  # no aws_env: the map finds local mode's S3 itself
    http = urllib3.PoolManager()
    try:
        token = json.loads(
            http.request("GET", server.url + "ui-api/map/config", headers={"X-GeoBatch-UI": "1"}).data
        )["token"]
        lon, lat = tile.geometry.centroid.x, tile.geometry.centroid.y
        n = 2**15
        x = int((lon + 180) / 360 * n)
        y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)

        def urban_pixels(z_x_y: str) -> int:
            answer = http.request(
                "GET", server.url + f"ui-api/map/tiles/{z_x_y}.png?src=s3://map-restart/c.tif&t={token}"
            )
            assert answer.status == 200, answer.data
            return int((png.decode_palette(answer.data)[0] == 4).sum())

        assert urban_pixels(f"15/{x}/{y}") > 1000
        stop_background(daemon_home)
        again = daemon_up(daemon_home)  # objects are loaded back from disk
        assert again["pid"] != state["pid"]
        assert again["aws_env"]["AWS_ENDPOINT_URL"] != state["aws_env"]["AWS_ENDPOINT_URL"]  # a new port
        assert urban_pixels(f"16/{2 * x}/{2 * y}") > 1000  # a tile not cached before the restart
    finally:
        server.shutdown()
        server.server_close()
