"""``geobatch functions ...``: list, inspect and control Functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from geobatch.cli.output import counts, details, emit, json_option, state, table
from geobatch.function import Function
from geobatch.wire.models import FunctionStatus, JobStatus

__all__ = ["functions"]

_FUNCTION_STATUSES = [s.value for s in FunctionStatus]


@click.group()
def functions() -> None:
    """List, inspect and control Functions."""


def _progress(stats: dict[str, int]) -> tuple[int, int]:
    """(done, total) job counts of a Function's statistics."""
    done = sum(stats.get(s.value, 0) for s in JobStatus.terminal())
    return done, sum(stats.values())


def _function_row(fn: Function) -> list[Any]:
    stats = fn.to_dict().get("job_statistics") or {}
    done, total = _progress(stats)
    return [
        fn.id,
        fn.name,
        fn.status,
        fn.cpus,
        fn.memory,
        fn.maximum_concurrency,
        fn.retry_count,
        f"{done}/{total}",
        counts(stats),
    ]


@functions.command("list")
@click.option("--status", type=click.Choice(_FUNCTION_STATUSES), help="Only Functions with this status.")
@click.option("--name", "name_prefix", help="Only Functions whose name starts with this.")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--page-size", type=int, default=100, show_default=True)
@json_option
def functions_list(status: str | None, name_prefix: str | None, limit: int | None, page_size: int) -> None:
    """List your Functions."""
    search = Function.search(state().client).param(page_size=page_size, include="job.statistics")
    search = search.limit(limit)
    if status:
        search = search.filter(Function.status == status)
    if name_prefix:
        search = search.filter(Function.name.prefix(name_prefix))
    found = search.collect()
    headers = ["id", "name", "status", "cpus", "memory", "concurrency", "retries", "done", "jobs"]
    emit([f.to_dict() for f in found], lambda: table([_function_row(f) for f in found], headers))


@functions.command("get")
@click.argument("function_id")
@json_option
def functions_get(function_id: str) -> None:
    """Show a Function with its job counts."""
    fn = Function.get(function_id, client=state().client, include=["job.statistics"])

    def text() -> Iterable[str]:
        data = fn.to_dict()
        stats = data.pop("job_statistics", None) or {}
        done, total = _progress(stats)
        access = data.pop("data_access", None) or {}
        yield from details(data)
        yield from _data_access_lines(access)
        yield f"{'jobs:':22} {done}/{total} done ({counts(stats)})"

    emit(fn.to_dict(), text)


def _data_access_lines(access: dict[str, Any]) -> Iterable[str]:
    """The S3 locations a Function's jobs may touch, one line per kind (or that there are none)."""
    kinds = [("read", "data read:", ""), ("write", "data write:", "")]
    kinds.append(("public", "data public:", " (read unsigned)"))
    lines = [f"{label:22} {', '.join(access[k])}{note}" for k, label, note in kinds if access.get(k)]
    yield from lines or [f"{'data access:':22} none (only the Function's own bundle, arguments, results)"]


@functions.command("update")
@click.argument("function_id")
@click.option("--name")
@click.option("--cpus", help="vCPUs: 0.25, 0.5, 1, 2, 4, 8, 16.")
@click.option("--memory", help="Memory, e.g. 2048, 2GB, 1Gi.")
@click.option(
    "--concurrency",
    "--maximum-concurrency",
    "maximum_concurrency",
    type=int,
    help="Most jobs running at once.",
)
@click.option("--timeout", type=int, help="Seconds before a job times out.")
@click.option("--retry-count", type=int, help="Automatic retries of a failed job.")
@click.option("--enabled/--disabled", default=None, help="Accept (or reject) new jobs and reruns.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Environment variable (repeatable).")
@json_option
def functions_update(function_id: str, env: tuple[str, ...], **settings: Any) -> None:
    """Change a Function's settings."""
    fn = Function.get(function_id, client=state().client)
    changes = {k: v for k, v in settings.items() if v is not None}
    if env:
        pairs = [item.partition("=") for item in env]
        bad = [key for key, sep, _ in pairs if not sep or not key]
        if bad:
            raise click.BadParameter(f"use KEY=VALUE, not {bad[0]!r}", param_hint="--env")
        changes["environment"] = {**(fn.environment or {}), **{k: v for k, _, v in pairs}}
    if not changes:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    for key, value in changes.items():
        setattr(fn, key, value)
    fn.save()
    emit(fn.to_dict(), lambda: details(fn.to_dict()))


def _lifecycle(name: str, action: str, help_text: str) -> None:
    @functions.command(name, help=help_text)
    @click.argument("function_id")
    @json_option
    def command(function_id: str) -> None:
        fn = Function.get(function_id, client=state().client)
        getattr(fn, action)()
        emit(fn.to_dict(), lambda: [f"{fn.id} {fn.name}: status {fn.status}, enabled={fn.enabled}"])


_lifecycle("start", "start", "Dispatch the Function's pending jobs.")
_lifecycle("stop", "stop", "Stop dispatching pending jobs (running ones go on).")
_lifecycle("enable", "enable", "Accept new jobs and reruns.")
_lifecycle("disable", "disable", "Reject new jobs and reruns.")


@functions.command("delete")
@click.argument("function_id")
@click.option("--delete-results", is_flag=True, help="Delete the stored results too.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def functions_delete(function_id: str, delete_results: bool, yes: bool) -> None:
    """Delete a Function and its jobs (outstanding jobs are canceled)."""
    fn = Function.get(function_id, client=state().client)
    if not yes:
        click.confirm(f"Delete Function {fn.name} ({fn.id}) and all its jobs?", abort=True)
    fn.delete(delete_results=delete_results)
    emit({"deleted": fn.id, "delete_results": delete_results}, lambda: [f"deleted {fn.id}"])


@functions.command("build-log")
@click.argument("function_id")
@json_option
def functions_build_log(function_id: str) -> None:
    """Print the image build log of a Function."""
    log = Function.get(function_id, client=state().client).build_log()
    if state().as_json:
        emit({"function_id": function_id, "log": log})
    else:
        click.echo(log, nl=False)
