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

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box, mapping
from shapely.geometry import shape as shapely_shape

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

FALSE_EASTING = 500_000.0

# Sampling step (degrees) used to densify lon/lat boundaries before projecting them: a straight
# lon/lat segment is curved in UTM, so projecting only the vertices can underestimate the extent.
_DENSIFY_DEG = 0.01


def zone_for_lon(lon: float) -> int:
    """UTM zone number (1..60) of a longitude, without Norway/Svalbard exceptions."""
    zone = 1 + math.floor((lon + 180.0) / 6.0)
    # lon == 180 (and wrapped inputs) must stay in the valid 1..60 range.
    return min(max(zone, 1), 60)


def format_resolution(resolution: float) -> str:
    """Resolution as printed in DL keys: trailing zeros stripped, but at least one decimal."""
    text = f"{float(resolution):.10f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


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
        for zone, ti, tj in _iter_cover_indices(to_polygonal(shape), resolution, tilesize):
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


# ----- shape cover ------------------------------------------------------------------------------


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
    dense = shapely.segmentize(shapely.boundary(geom), _DENSIFY_DEG)
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


def _iter_cover_indices(
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
