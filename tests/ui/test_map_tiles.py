"""Map tiles rendered from class COGs: every pixel of a 256×256 tile is the COG's class at that place.

The expected values are computed independently of the renderer: each map pixel's centre goes from
Web Mercator to degrees by the spherical formula, from degrees to UTM by pyproj (EPSG:4326, not
3857), and is looked up in the COG with rasterio's own ``index``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geobatch.tiles import Tile
from geobatch.ui import png

TILE_KEY = "512:0:10.0:18:24:952"  # near Chimney Point, Vermont (UTM 18N)

pytestmark = [pytest.mark.geo, pytest.mark.unit]


def class_pattern(shape: tuple[int, int], seed: int = 3) -> np.ndarray:
    """Blocks of classes 1..5 in varied sizes, with nodata holes: a pattern where an offset shows."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    out = rng.integers(1, 6, size=(rows // 7 + 1, cols // 5 + 1), dtype=np.uint8)
    out = np.repeat(np.repeat(out, 7, axis=0), 5, axis=1)[:rows, :cols].copy()
    out[100:130, 200:260] = 0
    return out


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, np.ndarray, Tile]]:
    from geobatch.landcover.product import write_class_cog

    tile = Tile.from_key(TILE_KEY)
    labels = class_pattern(tile.shape)
    path = tmp_path_factory.mktemp("cog") / "classes.tif"
    write_class_cog(path, labels, tile)
    yield path, labels, tile


@pytest.fixture
def service() -> Iterator[Any]:
    from geobatch.ui.mapservice import MapService

    svc = MapService(aws_env={})  # local files only
    yield svc
    svc.close()


def map_tile_of(tile: Tile, z: int) -> tuple[int, int]:
    """(x, y) of the map tile at zoom z over the centre of ``tile``."""
    lon, lat = tile.geometry.centroid.x, tile.geometry.centroid.y
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def expected_classes(path: Path, z: int, x: int, y: int) -> np.ndarray:
    """The COG's class under each pixel centre of map tile z/x/y, found without the renderer."""
    import rasterio
    from pyproj import Transformer

    n = 2**z
    u = (x * 256 + np.arange(256) + 0.5) / (256 * n)
    v = (y * 256 + np.arange(256) + 0.5) / (256 * n)
    lon = u * 360 - 180
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * v))))
    lons, lats = np.meshgrid(lon, lat)
    out = np.zeros((256, 256), dtype=np.uint8)
    with rasterio.open(path) as ds:
        ex, ny = Transformer.from_crs(4326, ds.crs, always_xy=True).transform(lons, lats)
        rows, cols = rasterio.transform.rowcol(ds.transform, ex.ravel(), ny.ravel())
        rows, cols = np.asarray(rows).reshape(256, 256), np.asarray(cols).reshape(256, 256)
        data = ds.read(1)
        inside = (rows >= 0) & (rows < ds.height) & (cols >= 0) & (cols < ds.width)
        out[inside] = data[rows[inside], cols[inside]]
    return out


@pytest.mark.parametrize("z", [15, 16, 17])
def test_a_rendered_tile_shows_the_cogs_class_under_every_pixel(cog: Any, service: Any, z: int) -> None:
    path, _labels, tile = cog
    x, y = map_tile_of(tile, z)
    indices, palette = png.decode_palette(service.tile(str(path), z, x, y))
    expected = expected_classes(path, z, x, y)
    assert indices.shape == (256, 256)
    assert (expected > 0).sum() > 10_000  # the tile is mostly over the COG
    assert np.array_equal(indices, expected)
    # Class colours are the STAC classes' colours; nodata (and outside the COG) is transparent.
    from geobatch.landcover.classes import CLASS_BY_ID

    for value, cls in CLASS_BY_ID.items():
        assert tuple(palette[value]) == cls.rgba
    assert palette[0][3] == 0


def test_zoomed_out_tiles_read_overviews_and_keep_classes(cog: Any, service: Any) -> None:
    path, labels, tile = cog
    x, y = map_tile_of(tile, 11)  # a map pixel covers ~5 COG pixels: an overview is read
    indices, _ = png.decode_palette(service.tile(str(path), 11, x, y))
    drawn = indices[indices > 0]
    assert drawn.size > 500
    assert set(np.unique(drawn)) <= {1, 2, 3, 4, 5}  # mode overviews: no averaged class values
    # The classes' shares match the COG's within a few points.
    for value in range(1, 6):
        assert abs((drawn == value).mean() - (labels[labels > 0] == value).mean()) < 0.05


def test_tiles_are_cached_and_off_the_layer_transparent(cog: Any, service: Any) -> None:
    path, _, tile = cog
    x, y = map_tile_of(tile, 16)
    first = service.tile(str(path), 16, x, y)
    hits = service.cache.hits
    assert service.tile(str(path), 16, x, y) is first
    assert service.cache.hits == hits + 1
    far, _ = png.decode_palette(service.tile(str(path), 16, 0, 0))
    assert not far.any()


def test_agreement_of_a_layer_with_itself_and_with_a_changed_copy(
    cog: Any, service: Any, tmp_path: Path
) -> None:
    from geobatch.landcover.product import write_class_cog

    path, labels, tile = cog
    changed = labels.copy()
    changed[:, : labels.shape[1] // 4] = np.where(changed[:, : labels.shape[1] // 4] == 1, 2, 1)
    other = tmp_path / "other.tif"
    write_class_cog(other, changed, tile)
    bbox = tuple(tile.geometry.bounds)
    same = service.agreement(str(path), str(path), bbox)
    assert same["agreement"] == 1.0 and same["pixels"] > 100_000
    differs = service.agreement(str(path), str(other), bbox)
    assert 0.7 < differs["agreement"] < 0.8  # a quarter of the pixels changed class


def test_bad_layers_and_tiles_are_refused_with_a_reason(service: Any, tmp_path: Path) -> None:
    from geobatch.wire import errors

    with pytest.raises(errors.ValidationError, match="s3:// URI or an absolute path"):
        service.tile("http://example.com/x.tif", 1, 0, 0)
    with pytest.raises(errors.NotFoundError, match="cannot open"):
        service.tile(str(tmp_path / "missing.tif"), 1, 0, 0)
    with pytest.raises(errors.ValidationError, match="no map tile"):
        service.tile(str(tmp_path / "missing.tif"), 3, 8, 0)


def test_png_round_trip() -> None:
    indices = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256).astype(np.uint8)
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[:, 0] = np.arange(256)
    got, pal = png.decode_palette(png.encode_palette(indices, palette))
    assert np.array_equal(got, indices) and np.array_equal(pal, palette)
    assert png.encode_rgba(np.zeros((4, 4, 4), dtype=np.uint8)).startswith(b"\x89PNG")
