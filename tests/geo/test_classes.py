"""Stable classes: clusters named once at training by a rule on their centres, fixed values in products."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from geobatch.landcover.classes import CLASSES, stac_classes
from geobatch.landcover.classifier import KMeansModel, agreement, name_clusters, train_kmeans
from geobatch.landcover.synthetic import Acquisition, make_scene

pytestmark = [pytest.mark.geo, pytest.mark.unit]

CLEAR_DAY = Acquisition(dt.date(2024, 7, 15), cloud_fraction=0)


def _centres(order: tuple[int, ...]) -> np.ndarray:
    """Class-mean centres (nir, red, green, ndvi) in the given class order."""
    rows = []
    for cid in order:
        c = CLASSES[cid - 1]
        rows.append([c.nir, c.red, c.green, (c.nir - c.red) / (c.nir + c.red)])
    return np.asarray(rows)


@pytest.mark.parametrize("order", list(itertools.permutations([1, 2, 3, 4, 5]))[::17])
def test_rule_names_class_means_whatever_their_order(order: tuple[int, ...]) -> None:
    assert name_clusters(_centres(order)) == {i + 1: cid for i, cid in enumerate(order)}


def test_extra_clusters_take_the_nearest_named_class() -> None:
    centres = np.vstack([_centres((1, 2, 3, 4, 5)), _centres((2,)) * 0.97])
    assert name_clusters(centres)[6] == 2


def test_two_trainings_write_the_same_values_for_the_same_land() -> None:
    scene = make_scene(-73.43, 44.03, 400, 300, seed=3, acquisition=CLEAR_DAY)
    refl = scene.reflectance()
    a, _ = train_kmeans(refl, 5, sample_size=20_000, seed=1)
    b, _ = train_kmeans(refl, 5, sample_size=20_000, seed=7)
    # The clusters come out in a different order in the two runs ...
    assert not np.array_equal(a.predict_clusters(refl), b.predict_clusters(refl))
    # ... but the products' values are the fixed classes: 1 is water in both, and so on.
    pa, pb = a.predict(refl), b.predict(refl)
    assert np.mean(pa == pb) > 0.99
    assert agreement(pa, scene.truth) >= 0.9 and agreement(pb, scene.truth) >= 0.9
    assert set(a.classes.values()) == set(b.classes.values()) == {1, 2, 3, 4, 5}


def test_model_round_trip_and_v1_artifacts() -> None:
    scene = make_scene(-73.43, 44.03, 200, 150, seed=5, acquisition=CLEAR_DAY)
    model, _ = train_kmeans(scene.reflectance(), 5, sample_size=10_000, seed=0)
    doc = model.to_dict()
    assert doc["version"] == 2 and doc["bands"] == ["nir", "red", "green"]
    assert KMeansModel.from_dict(doc).classes == model.classes
    # A v1 artifact (v0 band names, unnamed clusters, same reflectance space) loads and gets named.
    v1 = {**doc, "version": 1, "bands": ["B08", "B04", "B03"], "features": ["B08", "B04", "B03", "NDVI"]}
    del v1["classes"]
    assert KMeansModel.from_dict(v1).classes == model.classes
    for bad in ({**doc, "version": 99}, {**doc, "bands": ["B02", "B04", "B03"]}, {**doc, "format": "x"}):
        with pytest.raises(ValueError):
            KMeansModel.from_dict(bad)


def test_stac_classes_list_is_the_fixed_table() -> None:
    listed = {c["value"]: c["name"] for c in stac_classes()}
    assert listed == {0: "nodata", 1: "water", 2: "forest", 3: "cropland", 4: "urban", 5: "bare"}
    assert all(len(c.get("color_hint", "000000")) == 6 for c in stac_classes())
