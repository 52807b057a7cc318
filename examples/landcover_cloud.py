"""The land-cover job against any GeoBatch API: map the per-tile classifier over an area's tiles.

``geobatch demo`` does all of this (and prepares the imagery and model); this file shows the two
calls a user writes once imagery and a model exist:

    GEOBATCH_API_URL=... python examples/landcover_cloud.py BUCKET MODEL_URI ITEMS_URI
"""

import sys

import geobatch as gb
from geobatch.landcover.job import classify_tile
from geobatch.landcover.regions import demo_area
from geobatch.tiles import Tile


def main(bucket: str, model_uri: str, items_uri: str) -> None:
    area = demo_area(-73.43, 44.03, 13_340, 12_300)  # Chimney Point, Vermont
    tiles = Tile.from_shape(area, resolution=10.0, tilesize=1024, pad=0)
    fn = gb.Function(
        classify_tile,
        name="landcover-kmeans",
        requirements=["scikit-learn", "rasterio", "pyproj", "shapely", "pystac"],
        cpus=1,
        memory="4GB",
        maximum_concurrency=50,
        retry_count=2,
        timeout=600,
    )
    fn.save()
    fn.map([(t.key, "landcover-v1", model_uri, items_uri, bucket) for t in tiles])
    fn.wait_for_completion()
    print(fn.job_statistics)


if __name__ == "__main__":
    main(*sys.argv[1:4])
