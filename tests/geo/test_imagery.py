"""Reading real earth-search v1 items: bands by name, offsets per baseline, SCL masking, compositing.

The items are the real (and one reconstructed) fixtures of ``fixtures/earth-search-v1``; only their
hrefs are redirected to COGs written here on the items' own grid (EPSG:32639). GDAL reads them
through the same code path as ``/vsis3/`` and ``/vsicurl/`` objects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geobatch.landcover.assets import AssetNotFound, find_asset, radiometry
from geobatch.landcover.imagery import SCL_MASKED, TileRead, clearest_first, read_tile
from tests.geo.helpers import (
    REAL_2023,
    REAL_2023_B,
    RECONSTRUCTED_2021,
    TILE,
    fixture_item,
    on_tile,
    scene_files,
    source_grid,
    without_scale_offset,
)

pytestmark = [pytest.mark.geo, pytest.mark.unit]


def _reflectance(seed: int) -> np.ndarray:
    """(3, H, W) surface reflectance on the 10 m source grid, 0.01..0.6 (DN 100..6000 before the offset)."""
    _, shape = source_grid(10.0)
    return np.random.default_rng(seed).uniform(0.01, 0.6, (3, *shape)).astype(np.float32)


def _dn(reflectance: np.ndarray, with_offset: bool) -> np.ndarray:
    return (np.rint(reflectance * 10_000) + (1000 if with_offset else 0)).astype(np.uint16)


def test_real_items_of_both_baselines_read_to_the_same_reflectance(tmp_path: Path) -> None:
    refl = _reflectance(1)
    new, old = fixture_item(REAL_2023), fixture_item(RECONSTRUCTED_2021)
    assert new["properties"]["s2:processing_baseline"] == "05.09"
    assert new["assets"]["red"]["raster:bands"][0]["offset"] == -0.1
    assert old["properties"]["s2:processing_baseline"] == "03.00"
    cases = {
        # DNs written with the +1000 offset, read with the item's own raster:bands offset -0.1 ...
        "2023 raster:bands": scene_files(tmp_path, "a", new, _dn(refl, True)),
        # ... and by the baseline rule when the item states no scale/offset.
        "2023 baseline rule": without_scale_offset(scene_files(tmp_path, "b", new, _dn(refl, True))),
        # DNs written without the offset (baseline 03.00), read with offset 0 either way.
        "2021 raster:bands": scene_files(tmp_path, "c", old, _dn(refl, False)),
        "2021 baseline rule": without_scale_offset(scene_files(tmp_path, "d", old, _dn(refl, False))),
    }
    sources = {name: radiometry(item, item["assets"]["nir"]).source for name, item in cases.items()}
    assert sources["2023 raster:bands"] == "raster:bands" and sources["2023 baseline rule"] == "baseline rule"
    expected = on_tile(refl)
    for name, item in cases.items():
        read = read_tile(TILE, [item])
        assert read.reflectance.dtype == np.float32, name
        assert read.valid.all() and read.valid_fraction == 1.0, name
        np.testing.assert_allclose(read.reflectance, expected, atol=0.6e-4, err_msg=name)


def test_bands_found_by_common_name_or_v0_key() -> None:
    item = fixture_item(REAL_2023)
    assert find_asset(item, "nir")[0] == "nir" and find_asset(item, "B08")[0] == "nir"
    assert find_asset(item, "scl")[0] == "scl"
    v0 = {"id": "v0", "assets": {"B08": {"href": "x"}, "SCL": {"href": "y"}}}
    assert find_asset(v0, "nir")[0] == "B08" and find_asset(v0, "scl")[0] == "SCL"
    # An unusual key is still found by its eo:bands common name, but never its JPEG2000 twin.
    renamed = {"id": "r", "assets": {"band8": item["assets"]["nir"], "band8-jp2": item["assets"]["nir-jp2"]}}
    assert find_asset(renamed, "nir")[0] == "band8"
    with pytest.raises(AssetNotFound, match="no 'swir16' asset"):
        find_asset(v0, "swir16")


def test_scl_classes_masked(tmp_path: Path) -> None:
    t20, shape20 = source_grid(20.0)
    scl = (np.arange(shape20[0] * shape20[1]) % 12).reshape(shape20).astype(np.uint8)
    item = scene_files(tmp_path, "s", fixture_item(REAL_2023), _dn(_reflectance(2), True), scl)
    read = read_tile(TILE, [item])
    scl10 = on_tile(np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1))  # nearest: each 20 m cell -> 2x2
    masked = np.isin(scl10, SCL_MASKED)
    assert set(SCL_MASKED) == {0, 1, 3, 8, 9, 10}  # nodata, saturated, shadow, cloud medium/high, cirrus
    assert np.array_equal(read.valid, ~masked)
    assert np.isnan(read.reflectance[:, masked]).all() and np.isfinite(read.reflectance[:, ~masked]).all()
    assert read.valid_fraction == pytest.approx(6 / 12, abs=0.02)


def test_clearest_scene_wins_per_pixel_with_all_bands_from_it(tmp_path: Path) -> None:
    _, shape20 = source_grid(20.0)
    ra, rb = _reflectance(3), _reflectance(4)
    dn_a = _dn(ra, True)
    dn_a[0, 20, 30] = 0  # scene A: NIR nodata at one pixel, red and green fine there
    scl_a = np.full(shape20, 4, np.uint8)
    scl_a[:, : shape20[1] // 2] = 9  # scene A: a cloud over its western half
    scl_b = np.full(shape20, 4, np.uint8)
    scl_b[:6, :] = 3  # scene B: cloud shadow along the north edge
    a = scene_files(tmp_path, "a", fixture_item(REAL_2023), dn_a, scl_a)
    b = scene_files(tmp_path, "b", fixture_item(REAL_2023_B), _dn(rb, True), scl_b)
    a["properties"]["eo:cloud_cover"], b["properties"]["eo:cloud_cover"] = 5.0, 20.0
    order = clearest_first([b, a])
    assert [it["id"] for it in order] == [a["id"], b["id"]]

    read = read_tile(TILE, order)
    assert isinstance(read, TileRead) and read.scenes == [a["id"], b["id"]]
    src = read.source
    exp_a, exp_b = on_tile(ra), on_tile(rb)
    from_a, from_b = src == 0, src == 1
    assert from_a.any() and from_b.any() and read.scenes_used == [a["id"], b["id"]]
    np.testing.assert_allclose(read.reflectance[:, from_a], exp_a[:, from_a], atol=0.6e-4)
    np.testing.assert_allclose(read.reflectance[:, from_b], exp_b[:, from_b], atol=0.6e-4)
    # The pixel whose NIR is missing in A takes all three bands from B, never NIR from B and red from A.
    r, c = 20 - 8, 30 - 8  # source pixel (20, 30) minus the margin
    assert src[r, c] == 1 and np.allclose(read.reflectance[:, r, c], exp_b[:, r, c], atol=0.6e-4)
    # Cloudy in A and shadowed in B: no clear view, NaN in every band.
    neither = ~read.valid
    assert neither.any() and np.isnan(read.reflectance[:, neither]).all() and (src[neither] == -1).all()
    assert 0 < read.valid_fraction < 1
    refl, valid = read  # also unpacks as (reflectance, valid)
    assert refl is read.reflectance and valid is read.valid


def test_a_clear_first_scene_stops_the_reading(tmp_path: Path) -> None:
    a = scene_files(tmp_path, "a", fixture_item(REAL_2023), _dn(_reflectance(5), True))
    missing = fixture_item(REAL_2023_B)  # hrefs still point at the public bucket: must never be opened
    read = read_tile(TILE, [a, missing])
    assert read.valid_fraction == 1.0 and read.scenes_used == [a["id"]]
