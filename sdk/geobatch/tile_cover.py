"""The tiles covering a shape, as DL computes them (see ``geobatch.tiles``): per zone band the shape
touches, the tiles whose lon/lat quadrilateral intersects the shape clipped to the band.

Yields ``(zone, ti, tj)`` indices; ``geobatch.tiles.Tile`` makes tiles of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry import shape as shapely_shape

from geobatch.utm import DENSIFY_DEG, FALSE_EASTING, lonlat_to_utm, utm_to_lonlat, zone_for_lon


def to_polygonal(obj: Any) -> Polygon | MultiPolygon:
    """Normalise GeoJSON (geometry/Feature/FeatureCollection dict) or shapely input to a (multi)polygon."""
    if isinstance(obj, shapely.Geometry):
        geom = obj
    elif hasattr(obj, "__geo_interface__") and not isinstance(obj, dict):
        return to_polygonal(obj.__geo_interface__)
    elif isinstance(obj, dict):
        kind = obj.get("type")
        if kind == "FeatureCollection":
            parts = [to_polygonal(f) for f in obj.get("features", [])]
            geom = shapely.union_all(parts) if parts else Polygon()
        elif kind == "Feature":
            geom = shapely_shape(obj["geometry"])
        else:
            geom = shapely_shape(obj)
    else:
        raise TypeError(f"cannot interpret {type(obj).__name__} as a shape")
    return _polygonal_parts(geom)


def _polygonal_parts(geom: shapely.Geometry) -> Polygon | MultiPolygon:
    """Keep only polygon parts (clipping can leave points/lines where the shape touches a band edge)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    polys: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            polys.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            sub = _polygonal_parts(part)
            polys.extend(shapely.get_parts(sub).tolist())
    polys = [p for p in polys if not p.is_empty]
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _projected_bounds(zone: int, geom: Polygon | MultiPolygon) -> tuple[float, float, float, float]:
    """UTM bounds of a lon/lat shape, densifying edges first so curved projected edges are not missed."""
    dense = shapely.segmentize(shapely.boundary(geom), DENSIFY_DEG)
    coords = shapely.get_coordinates(dense)
    x, y = lonlat_to_utm(zone, coords[:, 0], coords[:, 1])
    return float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))


def _zone_cover(zone: int, clipped: Polygon | MultiPolygon, resolution: float, tilesize: int) -> np.ndarray:
    """(n, 2) int array of (ti, tj) in ``zone`` whose lon/lat quads intersect ``clipped``; vectorised."""
    step = tilesize * resolution
    xmin, ymin, xmax, ymax = _projected_bounds(zone, clipped)
    # Pad the candidate range by one tile: tile quads have straight lon/lat edges, not straight UTM edges.
    ti0 = math.floor((xmin - FALSE_EASTING) / step) - 1
    ti1 = math.floor((xmax - FALSE_EASTING) / step) + 1
    tj0 = math.floor(ymin / step) - 1
    tj1 = math.floor(ymax / step) + 1
    nx, ny = ti1 - ti0 + 1, tj1 - tj0 + 1

    # Corner lattice (nx+1) x (ny+1), transformed in one call.
    cx = FALSE_EASTING + (ti0 + np.arange(nx + 1)) * step
    cy = (tj0 + np.arange(ny + 1)) * step
    gx, gy = np.meshgrid(cx, cy, indexing="ij")
    lon, lat = utm_to_lonlat(zone, gx.ravel(), gy.ravel())
    lon = lon.reshape(nx + 1, ny + 1)
    lat = lat.reshape(nx + 1, ny + 1)

    # Quad of tile (i, j): corners (i,j) (i+1,j) (i+1,j+1) (i,j+1), closed.
    ring_x = np.stack([lon[:-1, :-1], lon[1:, :-1], lon[1:, 1:], lon[:-1, 1:], lon[:-1, :-1]], axis=-1)
    ring_y = np.stack([lat[:-1, :-1], lat[1:, :-1], lat[1:, 1:], lat[:-1, 1:], lat[:-1, :-1]], axis=-1)
    rings = np.stack([ring_x, ring_y], axis=-1).reshape(nx * ny, 5, 2)
    quads = shapely.polygons(rings)

    shapely.prepare(clipped)
    hit = shapely.intersects(clipped, quads).reshape(nx, ny)
    ii, jj = np.nonzero(hit)
    return np.column_stack([ii + ti0, jj + tj0])


def iter_cover_indices(
    geom: Polygon | MultiPolygon, resolution: float, tilesize: int
) -> Iterator[tuple[int, int, int]]:
    if geom.is_empty:
        return
    minx, _, maxx, _ = geom.bounds
    for zone in range(zone_for_lon(minx), zone_for_lon(maxx) + 1):
        band = box(6 * zone - 186, -90.0, 6 * zone - 180, 90.0)
        clipped = _polygonal_parts(shapely.intersection(geom, band))
        if clipped.is_empty:
            continue
        for ti, tj in _zone_cover(zone, clipped, resolution, tilesize).tolist():
            yield zone, ti, tj
