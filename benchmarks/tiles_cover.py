"""Benchmark: DLTile cover of the continental US (simplified lower-48 outline) with ``geobatch.tiles``.

Run from the repo root: ``.venv/bin/python benchmarks/tiles_cover.py``.
Descartes Labs quoted 78,899 tiles for CONUS at 1024 px / 10 m with their (more detailed) outline;
ours is hand-simplified so the count differs slightly.
"""

from __future__ import annotations

import time

from _common import sized, table

from geobatch.landcover.regions import conus_geojson
from geobatch.tiles import Tile

# (tilesize, resolution, pad); smoke: one coarse cover, padded.
CASES = sized([(1024, 10.0, 0), (2048, 10.0, 0), (1024, 30.0, 16), (512, 60.0, 0)], [(1024, 60.0, 16)])


def main() -> None:
    shape = conus_geojson()
    Tile.from_shape(shape, 10.0, 4096)  # warm the per-zone transformer cache so timings are steady
    rows = []
    for tilesize, res, pad in CASES:
        t0 = time.perf_counter()
        tiles = Tile.from_shape(shape, res, tilesize, pad)
        dt = time.perf_counter() - t0
        zones = len({t.zone for t in tiles})
        rows.append([tilesize, f"{res:.1f}", pad, f"{len(tiles):,}", zones, f"{dt:.2f}"])
    print(table(["tilesize", "res (m)", "pad", "tiles", "zones", "seconds"], rows, "rrrrrr"))


if __name__ == "__main__":
    main()
