"""``geobatch demo``: the k-means land-cover demo, end to end, in local mode (or ``--cloud``).

It generates a synthetic Sentinel-2 L2A archive into S3 (earth-search v1 items, three summer dates
across the 2022 processing-baseline change, clouds and shadows), cuts the area into DLTile-compatible
UTM tiles, indexes each tile's scenes, trains a KMeans(5) classifier on cloud-masked composites of
sampled tiles, saves the per-tile job as a GeoBatch Function, maps one job per tile, waits, and then
writes a summary, a preview PNG of the product and the agreement with the known land cover.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from geobatch.wire import env

DEMO_BUCKET = "geobatch-demo"
# What the per-tile job imports; in local mode they are already installed, so the build is quick.
DEMO_REQUIREMENTS = ["scikit-learn", "rasterio", "numpy", "pyproj", "shapely", "pystac", "pystac-client"]
# The public Sentinel-2 L2A COG archive (us-west-2), read unsigned as its owners intend.
SENTINEL_COGS = "s3://sentinel-cogs/*"


@contextlib.contextmanager
def local_mode() -> Iterator[dict[str, str]]:
    """The AWS environment of local mode, started in the background if it is not running.

    It keeps running after the demo, as after the SDK's auto-start (``geobatch local down`` stops
    it); local mode keeps Functions, jobs and S3 objects on disk, so the product stays readable
    after a ``local down`` too (``geobatch preview`` starts local mode again to read it).
    """
    from geobatch.local import start_background

    state = start_background()
    yield {"api_url": state["api_url"], **state["aws_env"]}


@dataclass(frozen=True)
class DemoOptions:
    """What ``geobatch demo`` runs: the area, the tile grid and how much of it runs at once."""

    bucket: str = DEMO_BUCKET
    out_dir: Path = Path("demo-output")
    lon: float = -73.43  # Chimney Point, Addison County, Vermont
    lat: float = 44.03
    width: int = 1334
    height: int = 1230
    tilesize: int = 1024
    resolution: float = 10.0
    pad: int = 0
    concurrency: int = 2
    timeout: float = 1800.0


def demo_data_access(plan: Any) -> Any:
    """What the per-tile job touches, and nothing more: its model, the STAC items and the imagery
    they point at (read), the product's prefix (write) and the public Sentinel-2 archive (unsigned)."""
    import geobatch as gb
    from geobatch.landcover.product import product_prefix

    # The per-tile item index, the scenes' COGs and Items all live under the archive's root.
    archive_root = plan.archive_uri.rsplit("/", 1)[0]
    return gb.S3Access(
        read=[plan.model_uri, f"{archive_root}/*"],
        write=[f"s3://{plan.bucket}/{product_prefix(plan.product_id)}/*"],
        public=[SENTINEL_COGS],
    )


@contextlib.contextmanager
def environment(overrides: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``overrides`` for the duration (boto3 and GDAL read it), then as before."""
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    options: DemoOptions, *, api_url: str | None, aws_env: dict[str, str], echo: Any = click.echo
) -> dict[str, Any]:
    """Run the whole demo against the API at ``api_url``; returns the summary it also writes."""
    with environment(aws_env):  # this process reads and writes S3 where the jobs do
        return _run_demo(options, api_url=api_url, endpoint=aws_env.get("AWS_ENDPOINT_URL"), echo=echo)


def _run_demo(
    options: DemoOptions, *, api_url: str | None, endpoint: str | None, echo: Any
) -> dict[str, Any]:
    import boto3

    import geobatch as gb
    from geobatch.landcover.pipeline import compare_with_truth, summarize
    from geobatch.landcover.product import mosaic_preview, write_collection

    started = time.monotonic()
    client = gb.Client(api_url) if api_url else gb.Client()
    s3 = boto3.client("s3", endpoint_url=endpoint)
    bucket = options.bucket
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    product_id = f"landcover-{time.strftime('%Y%m%d-%H%M%S')}"
    plan = _prepare(options, s3, product_id, echo)
    echo("2/5 saving the per-tile Function (builds its environment on first use)")
    fn = _tile_function(options, plan, client)
    # The collection exists from the start (tiles join it as they land), naming what to compare it with.
    related = related_links(plan)
    write_collection(s3, bucket, product_id, extra_links=related)
    echo(f"3/5 mapping {len(plan.tile_keys)} jobs (one per tile), concurrency {options.concurrency}")
    stats = _run_jobs(fn, plan, product_id, options.timeout, echo)
    echo("4/5 collecting results and writing the product's STAC collection")
    summary = summarize([r for r in fn.results() if isinstance(r, dict)])
    write_collection(s3, bucket, product_id, extra_links=related)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    preview = mosaic_preview(bucket, product_id, options.out_dir / "landcover-preview.png", s3_client=s3)
    echo("5/5 comparing with the scene's known land cover")
    comparison = compare_with_truth(bucket, product_id, plan.truth_uri, s3_client=s3)
    report = {
        "function_id": fn.id,
        "product": f"s3://{bucket}/products/{product_id}/collection.json",
        "tiles": len(plan.tile_keys),
        "jobs": {k: v for k, v in stats.items() if v},
        "scenes": plan.scene_ids,
        "scenes_used": summary["scenes_used"],
        "valid_fraction": summary["valid_fraction"],
        "class_area_km2": summary["area_km2"],
        "agreement_with_truth": round(comparison["agreement"], 4),
        "seconds_per_stage_mean": summary["seconds_mean"],
        "wall_seconds": round(time.monotonic() - started, 1),
        "preview_png": str(preview),
        "reference": plan.truth_uri,
        "source_imagery": plan.archive_uri,
    }
    (options.out_dir / "summary.json").write_text(json.dumps(report, indent=2))
    return report


def _prepare(options: DemoOptions, s3: Any, product_id: str, echo: Any) -> Any:
    """Stage 1: the synthetic archive, the tiles' scene index and the trained model in S3."""
    from geobatch.landcover.pipeline import prepare_demo
    from geobatch.landcover.synthetic import DEMO_ACQUISITIONS

    size = f"{options.width}×{options.height} px"
    dates = len(DEMO_ACQUISITIONS)
    echo(
        f"1/5 generating synthetic Sentinel-2 L2A scenes ({size}, {dates} dates, clouds), training KMeans(5)"
    )
    plan = prepare_demo(
        s3,
        options.bucket,
        lon=options.lon,
        lat=options.lat,
        width_px=options.width,
        height_px=options.height,
        resolution=options.resolution,
        tilesize=options.tilesize,
        pad=options.pad,
        product_id=product_id,
    )
    echo(f"    {len(plan.tile_keys)} tiles of {options.tilesize} px at {options.resolution:g} m; scenes:")
    for scene_id in plan.scene_ids:
        echo(f"      {scene_id}")
    return plan


def _tile_function(options: DemoOptions, plan: Any, client: Any) -> Any:
    """Stage 2: the per-tile job saved as a Function, allowed the data it touches and no more."""
    import geobatch as gb
    from geobatch.landcover.job import classify_tile
    from geobatch.landcover.plan import LANDCOVER_CPUS, LANDCOVER_MEMORY_MB

    fn = gb.Function(
        classify_tile,
        name="landcover-kmeans",
        requirements=DEMO_REQUIREMENTS,
        cpus=LANDCOVER_CPUS,
        memory=LANDCOVER_MEMORY_MB,
        maximum_concurrency=options.concurrency,
        retry_count=2,
        timeout=600,
        data_access=demo_data_access(plan),
        client=client,
    )
    fn.save()
    return fn


def _run_jobs(fn: Any, plan: Any, product_id: str, timeout: float, echo: Any) -> dict[str, int]:
    """Stage 3: one job per tile, waited for; the Function's job counts (the failures echoed)."""
    import geobatch as gb

    jobs = fn.map(plan.job_args(), tags=[product_id])
    fn.wait_for_completion(timeout=timeout)
    stats: dict[str, int] = fn.job_statistics or {}
    if stats.get("success", 0) != len(jobs):
        for job in fn.jobs.filter(gb.Job.status != gb.JobStatus.SUCCESS):
            echo(f"    job {job.id} {job.status}: {job.error_reason}")
    return stats


def related_links(plan: Any) -> list[dict[str, str]]:
    """The demo product's links to its source imagery and to the synthetic reference land cover."""
    return [
        {"rel": "derived_from", "href": plan.archive_uri, "type": "application/geo+json",
         "title": "Source imagery (synthetic Sentinel-2 L2A scenes)"},
        {"rel": "geobatch:reference", "href": plan.truth_uri, "type": "image/tiff; application=geotiff",
         "title": "Reference land cover (synthetic, the scenes' known classes)"},
    ]  # fmt: skip


def print_report(report: dict[str, Any], echo: Any = click.echo) -> None:
    echo("")
    echo(f"tiles              {report['tiles']}")
    echo(f"jobs               {report['jobs']}")
    echo(
        "class areas (km²)  "
        + ", ".join(f"{k} {v:,.1f}" for k, v in sorted(report["class_area_km2"].items()))
    )
    echo(f"scenes used        {len(report['scenes_used'])} of {len(report['scenes'])}")
    echo(f"clear pixels       {report['valid_fraction']:.1%} (the rest cloudy or shadowed on every date)")
    echo(
        f"agreement          {report['agreement_with_truth']:.1%} of valid pixels match the known land cover"
    )
    echo(f"time               {report['wall_seconds']:.0f} s")
    echo(f"preview            {report['preview_png']}")
    echo(f"product            {report['product']}")
    echo(f"reference          {report['reference']}")
    echo("map                geobatch ui, then Map: the product beside its reference and imagery")


@click.command()
@click.option("--lon", default=-73.43, show_default=True, help="Centre of the area (Chimney Point, Vermont).")
@click.option("--lat", default=44.03, show_default=True)
@click.option("--width", default=1334, show_default=True, help="Area width in pixels.")
@click.option("--height", default=1230, show_default=True, help="Area height in pixels.")
@click.option("--tilesize", default=1024, show_default=True, help="Tile size in pixels.")
@click.option("--resolution", default=10.0, show_default=True, help="Metres per pixel.")
@click.option("--pad", default=0, show_default=True, help="Tile padding in pixels.")
@click.option("--concurrency", default=2, show_default=True, help="maximum_concurrency of the Function.")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait for the jobs.")
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(path_type=Path))
@click.option("--cloud", is_flag=True, help="Run against the deployed stack (GEOBATCH_API_URL) and real S3.")
@click.option(
    "--bucket", default=None, help="S3 bucket for imagery, model and product (required with --cloud)."
)
def demo(
    lon: float,
    lat: float,
    width: int,
    height: int,
    tilesize: int,
    resolution: float,
    pad: int,
    concurrency: int,
    timeout: float,
    out_dir: Path,
    cloud: bool,
    bucket: str | None,
) -> None:
    """Classify land cover with k-means over UTM tiles, one GeoBatch job per tile."""
    options = DemoOptions(
        bucket=bucket or DEMO_BUCKET, out_dir=out_dir, lon=lon, lat=lat, width=width, height=height,
        tilesize=tilesize, resolution=resolution, pad=pad, concurrency=concurrency, timeout=timeout,
    )  # fmt: skip
    if cloud:
        if not bucket:
            raise click.UsageError("--cloud needs --bucket: an S3 bucket the worker role can read and write")
        if not _api_url_given():
            raise click.UsageError(
                "--cloud needs --api-url or GEOBATCH_API_URL: the ApiUrl output of the deployed stack"
            )
        report = run_demo(options, api_url=None, aws_env={})
    else:
        with local_mode() as aws:
            api_url = aws.pop("api_url")
            report = run_demo(options, api_url=api_url, aws_env=aws)
    print_report(report)


def _api_url_given() -> bool:
    """Whether the command line names a deployed API (``geobatch --api-url`` or GEOBATCH_API_URL, which
    the group option reads): then AWS is configured and local mode is neither used nor started."""
    context = click.get_current_context(silent=True)
    given = context.find_root().params.get("api_url") if context is not None else None
    return bool(given or os.environ.get(env.API_URL))


@click.command()
@click.argument("product_id")
@click.argument("out_png", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bucket", default=DEMO_BUCKET, show_default=True, help="Bucket holding products/PRODUCT_ID/.")
@click.option("--max-size", default=1024, show_default=True, help="Longest side of the PNG in pixels.")
def preview(product_id: str, out_png: Path, bucket: str, max_size: int) -> None:
    """Mosaic a product's tiles into one colour PNG (local mode's S3 unless AWS is configured).

    PRODUCT_ID is the product's id or the collection URL the demo prints
    (``s3://BUCKET/products/PRODUCT_ID/collection.json``, which names the bucket too)."""
    import boto3

    from geobatch.landcover.product import list_tile_cogs, mosaic_preview
    from geobatch.local import start_background

    if match := re.fullmatch(r"s3://([^/]+)/products/([^/]+)/collection\.json", product_id):
        bucket, product_id = match.groups()
    # Local mode (started if it is not running: its S3 objects are kept on disk) unless AWS is configured.
    aws = {} if _api_url_given() else dict(start_background()["aws_env"])
    from botocore.exceptions import BotoCoreError, ClientError

    with environment(aws):
        s3 = boto3.client("s3", endpoint_url=aws.get("AWS_ENDPOINT_URL"))
        try:
            if not list_tile_cogs(s3, bucket, product_id):
                raise click.ClickException(f"no tiles under s3://{bucket}/products/{product_id}/")
            path = mosaic_preview(bucket, product_id, out_png, max_size=max_size, s3_client=s3)
        except (ClientError, BotoCoreError) as exc:
            # A missing bucket or product, or no S3 at all (local mode down): one line, no traceback.
            raise click.ClickException(
                f"cannot read product {product_id} from s3://{bucket}: {exc}; is local mode up "
                "(geobatch local up), or the bucket right (--bucket)?"
            ) from None
    click.echo(f"wrote {path}")
