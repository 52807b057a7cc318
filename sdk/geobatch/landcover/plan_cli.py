"""``geobatch plan``: the scale estimate, with its defaults taken from the stack and the saved Function.

Workers come from the stack's compute environment (``max_vcpus`` in ``cdk.json``'s context, as
deployed); a job's vCPUs, memory and the Function's ``maximum_concurrency`` come from the saved
Function (``--function``, read through the API: ``GEOBATCH_API_URL``, or local mode), else from the
resources the demo saves its land-cover Function with. Explicit options win over both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

_POSITIVE = click.FloatRange(min=0, min_open=True)  # a negative time or size makes a negative cost


@dataclass(frozen=True)
class JobResources:
    """What one job of a Function gets, and how many may run at once (None: no Function cap)."""

    cpus: float
    memory_gb: float
    concurrency: int | None
    source: str  # where these came from, printed with the estimate


def demo_function_resources() -> JobResources:
    """The resources ``geobatch demo`` saves its land-cover Function with (one definition for both)."""
    from geobatch.landcover.plan import LANDCOVER_CPUS, LANDCOVER_MEMORY_MB

    return JobResources(LANDCOVER_CPUS, LANDCOVER_MEMORY_MB / 1024, None, "the demo's land-cover Function")


def saved_function_resources(ref: str) -> JobResources:
    """The saved Function ``ref`` (a name, else an id): its cpus, memory and maximum_concurrency."""
    import geobatch as gb

    try:
        named = gb.Function.search().filter(gb.Function.name == ref).limit(2).collect()
        fn = named[0] if len(named) == 1 else gb.Function.get(ref)
    except gb.NotFoundError:
        raise click.UsageError(f"--function {ref}: no saved Function has that name or id") from None
    except gb.GeoBatchError as exc:
        raise click.ClickException(f"--function {ref}: cannot read the Function ({exc})") from None
    cpus, memory = fn.cpus, fn.memory
    if cpus is None or memory is None:  # the API fills both in on save; refuse rather than guess
        raise click.ClickException(f"Function {ref} has no cpus/memory on record")
    return JobResources(float(cpus), int(memory) / 1024, fn.maximum_concurrency, f"Function {fn.name}")


@click.command()
@click.option(
    "--geojson", type=click.Path(exists=True, dir_okay=False), help="Area as GeoJSON (default: CONUS)."
)
@click.option("--tilesize", default=1024, show_default=True, type=click.IntRange(min=1))
@click.option("--resolution", default=10.0, show_default=True, type=_POSITIVE)
@click.option("--pad", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--function", "function_ref", default=None, metavar="NAME_OR_ID",
    help="Saved Function to read cpus, memory and maximum_concurrency from (default: the demo's resources).",
)  # fmt: skip
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="maximum_concurrency (default: the Function's, else the stack's cap).",
)
@click.option(
    "--seconds-per-tile", default=30.0, show_default=True, type=_POSITIVE, help="Measured per-job seconds."
)
@click.option("--cpus", default=None, type=_POSITIVE, help="vCPUs per job (default: the Function's).")
@click.option("--memory-gb", default=None, type=_POSITIVE, help="GB per job (default: the Function's).")
@click.option(
    "--cdk-json", default="cdk.json", show_default=True, type=click.Path(dir_okay=False),
    help="Stack context to read max_vcpus from (missing file: the stack's default).",
)  # fmt: skip
@click.option(
    "--log-kb-per-job",
    default=4.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="CloudWatch Logs ingested per job.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def plan(
    geojson: str | None,
    tilesize: int,
    resolution: float,
    pad: int,
    function_ref: str | None,
    concurrency: int | None,
    seconds_per_tile: float,
    cpus: float | None,
    memory_gb: float | None,
    cdk_json: str,
    log_kb_per_job: float,
    as_json: bool,
) -> None:
    """Estimate tiles, jobs, wall time and AWS cost of a run over an area (default: the continental US)."""
    from geobatch.landcover.plan import JobTraffic, estimate, format_plan, stack_max_vcpus
    from geobatch.landcover.regions import conus_geojson

    try:
        shape = json.loads(Path(geojson).read_text()) if geojson else conus_geojson()
    except ValueError as exc:
        raise click.UsageError(f"{geojson} is not valid GeoJSON: {exc}") from None
    try:
        max_vcpus = stack_max_vcpus(cdk_json)
    except (ValueError, TypeError) as exc:
        raise click.UsageError(f"{cdk_json}: cannot read context max_vcpus ({exc})") from None
    res = saved_function_resources(function_ref) if function_ref else demo_function_resources()
    result = estimate(
        shape,
        resolution=resolution,
        tilesize=tilesize,
        pad=pad,
        seconds_per_tile=seconds_per_tile,
        concurrency=concurrency if concurrency is not None else res.concurrency,
        vcpus=cpus if cpus is not None else res.cpus,
        memory_gb=memory_gb if memory_gb is not None else res.memory_gb,
        max_vcpus=max_vcpus,
        traffic=JobTraffic.for_tile(tilesize + 2 * pad, log_kb=log_kb_per_job),
    )
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "resources_from": res.source}, indent=2))
    else:
        click.echo(format_plan(result) + f"\njob resources       from {res.source}")
