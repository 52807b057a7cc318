"""How a Sentinel-2 L2A STAC Item names its bands and how its digital numbers become reflectance.

Element84's earth-search v1 (collection ``sentinel-2-l2a``) names assets by common name (``nir``,
``red``, ``green``, ``scl``; each band asset also carries ``eo:bands[0].common_name``); the older
v0 archive and many copies of it name them ``B08``, ``B04``, ``B03``, ``SCL``. :func:`find_asset`
accepts both.

Radiometry: surface reflectance = DN * scale + offset, with DN 0 = nodata. Since processing baseline
04.00 (acquisitions from 25 January 2022) L2A DNs carry ``BOA_ADD_OFFSET`` = -1000, i.e. offset
-0.1 at scale 0.0001; v1 items state both per asset in ``raster:bands``, and :func:`radiometry` uses
them as given. Only where an item lacks them does the baseline rule decide (the item's
``s2:processing_baseline``, or its acquisition date when that is missing too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

#: Band keys by common name, v1 first; the band-number keys of the v0 archive are aliases.
BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "nir": ("nir", "B08"),
    "red": ("red", "B04"),
    "green": ("green", "B03"),
    "blue": ("blue", "B02"),
    "scl": ("scl", "SCL"),
}
L2A_SCALE = 1e-4
BOA_ADD_OFFSET_DN = -1000
OFFSET_BASELINE = (4, 0)  # processing baseline 04.00 introduced BOA_ADD_OFFSET
OFFSET_START = dt.datetime(2022, 1, 25, tzinfo=dt.UTC)


class AssetNotFound(KeyError):
    """The item has no asset for a band (by key, alias or ``eo:bands`` common name)."""


@dataclass(frozen=True)
class Radiometry:
    """How to turn one asset's DNs into reflectance: ``DN * scale + offset``; ``nodata`` DNs are masked."""

    scale: float
    offset: float
    nodata: float | None
    source: str  # "raster:bands" or "baseline rule": where scale/offset came from

    def apply(self, dn: Any) -> Any:
        """float32 reflectance of a DN array, NaN where the DN is nodata."""
        import numpy as np

        out = dn.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        if self.nodata is not None:
            out[dn == self.nodata] = np.nan
        return out


def _common_names(asset: dict[str, Any]) -> set[str]:
    return {b.get("common_name") for b in asset.get("eo:bands", []) if b.get("common_name")}


def find_asset(item: dict[str, Any], band: str) -> tuple[str, dict[str, Any]]:
    """(key, asset) of ``band`` in ``item``: by key or alias first, then by ``eo:bands`` common name."""
    assets = item.get("assets", {})
    name = next((c for c, keys in BAND_ALIASES.items() if band in (c, *keys)), band)
    aliases = BAND_ALIASES.get(name, (band,))
    for key in aliases:
        if key in assets:
            return key, assets[key]
    for key, asset in assets.items():
        # Only COG data assets: v1 items also list a "-jp2" twin of every band with the same common name.
        if name in _common_names(asset) and "profile=cloud-optimized" in str(asset.get("type", "")):
            return key, asset
    raise AssetNotFound(f"item {item.get('id')!r} has no {band!r} asset (looked for {list(aliases)})")


def canonical_band(name: str) -> str:
    """Common name of a band given by common name or v0 key (``B08`` -> ``nir``)."""
    for common, aliases in BAND_ALIASES.items():
        if name == common or name in aliases:
            return common
    raise ValueError(f"unknown band {name!r}; known: {sorted(BAND_ALIASES)} or {_v0_keys()}")


def _v0_keys() -> list[str]:
    return [aliases[-1] for aliases in BAND_ALIASES.values()]


def processing_baseline(item: dict[str, Any]) -> tuple[int, int] | None:
    """``s2:processing_baseline`` (``"05.09"`` -> (5, 9)), or None when absent or unparseable."""
    props = item.get("properties", {})
    value = props.get("s2:processing_baseline") or props.get("sentinel:processing_baseline")
    try:
        major, minor = str(value).split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def acquired(item: dict[str, Any]) -> dt.datetime | None:
    """Acquisition time (``properties.datetime``, else ``start_datetime``) as an aware datetime."""
    props = item.get("properties", {})
    value = props.get("datetime") or props.get("start_datetime")
    if not value:
        return None
    when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def baseline_offset(item: dict[str, Any]) -> float:
    """Reflectance offset by the baseline rule: -0.1 from baseline 04.00 (or from 25 Jan 2022) on, else 0."""
    baseline = processing_baseline(item)
    if baseline is not None:
        has_offset = baseline >= OFFSET_BASELINE
    else:
        when = acquired(item)
        has_offset = when is not None and when >= OFFSET_START
    return BOA_ADD_OFFSET_DN * L2A_SCALE if has_offset else 0.0


def radiometry(item: dict[str, Any], asset: dict[str, Any]) -> Radiometry:
    """Scale, offset and nodata of one reflectance asset (``raster:bands`` first, else the baseline rule)."""
    bands = asset.get("raster:bands") or [{}]
    first = bands[0]
    nodata = first.get("nodata", 0)
    if "scale" in first or "offset" in first:
        return Radiometry(
            scale=float(first.get("scale", 1.0)),
            offset=float(first.get("offset", 0.0)),
            nodata=nodata,
            source="raster:bands",
        )
    return Radiometry(scale=L2A_SCALE, offset=baseline_offset(item), nodata=nodata, source="baseline rule")
