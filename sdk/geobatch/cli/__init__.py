"""The ``geobatch`` command line: inspect and control Functions and jobs.

User errors print one line on stderr and exit with code 1 (2 for usage errors), never a traceback.
Each command group lives in its own module: ``functions``, ``jobs`` (and its bulk commands in
``bulk``), ``wait``/``ui`` in ``watch``; what they share is in ``output`` and ``job_filters``.
"""

from __future__ import annotations

import click

from geobatch.cli.bulk import add_bulk_commands
from geobatch.cli.functions import functions
from geobatch.cli.jobs import jobs
from geobatch.cli.output import Group, State
from geobatch.cli.watch import ui, wait

__all__ = ["main"]


@click.group(cls=Group)
@click.option("--api-url", envvar="GEOBATCH_API_URL", help="GeoBatch API URL (default: local mode).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.version_option(package_name="geobatch")
@click.pass_context
def main(ctx: click.Context, api_url: str | None, as_json: bool) -> None:
    """GeoBatch: run Python functions as batch jobs (locally or on AWS)."""
    ctx.obj = State(api_url, as_json)


def _register_commands() -> None:
    """Add the command groups; ``local``, ``demo`` and land-cover import more, so they live apart."""
    from geobatch.demo import demo, preview
    from geobatch.landcover.cli import train
    from geobatch.landcover.plan_cli import plan
    from geobatch.local.cli import local

    add_bulk_commands(jobs)
    for command in (functions, jobs, wait, ui, local, demo, plan, preview, train):
        main.add_command(command)


_register_commands()
