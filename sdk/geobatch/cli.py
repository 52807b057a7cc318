"""The ``geobatch`` command line: inspect and control Functions and jobs.

User errors print one line on stderr and exit with code 1 (2 for usage errors), never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import click

from geobatch.client import Client, configure, get_default_client
from geobatch.function import Function
from geobatch.job import Job
from geobatch.operation import bulk_job_operation
from geobatch.search import Expression, to_iso
from geobatch.wire import errors
from geobatch.wire.codec import EncodingError
from geobatch.wire.models import FunctionStatus, JobStatus

__all__ = ["main"]

_USER_ERRORS = (errors.GeoBatchError, EncodingError, FileNotFoundError, ValueError, TimeoutError)
_STATUSES = [s.value for s in JobStatus]
_FUNCTION_STATUSES = [s.value for s in FunctionStatus]
_KIND: dict[type, str] = {FileNotFoundError: "file not found", TimeoutError: "timed out"}


class _Group(click.Group):
    """A click group that turns expected errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _USER_ERRORS as exc:
            # What went wrong and how to fix it, in words: not a Python class name.
            message = " ".join(str(exc).split()) or _KIND.get(type(exc), "failed")
            raise click.ClickException(message) from None


class _State:
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


def _state() -> _State:
    return click.get_current_context().find_object(_State)  # type: ignore[return-value]


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on a command (the same as the global ``geobatch --json``)."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(_State).as_json = True

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=callback,
        help="Print JSON for scripts.",
    )(command)


def _emit(data: Any, text: Callable[[], Iterable[str]] | None = None) -> None:
    if _state().as_json or text is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in text():
            click.echo(line)


def _table(rows: list[list[Any]], headers: list[str]) -> Iterable[str]:
    cells = [[str("" if v is None else v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    yield "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def _details(data: dict[str, Any]) -> Iterable[str]:
    for key, value in data.items():
        if value not in (None, [], {}):
            shown = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            yield f"{key + ':':22} {shown}"


@click.group(cls=_Group)
@click.option("--api-url", envvar="GEOBATCH_API_URL", help="GeoBatch API URL (default: local mode).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.version_option(package_name="geobatch")
@click.pass_context
def main(ctx: click.Context, api_url: str | None, as_json: bool) -> None:
    """GeoBatch: run Python functions as batch jobs (locally or on AWS)."""
    ctx.obj = _State(api_url, as_json)


# ----------------------------------------------------------------------------- functions


@main.group()
def functions() -> None:
    """List, inspect and control Functions."""


def _progress(stats: dict[str, int]) -> tuple[int, int]:
    """(done, total) job counts of a Function's statistics."""
    done = sum(stats.get(s.value, 0) for s in JobStatus.terminal())
    return done, sum(stats.values())


def _counts(stats: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in stats.items() if v) or "-"


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
        _counts(stats),
    ]


@functions.command("list")
@click.option("--status", type=click.Choice(_FUNCTION_STATUSES), help="Only Functions with this status.")
@click.option("--name", "name_prefix", help="Only Functions whose name starts with this.")
@click.option("--limit", type=int, help="At most this many.")
@click.option("--page-size", type=int, default=100, show_default=True)
@json_option
def functions_list(status: str | None, name_prefix: str | None, limit: int | None, page_size: int) -> None:
    """List your Functions."""
    search = Function.search(_state().client).param(page_size=page_size, include="job.statistics")
    search = search.limit(limit)
    if status:
        search = search.filter(Function.status == status)
    if name_prefix:
        search = search.filter(Function.name.prefix(name_prefix))
    found = search.collect()
    headers = ["id", "name", "status", "cpus", "memory", "concurrency", "retries", "done", "jobs"]
    _emit([f.to_dict() for f in found], lambda: _table([_function_row(f) for f in found], headers))


@functions.command("get")
@click.argument("function_id")
@json_option
def functions_get(function_id: str) -> None:
    """Show a Function with its job counts."""
    fn = Function.get(function_id, client=_state().client, include=["job.statistics"])

    def text() -> Iterable[str]:
        data = fn.to_dict()
        stats = data.pop("job_statistics", None) or {}
        done, total = _progress(stats)
        access = data.pop("data_access", None) or {}
        yield from _details(data)
        yield from _data_access_lines(access)
        yield f"{'jobs:':22} {done}/{total} done ({_counts(stats)})"

    _emit(fn.to_dict(), text)


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
    fn = Function.get(function_id, client=_state().client)
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
    _emit(fn.to_dict(), lambda: _details(fn.to_dict()))


def _lifecycle(name: str, action: str, help_text: str) -> None:
    @functions.command(name, help=help_text)
    @click.argument("function_id")
    @json_option
    def command(function_id: str) -> None:
        fn = Function.get(function_id, client=_state().client)
        getattr(fn, action)()
        _emit(fn.to_dict(), lambda: [f"{fn.id} {fn.name}: status {fn.status}, enabled={fn.enabled}"])


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
    fn = Function.get(function_id, client=_state().client)
    if not yes:
        click.confirm(f"Delete Function {fn.name} ({fn.id}) and all its jobs?", abort=True)
    fn.delete(delete_results=delete_results)
    _emit({"deleted": fn.id, "delete_results": delete_results}, lambda: [f"deleted {fn.id}"])


@functions.command("build-log")
@click.argument("function_id")
@json_option
def functions_build_log(function_id: str) -> None:
    """Print the image build log of a Function."""
    log = Function.get(function_id, client=_state().client).build_log()
    if _state().as_json:
        _emit({"function_id": function_id, "log": log})
    else:
        click.echo(log, nl=False)


# ----------------------------------------------------------------------------- jobs


@main.group()
def jobs() -> None:
    """List, inspect and control jobs."""


def _job_filters(
    statuses: Iterable[str], tag: str | None, since: str | None, until: str | None
) -> list[Expression]:
    found: list[Expression] = []
    statuses = list(statuses)
    if statuses:
        found.append(Job.status == statuses[0] if len(statuses) == 1 else Job.status.in_(statuses))
    if tag:
        found.append(Job.tags == tag)
    if since:
        found.append(Job.creation_date >= to_iso(since))
    if until:
        found.append(Job.creation_date < to_iso(until))
    return found


_status_option = click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_STATUSES),
    help="Only jobs with this status (repeatable).",
)


@jobs.command("list")
@click.option("--function", "function_id", help="Only jobs of this Function.")
@_status_option
@click.option("--tag", help="Only jobs with this tag.")
@click.option("--since", help="Only jobs created at or after this ISO-8601 time.")
@click.option("--until", help="Only jobs created before this ISO-8601 time.")
@click.option("--sort", help="Sort fields, comma-separated; '-' for descending (e.g. -creation_date).")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many (0: all).")
@click.option("--page-size", type=int, default=100, show_default=True)
@click.option("--paged", is_flag=True, help="Print one page and the command for the next one.")
@click.option("--cursor", help="Print the page at this cursor (from a --paged listing).")
@json_option
def jobs_list(
    function_id: str | None,
    statuses: tuple[str, ...],
    tag: str | None,
    since: str | None,
    until: str | None,
    sort: str | None,
    limit: int,
    page_size: int,
    paged: bool,
    cursor: str | None,
) -> None:
    """List jobs, newest filters first."""
    search = Job.search(_state().client).param(page_size=page_size)
    if function_id:
        search = search.param(function_id=function_id)
    for expression in _job_filters(statuses, tag, since, until):
        search = search.filter(expression)
    if sort:
        search = search.sort(*[s.strip() for s in sort.split(",") if s.strip()])
    next_cursor = None
    if paged or cursor:
        found, next_cursor = _one_page(search, cursor, page_size)
    else:
        found = (search.limit(limit) if limit else search).collect()
    headers = ["id", "function", "status", "tries", "runtime", "created", "reason"]
    rows = [
        [j.id, j.function_id, j.status, j.execution_count, j.runtime, j.creation_date, j.error_reason]
        for j in found
    ]
    if not (paged or cursor):
        _emit([j.to_dict() for j in found], lambda: _table(rows, headers))
        return
    _emit({"data": [j.to_dict() for j in found], "page_cursor": next_cursor}, lambda: _table(rows, headers))
    if next_cursor and not _state().as_json:
        click.echo(f"next page: geobatch jobs list --cursor {next_cursor}", err=True)


def _one_page(search: Any, cursor: str | None, page_size: int) -> tuple[list[Job], str | None]:
    """One page of a job search and the cursor of the next (the cursor encodes the query)."""
    client = _state().client
    params = {"page_cursor": cursor, "page_size": page_size} if cursor else search.query_params()
    page = client.get("/jobs", params)
    jobs_found = [Job._from_wire(item, client) for item in page.get("data") or []]
    return jobs_found, (page.get("meta") or {}).get("page_cursor")


@jobs.command("get")
@click.argument("job_id")
@json_option
def jobs_get(job_id: str) -> None:
    """Show a job."""
    job = Job.get(job_id, client=_state().client)
    _emit(job.to_dict(), lambda: _details(job.to_dict()))


@jobs.command("why")
@click.argument("function_id")
@json_option
def jobs_why(function_id: str) -> None:
    """Group a Function's failed jobs by cause, with a count and one example job each."""
    summary = Function.get(function_id, client=_state().client).failure_summary()

    def text() -> Iterable[str]:
        if not summary.failed:
            yield "no failed jobs"
            return
        yield f"{summary.failed} failed jobs, {len(summary.groups)} causes"
        rows = [[g.count, g.kind, g.cause, g.example_job_id] for g in summary.groups]
        yield from _table(rows, ["count", "kind", "cause", "example job"])

    _emit(summary.model_dump(mode="json"), text)


def _timings(job: Job) -> dict[str, Any]:
    timings = job.timings
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in timings.items()}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _attempt_lines(job: Job) -> Iterable[str]:
    timings = job.timings
    queued, runtime = _seconds(timings["queued_seconds"]) or "-", _seconds(timings["runtime"]) or "-"
    started, ended = timings["started"] or "-", timings["ended"] or "-"
    yield f"queued {queued} s, runtime {runtime} s, started {started}, ended {ended}"
    headers = ["#", "started", "ended", "status", "exit", "runtime", "peak MB", "cpu s", "reason"]
    rows = [
        [
            a.number,
            a.started,
            a.ended,
            a.status,
            a.exit_code,
            _seconds(a.runtime),
            _seconds(a.peak_memory_mb),
            _seconds(a.cpu_seconds),
            a.reason,
        ]
        for a in job.attempts
    ]
    yield from _table(rows, headers) if rows else ["no attempts yet"]


@jobs.command("attempts")
@click.argument("job_id")
@json_option
def jobs_attempts(job_id: str) -> None:
    """Show a job's attempts (started, ended, status, exit code, reason, peak memory, CPU) and timings."""
    job = Job.get(job_id, client=_state().client)
    data = {"timings": _timings(job), "attempts": [a.model_dump(mode="json") for a in job.attempts]}
    _emit(data, lambda: _attempt_lines(job))


def _result_text(job: Job) -> str:
    if job.status != JobStatus.SUCCESS:
        return f"(no result: the job is {job.status})"
    data = job.result_bytes()
    if data is None:
        return "(no result stored)"
    value = job.result()
    return f"<{len(data)} bytes>" if isinstance(value, bytes) else json.dumps(value, indent=2, default=str)


@jobs.command("show")
@click.argument("job_id")
@json_option
def jobs_show(job_id: str) -> None:
    """Show a job with its timings, attempts, log and result."""
    job = Job.get(job_id, client=_state().client)
    try:
        log = job.log()
    except errors.NotFoundError:
        log = ""  # the job has not started yet
    result = _result_text(job)
    if _state().as_json:
        data = {**job.to_dict(), "timings": _timings(job), "log": log, "result_text": result}
        _emit(data)
        return
    details = {k: v for k, v in job.to_dict().items() if k != "attempts"}
    for line in _details(details):
        click.echo(line)
    click.echo("\nattempts:")
    for line in _attempt_lines(job):
        click.echo("  " + line)
    click.echo("\nlog:")
    click.echo(log.rstrip("\n") or "(no log yet)")
    click.echo("\nresult:")
    click.echo(result)


@jobs.command("log")
@click.argument("job_id")
@click.option("--attempt", type=int, help="Attempt number (default: the latest).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@click.option("--no-timestamps", is_flag=True, help="Print the lines without their times.")
@click.option(
    "--interval", type=float, default=2.0, show_default=True, help="Seconds between polls with --follow."
)
def jobs_log(job_id: str, attempt: int | None, follow: bool, no_timestamps: bool, interval: float) -> None:
    """Print a job's log."""
    job = Job.get(job_id, client=_state().client)
    printed = 0
    while True:
        try:
            lines = list(job.iter_log(timestamps=not no_timestamps, attempt=attempt))
        except errors.NotFoundError:
            if not follow or job.status in JobStatus.terminal():
                raise
            lines = []  # no log yet: the job has not started
        for line in lines[printed:]:
            click.echo(line)
        printed = max(printed, len(lines))
        if not follow or job.status in JobStatus.terminal():
            return
        time.sleep(interval)
        # Read the status after the log, so the last lines of a job that just ended are printed.
        job.refresh()
        if job.status in JobStatus.terminal():
            follow = False


@jobs.command("result")
@click.argument("job_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the raw result to this file.")
@json_option
def jobs_result(job_id: str, output: str | None) -> None:
    """Print a job's result (JSON), or write it to a file with --output."""
    job = Job.get(job_id, client=_state().client)
    value = job.result()
    data = job.result_bytes() if output or isinstance(value, bytes) else None
    if _state().as_json and not output:
        import base64

        shown = {"base64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value
        _emit({"job_id": job_id, "result": shown})
    elif output:
        with open(output, "wb") as handle:
            handle.write(data or b"")
        click.echo(f"wrote {len(data or b'')} bytes to {output}", err=True)
    elif isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        click.echo(json.dumps(value, indent=2, default=str))


def _bulk_command(action: str, help_text: str) -> None:
    @jobs.command(action, help=help_text)
    @click.argument("job_ids", nargs=-1)
    @click.option("--function", "function_id", help="Jobs of this Function (with the filters below).")
    @_status_option
    @click.option("--tag", help="Only jobs with this tag.")
    @click.option("--since", help="Only jobs created at or after this ISO-8601 time.")
    @click.option("--until", help="Only jobs created before this ISO-8601 time.")
    @click.option(
        "--delete-results", is_flag=True, hidden=action != "delete", help="Delete stored results too."
    )
    @click.option(
        "--progress/--no-progress",
        default=None,
        help="Show a progress bar while a large operation runs (default: when stderr is a terminal).",
    )
    @json_option
    def command(
        job_ids: tuple[str, ...],
        function_id: str | None,
        statuses: tuple[str, ...],
        tag: str | None,
        since: str | None,
        until: str | None,
        delete_results: bool,
        progress: bool | None,
    ) -> None:
        client = _state().client
        if not job_ids and not function_id:
            raise click.UsageError("give job ids, or --function (with optional --status/--tag)")
        expressions = _job_filters(statuses, tag, since, until)
        if job_ids:  # a filter, not ids to act on: an id that names no job matches nothing
            expressions.append(Job.id.in_(job_ids))
        filters = [term for e in expressions for term in e.to_filter()]
        shown = sys.stderr.isatty() if progress is None else progress
        changed = bulk_job_operation(
            client,
            action,
            filters,
            function_id,
            None,
            delete_results=delete_results,
            progress=shown and not _state().as_json,
        )
        past = {"cancel": "canceled", "rerun": "reran", "delete": "deleted"}[action]
        op = changed.operation
        if op is None:
            _emit({"job_ids": changed}, lambda: [f"{past} {len(changed)} jobs", *changed])
        else:
            summary = {"id": op.id, "state": str(op.state), "processed": op.processed, "changed": op.changed}
            _emit(
                {"job_ids": list(changed), "operation": summary},
                lambda: [f"{past} {op.changed} jobs (operation {op.id}, {op.processed} looked at)"],
            )


_bulk_command("cancel", "Cancel jobs by id or by filter.")
_bulk_command("rerun", "Rerun unsuccessful jobs (failure, timeout, canceled) by id or by filter.")
_bulk_command("delete", "Delete finished jobs by id or by filter.")


# ----------------------------------------------------------------------------- wait


@main.command("wait")
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
    fn = Function.get(function_id, client=_state().client)
    fn.wait_for_completion(timeout=timeout, interval=interval, progress=progress)
    stats = fn.job_statistics
    _emit(stats, lambda: [" ".join(f"{k}={v}" for k, v in stats.items() if v) or "no jobs"])


# ----------------------------------------------------------------------------- web monitor


@click.command("ui")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
@click.option("--verbose", is_flag=True, help="Log every request.")
@click.option("--api-url", "ui_api_url", help="GeoBatch API URL (the same as geobatch --api-url URL ui).")
@json_option
def ui(port: int, no_browser: bool, verbose: bool, ui_api_url: str | None) -> None:
    """Open the web monitor: a page on 127.0.0.1 that shows and controls your Functions and jobs.

    Requests from the page are signed here with your AWS credentials; the page never sees them.
    """
    from geobatch.ui.server import serve

    if ui_api_url:
        _state().api_url = ui_api_url
    client = _state().client
    try:
        server = serve(client, port=port, verbose=verbose)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    _emit(
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


main.add_command(ui)


# ----------------------------------------------------------------------------- extra groups


def _register_extra_commands() -> None:
    """Add the ``local``, ``demo`` and land-cover commands (their modules import more, so they live apart)."""
    from geobatch.demo import demo, plan, preview
    from geobatch.landcover.cli import train
    from geobatch.local.cli import local

    main.add_command(local)
    main.add_command(demo)
    main.add_command(plan)
    main.add_command(preview)
    main.add_command(train)


_register_extra_commands()
