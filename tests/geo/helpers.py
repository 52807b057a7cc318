"""Shared by the geo tests: real earth-search v1 fixtures, local COGs behind them, COG and STAC checks."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from geobatch.landcover.archive import write_cog
from geobatch.tiles import Tile

FIXTURES = Path(__file__).parent / "fixtures"
REAL_2023 = "S2A_39QTA_20230628_0_L2A.json"  # baseline 05.09, offset -0.1 in raster:bands
REAL_2023_B = "S2B_39QTA_20230623_0_L2A.json"
RECONSTRUCTED_2021 = "S2B_39QTA_20210623_0_L2A.reconstructed.json"  # baseline 03.00, offset 0
# A 64 px tile inside granule 39QTA (EPSG:32639, the items' proj:epsg).
TILE = Tile.from_latlon(18.5, 48.7, 10.0, 64, 0)
MARGIN = 8  # source pixels (10 m) beyond the tile on every side
FILES = {"nir": "B08", "red": "B04", "green": "B03", "scl": "SCL"}


def fixture_item(name: str) -> dict[str, Any]:
    """A fixture item (a fresh copy)."""
    return json.loads((FIXTURES / "earth-search-v1" / name).read_text())


def source_grid(res: float) -> tuple[Affine, tuple[int, int]]:
    """(transform, shape) of a source raster at ``res`` covering :data:`TILE` plus the margin."""
    xmin, _, _, ymax = TILE.padded_bounds
    pad_m = MARGIN * 10.0
    n = round((TILE.shape[0] * 10.0 + 2 * pad_m) / res)
    return Affine(res, 0.0, xmin - pad_m, 0.0, -res, ymax + pad_m), (n, n)


def on_tile(source: np.ndarray) -> np.ndarray:
    """The part of a 10 m source array (see :func:`source_grid`) under :data:`TILE`."""
    return source[..., MARGIN : MARGIN + TILE.shape[0], MARGIN : MARGIN + TILE.shape[1]]


def scene_files(
    tmp: Path, name: str, item: dict[str, Any], dn: np.ndarray, scl: np.ndarray | None = None
) -> dict[str, Any]:
    """Write ``dn`` (3, H, W) uint16 (nir, red, green) and ``scl`` (20 m) as COGs; the item pointing there."""
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    t10, _ = source_grid(10.0)
    t20, shape20 = source_grid(20.0)
    out = copy.deepcopy(item)
    for b, key in enumerate(("nir", "red", "green")):
        path = folder / f"{FILES[key]}.tif"
        write_cog(path, dn[b], TILE.crs, t10)
        out["assets"][key]["href"] = str(path)
    scl = np.full(shape20, 4, dtype=np.uint8) if scl is None else scl
    path = folder / "SCL.tif"
    write_cog(path, scl, TILE.crs, t20, resampling="nearest")
    out["assets"]["scl"]["href"] = str(path)
    return out


def without_scale_offset(item: dict[str, Any]) -> dict[str, Any]:
    """The item without ``scale``/``offset`` in any ``raster:bands`` (as some catalogues serve it)."""
    out = copy.deepcopy(item)
    for asset in out["assets"].values():
        for band in asset.get("raster:bands", []):
            band.pop("scale", None)
            band.pop("offset", None)
    return out


# ----- STAC validation against the vendored schemas ----------------------------------------------

_SCHEMAS = {
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json": "projection-v1.1.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json": "classification-v2.0.0.json",
}


def stac_validate(doc: dict[str, Any]) -> list[str]:
    """Validate a STAC dict (core and its extensions) offline; returns the schema URIs checked against."""
    import pystac.validation
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    validator = JsonSchemaSTACValidator()
    for uri, file in _SCHEMAS.items():
        validator.schema_cache[uri] = json.loads((FIXTURES / "schemas" / file).read_text())
    unknown = set(doc.get("stac_extensions", [])) - set(_SCHEMAS)
    assert not unknown, f"no vendored schema for {unknown}"
    return pystac.validation.validate_dict(doc, validator=validator)


# ----- COG structure (what `rio cogeo validate` checks) ------------------------------------------

_TILE_OFFSETS, _TILE_WIDTH, _SUBFILE = 324, 322, 254


def _ifds(data: bytes) -> list[dict[int, Any]]:
    """Tags of every IFD of a classic TIFF, in file order of the IFD chain, plus each IFD's offset (-1)."""
    endian = {b"II": "<", b"MM": ">"}[data[:2]]
    (magic,) = struct.unpack(endian + "H", data[2:4])
    assert magic == 42, "expected a classic TIFF (BigTIFF is not parsed here)"
    (offset,) = struct.unpack(endian + "I", data[4:8])
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 16: 8}
    codes = {1: "B", 2: "s", 3: "H", 4: "I", 16: "Q"}
    ifds = []
    while offset:
        (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
        tags: dict[int, Any] = {-1: offset}
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, kind, n = struct.unpack(endian + "HHI", entry[:8])
            size = sizes.get(kind, 1) * n
            raw = (
                entry[8 : 8 + size] if size <= 4 else data[struct.unpack(endian + "I", entry[8:])[0] :][:size]
            )
            if kind in codes and kind != 2:
                tags[tag] = list(struct.unpack(endian + codes[kind] * n, raw))
        ifds.append(tags)
        (offset,) = struct.unpack(endian + "I", data[offset + 2 + 12 * count : offset + 6 + 12 * count])
    return ifds


def check_cog(path: str | Path) -> None:
    """Assert the COG layout: ``rio cogeo validate --strict`` (rio-cogeo's validator, warnings as
    errors) passes, and the structure it implies is there, checked byte by byte.

    Tiled (every IFD has TileWidth/TileOffsets); overviews whenever the image is larger than one block;
    the full-resolution IFD first, overviews after it from large to small; every IFD before any image
    data (so a reader gets all the structure in the first range request).
    """
    import rasterio
    from rio_cogeo.cogeo import cog_validate

    valid, errors, warnings = cog_validate(str(path), strict=True, quiet=True)
    assert valid, f"rio cogeo validate: errors {errors}, warnings {warnings}"
    data = Path(path).read_bytes()
    with rasterio.open(path) as src:
        block = src.block_shapes[0][1]
        if max(src.width, src.height) > block:
            assert src.overviews(1), "larger than one block and no overviews"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", "GDAL does not see a COG layout"
    assert b"LAYOUT=IFDS_BEFORE_DATA" in data[:1024], "no COG ghost header"
    ifds = _ifds(data)
    assert all(_TILE_OFFSETS in ifd and _TILE_WIDTH in ifd for ifd in ifds), "an IFD is not tiled"
    assert ifds[0].get(_SUBFILE, [0])[0] == 0, "the first IFD must be the full-resolution image"
    widths = [ifd[256][0] for ifd in ifds]
    assert widths == sorted(widths, reverse=True), f"IFDs not ordered full resolution first: {widths}"
    first_data = min(min(o for o in ifd[_TILE_OFFSETS] if o) for ifd in ifds)
    assert max(ifd[-1] for ifd in ifds) < first_data, "an IFD comes after image data"
