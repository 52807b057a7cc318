"""Training on pixels sampled across tiles: the function and the ``geobatch train`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from geobatch.cli import main
from geobatch.landcover.classifier import KMeansModel
from geobatch.landcover.training import pick_tiles, train_from_tiles
from geobatch.tiles import Tile
from tests.geo.helpers import REAL_2023, TILE, fixture_item, scene_files, source_grid

pytestmark = [pytest.mark.geo, pytest.mark.unit]


def _archive(tmp_path: Path) -> Path:
    """An ItemCollection file with one real v1 item whose COGs (here) hold the five classes' reflectance."""
    from geobatch.landcover.classes import CLASSES

    _, shape = source_grid(10.0)
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 5, shape)
    refl = np.stack([np.array([getattr(c, b) for c in CLASSES])[classes] for b in ("nir", "red", "green")])
    refl = refl * rng.normal(1.0, 0.05, refl.shape)
    dn = (np.rint(refl * 10_000) + 1000).astype(np.uint16)
    item = scene_files(tmp_path, "scene", fixture_item(REAL_2023), dn)
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    return path


def test_pick_tiles_spreads_over_the_area() -> None:
    tiles = [Tile(zone=18, ti=i, tj=j, tilesize=256) for i in range(10) for j in range(10)]
    picked = pick_tiles(tiles, 10, seed=3)
    assert len(picked) == len(set(picked)) == 10
    assert len({t.ti for t in picked}) == 10  # one per column of the 10 x 10 grid
    assert pick_tiles(tiles[:3], 10) == sorted(tiles[:3])
    with pytest.raises(ValueError):
        pick_tiles(tiles, 0)


def test_train_skips_tiles_without_a_clear_pixel(tmp_path: Path) -> None:
    from geobatch.landcover.imagery import load_items

    items = load_items(str(_archive(tmp_path)))
    far = Tile.from_latlon(40.0, 48.7, 10.0, 64, 0)
    run = train_from_tiles([TILE, far], lambda t: items if t == TILE else [], n_tiles=2, pixels_per_tile=2000)
    assert run.tiles == [TILE.key] and run.skipped == {far.key: "no scene"}
    assert sorted(run.model.classes.values()) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="no clear pixel"):
        train_from_tiles([far], lambda t: [], n_tiles=1)


def test_train_command_writes_a_named_model(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    west, south, east, north = TILE.geometry.buffer(-0.001).bounds
    out = tmp_path / "model.json"
    args = ["train", "--items", str(archive), "--bbox", str(west), str(south), str(east), str(north),
            "--tilesize", "64", "--tiles", "4", "--pixels-per-tile", "3000", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "trained on 1 of 1 tiles" in result.output and "water" in result.output
    model = KMeansModel.load(out)
    assert sorted(model.classes.values()) == [1, 2, 3, 4, 5]
    assert model.metadata["trained_on_tiles"] == [TILE.key]
    bad = CliRunner().invoke(main, ["train", "--items", str(archive), "--out", str(out)])
    assert bad.exit_code == 2 and "exactly one of --geojson FILE or --bbox" in bad.output
