"""Deterministic synthetic Sentinel-2 L2A scenes that look to the reader exactly like the real archive.

No real imagery can be downloaded in development, so the demo generates a known land cover: smooth
noise fields decide forest / cropland / bare fields, a meandering lake runs north-south (Lake
Champlain-like) and a few towns are urban. Each class gets its typical surface reflectance (see
:mod:`geobatch.landcover.classes`) with texture and per-pixel noise.

Every scene of a date then gets what real scenes have: clouds (medium and high probability), thin
cirrus and cloud shadows, labelled in a 20 m scene classification (SCL) raster, and digital numbers
encoded as its processing baseline encodes them: ``DN = reflectance * 10000``, plus 1000
(``BOA_ADD_OFFSET``) from baseline 04.00 on. :mod:`geobatch.landcover.archive` writes them as COGs
with earth-search v1 STAC Items, so the offline path is the real path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from affine import Affine
from scipy import ndimage

from geobatch.landcover.assets import BOA_ADD_OFFSET_DN, OFFSET_BASELINE
from geobatch.landcover.classes import BANDS, CLASSES
from geobatch.tiles import lonlat_to_utm, utm_to_lonlat, zone_for_lon

# SCL values (Sen2Cor): what the generator labels.
SCL_SHADOW, SCL_VEGETATION, SCL_BARE, SCL_WATER = 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10


@dataclass(frozen=True)
class Acquisition:
    """One date of the synthetic archive: when, which satellite and baseline, how cloudy."""

    date: dt.date
    platform: str = "sentinel-2a"
    baseline: str = "05.10"
    cloud_fraction: float = 0.1

    @property
    def has_offset(self) -> bool:
        """True from processing baseline 04.00 on: DNs carry BOA_ADD_OFFSET."""
        major, minor = (int(p) for p in self.baseline.split("."))
        return (major, minor) >= OFFSET_BASELINE


#: The demo's archive: three summer dates, two before and after the 2022 baseline change, each cloudy.
DEMO_ACQUISITIONS: tuple[Acquisition, ...] = (
    Acquisition(dt.date(2021, 7, 12), "sentinel-2b", "03.01", 0.10),
    Acquisition(dt.date(2023, 7, 17), "sentinel-2a", "05.09", 0.14),
    Acquisition(dt.date(2024, 7, 21), "sentinel-2b", "05.10", 0.08),
)


@dataclass
class SyntheticScene:
    """One acquisition: DNs (3, H, W) uint16 (nir, red, green), SCL at 20 m, the truth and the grid."""

    scene_id: str
    dn: np.ndarray
    scl: np.ndarray  # (ceil(H/2), ceil(W/2)) uint8 at twice the pixel size
    truth: np.ndarray
    crs: str
    transform: Affine
    datetime: dt.datetime
    zone: int
    acquisition: Acquisition
    mgrs: tuple[str, str]  # (latitude band, grid square)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.truth.shape[0], self.truth.shape[1]

    @property
    def cloud_cover(self) -> float:
        """Percentage of SCL cloud and cirrus pixels, as ``eo:cloud_cover`` reports it."""
        return float(np.isin(self.scl, (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)).mean() * 100)

    def band(self, name: str) -> np.ndarray:
        """One band's (H, W) DNs by common name."""
        out: np.ndarray = self.dn[BANDS.index(name)]
        return out

    def reflectance(self) -> np.ndarray:
        """(3, H, W) float32 reflectance as a reader must decode it (DN/10000, -0.1 from baseline 04.00)."""
        offset = BOA_ADD_OFFSET_DN if self.acquisition.has_offset else 0
        return (self.dn.astype(np.float32) + offset) / np.float32(10_000)

    def footprint_lonlat(self) -> dict[str, object]:
        """GeoJSON Polygon of the scene's outline in lon/lat (edges densified to 5 points per side)."""
        h, w = self.shape
        t = np.linspace(0.0, 1.0, 5)
        cols = np.concatenate([t * w, np.full(5, w), (1 - t) * w, np.zeros(5)])
        rows = np.concatenate([np.zeros(5), t * h, np.full(5, h), (1 - t) * h])
        xs, ys = self.transform @ (cols, rows)  # type: ignore[operator]  # Affine maps arrays too
        lons, lats = utm_to_lonlat(self.zone, np.asarray(xs), np.asarray(ys))
        ring = [[float(a), float(b)] for a, b in zip(lons, lats, strict=True)]
        ring.append(ring[0])
        return {"type": "Polygon", "coordinates": [ring]}


def mgrs_square(zone: int, lat: float, easting: float, northing: float) -> tuple[str, str]:
    """MGRS latitude band letter and 100 km grid-square id (e.g. ``("T", "XP")``) of a UTM position."""
    band = "CDEFGHJKLMNPQRSTUVWXX"[min(max(int((lat + 80) // 8), 0), 20)]
    col_letters = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    col = col_letters[int(easting // 100_000) - 1]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    # Even zones start their row lettering 5 letters later (MGRS "AA" scheme).
    row = rows[(int(northing // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return band, col + row


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Spatially coherent noise in ~[-1, 1]: coarse white noise upsampled with cubic splines (fast)."""
    coarse = rng.standard_normal((shape[0] // cell + 4, shape[1] // cell + 4))
    fine = ndimage.zoom(coarse, cell, order=3)[: shape[0], : shape[1]]
    out: np.ndarray = fine / (np.abs(fine).max() + 1e-9)
    return out


def generate_landcover(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Deterministic uint8 class map (1..5) with a lake, towns, forest patches and agricultural fields."""
    rng = np.random.default_rng(seed)
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w]
    relief = _smooth_noise(rng, shape, 96) + 0.5 * _smooth_noise(rng, shape, 32)
    classes = np.full(shape, 3, dtype=np.uint8)  # cropland by default

    # Agricultural parcels: a jittered grid of fields, each bare soil (ploughed) or crop.
    fh, fw = 40, 60
    warp = 12 * _smooth_noise(rng, shape, 64)
    fr = np.clip((rows + warp) // fh, 0, h // fh + 1).astype(np.intp)
    fc = np.clip((cols - warp) // fw, 0, w // fw + 1).astype(np.intp)
    bare_fields = rng.random((h // fh + 2, w // fw + 2)) < 0.22
    classes[bare_fields[fr, fc]] = 5

    classes[relief > np.quantile(relief, 0.6)] = 2  # forest on the higher ground

    ragged = _smooth_noise(rng, shape, 8)  # towns: a few blobs with ragged edges
    for _ in range(6):
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        radius = rng.uniform(0.04, 0.08) * min(h, w)
        classes[np.hypot(rows - cy, cols - cx) < radius * (1 + 0.35 * ragged)] = 4

    # A lake/river meandering north-south west of the centre, plus a few ponds in low ground.
    centre = (
        0.35 * w
        + 0.08 * w * np.sin(rows[:, 0] / h * 2 * np.pi * 1.3)
        + 30 * _smooth_noise(rng, (h, 1), 64)[:, 0]
    )
    half_width = 0.025 * w + 0.02 * w * (0.5 + 0.5 * np.sin(rows[:, 0] / h * np.pi * 3))
    classes[np.abs(cols - centre[:, None]) < half_width[:, None]] = 1
    classes[relief < np.quantile(relief, 0.015)] = 1
    return classes


def synthesize_reflectance(classes: np.ndarray, seed: int) -> np.ndarray:
    """(3, H, W) float32 clear-sky surface reflectance (nir, red, green): class means x texture + noise."""
    rng = np.random.default_rng(seed + 1)
    # Within-class variability (moisture, density) and sensor noise, strong enough that k-means
    # mislabels a little (about 1-2% of pixels) as it would on real imagery.
    texture = 0.15 * _smooth_noise(rng, classes.shape, 16)
    out = np.empty((len(BANDS), *classes.shape), dtype=np.float32)
    for b, name in enumerate(BANDS):
        means = np.zeros(max(c.id for c in CLASSES) + 1, dtype=np.float32)
        for c in CLASSES:
            means[c.id] = c.reflectance(name)
        base = means[classes] * (1.0 + texture)
        out[b] = base * (1.0 + 0.15 * rng.standard_normal(classes.shape, dtype=np.float32))
    return out


def sky(shape20: tuple[int, int], truth20: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """20 m SCL: clouds (high and medium probability), cirrus, their shadows, ground classes elsewhere."""
    rng = np.random.default_rng(seed + 7)
    scl = np.where(truth20 == 1, SCL_WATER, np.where(np.isin(truth20, (4, 5)), SCL_BARE, SCL_VEGETATION))
    scl = scl.astype(np.uint8)
    if fraction <= 0:
        return scl
    field = _smooth_noise(rng, shape20, 24)
    cloud = field > np.quantile(field, 1 - fraction * 0.8)
    core = field > np.quantile(field, 1 - fraction * 0.4)
    cirrus_field = _smooth_noise(rng, shape20, 40)
    cirrus = (cirrus_field > np.quantile(cirrus_field, 1 - fraction * 0.2)) & ~cloud
    # The shadow falls a few hundred metres off its cloud, away from the sun: north-west of it, for a
    # mid-morning sun in the south-east.
    shadow = np.zeros_like(cloud)
    shadow[:-14, :-10] = cloud[14:, 10:]
    shadow &= ~cloud & ~cirrus
    scl[shadow] = SCL_SHADOW
    scl[cirrus] = SCL_CIRRUS
    scl[cloud] = SCL_CLOUD_MEDIUM
    scl[core] = SCL_CLOUD_HIGH
    return scl


def _observe(clear: np.ndarray, scl10: np.ndarray) -> np.ndarray:
    """Reflectance as seen through the sky of ``scl10``: bright clouds, hazy cirrus, dark shadows."""
    seen = clear.copy()
    cloud = np.float32(0.45)
    seen[:, scl10 == SCL_CLOUD_HIGH] = cloud
    medium = scl10 == SCL_CLOUD_MEDIUM
    seen[:, medium] = 0.5 * seen[:, medium] + 0.5 * cloud
    seen[:, scl10 == SCL_CIRRUS] += np.float32(0.05)
    seen[:, scl10 == SCL_SHADOW] *= np.float32(0.35)
    return seen


def encode_dn(reflectance: np.ndarray, has_offset: bool) -> np.ndarray:
    """uint16 L2A DNs of a reflectance array: ``R * 10000`` (+1000 from baseline 04.00); valid DNs >= 1."""
    shift = -BOA_ADD_OFFSET_DN if has_offset else 0
    out: np.ndarray = np.clip(np.rint(reflectance * 10_000 + shift), 1, 65_535).astype(np.uint16)
    return out


def scene_grid(
    lon: float, lat: float, width_px: int, height_px: int, resolution: float
) -> tuple[int, Affine]:
    """(zone, transform) of a scene centred on (lon, lat), origin snapped so it aligns with DL tiles."""
    zone = zone_for_lon(lon)
    cx, cy = lonlat_to_utm(zone, lon, lat)
    xmin = np.floor((cx - width_px * resolution / 2) / (2 * resolution)) * 2 * resolution
    ymax = np.floor((cy + height_px * resolution / 2) / (2 * resolution)) * 2 * resolution
    return zone, Affine(resolution, 0.0, float(xmin), 0.0, -resolution, float(ymax))


def make_scene(
    lon: float,
    lat: float,
    width_px: int,
    height_px: int,
    *,
    resolution: float = 10.0,
    seed: int = 42,
    acquisition: Acquisition = DEMO_ACQUISITIONS[-1],
    truth: np.ndarray | None = None,
) -> SyntheticScene:
    """One acquisition of ``width_px`` x ``height_px`` at ``resolution`` centred on (lon, lat).

    The land cover depends on ``seed`` only (pass ``truth`` to reuse it across dates); reflectance
    noise, clouds and shadows also depend on the date. The origin is snapped to twice the resolution so
    the 10 m bands, the 20 m SCL and DL tiles of the same resolution all align.
    """
    zone, transform = scene_grid(lon, lat, width_px, height_px, resolution)
    classes = generate_landcover((height_px, width_px), seed) if truth is None else truth
    day_seed = seed + acquisition.date.toordinal()
    clear = synthesize_reflectance(classes, day_seed)
    truth20 = classes[::2, ::2]
    scl = sky(truth20.shape, truth20, acquisition.cloud_fraction, day_seed)
    scl10 = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)[:height_px, :width_px]
    dn = encode_dn(_observe(clear, scl10), acquisition.has_offset)
    cx, cy = lonlat_to_utm(zone, lon, lat)
    mgrs = mgrs_square(zone, lat, cx, cy)
    sat = "S2" + acquisition.platform[-1].upper()
    when = dt.datetime.combine(acquisition.date, dt.time(15, 42, 7, 361000), tzinfo=dt.UTC)
    return SyntheticScene(
        scene_id=f"{sat}_{zone}{mgrs[0]}{mgrs[1]}_{acquisition.date:%Y%m%d}_0_L2A",
        dn=dn,
        scl=scl,
        truth=classes,
        crs=f"EPSG:326{zone:02d}",
        transform=transform,
        datetime=when,
        zone=zone,
        acquisition=acquisition,
        mgrs=mgrs,
    )


def make_scenes(
    lon: float,
    lat: float,
    width_px: int,
    height_px: int,
    *,
    resolution: float = 10.0,
    seed: int = 42,
    acquisitions: tuple[Acquisition, ...] = DEMO_ACQUISITIONS,
) -> list[SyntheticScene]:
    """One scene per acquisition over the same land cover (what a STAC search of a summer returns)."""
    truth = generate_landcover((height_px, width_px), seed)
    return [
        make_scene(
            lon, lat, width_px, height_px, resolution=resolution, seed=seed, acquisition=a, truth=truth
        )
        for a in acquisitions
    ]
