"""The map's pixels: PNG tiles of a layer (cached), and the agreement of two class layers over a view.

Cache: the encoded PNGs, least recently used out first, bounded in bytes. A tile's key holds the
versions (S3 ETags) of the COGs under it, so a product tile that lands or is rewritten during a run
shows on the next request, while the tiles around it stay cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from geobatch.ui import png
from geobatch.ui.layers import COMPOSITES, Layer, LayerSource, RasterRef, for_tile, palette
from geobatch.ui.tiles import Renderer, bbox_grid, mercator_grid, tile_bounds_lonlat
from geobatch.wire import errors

__all__ = ["MapService"]

MAX_ZOOM = 22
AGREEMENT_SIZE = 512  # pixels across the view when two layers are compared


class TileCache:
    """LRU of encoded tiles, bounded in bytes."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._data: OrderedDict[Any, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            found = self._data.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._data.move_to_end(key)
            return found

    def put(self, key: Any, value: bytes) -> None:
        with self._lock:
            if key in self._data:
                return
            self._data[key] = value
            self.bytes += len(value)
            while self.bytes > self.max_bytes and self._data:
                self.bytes -= len(self._data.popitem(last=False)[1])


class MapService:
    """Layers, tiles and comparisons for the UI, reading COGs with ``aws_env`` (None: the user's AWS)."""

    def __init__(self, aws_env: dict[str, str] | None = None, cache_bytes: int = 64 * 1024 * 1024):
        import boto3

        self.renderer = Renderer(aws_env)
        endpoint = (aws_env or {}).get("AWS_ENDPOINT_URL")
        if aws_env is not None:
            session = boto3.Session(
                aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID"),
                aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY"),
                region_name=aws_env.get("AWS_REGION") or aws_env.get("AWS_DEFAULT_REGION") or "us-east-1",
            )
            s3 = session.client("s3", endpoint_url=endpoint)
        else:
            s3 = boto3.client("s3")
        self.layers = LayerSource(s3, self.renderer)
        self.cache = TileCache(cache_bytes)
        self._versions: dict[str, str] = {}

    def close(self) -> None:
        self.renderer.close()

    def layer_info(self, uri: str) -> dict[str, Any]:
        return self.layers.get(uri).info()

    # ------------------------------------------------------------------ tiles

    def tile(self, uri: str, z: int, x: int, y: int, composite: str | None = None) -> bytes:
        """The 256×256 PNG of map tile z/x/y of the layer ``uri`` (transparent where it has no data)."""
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
            raise errors.ValidationError(f"no map tile {z}/{x}/{y}: zoom 0–{MAX_ZOOM}, x and y in 0…2^zoom−1")
        layer = self.layers.get(uri)
        bands = self._composite(layer, composite)
        bbox = tile_bounds_lonlat(z, x, y)
        refs = [r for band in bands for r in for_tile(layer.bands[band], bbox)] if bands else None
        under = refs if refs is not None else for_tile(layer.rasters, bbox)
        key = (uri, composite, z, x, y, tuple((r.href, r.version) for r in under))
        found = self.cache.get(key)
        if found is not None:
            return found
        self._forget_changed(under)
        xs, ys, res = mercator_grid(z, x, y)
        body = self.renderer.run(self._render, layer, bands, bbox, xs, ys, res)
        self.cache.put(key, body)
        return body

    def _composite(self, layer: Layer, composite: str | None) -> tuple[str, ...] | None:
        if layer.kind != "rgb" or not layer.bands:
            return None
        name = composite or layer.composites[0]
        if name not in layer.composites:
            raise errors.ValidationError(f"{layer.uri} has composites {layer.composites}, not {name!r}")
        return COMPOSITES[name][0]

    def _forget_changed(self, refs: list[RasterRef]) -> None:
        for ref in refs:
            if self._versions.get(ref.href, ref.version) != ref.version:
                self.renderer.run(self.renderer.forget, ref.href)
            self._versions[ref.href] = ref.version

    def _render(
        self, layer: Layer, bands: tuple[str, ...] | None, bbox: Any, xs: Any, ys: Any, res: float
    ) -> bytes:
        if bands is not None:
            rgba = self._imagery(layer, bands, bbox, xs, ys, res)
            return png.encode_rgba(rgba)
        if layer.kind == "classes":
            values = self.classes_at(layer, bbox, xs, ys, res)
            return png.encode_palette(values, palette(layer.classes))
        return png.encode_rgba(self._picture(layer, bbox, xs, ys, res))

    def classes_at(self, layer: Layer, bbox: Any, xs: Any, ys: Any, res: float) -> np.ndarray:
        """(H, W) uint8 class values of a class layer at 3857 points; 0 where it has none (render thread)."""
        out = np.zeros(xs.shape, dtype=np.uint8)
        for ref in for_tile(layer.rasters, bbox):
            sample = self.renderer.sample(ref.href, xs, ys, res, (1,))
            if sample is None:
                continue
            values = sample.values[0]
            fill = (
                sample.inside & (out == 0) & (values != (sample.nodata if sample.nodata is not None else 0))
            )
            out[fill] = values[fill]
        return out

    def _imagery(
        self, layer: Layer, bands: tuple[str, ...], bbox: Any, xs: Any, ys: Any, res: float
    ) -> np.ndarray:
        """RGBA of a composite: each pixel from the first (clearest) item with every band there."""
        stretch = dict(zip(bands, COMPOSITES[_name_of(bands)][1], strict=True))
        rgba = np.zeros((*xs.shape, 4), dtype=np.uint8)
        done = np.zeros(xs.shape, dtype=bool)
        per_item = zip(*(layer.bands[b] for b in bands), strict=False)
        for refs in per_item:
            if not all(_meets(r, bbox) for r in refs):
                continue
            channels, valid = [], ~done
            for band, ref in zip(bands, refs, strict=True):
                sample = self.renderer.sample(ref.href, xs, ys, res, (1,))
                if sample is None:
                    valid[:] = False
                    break
                dn = sample.values[0]
                valid &= sample.inside & (dn != (sample.nodata if sample.nodata is not None else 0))
                reflectance = dn.astype(np.float32) * ref.scale + ref.offset
                channels.append(np.clip(reflectance / stretch[band] * 255, 0, 255).astype(np.uint8))
            if valid.any() and len(channels) == len(bands):
                for i, channel in enumerate(channels):
                    rgba[..., i][valid] = channel[valid]
                rgba[..., 3][valid] = 255
                done |= valid
        return rgba

    def _picture(self, layer: Layer, bbox: Any, xs: Any, ys: Any, res: float) -> np.ndarray:
        """RGBA of a plain COG: bands 1–3 as RGB, or band 1 as grey, stretched over the tile's 2–98 %."""
        rgba = np.zeros((*xs.shape, 4), dtype=np.uint8)
        for ref in for_tile(layer.rasters, bbox):
            count = 3 if layer.kind == "rgb" else 1
            sample = self.renderer.sample(ref.href, xs, ys, res, tuple(range(1, count + 1)))
            if sample is None:
                continue
            values = sample.values.astype(np.float32)
            valid = sample.inside & ~np.isnan(values).any(axis=0)
            if sample.nodata is not None:
                valid &= (values != sample.nodata).all(axis=0)
            if not valid.any():
                continue
            lo, hi = np.percentile(values[:, valid], [2, 98])
            scaled = np.clip((values - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
            for i in range(3):
                rgba[..., i][valid] = scaled[min(i, count - 1)][valid]
            rgba[..., 3][valid] = 255
        return rgba

    # ------------------------------------------------------------------ comparison

    def agreement(self, a: str, b: str, bbox: tuple[float, float, float, float]) -> dict[str, Any]:
        """Share of pixels where class layers ``a`` and ``b`` agree, over ``bbox`` sampled 512 px across."""
        la, lb = self.layers.get(a), self.layers.get(b)
        for layer in (la, lb):
            if layer.kind != "classes":
                raise errors.ValidationError(f"{layer.uri} is not a class layer: agreement compares classes")
        if not (-180 <= bbox[0] < bbox[2] <= 180 and -85.06 <= bbox[1] < bbox[3] <= 85.06):
            raise errors.ValidationError(f"bbox {list(bbox)} is not west,south,east,north in degrees")
        xs, ys, res = bbox_grid(bbox, AGREEMENT_SIZE)

        def compare() -> dict[str, Any]:
            va = self.classes_at(la, bbox, xs, ys, res)
            vb = self.classes_at(lb, bbox, xs, ys, res)
            both = (va > 0) & (vb > 0)
            n = int(both.sum())
            per_class = {}
            for c in la.classes:
                value = int(c["value"])
                ref = both & (vb == value)
                if value and ref.any():
                    per_class[str(c.get("name", value))] = round(float((va[ref] == value).mean()), 4)
            agree = float((va[both] == vb[both]).mean()) if n else None
            return {"agreement": agree, "pixels": n, "pixel_metres": res, "per_class": per_class}

        return self.renderer.run(compare)


def _name_of(bands: tuple[str, ...]) -> str:
    return next(name for name, (b, _) in COMPOSITES.items() if b == bands)


def _meets(ref: RasterRef, bbox: Any) -> bool:
    return bool(for_tile([ref], bbox))
