"""Training the land-cover model on pixels sampled across many tiles of an area.

A model trained on one scene learns that scene; one trained on a sample of tiles spread over the
area it will classify learns the area. :func:`train_from_tiles` picks ``n_tiles`` tiles of the area
(evenly spread, deterministic for a seed), reads each through the same path the jobs use
(:func:`geobatch.landcover.imagery.read_tile`, cloud-masked and composited), samples valid pixels
from each, fits KMeans and names the clusters once (:func:`geobatch.landcover.classifier.name_clusters`).
The ``geobatch train`` command wraps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geobatch.landcover.classifier import KMeansModel, fit_kmeans, sample_features
from geobatch.tiles import Tile


@dataclass
class TrainingRun:
    """The trained model plus what it was trained on."""

    model: KMeansModel
    tiles: list[str] = field(default_factory=list)
    pixels_per_tile: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # tile key -> why (no scene, all cloudy)


def pick_tiles(tiles: list[Tile], n_tiles: int, seed: int = 0) -> list[Tile]:
    """``n_tiles`` of ``tiles`` spread over the area: every k-th tile in grid order, from a seeded start."""
    if n_tiles <= 0:
        raise ValueError("n_tiles must be positive")
    ordered = sorted(tiles)
    if len(ordered) <= n_tiles:
        return ordered
    step = len(ordered) / n_tiles
    start = np.random.default_rng(seed).uniform(0, step)
    return [ordered[int(start + i * step)] for i in range(n_tiles)]


def train_from_tiles(
    tiles: list[Tile],
    items_for: Callable[[Tile], list[dict[str, Any]]],
    *,
    n_tiles: int = 8,
    pixels_per_tile: int = 20_000,
    n_clusters: int = 5,
    seed: int = 0,
) -> TrainingRun:
    """Fit KMeans on up to ``pixels_per_tile`` clear pixels from each of ``n_tiles`` sampled tiles.

    ``items_for(tile)`` returns a tile's items in compositing order (e.g.
    :func:`geobatch.landcover.scenes.items_for_job` bound to an ``items_uri``). Tiles without a clear
    pixel are skipped and reported; no clear pixel anywhere raises ``ValueError``.
    """
    from geobatch.landcover.gdal_env import rasterio_env
    from geobatch.landcover.imagery import read_tile

    samples: list[np.ndarray] = []
    run = TrainingRun(model=None)  # type: ignore[arg-type]  # set below, once fitted
    with rasterio_env():
        for i, tile in enumerate(pick_tiles(tiles, n_tiles, seed)):
            items = items_for(tile)
            if not items:
                run.skipped[tile.key] = "no scene"
                continue
            read = read_tile(tile, items)
            if not read.valid.any():
                run.skipped[tile.key] = "no clear pixel"
                continue
            x = sample_features(read.reflectance, pixels_per_tile, seed + i)
            samples.append(x)
            run.tiles.append(tile.key)
            run.pixels_per_tile[tile.key] = int(x.shape[0])
    if not samples:
        raise ValueError(f"no clear pixel in any of the sampled tiles: {run.skipped}")
    model, _ = fit_kmeans(np.concatenate(samples), n_clusters, seed=seed)
    model.metadata.update({"trained_on_tiles": run.tiles, "pixels_per_tile": pixels_per_tile})
    run.model = model
    return run
