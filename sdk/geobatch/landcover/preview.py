"""The steps of :func:`geobatch.landcover.product.mosaic_preview`: the mosaic's grid, the tiles warped
onto it, the colour PNG written from it.

Tiles are warped (nearest) into the CRS of the first tile, so products spanning several UTM zones work.
Every function that reads expects an open :func:`~geobatch.landcover.gdal_env.rasterio_env`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from geobatch.landcover.classes import NODATA, colormap


class Grid(NamedTuple):
    """The mosaic's raster grid: CRS, affine transform and size in pixels."""

    crs: Any
    transform: Any
    width: int
    height: int


def mosaic_grid(uris: list[str], max_size: int) -> Grid:
    """The union of the tiles' bounds in the first tile's CRS, at its resolution or coarser so that
    neither side exceeds ``max_size`` pixels."""
    import rasterio
    from affine import Affine
    from rasterio.warp import transform_bounds

    from geobatch.landcover.imagery import gdal_path

    with rasterio.open(gdal_path(uris[0])) as first:
        crs = first.crs
        native = abs(first.transform.a)
    bounds = []
    for uri in uris:
        with rasterio.open(gdal_path(uri)) as src:
            bounds.append(
                transform_bounds(src.crs, crs, *src.bounds) if src.crs != crs else tuple(src.bounds)
            )
    b = np.asarray(bounds)
    xmin, ymin, xmax, ymax = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    res = max(native, (xmax - xmin) / max_size, (ymax - ymin) / max_size)
    width, height = int(np.ceil((xmax - xmin) / res)), int(np.ceil((ymax - ymin) / res))
    return Grid(crs, Affine(res, 0.0, float(xmin), 0.0, -res, float(ymax)), width, height)


def mosaic(uris: list[str], grid: Grid) -> np.ndarray:
    """Class values of every tile warped onto ``grid``; where tiles overlap, the first one's pixel wins."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from geobatch.landcover.imagery import gdal_path

    canvas = np.zeros((grid.height, grid.width), dtype=np.uint8)
    for uri in uris:
        scratch = np.zeros_like(canvas)
        with rasterio.open(gdal_path(uri)) as src:
            reproject(
                source=rasterio.band(src, 1),
                destination=scratch,
                src_nodata=NODATA,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                dst_nodata=NODATA,
                resampling=Resampling.nearest,
            )
        fill = canvas == NODATA
        canvas[fill] = scratch[fill]
    return canvas


def write_rgba_png(canvas: np.ndarray, out_png: str | Path) -> Path:
    """``canvas`` coloured by the fixed class colours (nodata transparent), as an RGBA PNG."""
    import rasterio
    import rasterio.errors

    lut = np.zeros((256, 4), dtype=np.uint8)
    for value, rgba in colormap().items():  # class values are fixed, and so are their colours
        lut[value] = rgba
    lut[NODATA] = (0, 0, 0, 0)
    rgba_img = np.moveaxis(lut[canvas], -1, 0)
    height, width = canvas.shape
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # A PNG has no georeferencing by design; the preview is a picture, not a dataset.
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(out, "w", driver="PNG", width=width, height=height, count=4, dtype="uint8") as dst:
            dst.write(rgba_img)
    return out
