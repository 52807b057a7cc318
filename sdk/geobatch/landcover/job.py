"""The per-tile land-cover job: load model, read imagery, classify, publish COG + STAC Item.

:func:`classify_tile` is the function submitted to GeoBatch: it only uses names it imports in its own body,
so it can be shipped by source/reference and run in a fresh worker. :func:`run_tile` does the work and is
also used directly by the in-process baseline and the benchmarks.
"""

from __future__ import annotations

import time
from typing import Any


# Shipped as source (the Function's bundle holds this def, not this module): its annotations may name
# builtins only, hence ``object`` and not ``Any``.
def classify_tile(
    tile_key: str, product_id: str, model_uri: str, items_uri: str, bucket: str
) -> dict[str, object]:
    """GeoBatch job entry point: classify one DL tile and publish it (see :func:`run_tile`)."""
    from geobatch.landcover.job import run_tile

    return run_tile(tile_key, product_id, model_uri, items_uri, bucket)


def load_model(model_uri: str, client: Any = None) -> Any:
    """Load a :class:`~geobatch.landcover.classifier.KMeansModel` JSON from ``s3://`` or a local path."""
    from geobatch.landcover.classifier import KMeansModel
    from geobatch.landcover.imagery import read_bytes

    return KMeansModel.from_json(read_bytes(model_uri, client))


def run_tile(
    tile_key: str,
    product_id: str,
    model_uri: str,
    items_uri: str,
    bucket: str,
    *,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Classify one tile and write ``products/{product_id}/tiles/{tile_id}.tif|.json`` to ``bucket``.

    ``items_uri`` names the scenes (see :func:`geobatch.landcover.scenes.items_for_job`). The GDAL
    environment is entered once, for the buckets the scenes live in (unsigned when they are all public
    archive buckets), so every COG read of the job shares its connections and cache. Returns a
    JSON-serialisable summary: tile key, output URIs, the scenes read and used, pixel counts and areas
    (km²) per class name over the unpadded tile, valid fraction and seconds per stage.
    """
    from geobatch.landcover.imagery import s3_client as make_client
    from geobatch.landcover.scenes import items_for_job
    from geobatch.tiles import Tile

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    client = s3_client or make_client()
    tile = Tile.from_key(tile_key)
    model = load_model(model_uri, client)
    timings["model"] = time.perf_counter() - t0

    t = time.perf_counter()
    items = items_for_job(items_uri, tile, client)
    timings["items"] = time.perf_counter() - t

    t = time.perf_counter()
    read = _read_scenes(tile, items, model.bands)
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    labels, counts = _classify(tile, model, read)
    timings["classify"] = time.perf_counter() - t

    used = read.scenes_used
    t = time.perf_counter()
    uris = _publish(client, bucket, product_id, tile, labels, counts, items, read)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    return _summary(tile, product_id, uris, items, used, counts, timings)


def _read_scenes(tile: Any, items: list[dict[str, Any]], bands: Any) -> Any:
    """The tile's scenes read in one GDAL environment, for the buckets they live in."""
    from geobatch.landcover.gdal_env import buckets_of, rasterio_env
    from geobatch.landcover.imagery import read_tile

    hrefs = [a.get("href", "") for it in items for a in it.get("assets", {}).values()]
    with rasterio_env(read_buckets=buckets_of(hrefs)):
        return read_tile(tile, items, bands)


def _classify(tile: Any, model: Any, read: Any) -> tuple[Any, dict[int, int]]:
    """Labels of the (padded) tile and the pixel count per class of its unpadded interior."""
    import numpy as np

    from geobatch.landcover.classes import CLASS_NAMES
    from geobatch.landcover.product import interior

    labels = model.predict(read.reflectance)
    # Areas count the unpadded tile only: a pad overlaps the neighbours, which count it themselves.
    counts_arr = np.bincount(interior(tile, labels).ravel(), minlength=max(CLASS_NAMES) + 1)
    return labels, {int(k): int(v) for k, v in enumerate(counts_arr) if k > 0 and v > 0}


def _publish(
    client: Any,
    bucket: str,
    product_id: str,
    tile: Any,
    labels: Any,
    counts: dict[int, int],
    items: list[dict[str, Any]],
    read: Any,
) -> dict[str, str]:
    """The tile's COG and STAC Item, with the acquisition times of the scenes it used."""
    from geobatch.landcover.assets import acquired
    from geobatch.landcover.product import publish_tile

    used = read.scenes_used
    when = [acquired(it) for it in items if it["id"] in used]
    return publish_tile(
        client, bucket, product_id, tile, labels, counts=counts,
        acquired=[w for w in when if w is not None],
        extra_properties={"geobatch:source_items": used, "geobatch:valid_fraction": read.valid_fraction},
    )  # fmt: skip


def _summary(
    tile: Any,
    product_id: str,
    uris: dict[str, str],
    items: list[dict[str, Any]],
    used: list[str],
    counts: dict[int, int],
    timings: dict[str, float],
) -> dict[str, Any]:
    from geobatch.landcover.classes import CLASS_NAMES

    pixel_km2 = tile.resolution**2 / 1e6
    pixels = tile.tilesize**2
    valid = sum(counts.values())
    return {
        "tile_key": tile.key,
        "product_id": product_id,
        "cog": uris["cog"],
        "item": uris["item"],
        "source_items": [it["id"] for it in items],
        "scenes_used": used,
        "pixels": pixels,
        "valid_pixels": valid,
        "valid_fraction": valid / pixels,
        "counts": {CLASS_NAMES[k]: v for k, v in counts.items()},
        "area_km2": {CLASS_NAMES[k]: round(v * pixel_km2, 6) for k, v in counts.items()},
        "seconds": {k: round(v, 4) for k, v in timings.items()},
    }
