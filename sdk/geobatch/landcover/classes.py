"""The five land-cover classes of the demo, their colours and typical Sentinel-2 L2A reflectance.

Class ids are 1..5; 0 is nodata in every raster of the pipeline. Reflectances are L2A digital numbers
(surface reflectance x 10000, as stored in the L2A COGs) for a mid-summer scene in the north-eastern US.
"""

from __future__ import annotations

from dataclasses import dataclass

NODATA = 0

#: Band order used everywhere in the pipeline (features, imagery arrays): NIR, red, green.
BANDS: tuple[str, ...] = ("B08", "B04", "B03")


@dataclass(frozen=True)
class LandCoverClass:
    """One class: id, name, RGBA colour and mean L2A DN per band (B03 green, B04 red, B08 NIR)."""

    id: int
    name: str
    rgba: tuple[int, int, int, int]
    b03: int
    b04: int
    b08: int

    def reflectance(self, band: str) -> int:
        """Mean DN for ``band`` (one of B03, B04, B08)."""
        return {"B03": self.b03, "B04": self.b04, "B08": self.b08}[band]


# Values are typical L2A DNs: clear water absorbs NIR (~250); closed forest is dark in the visible and bright
# in NIR; summer cropland is a mix of canopy and soil; built-up areas are flat and grey; bare soil/sand is
# bright in every band with red above green.
CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(1, "water", (31, 120, 180, 255), b03=600, b04=400, b08=250),
    LandCoverClass(2, "forest", (27, 94, 32, 255), b03=500, b04=300, b08=3500),
    LandCoverClass(3, "cropland", (205, 220, 57, 255), b03=1000, b04=900, b08=2300),
    LandCoverClass(4, "urban", (211, 47, 47, 255), b03=1300, b04=1400, b08=1600),
    LandCoverClass(5, "bare", (188, 143, 100, 255), b03=1800, b04=2200, b08=2800),
)

CLASS_BY_ID: dict[int, LandCoverClass] = {c.id: c for c in CLASSES}
CLASS_NAMES: dict[int, str] = {NODATA: "nodata", **{c.id: c.name for c in CLASSES}}


def colormap() -> dict[int, tuple[int, int, int, int]]:
    """GDAL/rasterio colour map for class rasters (nodata transparent black)."""
    return {NODATA: (0, 0, 0, 0), **{c.id: c.rgba for c in CLASSES}}
