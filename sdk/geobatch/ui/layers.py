"""Map layers the UI can draw, named by the URI a user types: a product, one COG, or STAC imagery.

- ``s3://bucket/products/ID/collection.json`` (or the folder ``…/products/ID/``): a land-cover
  product. Its tiles are the STAC Items under ``tiles/`` (listed again every few seconds, so a
  product fills in on the map while its jobs run); each Item's ``classification`` asset is a class
  COG and its ``classification:classes`` give the legend.
- ``s3://…/x.tif`` (or a local path): one COG: classes when it is one uint8 band (its colour map,
  else the fixed land-cover colours), an RGB picture when it has three bands or more, else grey.
- ``s3://…/item.json`` or an ItemCollection (``search.json``): imagery, composited from band assets
  by common name: false colour (nir, red, green) or true colour (red, green, blue).

The legend, palette and stretch are decided here; pixels come from :class:`geobatch.ui.tiles.Renderer`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geobatch.wire import errors

__all__ = ["COMPOSITES", "Layer", "LayerSource", "RasterRef"]

#: Band combinations of imagery, by name, with the reflectance shown as full brightness per band.
COMPOSITES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "false-colour": (("nir", "red", "green"), (0.5, 0.3, 0.3)),
    "true-colour": (("red", "green", "blue"), (0.2, 0.2, 0.2)),
}
LIST_EVERY = 2.0  # seconds between listings of a product's tiles (what "fills in as tiles land" costs)


@dataclass(frozen=True)
class RasterRef:
    """One COG of a layer with its lon/lat bbox and a version (ETag) that changes when it is rewritten."""

    href: str
    bbox: tuple[float, float, float, float]
    version: str = ""
    scale: float = 1.0
    offset: float = 0.0


@dataclass
class Layer:
    """What the map draws for one URI."""

    uri: str
    kind: str  # "classes" | "rgb" | "grey"
    rasters: list[RasterRef] = field(default_factory=list)  # classes/grey: one per tile of the layer
    bands: dict[str, list[RasterRef]] = field(default_factory=dict)  # imagery: per band, per item
    classes: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)  # related layers (reference, source imagery)
    composites: list[str] = field(default_factory=list)
    listed: float = 0.0

    @property
    def bbox(self) -> list[float] | None:
        refs = self.rasters or [r for refs in self.bands.values() for r in refs]
        if not refs:
            return None
        b = np.asarray([r.bbox for r in refs])
        return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]

    def info(self) -> dict[str, Any]:
        return {
            "uri": self.uri, "kind": self.kind, "bbox": self.bbox, "classes": self.classes,
            "links": self.links, "composites": self.composites,
            "tiles": len(self.rasters) or max((len(v) for v in self.bands.values()), default=0),
        }  # fmt: skip


def palette(classes: list[dict[str, Any]]) -> np.ndarray:
    """(256, 4) RGBA palette from ``classification:classes`` (nodata and unknown values transparent)."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    for c in classes:
        hint = str(c.get("color_hint") or "")
        if c.get("nodata") or len(hint) != 6:
            continue
        lut[int(c["value"])] = (int(hint[0:2], 16), int(hint[2:4], 16), int(hint[4:6], 16), 255)
    return lut


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def for_tile(refs: list[RasterRef], bbox: tuple[float, ...]) -> list[RasterRef]:
    """The rasters of ``refs`` whose bbox meets ``bbox``."""
    return [r for r in refs if _intersects(r.bbox, bbox)]


class LayerSource:
    """Resolves URIs to :class:`Layer` objects, reading STAC JSON from S3 (or local files), with caching."""

    def __init__(self, s3_client: Any, renderer: Any):
        self.s3 = s3_client
        self.renderer = renderer
        self._layers: dict[str, Layer] = {}
        self._items: dict[tuple[str, str], dict[str, Any]] = {}  # (key, etag) -> item
        self._lock = threading.Lock()

    def get(self, uri: str) -> Layer:
        uri = uri.strip()
        with self._lock:
            layer = self._layers.get(uri)
            if layer is not None and (layer.kind != "classes" or not _is_product(uri)):
                return layer
            if layer is not None and time.monotonic() - layer.listed < LIST_EVERY:
                return layer
            layer = self._resolve(uri)
            self._layers[uri] = layer
            return layer

    # ------------------------------------------------------------------ resolving

    def _resolve(self, uri: str) -> Layer:
        if not (uri.startswith("s3://") or uri.startswith("/") or uri.startswith("file://")):
            raise errors.ValidationError(
                f"cannot draw {uri!r}: name an s3:// URI or an absolute path of a COG (.tif), a product "
                "(…/collection.json) or STAC imagery (an Item or ItemCollection .json)"
            )
        if _is_product(uri):
            return self._product(uri)
        if uri.lower().endswith((".tif", ".tiff")):
            return self._cog(uri)
        if uri.lower().endswith(".json"):
            return self._imagery(uri, self._json(uri))
        raise errors.ValidationError(f"cannot draw {uri!r}: expected a .tif, .json or products/ID/ URI")

    def _json(self, uri: str) -> Any:
        from geobatch.landcover.imagery import read_bytes

        try:
            return json.loads(read_bytes(uri, self.s3))
        except (OSError, ValueError) as exc:
            raise errors.NotFoundError(f"cannot read {uri}: {exc}") from None
        except Exception as exc:  # botocore's ClientError (NoSuchKey, NoSuchBucket, AccessDenied)
            raise errors.NotFoundError(f"cannot read {uri}: {exc}") from None

    def _product(self, uri: str) -> Layer:
        from geobatch.landcover.imagery import split_s3_uri

        folder = uri.removesuffix("collection.json").rstrip("/")
        bucket, prefix = split_s3_uri(folder)
        layer = Layer(uri=uri, kind="classes", listed=time.monotonic())
        try:
            collection = self._json(f"{folder}/collection.json")
            layer.links = _related(collection)
            layer.classes = collection.get("summaries", {}).get("classification:classes", [])
        except errors.NotFoundError:
            pass  # a product whose run is still going has tiles but no collection yet
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/tiles/")
        for obj in (o for page in pages for o in page.get("Contents", [])):
            if obj["Key"].endswith(".json"):
                item = self._item(bucket, obj["Key"], obj.get("ETag", ""))
                asset = item.get("assets", {}).get("classification") or {}
                layer.classes = layer.classes or asset.get("classification:classes", [])
                version = f"{obj.get('ETag', '')}"
                layer.rasters.append(RasterRef(asset.get("href", ""), tuple(item["bbox"]), version))
        if not layer.rasters and not layer.links and not layer.classes:
            raise errors.NotFoundError(f"no product at {folder}/ (no collection.json, no tiles/*.json)")
        return layer

    def _item(self, bucket: str, key: str, etag: str) -> dict[str, Any]:
        found = self._items.get((key, etag))
        if found is None:
            found = self._items[(key, etag)] = self._json(f"s3://{bucket}/{key}")
        return found

    def _cog(self, uri: str) -> Layer:
        def describe() -> tuple[str, tuple[float, ...], dict[int, Any] | None]:
            from rasterio.warp import transform_bounds

            ds = self.renderer.dataset(uri)
            kind = (
                "classes" if ds.count == 1 and ds.dtypes[0] == "uint8" else "rgb" if ds.count >= 3 else "grey"
            )
            try:
                cmap = ds.colormap(1) if kind == "classes" else None
            except ValueError:
                cmap = None  # no colour map in the file
            return kind, tuple(transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)), cmap

        try:
            kind, bbox, cmap = self.renderer.run(describe)
        except Exception as exc:  # rasterio's RasterioIOError: missing object, not a raster
            raise errors.NotFoundError(f"cannot open {uri} as a COG: {exc}") from None
        layer = Layer(uri=uri, kind=kind, rasters=[RasterRef(uri, bbox)])
        if kind == "classes":
            layer.classes = _classes_of(cmap)
        return layer

    def _imagery(self, uri: str, doc: dict[str, Any]) -> Layer:
        from geobatch.landcover.assets import AssetNotFound, find_asset, radiometry

        if doc.get("type") == "Collection":
            return self._product(uri.rsplit("/", 1)[0] + "/collection.json")
        items = doc.get("features", []) if doc.get("type") == "FeatureCollection" else [doc]
        items = sorted(items, key=lambda it: it.get("properties", {}).get("eo:cloud_cover", 100))
        layer = Layer(uri=uri, kind="rgb")
        for band in ("nir", "red", "green", "blue"):
            for item in items:
                try:
                    _, asset = find_asset(item, band)
                except AssetNotFound:
                    continue
                r = radiometry(item, asset)
                layer.bands.setdefault(band, []).append(
                    RasterRef(asset["href"], tuple(item["bbox"]), scale=r.scale, offset=r.offset)
                )
        layer.composites = [n for n, (bands, _) in COMPOSITES.items() if all(b in layer.bands for b in bands)]
        if not layer.composites:
            raise errors.ValidationError(
                f"{uri} has no imagery to draw: no nir/red/green or red/green/blue assets"
            )
        return layer


def _is_product(uri: str) -> bool:
    return uri.endswith("collection.json") or uri.rstrip("/").rsplit("/", 2)[-2:-1] == ["products"]


def _related(collection: dict[str, Any]) -> list[dict[str, str]]:
    """Layers a product names for comparison: its reference and source imagery links."""
    rels = {"geobatch:reference": "reference", "derived_from": "imagery"}
    return [
        {"role": rels[link["rel"]], "href": link["href"], "title": link.get("title") or link["href"]}
        for link in collection.get("links", [])
        if link.get("rel") in rels
    ]


def _classes_of(cmap: dict[int, Any] | None) -> list[dict[str, Any]]:
    """Legend of a class COG: the fixed land-cover classes, in the file's colour map if it has one."""
    from geobatch.landcover.classes import stac_classes

    classes = stac_classes()
    if cmap:
        for c in classes:
            rgba = cmap.get(int(c["value"]))  # type: ignore[call-overload]
            if rgba and not c.get("nodata"):
                c["color_hint"] = "%02X%02X%02X" % tuple(rgba[:3])  # noqa: UP031
    return classes
