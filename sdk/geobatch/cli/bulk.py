"""``geobatch jobs cancel|rerun|delete``: bulk operations on jobs chosen by id or by filter (a large
one runs in the background: a progress bar follows it)."""

from __future__ import annotations

import sys

import click

from geobatch.bulk import bulk_job_operation
from geobatch.cli.job_filters import job_filter_options, job_search
from geobatch.cli.output import emit, json_option, state
from geobatch.job import Job

__all__ = ["add_bulk_commands"]

_PAST = {"cancel": "canceled", "rerun": "reran", "delete": "deleted"}
_HELP = {
    "cancel": "Cancel jobs by id or by filter.",
    "rerun": "Rerun unsuccessful jobs (failure, timeout, canceled) by id or by filter.",
    "delete": "Delete finished jobs by id or by filter.",
}


def add_bulk_commands(group: click.Group) -> None:
    """Add ``cancel``, ``rerun`` and ``delete`` to ``group`` (the ``jobs`` group)."""
    for action, help_text in _HELP.items():
        _bulk_command(group, action, help_text)


def _bulk_command(group: click.Group, action: str, help_text: str) -> None:
    @group.command(action, help=help_text)
    @click.argument("job_ids", nargs=-1)
    @job_filter_options("Jobs of this Function (with the filters below).")
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
        if not job_ids and not function_id:
            raise click.UsageError("give job ids, or --function (with optional --status/--tag)")
        search = job_search(state().client, function_id, statuses, tag, since, until)
        if job_ids:  # a filter, not ids to act on: an id that names no job matches nothing
            search = search.filter(Job.id.in_(job_ids))
        shown = sys.stderr.isatty() if progress is None else progress
        changed = bulk_job_operation(
            state().client,
            action,
            search.filter_list(),
            function_id,
            None,
            delete_results=delete_results,
            progress=shown and not state().as_json,
        )
        op = changed.operation
        if op is None:
            emit({"job_ids": changed}, lambda: [f"{_PAST[action]} {len(changed)} jobs", *changed])
            return
        summary = {"id": op.id, "state": str(op.state), "processed": op.processed, "changed": op.changed}
        emit(
            {"job_ids": list(changed), "operation": summary},
            lambda: [f"{_PAST[action]} {op.changed} jobs (operation {op.id}, {op.processed} looked at)"],
        )
