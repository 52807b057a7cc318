"""Web-map tiles from COGs, rendered on demand: exact nearest-neighbour sampling on the Web Mercator grid.

A map tile ``z/x/y`` is 256×256 pixels of EPSG:3857. Every output pixel's centre is transformed
into the COG's CRS (pyproj on a 17×17 grid, interpolated between only where that is checked to be
within a hundredth of a COG pixel, see :func:`to_source_points`), so a rendered tile shows the
class of the COG pixel under each map pixel; the values are then looked up in one windowed read
of the COG. When a map pixel covers several COG pixels the read comes from the overview
whose pixels are no larger than the map's, so a zoomed-out view reads kilobytes, not the whole
file; class COGs carry ``mode`` overviews, so classes stay categorical there too.

GDAL state lives in one thread (:class:`Renderer`): its ``rasterio.Env`` (endpoint, credentials)
is entered there once and its open datasets stay open between tiles, so a warm tile costs no
S3 request and no re-open. Rendered PNGs are cached by the caller (see :mod:`geobatch.ui.layers`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

__all__ = ["ORIGIN", "TILE", "Renderer", "Sample", "mercator_grid", "tile_bounds_lonlat"]

TILE = 256
ORIGIN = 20037508.342789244  # half the Web Mercator world width, metres
_T = TypeVar("_T")


def mercator_grid(z: int, x: int, y: int, size: int = TILE) -> tuple[np.ndarray, np.ndarray, float]:
    """(xs, ys, pixel size) of the pixel centres of map tile z/x/y in EPSG:3857 metres."""
    res = 2 * ORIGIN / (size * 2**z)
    cols = (x * size + np.arange(size) + 0.5) * res - ORIGIN
    rows = ORIGIN - (y * size + np.arange(size) + 0.5) * res
    xs, ys = np.meshgrid(cols, rows)
    return xs, ys, res


def bbox_grid(bbox: tuple[float, float, float, float], size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(xs, ys, pixel size) of a ``size``-wide grid over a lon/lat bbox, in EPSG:3857."""
    from pyproj import Transformer

    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = to_merc.transform([bbox[0], bbox[2]], [bbox[1], bbox[3]])
    res = max((x1 - x0) / size, 1e-6)
    height = max(1, min(size, math.ceil((y1 - y0) / res)))
    cols = x0 + (np.arange(size) + 0.5) * res
    rows = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    xs, ys = np.meshgrid(cols, rows)
    return xs, ys, res


def tile_bounds_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of map tile z/x/y in degrees."""
    n = 2**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


@dataclass
class Sample:
    """Values of some bands of one COG at a grid of points: ``values`` (bands, H, W), ``inside`` (H, W)."""

    values: np.ndarray
    inside: np.ndarray
    nodata: float | None


def _env(aws_env: dict[str, str] | None) -> Any:
    """The render thread's ``rasterio.Env``: local mode's S3 endpoint, else the user's AWS credentials.

    ``aws_env`` None: a deployed stack's products, read with the user's own credentials (profile, SSO,
    role) as the SDK uses them; a dict naming a local endpoint: local mode's S3; an empty dict: local
    files only (tests, tools).
    """
    import rasterio
    from rasterio.session import AWSSession

    from geobatch.landcover.gdal_env import HTTP_OPTIONS, gdal_s3_env

    opts: dict[str, Any] = {**HTTP_OPTIONS, "GDAL_CACHEMAX": 256}  # MB of decoded blocks
    if aws_env is None:
        import boto3

        return rasterio.Env(session=AWSSession(session=boto3.Session()), **opts)
    local = gdal_s3_env(aws_env)
    if not local:
        return rasterio.Env(**opts)
    key, secret = local.pop("AWS_ACCESS_KEY_ID", None), local.pop("AWS_SECRET_ACCESS_KEY", None)
    region = local.pop("AWS_REGION", None)
    session = AWSSession(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=region,
        endpoint_url=local.get("AWS_S3_ENDPOINT"),
    )  # fmt: skip
    return rasterio.Env(session=session, **opts, **local)


class Renderer:
    """Reads COGs in one dedicated thread that owns the GDAL environment and the open datasets."""

    def __init__(self, aws_env: dict[str, str] | None = None, max_open: int = 64):
        self.aws_env = aws_env
        self.max_open = max_open
        self._datasets: OrderedDict[str, Any] = OrderedDict()
        self._transformers: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geobatch-tiles")
        self._entered = threading.local()

    def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Call ``fn(*args)`` in the render thread (inside its GDAL environment) and return its value."""
        return self._pool.submit(self._in_env, fn, *args).result()

    def _in_env(self, fn: Callable[..., _T], *args: Any) -> _T:
        if not getattr(self._entered, "env", None):
            self._entered.env = _env(self.aws_env)
            self._entered.env.__enter__()  # for the life of the thread: one environment, warm caches
        return fn(*args)

    def close(self) -> None:
        def _close() -> None:
            for ds in self._datasets.values():
                ds.close()
            self._datasets.clear()

        self._pool.submit(_close).result()
        self._pool.shutdown()

    # ------------------------------------------------------------------ in the render thread

    def dataset(self, href: str) -> Any:
        """The open dataset of ``href`` (kept open, least recently used closed first)."""
        import rasterio

        from geobatch.landcover.imagery import gdal_path

        ds = self._datasets.get(href)
        if ds is None:
            ds = rasterio.open(gdal_path(href))
            self._datasets[href] = ds
            while len(self._datasets) > self.max_open:
                self._datasets.popitem(last=False)[1].close()
        else:
            self._datasets.move_to_end(href)
        return ds

    def forget(self, href: str) -> None:
        """Close ``href`` (its object changed: the next read opens the new one)."""
        ds = self._datasets.pop(href, None)
        if ds is not None:
            ds.close()

    def _to_source(self, crs: Any) -> Any:
        from pyproj import Transformer

        key = crs.to_wkt()
        found = self._transformers.get(key)
        if found is None:
            found = self._transformers[key] = Transformer.from_crs(3857, crs, always_xy=True)
        return found

    def sample(
        self, href: str, xs: np.ndarray, ys: np.ndarray, res: float, bands: tuple[int, ...]
    ) -> Sample | None:
        """Nearest values of ``bands`` of ``href`` at the 3857 points (xs, ys); None: none is inside."""
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        ds = self.dataset(href)
        sx, sy = to_source_points(self._to_source(ds.crs), xs, ys, tolerance=0.01 * abs(ds.transform.a))
        inv = ~ds.transform
        col = np.floor(inv.a * sx + inv.b * sy + inv.c)
        row = np.floor(inv.d * sx + inv.e * sy + inv.f)
        inside = (col >= 0) & (col < ds.width) & (row >= 0) & (row < ds.height)
        if not inside.any():
            return None
        c0, c1 = int(col[inside].min()), int(col[inside].max()) + 1
        r0, r1 = int(row[inside].min()), int(row[inside].max()) + 1
        factor = _overview_factor(ds, col, row, xs.shape)
        out_h, out_w = max(1, math.ceil((r1 - r0) / factor)), max(1, math.ceil((c1 - c0) / factor))
        data = ds.read(
            list(bands), window=Window(c0, r0, c1 - c0, r1 - r0), out_shape=(len(bands), out_h, out_w),
            resampling=Resampling.nearest,
        )  # fmt: skip
        ri = np.clip(((row - r0) * out_h / (r1 - r0)).astype(np.intp), 0, out_h - 1)
        ci = np.clip(((col - c0) * out_w / (c1 - c0)).astype(np.intp), 0, out_w - 1)
        return Sample(values=data[:, ri, ci], inside=inside, nodata=ds.nodata)


def _lerp_weights(n: int, knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the knot before, fraction towards the next) for each of ``n`` positions."""
    pos = np.arange(n)
    k = np.clip(np.searchsorted(knots, pos, side="right") - 1, 0, len(knots) - 2)
    return k, (pos - knots[k]) / (knots[k + 1] - knots[k])


def _bilinear(
    coarse: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    # Element-wise (no matrix product: BLAS threads cost more than they save on arrays this small).
    (kr, tr), (kc, tc) = rows, cols
    along = coarse[kr] * (1 - tr)[:, None] + coarse[kr + 1] * tr[:, None]
    out: np.ndarray = along[:, kc] * (1 - tc) + along[:, kc + 1] * tc
    return out


def to_source_points(
    transformer: Any, xs: np.ndarray, ys: np.ndarray, *, tolerance: float, step: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """``transformer`` applied to the grid (xs, ys): exactly at every ``step``-th point and interpolated
    between, when that is within ``tolerance`` (source CRS units) at the cell centres; else exactly
    everywhere. Over a map tile a projection is smooth enough that the interpolation is off by
    micrometres, and it costs a sixtieth of transforming all 65,536 points."""
    h, w = xs.shape
    rows = np.unique(np.r_[np.arange(0, h, step), h - 1])
    cols = np.unique(np.r_[np.arange(0, w, step), w - 1])
    if len(rows) < 2 or len(cols) < 2:
        out: tuple[np.ndarray, np.ndarray] = transformer.transform(xs, ys)
        return out
    kx, ky = transformer.transform(xs[np.ix_(rows, cols)], ys[np.ix_(rows, cols)])
    wr, wc = _lerp_weights(h, rows), _lerp_weights(w, cols)
    sx, sy = _bilinear(np.asarray(kx), wr, wc), _bilinear(np.asarray(ky), wr, wc)
    # Check at the middle of every coarse cell, where a linear interpolation errs most.
    mr, mc = (rows[:-1] + rows[1:]) // 2, (cols[:-1] + cols[1:]) // 2
    ex, ey = transformer.transform(xs[np.ix_(mr, mc)], ys[np.ix_(mr, mc)])
    err = np.hypot(np.asarray(ex) - sx[np.ix_(mr, mc)], np.asarray(ey) - sy[np.ix_(mr, mc)])
    if not np.all(np.isfinite(err)) or float(err.max()) > tolerance:
        everywhere: tuple[np.ndarray, np.ndarray] = transformer.transform(xs, ys)
        return everywhere
    return sx, sy


def _overview_factor(ds: Any, col: np.ndarray, row: np.ndarray, shape: tuple[int, ...]) -> int:
    """The largest overview factor whose pixels are no larger than one map pixel here (1: full resolution)."""
    h, w = shape
    span = math.hypot(float(col[h // 2, -1] - col[h // 2, 0]), float(row[h // 2, -1] - row[h // 2, 0]))
    per_pixel = span / max(w - 1, 1)  # source pixels per map pixel
    best = 1
    for factor in ds.overviews(1):
        if factor <= per_pixel:
            best = max(best, factor)
    return best
