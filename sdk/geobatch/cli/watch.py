"""``geobatch wait`` (for a Function's jobs, with a progress bar) and ``geobatch ui`` (the web monitor)."""

from __future__ import annotations

import click

from geobatch.cli.output import emit, json_option, state
from geobatch.function import Function

__all__ = ["ui", "wait"]


@click.command("wait")
@click.argument("function_id")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit code 1).")
@click.option("--interval", type=float, help="Seconds between polls.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show the progress bar (default: when stderr is a terminal).",
)
@json_option
def wait(function_id: str, timeout: float | None, interval: float | None, progress: bool | None) -> None:
    """Wait until a Function is built and all its jobs have ended, with a progress bar."""
    fn = Function.get(function_id, client=state().client)
    fn.wait_for_completion(timeout=timeout, interval=interval, progress=progress)
    stats = fn.job_statistics
    emit(stats, lambda: [" ".join(f"{k}={v}" for k, v in stats.items() if v) or "no jobs"])


@click.command("ui")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
@click.option("--verbose", is_flag=True, help="Log every request.")
@click.option("--api-url", "ui_api_url", help="GeoBatch API URL (the same as geobatch --api-url URL ui).")
@click.option(
    "--basemap",
    envvar="GEOBATCH_UI_BASEMAP",
    default=None,
    help="Basemap tile URL for the map page, https://…/{z}/{x}/{y}.png (needs the internet; default: none).",
)
@json_option
def ui(port: int, no_browser: bool, verbose: bool, ui_api_url: str | None, basemap: str | None) -> None:
    """Open the web monitor: a page on 127.0.0.1 that shows and controls your Functions and jobs.

    Requests from the page are signed here with your AWS credentials; the page never sees them.
    """
    from geobatch.ui.server import serve

    if ui_api_url:
        state().api_url = ui_api_url
    client = state().client
    try:
        server = serve(client, port=port, verbose=verbose, basemap=basemap)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--basemap") from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    emit(
        {"url": server.url, "api_url": client.api_url},
        lambda: [f"GeoBatch monitor for {client.api_url} on {server.url} (Ctrl-C to stop)"],
    )
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
