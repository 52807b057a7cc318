"""The job filter options that ``jobs list`` and the bulk commands share, and the search they make."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from geobatch.client import Client
from geobatch.filters import Expression, to_iso
from geobatch.job import Job
from geobatch.search import JobSearch
from geobatch.wire.models import JobStatus

__all__ = ["job_filter_options", "job_search"]

_STATUSES = [s.value for s in JobStatus]


def job_filter_options(function_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--function``, ``--status`` (repeatable), ``--tag``, ``--since`` and ``--until``."""
    options = [
        click.option("--function", "function_id", help=function_help),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(_STATUSES),
            help="Only jobs with this status (repeatable).",
        ),
        click.option("--tag", help="Only jobs with this tag."),
        click.option("--since", help="Only jobs created at or after this ISO-8601 time."),
        click.option("--until", help="Only jobs created before this ISO-8601 time."),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def job_filters(
    statuses: Iterable[str], tag: str | None, since: str | None, until: str | None
) -> list[Expression]:
    """The filter expressions of the options."""
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


def job_search(
    client: Client,
    function_id: str | None,
    statuses: Iterable[str],
    tag: str | None,
    since: str | None,
    until: str | None,
) -> JobSearch[Job]:
    """The search over the jobs the options choose."""
    search = Job.search(client)
    if function_id:
        search = search.param(function_id=function_id)
    for expression in job_filters(statuses, tag, since, until):
        search = search.filter(expression)
    return search
