"""What every command shares: the global options' state, the error handling and the output.

Commands print text for people, or JSON with ``--json`` (``geobatch --json`` or the command's own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import click

from geobatch.client import Client, configure, get_default_client
from geobatch.wire import errors
from geobatch.wire.codec import EncodingError

__all__ = ["Group", "State", "details", "emit", "json_option", "state", "table"]

_USER_ERRORS = (errors.GeoBatchError, EncodingError, FileNotFoundError, ValueError, TimeoutError)
_KIND: dict[type, str] = {FileNotFoundError: "file not found", TimeoutError: "timed out"}


class Group(click.Group):
    """A click group that turns expected errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _USER_ERRORS as exc:
            # What went wrong and how to fix it, in words: not a Python class name.
            message = " ".join(str(exc).split()) or _KIND.get(type(exc), "failed")
            raise click.ClickException(message) from None


class State:
    """The global options (``--api-url``, ``--json``) and the client made from them."""

    def __init__(self, api_url: str | None, as_json: bool):
        self.api_url = api_url
        self.as_json = as_json
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            # --api-url becomes the default client, so every object the command touches uses it.
            self._client = configure(self.api_url) if self.api_url else get_default_client()
        return self._client


def state() -> State:
    """The state of the running command."""
    return click.get_current_context().find_object(State)  # type: ignore[return-value]


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on a command (the same as the global ``geobatch --json``)."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(State).as_json = True

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=callback,
        help="Print JSON for scripts.",
    )(command)


def emit(data: Any, text: Callable[[], Iterable[str]] | None = None) -> None:
    """Print ``data`` as JSON (with ``--json``, or without ``text``), else the lines of ``text()``."""
    if state().as_json or text is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in text():
            click.echo(line)


def table(rows: list[list[Any]], headers: list[str]) -> Iterable[str]:
    """The lines of a table with upper-case headers and columns as wide as their widest cell."""
    cells = [[str("" if v is None else v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    yield "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def details(data: dict[str, Any]) -> Iterable[str]:
    """``key: value`` lines of the set values of ``data``."""
    for key, value in data.items():
        if value not in (None, [], {}):
            shown = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            yield f"{key + ':':22} {shown}"


def counts(stats: dict[str, int]) -> str:
    """``status=count`` of the statuses that have jobs (``-`` for none)."""
    return " ".join(f"{k}={v}" for k, v in stats.items() if v) or "-"
