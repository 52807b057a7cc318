"""Benchmark: DLTile cover of the continental US (simplified lower-48 outline) with ``geobatch.tiles``.

Run from the repo root: ``.venv/bin/python benchmarks/tiles_cover.py``.
Descartes Labs quoted 78,899 tiles for CONUS at 1024 px / 10 m with their (more detailed) outline;
ours is hand-simplified so the count differs slightly.
"""

from __future__ import annotations

import time

from geobatch.landcover.regions import conus_geojson
from geobatch.tiles import Tile

CASES = [(1024, 10.0, 0), (2048, 10.0, 0), (1024, 30.0, 16), (512, 60.0, 0)]


def main() -> None:
    shape = conus_geojson()
    Tile.from_shape(shape, 10.0, 4096)  # warm the per-zone transformer cache so timings are steady
    print(f"{'tilesize':>8} {'res (m)':>8} {'pad':>4} {'tiles':>9} {'zones':>6} {'seconds':>8}")
    for tilesize, res, pad in CASES:
        t0 = time.perf_counter()
        tiles = Tile.from_shape(shape, res, tilesize, pad)
        dt = time.perf_counter() - t0
        zones = len({t.zone for t in tiles})
        print(f"{tilesize:>8} {res:>8.1f} {pad:>4} {len(tiles):>9,} {zones:>6} {dt:>8.2f}")


if __name__ == "__main__":
    main()
