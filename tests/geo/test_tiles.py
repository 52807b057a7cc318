"""Geometry tests for the DLTile-compatible grid in ``geobatch.tiles``."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import Point, box, mapping

from geobatch.tiles import Tile, format_resolution, from_key, from_latlon, from_shape, lonlat_to_utm

pytestmark = [pytest.mark.geo, pytest.mark.unit]


def test_known_keys_denver_and_buenos_aires() -> None:
    assert Tile.from_latlon(39.74, -104.99, 10.0, 1024, 0).key == "1024:0:10.0:13:0:429"
    assert Tile.from_latlon(-34.6, -58.4, 10.0, 1024, 0).key == "1024:0:10.0:21:-13:-374"
    assert from_latlon(39.74, -104.99).key == "1024:0:10.0:13:0:429"


@pytest.mark.parametrize(
    "key", ["1024:0:10.0:13:0:429", "1024:0:10.0:21:-13:-374", "256:16:0.5:01:-3:7", "512:8:60.0:60:2:-1"]
)
def test_key_round_trip(key: str) -> None:
    tile = Tile.from_key(key)
    assert tile.key == key
    assert from_key(key) == tile
    assert Tile.from_key(tile.key) == tile


def test_resolution_formatting() -> None:
    assert format_resolution(0.5) == "0.5"
    assert format_resolution(10) == "10.0"
    assert format_resolution(60.0) == "60.0"
    assert format_resolution(2.25) == "2.25"
    assert Tile(zone=5, ti=1, tj=2, resolution=0.5, tilesize=256, pad=0).key == "256:0:0.5:05:1:2"


def test_tile_width_and_crs() -> None:
    tile = Tile.from_key("1024:0:10.0:13:0:429")
    xmin, ymin, xmax, ymax = tile.bounds
    assert (xmax - xmin, ymax - ymin) == (10240.0, 10240.0)
    assert (xmin, ymin) == (500000.0, 429 * 10240.0)
    assert tile.crs == "EPSG:32613"
    assert tile.shape == (1024, 1024)
    assert tile.geotransform == (500000.0, 10.0, 0.0, 429 * 10240.0 + 10240.0, 0.0, -10.0)


def test_pad_grows_raster_but_not_grid() -> None:
    tile = Tile.from_latlon(39.74, -104.99, 10.0, 1024, 16)
    plain = Tile.from_latlon(39.74, -104.99, 10.0, 1024, 0)
    assert tile.key == "1024:16:10.0:13:0:429"
    assert tile.bounds == plain.bounds
    assert tile.shape == (1056, 1056)
    xmin, ymin, xmax, ymax = tile.bounds
    assert tile.padded_bounds == (xmin - 160, ymin - 160, xmax + 160, ymax + 160)
    assert tile.geotransform == (xmin - 160, 10.0, 0.0, ymax + 160, 0.0, -10.0)
    # The Affine maps the far pixel corner onto the padded lower-right corner.
    assert tile.transform @ (1056, 1056) == pytest.approx((xmax + 160, ymin - 160))


def test_southern_hemisphere_negative() -> None:
    tile = Tile.from_latlon(-34.6, -58.4)
    assert tile.tj < 0 and tile.bounds[1] < 0
    assert tile.crs == "EPSG:32621"  # DL keeps 326zz with negative northings, never 327zz


def test_neighbours_share_edges_exactly() -> None:
    tile = Tile.from_key("1024:0:10.0:18:3:487")
    east = Tile(zone=18, ti=4, tj=487)
    north = Tile(zone=18, ti=3, tj=488)
    assert tile.bounds[2] == east.bounds[0]
    assert tile.bounds[3] == north.bounds[1]
    # In lon/lat the shared corners are identical (same UTM points, same transformer).
    g, ge, gn = (list(t.geometry.exterior.coords) for t in (tile, east, north))
    assert (g[1], g[2]) == (ge[0], ge[3])
    assert (g[3], g[2]) == (gn[0], gn[1])
    assert tile.geometry.intersection(east.geometry).area == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    "lat,lon",
    [(44.03, -73.43), (39.74, -104.99), (-34.6, -58.4), (0.001, 10.5), (-0.001, 179.9), (60.1, 5.1)],
)
def test_point_falls_in_its_tile(lat: float, lon: float) -> None:
    tile = Tile.from_latlon(lat, lon, 10.0, 512, 0)
    x, y = lonlat_to_utm(tile.zone, lon, lat)
    xmin, ymin, xmax, ymax = tile.bounds
    assert xmin <= x < xmax and ymin <= y < ymax
    assert tile.geometry.buffer(1e-9).contains(Point(lon, lat))


def test_seam_tiles_in_both_zones() -> None:
    # A small square straddling the 13/14 zone meridian at -102°.
    area = box(-102.05, 40.0, -101.95, 40.05)
    tiles = Tile.from_shape(area, 10.0, 1024, 0)
    zones = {t.zone for t in tiles}
    assert zones == {13, 14}
    seam_point = Point(-102.0, 40.02)
    covering = [t for t in tiles if t.geometry.intersects(seam_point.buffer(1e-6))]
    assert {t.zone for t in covering} == {13, 14}
    assert len({t.key for t in covering}) == len(covering)
    # Zone 13 tiles overhang the meridian eastwards, zone 14 tiles westwards.
    assert max(t.geometry.bounds[2] for t in tiles if t.zone == 13) > -102.0
    assert min(t.geometry.bounds[0] for t in tiles if t.zone == 14) < -102.0


def test_from_shape_small_polygon_contains_vertex_tiles() -> None:
    poly = box(-73.5, 43.98, -73.36, 44.08)
    tiles = Tile.from_shape(mapping(poly), 10.0, 256, 0)
    keys = {t.key for t in tiles}
    for lon, lat in list(poly.exterior.coords)[:-1]:
        assert Tile.from_latlon(lat, lon, 10.0, 256, 0).key in keys
    # Every returned tile touches the polygon and there are no duplicates.
    assert len(keys) == len(tiles)
    assert all(t.geometry.intersects(poly) for t in tiles)
    # Rough count: area / tile area, plus a boundary ring.
    assert 25 <= len(tiles) <= 60


def test_from_shape_accepts_geojson_variants() -> None:
    poly = box(-105.0, 39.7, -104.95, 39.75)
    geometry = mapping(poly)
    feature = {"type": "Feature", "geometry": geometry, "properties": {}}
    collection = {"type": "FeatureCollection", "features": [feature]}
    expected = {t.key for t in from_shape(poly)}
    for variant in (geometry, feature, collection):
        assert {t.key for t in Tile.from_shape(variant)} == expected
    assert [t.key for t in Tile.iter_from_shape(poly)] == [t.key for t in from_shape(poly)]


def test_from_shape_cover_is_complete_on_a_dense_grid() -> None:
    # Every sample point inside the shape is in some cover tile of the point's own zone.
    poly = box(-103.0, 35.0, -101.0, 36.0)
    tiles = {t.key for t in Tile.from_shape(poly, 30.0, 512, 0)}
    for i in range(21):
        for j in range(11):
            lon, lat = -103.0 + i * 0.1, 35.0 + j * 0.1
            lon = min(lon, -101.0001)
            assert Tile.from_latlon(lat, lon, 30.0, 512, 0).key in tiles


def test_subtile() -> None:
    tile = Tile.from_key("1024:8:10.0:18:3:487")
    subs = tile.subtile(4)
    assert len(subs) == 16
    assert {s.tilesize for s in subs} == {256}
    assert {s.pad for s in subs} == {8}
    assert subs[0].bounds[:2] == tile.bounds[:2]
    assert subs[-1].bounds[2:] == tile.bounds[2:]
    union_area = sum((s.bounds[2] - s.bounds[0]) * (s.bounds[3] - s.bounds[1]) for s in subs)
    assert math.isclose(union_area, 10240.0**2)
    assert {s.pad for s in tile.subtile(2, new_pad=0)} == {0}
    with pytest.raises(ValueError):
        tile.subtile(3)


def test_geo_interface() -> None:
    tile = Tile.from_key("1024:0:10.0:13:0:429")
    feature = tile.__geo_interface__
    assert feature["type"] == "Feature"
    assert feature["properties"]["key"] == tile.key
    assert len(feature["geometry"]["coordinates"][0]) == 5


def test_shape_edge_on_the_central_meridian_keeps_the_touching_tiles() -> None:
    # The west edge of this box lies exactly on zone 10's central meridian (-123°). PROJ puts the
    # tile corners there at -123.00000000000001, which used to drop the 4 tiles west of the meridian
    # that touch the edge; DL's client returns 24 keys.
    tiles = Tile.from_shape(box(-123, 38, -122.5, 38.3), 10.0, 1024, 0)
    assert len(tiles) == 24
    assert {t.zone for t in tiles} == {10} and min(t.ti for t in tiles) == -1
    west = [t for t in tiles if t.ti == -1]
    assert all(t.geometry.bounds[2] == -123.0 for t in west)  # their east edge is the meridian itself
