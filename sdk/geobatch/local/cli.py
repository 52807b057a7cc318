"""``geobatch local up|down|status``."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import click

from geobatch.local import (
    LocalModeNotInstalledError,
    local_home,
    read_state,
    start_background,
    stop_background,
)


@click.group()
def local() -> None:
    """Run GeoBatch on this machine: moto for AWS, subprocesses for AWS Batch (127.0.0.1 only)."""


@local.command()
def up() -> None:
    """Start local mode in the background (does nothing if it is running)."""
    try:
        state = start_background()
    except LocalModeNotInstalledError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"local mode is up: API {state['api_url']} (state in {local_home()})")


@local.command()
def down() -> None:
    """Stop local mode and its workers. Functions, jobs, logs, results and products stay on disk
    in the local home and are all there again at the next `geobatch local up`."""
    if stop_background():
        click.echo("local mode stopped")
    else:
        click.echo("local mode was not running")


@local.command()
@click.option("--json", "as_json", is_flag=True, help="print the state as JSON")
def status(as_json: bool) -> None:
    """Say whether local mode runs, and where."""
    state = read_state()
    if as_json:
        click.echo(json.dumps(state or {"running": False}))
    elif state:
        port = urlsplit(state["api_url"]).port
        click.echo(
            f"running: pid {state['pid']}, API port {port} ({state['api_url']}), "
            f"since {state.get('since', '?')}, S3 endpoint {state['moto_url']}, home {local_home()}"
        )
    else:
        click.echo("not running (start it with `geobatch local up`)")
