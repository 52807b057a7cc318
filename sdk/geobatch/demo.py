"""``geobatch demo``: the k-means land-cover demo, end to end, in local mode (or ``--cloud``).

It generates a synthetic Sentinel-2 scene into S3, trains a KMeans(5) classifier, cuts the area
into DLTile-compatible UTM tiles, saves the per-tile job as a GeoBatch Function, maps one job per
tile, waits with a progress bar, and then writes a summary, a preview PNG of the product and the
agreement with the scene's known land cover.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

DEMO_BUCKET = "geobatch-demo"
# What the per-tile job imports; in local mode they are already installed, so the build is quick.
DEMO_REQUIREMENTS = ["scikit-learn", "rasterio", "numpy", "pyproj", "shapely", "pystac"]
# The public Sentinel-2 L2A COG archive (us-west-2), read unsigned as its owners intend.
SENTINEL_COGS = "s3://sentinel-cogs/*"


@contextlib.contextmanager
def local_mode() -> Iterator[dict[str, str]]:
    """The AWS environment of local mode: the running one, or one started for this demo only."""
    from geobatch.local import local_home, read_state
    from geobatch.local.stack import LocalOptions, LocalStack

    state = read_state()
    if state:
        yield {"api_url": state["api_url"], **state["aws_env"]}
        return
    home = local_home()
    stack = LocalStack(
        LocalOptions(home=home, pip_args=os.environ.get("GEOBATCH_LOCAL_PIP_ARGS", ""))
    ).start()
    try:
        stack.wait_ready()
        yield {"api_url": stack.api_url, **stack.aws_env()}
    finally:
        stack.stop()


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
    from geobatch.landcover.synthetic import DEFAULT_PREFIX

    return gb.S3Access(
        read=[plan.model_uri, plan.items_uri, f"s3://{plan.bucket}/{DEFAULT_PREFIX}/*"],
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
    from geobatch.landcover.job import classify_tile
    from geobatch.landcover.pipeline import compare_with_truth, prepare_demo, summarize
    from geobatch.landcover.product import mosaic_preview, write_collection

    started = time.monotonic()
    client = gb.Client(api_url) if api_url else gb.Client()
    s3 = boto3.client("s3", endpoint_url=endpoint)
    bucket = options.bucket
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    product_id = f"landcover-{time.strftime('%Y%m%d-%H%M%S')}"
    size = f"{options.width}×{options.height} px"
    echo(f"1/5 generating a synthetic Sentinel-2 scene ({size}) and training KMeans(5)")
    plan = prepare_demo(
        s3,
        bucket,
        lon=options.lon,
        lat=options.lat,
        width_px=options.width,
        height_px=options.height,
        resolution=options.resolution,
        tilesize=options.tilesize,
        pad=options.pad,
        product_id=product_id,
    )
    echo(f"    {len(plan.tile_keys)} tiles of {options.tilesize} px at {options.resolution:g} m")
    echo("2/5 saving the per-tile Function (builds its environment on first use)")
    fn = gb.Function(
        classify_tile,
        name="landcover-kmeans",
        requirements=DEMO_REQUIREMENTS,
        cpus=1,
        memory=4096,
        maximum_concurrency=options.concurrency,
        retry_count=2,
        timeout=600,
        data_access=demo_data_access(plan),
        client=client,
    )
    fn.save()
    echo(f"3/5 mapping {len(plan.tile_keys)} jobs (one per tile), concurrency {options.concurrency}")
    jobs = fn.map(plan.job_args(), tags=[product_id])
    fn.wait_for_completion(timeout=options.timeout)
    stats = fn.job_statistics or {}
    if stats.get("success", 0) != len(jobs):
        for job in fn.jobs.filter(gb.Job.status != gb.JobStatus.SUCCESS):
            echo(f"    job {job.id} {job.status}: {job.error_reason}")
    echo("4/5 collecting results and writing the product's STAC collection")
    summaries = [r for r in fn.results() if isinstance(r, dict)]
    summary = summarize(summaries, plan.cluster_names)
    write_collection(s3, bucket, product_id)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    preview = mosaic_preview(bucket, product_id, options.out_dir / "landcover-preview.png", s3_client=s3)
    echo("5/5 comparing with the scene's known land cover")
    comparison = compare_with_truth(bucket, product_id, plan.truth_uri, s3_client=s3)
    report = {
        "function_id": fn.id,
        "product": f"s3://{bucket}/products/{product_id}/collection.json",
        "tiles": len(plan.tile_keys),
        "jobs": {k: v for k, v in stats.items() if v},
        "class_area_km2": summary["area_km2"],
        "agreement_with_truth": round(comparison["agreement"], 4),
        "seconds_per_stage_mean": summary["seconds_mean"],
        "wall_seconds": round(time.monotonic() - started, 1),
        "preview_png": str(preview),
    }
    (options.out_dir / "summary.json").write_text(json.dumps(report, indent=2))
    return report


def print_report(report: dict[str, Any], echo: Any = click.echo) -> None:
    echo("")
    echo(f"tiles              {report['tiles']}")
    echo(f"jobs               {report['jobs']}")
    echo(
        "class areas (km²)  "
        + ", ".join(f"{k} {v:,.1f}" for k, v in sorted(report["class_area_km2"].items()))
    )
    echo(
        f"agreement          {report['agreement_with_truth']:.1%} of valid pixels match the known land cover"
    )
    echo(f"time               {report['wall_seconds']:.0f} s")
    echo(f"preview            {report['preview_png']}")
    echo(f"product            {report['product']}")


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
        if not os.environ.get("GEOBATCH_API_URL"):
            raise click.UsageError("--cloud needs GEOBATCH_API_URL: the ApiUrl output of the deployed stack")
        report = run_demo(options, api_url=None, aws_env={})
    else:
        with local_mode() as aws:
            api_url = aws.pop("api_url")
            report = run_demo(options, api_url=api_url, aws_env=aws)
    print_report(report)


@click.command()
@click.option(
    "--geojson", type=click.Path(exists=True, dir_okay=False), help="Area as GeoJSON (default: CONUS)."
)
@click.option("--tilesize", default=1024, show_default=True)
@click.option("--resolution", default=10.0, show_default=True)
@click.option("--pad", default=0, show_default=True)
@click.option("--concurrency", default=500, show_default=True, help="maximum_concurrency of the run.")
@click.option("--seconds-per-tile", default=30.0, show_default=True, help="Measured per-job seconds.")
@click.option("--cpus", default=1.0, show_default=True)
@click.option("--memory-gb", default=2.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def plan(
    geojson: str | None,
    tilesize: int,
    resolution: float,
    pad: int,
    concurrency: int,
    seconds_per_tile: float,
    cpus: float,
    memory_gb: float,
    as_json: bool,
) -> None:
    """Estimate tiles, jobs, wall time and AWS cost of a run over an area (default: the continental US)."""
    from geobatch.landcover.plan import estimate, format_plan
    from geobatch.landcover.regions import conus_geojson

    try:
        shape = json.loads(Path(geojson).read_text()) if geojson else conus_geojson()
    except ValueError as exc:
        raise click.UsageError(f"{geojson} is not valid GeoJSON: {exc}") from None
    result = estimate(
        shape,
        resolution=resolution,
        tilesize=tilesize,
        pad=pad,
        seconds_per_tile=seconds_per_tile,
        concurrency=concurrency,
        vcpus=cpus,
        memory_gb=memory_gb,
    )
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_plan(result))


@click.command()
@click.argument("product_id")
@click.argument("out_png", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bucket", default=DEMO_BUCKET, show_default=True, help="Bucket holding products/PRODUCT_ID/.")
@click.option("--max-size", default=1024, show_default=True, help="Longest side of the PNG in pixels.")
def preview(product_id: str, out_png: Path, bucket: str, max_size: int) -> None:
    """Mosaic a product's tiles into one colour PNG (local mode's S3 unless AWS is configured)."""
    import boto3

    from geobatch.landcover.product import list_tile_cogs, mosaic_preview
    from geobatch.local import read_state

    state = read_state()
    aws = dict(state["aws_env"]) if state and not os.environ.get("GEOBATCH_API_URL") else {}
    with environment(aws):
        s3 = boto3.client("s3", endpoint_url=aws.get("AWS_ENDPOINT_URL"))
        if not list_tile_cogs(s3, bucket, product_id):
            raise click.ClickException(f"no tiles under s3://{bucket}/products/{product_id}/")
        path = mosaic_preview(bucket, product_id, out_png, max_size=max_size, s3_client=s3)
    click.echo(f"wrote {path}")
