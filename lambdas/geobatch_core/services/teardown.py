"""Deleting a Function: its jobs (in pages, so no request runs long), queue, bundle and logs."""

from __future__ import annotations

from geobatch.wire.models import TERMINAL, JobStatus
from geobatch_core import layout
from geobatch_core.services.access import owned_function
from geobatch_core.services.context import Services
from geobatch_core.services.jobs import cancel_item, delete_items

PAGE = 500


def delete_function(svc: Services, principal: str, function_id: str, *, delete_results: bool) -> bool:
    """Delete up to one page of jobs; returns True when the Function itself is gone.

    Running jobs are asked to cancel; the Function is removed once every job is deleted, so a
    caller repeats until it gets True. Results are kept unless ``delete_results``.
    """
    function = owned_function(svc, principal, function_id)
    if function.enabled is not False:
        function = svc.functions.update(function_id, {"enabled": False})  # no new jobs while we delete
    jobs, _ = svc.jobs.query(function_id, start=None, limit=PAGE, newest_first=False)
    if jobs:
        for job in jobs:
            if job.status not in TERMINAL and job.status != JobStatus.PENDING.value:
                cancel_item(svc, job)
        delete_items(svc, jobs, delete_results=delete_results)
        remaining, _ = svc.jobs.query(
            function_id, start=None, limit=1, newest_first=False, projection=["status"]
        )
        if remaining:
            return False
    svc.executor.stop_workers(function)
    svc.executor.release(function)
    for url in (function.queue_url, function.dlq_url):
        if url:
            svc.queue.delete(url)
    svc.blobs.delete([function.bundle_key or "", layout.build_log_key(function_id)])
    svc.blobs.delete_prefix(f"logs/{function_id}/")
    svc.blobs.delete_prefix(f"args/{function_id}/")
    if delete_results:
        svc.blobs.delete_prefix(f"results/{function_id}/")
    svc.jobs.delete_counts(function_id)  # every job is gone, so they are zero
    svc.functions.delete(function_id)
    return True
