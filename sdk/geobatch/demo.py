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
from pathlib import Path
from typing import Any

import click

DEMO_BUCKET = "geobatch-demo"
# What the per-tile job imports; in local mode they are already installed, so the build is quick.
DEMO_REQUIREMENTS = ["scikit-learn", "rasterio", "numpy", "pyproj", "shapely", "pystac"]


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


def run_demo(
    *,
    api_url: str | None,
    aws_env: dict[str, str],
    bucket: str,
    out_dir: Path,
    lon: float,
    lat: float,
    width: int,
    height: int,
    tilesize: int,
    resolution: float,
    pad: int,
    concurrency: int,
    timeout: float,
    echo: Any = click.echo,
) -> dict[str, Any]:
    """Run the whole demo against the API at ``api_url``; returns the summary it also writes."""
    import boto3

    import geobatch as gb
    from geobatch.landcover.job import classify_tile
    from geobatch.landcover.pipeline import compare_with_truth, prepare_demo, summarize
    from geobatch.landcover.product import mosaic_preview, write_collection

    os.environ.update(aws_env)  # boto3 and GDAL in this process read S3 where the jobs write
    started = time.monotonic()
    client = gb.Client(api_url) if api_url else gb.Client()
    s3 = boto3.client("s3", endpoint_url=aws_env.get("AWS_ENDPOINT_URL"))
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    product_id = f"landcover-{time.strftime('%Y%m%d-%H%M%S')}"
    echo(f"1/5 generating a synthetic Sentinel-2 scene and training KMeans(5) ({width}×{height} px)")
    plan = prepare_demo(
        s3, bucket, lon=lon, lat=lat, width_px=width, height_px=height, resolution=resolution,
        tilesize=tilesize, pad=pad, product_id=product_id,
    )  # fmt: skip
    echo(f"    {len(plan.tile_keys)} tiles of {tilesize} px at {resolution:g} m; model at {plan.model_uri}")
    echo("2/5 saving the per-tile Function (builds its environment on first use)")
    fn = gb.Function(
        classify_tile,
        name="landcover-kmeans",
        requirements=DEMO_REQUIREMENTS,
        cpus=1,
        memory=4096,
        maximum_concurrency=concurrency,
        retry_count=2,
        timeout=600,
        client=client,
    )
    fn.save()
    echo(f"3/5 mapping {len(plan.tile_keys)} jobs (one per tile), concurrency {concurrency}")
    jobs = fn.map(plan.job_args(), tags=[product_id])
    fn.wait_for_completion(timeout=timeout)
    stats = fn.job_statistics or {}
    echo(f"    done: {stats}")
    if stats.get("success", 0) != len(jobs):
        for job in fn.jobs.filter(gb.Job.status != gb.JobStatus.SUCCESS):
            echo(f"    job {job.id} {job.status}: {job.error_reason}")
    echo("4/5 collecting results and writing the product's STAC collection")
    summaries = [r for r in fn.results() if isinstance(r, dict)]
    summary = summarize(summaries, plan.cluster_names)
    write_collection(s3, bucket, product_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    preview = mosaic_preview(bucket, product_id, out_dir / "landcover-preview.png", s3_client=s3)
    echo("5/5 comparing with the scene's known land cover")
    comparison = compare_with_truth(bucket, product_id, plan.truth_uri, s3_client=s3)
    report = {
        "function_id": fn.id,
        "product": f"s3://{bucket}/products/{product_id}/collection.json",
        "tiles": len(plan.tile_keys),
        "jobs": stats,
        "class_area_km2": summary["area_km2"],
        "agreement_with_truth": round(comparison["agreement"], 4),
        "seconds_per_stage_mean": summary["seconds_mean"],
        "wall_seconds": round(time.monotonic() - started, 1),
        "preview_png": str(preview),
    }
    (out_dir / "summary.json").write_text(json.dumps(report, indent=2))
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
    params = dict(
        bucket=bucket or DEMO_BUCKET, out_dir=out_dir, lon=lon, lat=lat, width=width, height=height,
        tilesize=tilesize, resolution=resolution, pad=pad, concurrency=concurrency, timeout=timeout,
    )  # fmt: skip
    if cloud:
        if not bucket:
            raise click.UsageError("--cloud needs --bucket: an S3 bucket the worker role can read and write")
        if not os.environ.get("GEOBATCH_API_URL"):
            raise click.UsageError("--cloud needs GEOBATCH_API_URL: the ApiUrl output of the deployed stack")
        report = run_demo(api_url=None, aws_env={}, **params)  # type: ignore[arg-type]
    else:
        with local_mode() as aws:
            api_url = aws.pop("api_url")
            report = run_demo(api_url=api_url, aws_env=aws, **params)  # type: ignore[arg-type]
    print_report(report)
