"""``geobatch jobs cancel|rerun|delete``: bulk operations on jobs chosen by id or by filter."""

from __future__ import annotations

import click

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
    @json_option
    def command(
        job_ids: tuple[str, ...],
        function_id: str | None,
        statuses: tuple[str, ...],
        tag: str | None,
        since: str | None,
        until: str | None,
        delete_results: bool,
    ) -> None:
        if not job_ids and not function_id:
            raise click.UsageError("give job ids, or --function (with optional --status/--tag)")
        search = job_search(state().client, function_id, statuses, tag, since, until)
        if job_ids:
            search = search.filter(Job.id.in_(job_ids))
        if action == "delete":
            changed = search.delete(delete_results=delete_results)
        else:
            changed = getattr(search, action)()
        emit({"job_ids": changed}, lambda: [f"{_PAST[action]} {len(changed)} jobs", *changed])
