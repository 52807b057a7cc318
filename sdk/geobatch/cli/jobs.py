"""``geobatch jobs ...``: list and inspect jobs (the bulk commands are in :mod:`geobatch.cli.bulk`)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Any

import click

from geobatch.cli.job_filters import job_filter_options, job_search
from geobatch.cli.output import details, emit, json_option, state, table
from geobatch.function import Function
from geobatch.job import Job
from geobatch.wire import errors
from geobatch.wire.models import JobStatus

__all__ = ["jobs"]


@click.group()
def jobs() -> None:
    """List, inspect and control jobs."""


@jobs.command("list")
@job_filter_options("Only jobs of this Function.")
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
    search = job_search(state().client, function_id, statuses, tag, since, until).param(page_size=page_size)
    if sort:
        search = search.sort(*[s.strip() for s in sort.split(",") if s.strip()])
    headers = ["id", "function", "status", "tries", "runtime", "created", "reason"]
    if not (paged or cursor):
        found = (search.limit(limit) if limit else search).collect()
        emit([j.to_dict() for j in found], lambda: table(_job_rows(found), headers))
        return
    # One page; the cursor encodes the query, so the next page needs only the cursor.
    page = search.page(cursor)
    data = {"data": [j.to_dict() for j in page.items], "page_cursor": page.next_cursor}
    emit(data, lambda: table(_job_rows(page.items), headers))
    if page.next_cursor and not state().as_json:
        click.echo(f"next page: geobatch jobs list --cursor {page.next_cursor}", err=True)


def _job_rows(found: list[Job]) -> list[list[Any]]:
    return [
        [j.id, j.function_id, j.status, j.execution_count, j.runtime, j.creation_date, j.error_reason]
        for j in found
    ]


@jobs.command("get")
@click.argument("job_id")
@json_option
def jobs_get(job_id: str) -> None:
    """Show a job."""
    job = Job.get(job_id, client=state().client)
    emit(job.to_dict(), lambda: details(job.to_dict()))


@jobs.command("why")
@click.argument("function_id")
@json_option
def jobs_why(function_id: str) -> None:
    """Group a Function's failed jobs by cause, with a count and one example job each."""
    summary = Function.get(function_id, client=state().client).failure_summary()

    def text() -> Iterable[str]:
        if not summary.failed:
            yield "no failed jobs"
            return
        yield f"{summary.failed} failed jobs, {len(summary.groups)} causes"
        rows = [[g.count, g.kind, g.cause, g.example_job_id] for g in summary.groups]
        yield from table(rows, ["count", "kind", "cause", "example job"])

    emit(summary.model_dump(mode="json"), text)


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
    yield from table(rows, headers) if rows else ["no attempts yet"]


@jobs.command("attempts")
@click.argument("job_id")
@json_option
def jobs_attempts(job_id: str) -> None:
    """Show a job's attempts (started, ended, status, exit code, reason, peak memory, CPU) and timings."""
    job = Job.get(job_id, client=state().client)
    data = {"timings": _timings(job), "attempts": [a.model_dump(mode="json") for a in job.attempts]}
    emit(data, lambda: _attempt_lines(job))


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
    job = Job.get(job_id, client=state().client)
    try:
        log = job.log()
    except errors.NotFoundError:
        log = ""  # the job has not started yet
    result = _result_text(job)
    if state().as_json:
        data = {**job.to_dict(), "timings": _timings(job), "log": log, "result_text": result}
        emit(data)
        return
    shown = {k: v for k, v in job.to_dict().items() if k != "attempts"}
    for line in details(shown):
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
    job = Job.get(job_id, client=state().client)
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
    job = Job.get(job_id, client=state().client)
    value = job.result()
    data = job.result_bytes() if output or isinstance(value, bytes) else None
    if state().as_json and not output:
        import base64

        shown = {"base64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value
        emit({"job_id": job_id, "result": shown})
    elif output:
        with open(output, "wb") as handle:
            handle.write(data or b"")
        click.echo(f"wrote {len(data or b'')} bytes to {output}", err=True)
    elif isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        click.echo(json.dumps(value, indent=2, default=str))
