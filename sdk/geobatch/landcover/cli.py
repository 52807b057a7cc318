"""``geobatch train``: the land-cover model from pixels sampled across many tiles of an area."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _area(geojson: str | None, bbox: tuple[float, float, float, float] | None) -> dict[str, Any]:
    from shapely.geometry import box, mapping

    if (geojson is None) == (bbox is None):
        raise click.UsageError("give the area as exactly one of --geojson FILE or --bbox W S E N")
    if bbox is not None:
        west, south, east, north = bbox
        if not (west < east and south < north):
            raise click.UsageError("--bbox is W S E N with W < E and S < N (degrees)")
        return dict(mapping(box(west, south, east, north)))
    try:
        area: dict[str, Any] = json.loads(Path(str(geojson)).read_text())
        return area
    except ValueError as exc:
        raise click.UsageError(f"{geojson} is not valid GeoJSON: {exc}") from None


def _write(out: str, text: str) -> str:
    if out.startswith("s3://"):
        from geobatch.landcover.imagery import s3_client, split_s3_uri

        bucket, key = split_s3_uri(out)
        s3_client().put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")
    else:
        Path(out).write_text(text)
    return out


@click.command()
@click.option(
    "--items", "items_uri", required=True,
    help="Scenes: an ItemCollection (s3:// or file), a per-tile index (…{tile_id}…) or a STAC API URL.",
)  # fmt: skip
@click.option("--geojson", type=click.Path(exists=True, dir_okay=False), help="Area to sample, as GeoJSON.")
@click.option("--bbox", type=float, nargs=4, default=None, help="Area to sample: W S E N (degrees).")
@click.option("--tiles", "n_tiles", default=8, show_default=True, help="How many tiles to sample.")
@click.option("--pixels-per-tile", default=20_000, show_default=True)
@click.option("--clusters", default=5, show_default=True, help="KMeans clusters (named onto the 5 classes).")
@click.option("--tilesize", default=1024, show_default=True)
@click.option("--resolution", default=10.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", required=True, help="Where to write the model JSON (path or s3://bucket/key).")
def train(
    items_uri: str,
    geojson: str | None,
    bbox: tuple[float, float, float, float] | None,
    n_tiles: int,
    pixels_per_tile: int,
    clusters: int,
    tilesize: int,
    resolution: float,
    seed: int,
    out: str,
) -> None:
    """Train the land-cover KMeans on cloud-masked pixels sampled across tiles of an area."""
    from geobatch.landcover.scenes import items_for_job
    from geobatch.landcover.training import train_from_tiles
    from geobatch.tiles import Tile

    if n_tiles < 1 or pixels_per_tile < 1 or clusters < 1:
        raise click.UsageError("--tiles, --pixels-per-tile and --clusters must be positive")
    tiles = Tile.from_shape(_area(geojson, bbox), resolution, tilesize, 0)
    if not tiles:
        raise click.UsageError("the area covers no tile")
    try:
        run = train_from_tiles(
            tiles, lambda t: items_for_job(items_uri, t),
            n_tiles=n_tiles, pixels_per_tile=pixels_per_tile, n_clusters=clusters, seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _write(out, run.model.to_json())
    click.echo(
        f"trained on {len(run.tiles)} of {len(tiles)} tiles ({sum(run.pixels_per_tile.values()):,} px)"
    )
    for key, why in run.skipped.items():
        click.echo(f"  skipped {key}: {why}")
    names = ", ".join(f"{k}→{v}" for k, v in sorted(run.model.cluster_names.items()))
    click.echo(f"clusters           {names}")
    click.echo(f"model              {out}")
