"""The UTM projection of Descartes Labs' DLTile grid: zone ``z`` is a WGS84 transverse Mercator with
central meridian ``6z - 183``, scale 0.9996, false easting 500 000 m and no false northing in either
hemisphere (see ``geobatch.tiles``, which re-exports these names).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from pyproj import Transformer

FALSE_EASTING = 500_000.0

# Sampling step (degrees) used to densify lon/lat boundaries before projecting them: a straight
# lon/lat segment is curved in UTM, so projecting only the vertices can underestimate the extent.
DENSIFY_DEG = 0.01


def zone_for_lon(lon: float) -> int:
    """UTM zone number (1..60) of a longitude, without Norway/Svalbard exceptions."""
    zone = 1 + math.floor((lon + 180.0) / 6.0)
    # lon == 180 (and wrapped inputs) must stay in the valid 1..60 range.
    return min(max(zone, 1), 60)


def _proj_string(zone: int) -> str:
    return (
        f"+proj=tmerc +lat_0=0 +lon_0={6 * zone - 183} +k=0.9996 +x_0={FALSE_EASTING:.0f} "
        "+y_0=0 +ellps=WGS84 +units=m +no_defs +type=crs"
    )


@functools.lru_cache(maxsize=64)
def _forward(zone: int) -> Transformer:
    """Cached lon/lat -> zone easting/northing transformer (building one costs ~ms)."""
    return Transformer.from_crs("EPSG:4326", _proj_string(zone), always_xy=True)


@functools.lru_cache(maxsize=64)
def _inverse(zone: int) -> Transformer:
    """Cached zone easting/northing -> lon/lat transformer."""
    return Transformer.from_crs(_proj_string(zone), "EPSG:4326", always_xy=True)


def lonlat_to_utm(zone: int, lon: Any, lat: Any) -> tuple[Any, Any]:
    """Project lon/lat (scalars or arrays) to the DL UTM projection of ``zone`` (no false northing)."""
    return _forward(zone).transform(lon, lat)


def utm_to_lonlat(zone: int, x: Any, y: Any) -> tuple[Any, Any]:
    """Inverse of :func:`lonlat_to_utm`.

    Points on the false easting lie exactly on the zone's central meridian; PROJ returns it with a
    rounding error (-123.00000000000001 in zone 10), which would drop tiles that only touch a shape
    edge lying on that meridian (DL's client keeps them), so those longitudes are snapped to it.
    """
    lon, lat = _inverse(zone).transform(x, y)
    on_meridian = np.asarray(x) == FALSE_EASTING
    if np.any(on_meridian):
        lon = np.where(on_meridian, float(6 * zone - 183), lon)
        if np.ndim(lon) == 0:
            lon = float(lon)
    return lon, lat
