"""A run on the map: each job of a Function as the ground it works on, coloured by its status, and
the run's progress over time (jobs finished per minute, failures per minute, ETA).

Which ground a job works on is read from its arguments, the first match winning:

1. a keyword argument ``tile_key``, ``tile`` or ``dltile`` holding a DL tile key
   (``"1024:0:10.0:18:12:476"``, see :mod:`geobatch.tiles`): the tile's unpadded footprint;
2. a keyword argument ``bbox`` = ``[west, south, east, north]`` in degrees;
3. a keyword argument ``geometry``, ``geojson`` or ``aoi`` holding a GeoJSON geometry or Feature
   (lon/lat);
4. the same among the positional arguments: the first string that is a tile key, the first
   4-number list that is a bbox, the first GeoJSON geometry or Feature.

A job with none of these is counted but not drawn. The land-cover job (``classify_tile(tile_key,
product_id, model_uri, items_uri, bucket)``) matches rule 4 with its first argument, and its
``product_id`` and ``bucket`` name the product the run fills in (:func:`product_hint`).
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from geobatch.client import Client

__all__ = ["job_geometry", "product_hint", "progress", "run_features"]

_TILE_KEY = re.compile(r"^\d+:\d+:\d+(\.\d+)?:\d+:-?\d+:-?\d+$")
_TILE_KWARGS = ("tile_key", "tile", "dltile")
_GEOJSON_KWARGS = ("geometry", "geojson", "aoi")
_GEOMETRY_TYPES = {"Polygon", "MultiPolygon", "Point", "LineString", "MultiLineString", "MultiPoint"}
TERMINAL = ("success", "failure", "timeout", "canceled")
RATE_WINDOW_MINUTES = 5  # the ETA uses the finishing rate of the last few minutes
_tile_cache: dict[str, dict[str, Any]] = {}


def _from_tile_key(value: Any) -> dict[str, Any] | None:
    if not (isinstance(value, str) and _TILE_KEY.match(value)):
        return None
    found = _tile_cache.get(value)
    if found is None:
        from geobatch.tiles import Tile

        try:
            polygon = Tile.from_key(value).geometry
        except (ValueError, KeyError):
            return None
        found = {
            "type": "Polygon",
            "coordinates": [[[round(x, 7), round(y, 7)] for x, y in polygon.exterior.coords]],
        }
        _tile_cache[value] = found
    return found


def _from_bbox(value: Any) -> dict[str, Any] | None:
    if not (isinstance(value, list | tuple) and len(value) == 4):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    w, s, e, n = (float(v) for v in value)
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        return None
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _from_geojson(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if value.get("type") == "Feature":
        value = value.get("geometry") or {}
    if value.get("type") in _GEOMETRY_TYPES and isinstance(value.get("coordinates"), list):
        return {"type": value["type"], "coordinates": value["coordinates"]}
    return None


def job_geometry(args: list[Any] | None, kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The GeoJSON geometry (lon/lat) a job works on, by the rules of this module, or None."""
    kwargs = kwargs or {}
    for names, parse in (
        (_TILE_KWARGS, _from_tile_key),
        (("bbox",), _from_bbox),
        (_GEOJSON_KWARGS, _from_geojson),
    ):
        for name in names:
            if name in kwargs and (found := parse(kwargs[name])) is not None:
                return found
    for parse in (_from_tile_key, _from_bbox, _from_geojson):
        for value in args or []:
            if (found := parse(value)) is not None:
                return found
    return None


def product_hint(job: dict[str, Any]) -> str | None:
    """The product a land-cover job writes (``s3://bucket/products/ID/collection.json``), else None."""
    args, kwargs = job.get("args") or [], job.get("kwargs") or {}
    product, bucket = kwargs.get("product_id"), kwargs.get("bucket")
    if product is None and len(args) == 5 and _from_tile_key(args[0]):
        product, bucket = args[1], args[4]
    if isinstance(product, str) and isinstance(bucket, str) and re.fullmatch(r"[\w.-]+", product + bucket):
        return f"s3://{bucket}/products/{product}/collection.json"
    return None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def progress(jobs: list[dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    """Jobs finished per minute (success, failed = failure + timeout, canceled), rate and ETA."""
    now = time.time() if now is None else now
    minutes: dict[int, dict[str, int]] = {}
    for job in jobs:
        if job.get("status") not in TERMINAL:
            continue
        ended = _parse(job.get("last_completion_date"))
        if ended is None:
            continue
        bucket = minutes.setdefault(int(ended.timestamp() // 60), {"success": 0, "failed": 0, "canceled": 0})
        status = job["status"]
        bucket["failed" if status in ("failure", "timeout") else status] += 1
    outstanding = sum(1 for j in jobs if j.get("status") not in TERMINAL)
    series = []
    if minutes:
        first, last = min(minutes), max(max(minutes), int(now // 60))
        first = max(first, last - 119)  # at most two hours of bars
        series = [{"minute": m * 60, **minutes.get(m, {"success": 0, "failed": 0, "canceled": 0})}
                  for m in range(first, last + 1)]  # fmt: skip
    recent = series[-RATE_WINDOW_MINUTES:]
    finished = sum(b["success"] + b["failed"] + b["canceled"] for b in recent)
    # The current minute is partial: count the time it has run so far, not a whole minute.
    span = max((len(recent) - 1) + (now % 60) / 60, 1 / 60) if recent else 0
    rate = finished / span if span else 0.0
    eta = outstanding / rate * 60 if rate > 0 and outstanding else (0.0 if not outstanding else None)
    return {"per_minute": series, "rate_per_minute": round(rate, 2), "outstanding": outstanding,
            "eta_seconds": None if eta is None else round(eta, 1)}  # fmt: skip


def list_jobs(client: Client, function_id: str) -> list[dict[str, Any]]:
    """Every job of the Function (pages of 1000), as the API returns them."""
    jobs: list[dict[str, Any]] = []
    for page in client.iter_pages("/jobs", params={"function_id": function_id, "page_size": 1000}):
        jobs.extend(page["data"])
    return jobs


def run_features(client: Client, function_id: str) -> dict[str, Any]:
    """The run as GeoJSON (one Feature per job with a geometry), counts per status, progress, product."""
    jobs = list_jobs(client, function_id)
    features: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    undrawn = 0
    for job in jobs:
        status = job.get("status", "pending")
        counts[status] = counts.get(status, 0) + 1
        geometry = job_geometry(job.get("args"), job.get("kwargs"))
        if geometry is None:
            undrawn += 1
            continue
        attempts = job.get("attempts") or []
        features.append({
            "type": "Feature", "id": job["id"], "geometry": geometry,
            "properties": {
                "job_id": job["id"], "status": status, "attempts": len(attempts),
                "reason": job.get("error_reason") or job.get("status_reason") or "",
                "runtime": job.get("runtime"), "has_result": job.get("has_result", False),
            },
        })  # fmt: skip
    hint = next((h for h in map(product_hint, jobs[:1]) if h), None)
    return {
        "type": "FeatureCollection", "features": features, "counts": counts, "jobs": len(jobs),
        "undrawn": undrawn, "progress": progress(jobs), "product": hint,
    }  # fmt: skip
