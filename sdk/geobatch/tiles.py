"""UTM tiling that reproduces Descartes Labs' DLTile grid exactly.

A tile is identified by ``tilesize`` (pixels per side, without pad), ``pad`` (pixels added on every side),
``resolution`` (metres per pixel), the UTM ``zone`` and the integer grid indices ``ti`` (east) and ``tj``
(north). The grid step is ``W = tilesize * resolution`` metres; pad never moves the grid.

Zone ``z`` uses a WGS84 transverse Mercator with central meridian ``6z - 183``, scale 0.9996, false
easting 500 000 m and *no* false northing in either hemisphere, so every tile's CRS is EPSG:326zz and
tiles south of the equator have negative northings and negative ``tj``. There are no Norway/Svalbard
zone exceptions. Tile ``(z, ti, tj)`` spans easting ``500000 + ti*W`` to ``+W`` and northing ``tj*W``
to ``+W``.

The cover of a shape (:func:`from_shape`) follows DL: for every zone whose 6-degree band the shape touches,
the shape is clipped to the band and every tile whose lon/lat quadrilateral (its four unpadded corners in
lon/lat joined by straight lines) intersects the clipped shape is returned. Tiles that straddle a zone
meridian therefore appear once in each zone, with different keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from shapely.geometry import Polygon, mapping

from geobatch.tile_cover import iter_cover_indices, to_polygonal
from geobatch.utm import FALSE_EASTING, lonlat_to_utm, utm_to_lonlat, zone_for_lon

__all__ = [
    "Tile",
    "format_resolution",
    "from_key",
    "from_latlon",
    "from_shape",
    "iter_from_shape",
    "lonlat_to_utm",
    "to_polygonal",
    "utm_to_lonlat",
    "zone_for_lon",
]


def format_resolution(resolution: float) -> str:
    """Resolution as printed in DL keys: trailing zeros stripped, but at least one decimal."""
    text = f"{float(resolution):.10f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@dataclass(frozen=True, order=True)
class Tile:
    """One DLTile-compatible UTM tile. Immutable and hashable; ordering is by (zone, ti, tj) first."""

    zone: int
    ti: int
    tj: int
    resolution: float = 10.0
    tilesize: int = 1024
    pad: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.zone <= 60:
            raise ValueError(f"UTM zone must be 1..60, got {self.zone}")
        if self.tilesize <= 0 or self.pad < 0 or self.resolution <= 0:
            raise ValueError("tilesize and resolution must be positive and pad non-negative")
        # Normalise types so equal tiles compare and hash equal whatever the caller passed.
        object.__setattr__(self, "resolution", float(self.resolution))
        object.__setattr__(self, "tilesize", int(self.tilesize))
        object.__setattr__(self, "pad", int(self.pad))

    # ----- constructors -------------------------------------------------------------------------
    @classmethod
    def from_key(cls, key: str) -> Tile:
        """Parse a key ``"tilesize:pad:resolution:zone:ti:tj"``, e.g. ``"1024:0:10.0:13:0:429"``."""
        parts = key.split(":")
        if len(parts) != 6:
            raise ValueError(f"not a tile key: {key!r}")
        tilesize, pad, res, zone, ti, tj = parts
        return cls(
            zone=int(zone),
            ti=int(ti),
            tj=int(tj),
            resolution=float(res),
            tilesize=int(tilesize),
            pad=int(pad),
        )

    @classmethod
    def from_latlon(
        cls, lat: float, lon: float, resolution: float = 10.0, tilesize: int = 1024, pad: int = 0
    ) -> Tile:
        """The tile containing a point (zone from the longitude)."""
        zone = zone_for_lon(lon)
        x, y = lonlat_to_utm(zone, lon, lat)
        step = tilesize * resolution
        return cls(
            zone=zone,
            ti=math.floor((x - FALSE_EASTING) / step),
            tj=math.floor(y / step),
            resolution=resolution,
            tilesize=tilesize,
            pad=pad,
        )

    @classmethod
    def from_shape(
        cls, shape: Any, resolution: float = 10.0, tilesize: int = 1024, pad: int = 0
    ) -> list[Tile]:
        """All tiles covering a GeoJSON-like or shapely (multi)polygon in lon/lat."""
        return list(cls.iter_from_shape(shape, resolution, tilesize, pad))

    @classmethod
    def iter_from_shape(
        cls, shape: Any, resolution: float = 10.0, tilesize: int = 1024, pad: int = 0
    ) -> Iterator[Tile]:
        """Generator version of :meth:`from_shape`; zones are computed lazily, one at a time."""
        for zone, ti, tj in iter_cover_indices(to_polygonal(shape), resolution, tilesize):
            yield cls(zone=zone, ti=ti, tj=tj, resolution=resolution, tilesize=tilesize, pad=pad)

    # ----- identity -----------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """DL key, e.g. ``"1024:0:10.0:13:0:429"``."""
        return "%i:%i:%s:%02i:%i:%i" % (  # noqa: UP031 - mirror DL's exact formatting
            self.tilesize,
            self.pad,
            format_resolution(self.resolution),
            self.zone,
            self.ti,
            self.tj,
        )

    @property
    def crs(self) -> str:
        """``"EPSG:326zz"`` (also used south of the equator: negative northings, no false northing)."""
        return f"EPSG:326{self.zone:02d}"

    @property
    def epsg(self) -> int:
        """EPSG code as an int."""
        return 32600 + self.zone

    # ----- geometry -----------------------------------------------------------------------------
    @property
    def step(self) -> float:
        """Grid step W in metres (tilesize * resolution)."""
        return self.tilesize * self.resolution

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Unpadded UTM bounds (xmin, ymin, xmax, ymax)."""
        w = self.step
        xmin = FALSE_EASTING + self.ti * w
        ymin = self.tj * w
        return (xmin, ymin, xmin + w, ymin + w)

    @property
    def padded_bounds(self) -> tuple[float, float, float, float]:
        """UTM bounds grown by pad * resolution on every side."""
        p = self.pad * self.resolution
        xmin, ymin, xmax, ymax = self.bounds
        return (xmin - p, ymin - p, xmax + p, ymax + p)

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform of the padded raster."""
        xmin, _, _, ymax = self.padded_bounds
        return (xmin, self.resolution, 0.0, ymax, 0.0, -self.resolution)

    @property
    def transform(self) -> Affine:
        """rasterio Affine of the padded raster."""
        return Affine.from_gdal(*self.geotransform)

    @property
    def shape(self) -> tuple[int, int]:
        """Raster shape (rows, cols) including pad."""
        n = self.tilesize + 2 * self.pad
        return (n, n)

    @property
    def corners_utm(self) -> list[tuple[float, float]]:
        """The four unpadded corners, counter-clockwise from the lower left."""
        xmin, ymin, xmax, ymax = self.bounds
        return [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]

    @property
    def geometry(self) -> Polygon:
        """Lon/lat polygon through the four unpadded corners (straight lines in lon/lat)."""
        xs, ys = zip(*self.corners_utm, strict=True)
        lons, lats = utm_to_lonlat(self.zone, np.array(xs), np.array(ys))
        return Polygon(zip(lons.tolist(), lats.tolist(), strict=True))

    @property
    def padded_geometry(self) -> Polygon:
        """Lon/lat polygon through the four padded corners: the footprint of the tile's raster."""
        xmin, ymin, xmax, ymax = self.padded_bounds
        xs = np.array([xmin, xmax, xmax, xmin])
        ys = np.array([ymin, ymin, ymax, ymax])
        lons, lats = utm_to_lonlat(self.zone, xs, ys)
        return Polygon(zip(lons.tolist(), lats.tolist(), strict=True))

    @property
    def __geo_interface__(self) -> dict[str, Any]:
        """GeoJSON Feature of the tile's lon/lat geometry with its key and grid parameters."""
        return {
            "type": "Feature",
            "id": self.key,
            "geometry": mapping(self.geometry),
            "properties": {
                "key": self.key,
                "zone": self.zone,
                "ti": self.ti,
                "tj": self.tj,
                "resolution": self.resolution,
                "tilesize": self.tilesize,
                "pad": self.pad,
                "crs": self.crs,
                "geotransform": list(self.geotransform),
            },
        }

    def subtile(self, subdivide: int, new_pad: int | None = None) -> list[Tile]:
        """Split into ``subdivide``² tiles of tilesize/subdivide at the same resolution.

        The sub-tiles lie on the finer grid of the same zone (so their keys are ordinary keys); ``new_pad``
        defaults to this tile's pad. Ordered by ti then tj.
        """
        if subdivide < 1 or self.tilesize % subdivide:
            raise ValueError(f"subdivide must divide tilesize {self.tilesize}, got {subdivide}")
        size = self.tilesize // subdivide
        pad = self.pad if new_pad is None else new_pad
        return [
            Tile(
                zone=self.zone,
                ti=self.ti * subdivide + i,
                tj=self.tj * subdivide + j,
                resolution=self.resolution,
                tilesize=size,
                pad=pad,
            )
            for i in range(subdivide)
            for j in range(subdivide)
        ]

    def __str__(self) -> str:
        return self.key


# ----- module-level mirrors ---------------------------------------------------------------------


def from_key(key: str) -> Tile:
    """Same as :meth:`Tile.from_key`."""
    return Tile.from_key(key)


def from_latlon(lat: float, lon: float, resolution: float = 10.0, tilesize: int = 1024, pad: int = 0) -> Tile:
    """Same as :meth:`Tile.from_latlon`."""
    return Tile.from_latlon(lat, lon, resolution, tilesize, pad)


def from_shape(shape: Any, resolution: float = 10.0, tilesize: int = 1024, pad: int = 0) -> list[Tile]:
    """Same as :meth:`Tile.from_shape`."""
    return Tile.from_shape(shape, resolution, tilesize, pad)


def iter_from_shape(
    shape: Any, resolution: float = 10.0, tilesize: int = 1024, pad: int = 0
) -> Iterator[Tile]:
    """Same as :meth:`Tile.iter_from_shape`."""
    return Tile.iter_from_shape(shape, resolution, tilesize, pad)
