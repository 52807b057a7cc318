"""The five land-cover classes of the product, their fixed values, colours and typical L2A reflectance.

Class values are fixed: 1 water, 2 forest, 3 cropland, 4 urban, 5 bare, 0 nodata, in every raster
and every run (the model maps its clusters onto them once, when it is trained; see
:func:`geobatch.landcover.classifier.name_clusters`). Reflectances are surface reflectance (0..1) for
a mid-summer scene in the north-eastern US.
"""

from __future__ import annotations

from dataclasses import dataclass

NODATA = 0

#: Band order used everywhere in the pipeline (features, imagery arrays), by common name.
BANDS: tuple[str, ...] = ("nir", "red", "green")


@dataclass(frozen=True)
class LandCoverClass:
    """One class: fixed value, name, RGBA colour, description and mean surface reflectance per band."""

    id: int
    name: str
    rgba: tuple[int, int, int, int]
    description: str
    green: float
    red: float
    nir: float

    def reflectance(self, band: str) -> float:
        """Mean surface reflectance for ``band`` (nir, red or green)."""
        return {"green": self.green, "red": self.red, "nir": self.nir}[band]

    @property
    def color_hint(self) -> str:
        """RRGGBB, as the STAC classification extension wants it."""
        return "%02X%02X%02X" % self.rgba[:3]  # noqa: UP031


# Clear water absorbs NIR; closed forest is dark in the visible and bright in NIR; summer cropland is a
# mix of canopy and soil; built-up areas are flat and grey; bare soil/sand is bright in every band with
# red above green.
CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(1, "water", (31, 120, 180, 255), "Open water", green=0.06, red=0.04, nir=0.025),
    LandCoverClass(2, "forest", (27, 94, 32, 255), "Closed forest", green=0.05, red=0.03, nir=0.35),
    LandCoverClass(3, "cropland", (205, 220, 57, 255), "Cropland", green=0.10, red=0.09, nir=0.23),
    LandCoverClass(4, "urban", (211, 47, 47, 255), "Built-up", green=0.13, red=0.14, nir=0.16),
    LandCoverClass(5, "bare", (188, 143, 100, 255), "Bare soil", green=0.18, red=0.22, nir=0.28),
)

CLASS_BY_ID: dict[int, LandCoverClass] = {c.id: c for c in CLASSES}
CLASS_BY_NAME: dict[str, LandCoverClass] = {c.name: c for c in CLASSES}
CLASS_NAMES: dict[int, str] = {NODATA: "nodata", **{c.id: c.name for c in CLASSES}}


def colormap() -> dict[int, tuple[int, int, int, int]]:
    """GDAL/rasterio colour map for class rasters (nodata transparent black)."""
    return {NODATA: (0, 0, 0, 0), **{c.id: c.rgba for c in CLASSES}}


def stac_classes() -> list[dict[str, object]]:
    """``classification:classes`` of every product (the same list in collection and items)."""
    nodata = {"value": NODATA, "name": "nodata", "description": "No clear observation", "nodata": True}
    return [nodata] + [
        {"value": c.id, "name": c.name, "description": c.description, "color_hint": c.color_hint}
        for c in CLASSES
    ]
