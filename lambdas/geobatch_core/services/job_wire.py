"""Jobs as the API shows them: the wire form of a job item, and why a pending job waits."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from geobatch.wire.models import FunctionStatus, Job, JobStatus
from geobatch_core.ports import Item

WIRE_EXCLUDE = {
    "payload",
    "earlier_attempts",
    "earlier_executions",
    "claim_msg",
    "owner",
    "job_key",
    "result_key",
    "args_key",
    "retry_at",
    "result_meta",
}


def job_id(item: Item) -> str:
    return f"{item['function_id']}-{item['job_key']}"


def message_body(item: Item) -> str:
    return json.dumps({"j": item["job_key"], "r": item.get("run", 0)}, separators=(",", ":"))


def _attempt_wire(attempt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attempt.items() if k not in ("log", "log_key", "number", "statistics_key")}


def executions(item: Item) -> int:
    """Starts over every run (the stored ``execution_count`` is the current run's)."""
    return int(item.get("earlier_executions", 0)) + int(item.get("execution_count", 0))


def all_attempts(item: Item) -> list[dict[str, Any]]:
    """Every attempt of every run, oldest first, each with its run. The current run's attempts are
    the worker's (numbered within the run, which its retry budget counts); earlier runs' are kept
    beside them by each rerun."""
    run = int(item.get("run", 0))
    return [*item.get("earlier_attempts", []), *({**a, "run": run} for a in item.get("attempts", []))]


def pending_reason(
    item: Item, function: Item | None, now: datetime, workers: Mapping[str, int] | None = None
) -> str | None:
    """Why a pending job is not running, from state the service already has (no write per job):
    the Function's status, the job's backoff timer, and the workers' states (running vs waiting
    for capacity from AWS Batch)."""
    if item["status"] != JobStatus.PENDING.value or function is None:
        return None
    status = function.get("status")
    if status == FunctionStatus.BUILDING.value:
        since = function.get("build_started")
        minutes = ""
        if since:
            elapsed = (now - datetime.fromisoformat(since.replace("Z", "+00:00"))).total_seconds()
            minutes = f" ({elapsed / 60:.0f} min so far)"
        return f"waiting: function image is building{minutes}"
    if status == FunctionStatus.AWAITING_BUNDLE.value:
        return "waiting: function code has not been uploaded"
    if status == FunctionStatus.BUILD_FAILED.value:
        return "waiting: function image failed to build; see Function.build_log()"
    if status == FunctionStatus.STOPPED.value:
        return "waiting: function is stopped; start it to run pending jobs"
    retry_at = item.get("retry_at")
    if retry_at:
        wait = (datetime.fromisoformat(retry_at.replace("Z", "+00:00")) - now).total_seconds()
        if wait > 0:
            attempts = int(function.get("retry_count", 0)) + 1
            return (
                f"backing off: attempt {item.get('execution_count', 0)} of {attempts} failed, "
                f"next try in {wait:.0f} s"
            )
    limit = int(function.get("maximum_concurrency", 1))
    running = int((workers or {}).get("RUNNING", 0))
    starting = sum(v for k, v in (workers or {}).items() if k != "RUNNING")
    if running >= limit:
        return f"waiting: {running} of {limit} concurrent jobs running (maximum_concurrency={limit})"
    if starting:
        states = ", ".join(f"{v} {k}" for k, v in sorted((workers or {}).items()) if k != "RUNNING")
        return f"waiting: AWS Batch has not yet started {starting} workers ({states}); {running} running"
    return f"waiting: queued for a worker ({running} of {limit} workers running)"


def to_wire(
    item: Item,
    *,
    function: Item | None = None,
    now: datetime | None = None,
    with_result: bool = False,
    workers: Mapping[str, int] | None = None,
) -> Job:
    data = {k: v for k, v in item.items() if k not in WIRE_EXCLUDE}
    data["id"] = job_id(item)
    if "payload" in item:
        payload = json.loads(item["payload"])
        data["args"], data["kwargs"] = payload.get("args"), payload.get("kwargs")
    history = all_attempts(item)
    data["attempts"] = [{"number": n, **_attempt_wire(a)} for n, a in enumerate(history, 1)]
    # As in the Descartes Labs client, execution_count counts the starts of every run.
    data["execution_count"] = executions(item)
    inline = data.pop("result", None)
    data["has_result"] = inline is not None or "result_key" in item
    data["result"] = base64.b64encode(inline).decode() if with_result and inline is not None else None
    if now is not None and "status_reason" not in item:
        data["status_reason"] = pending_reason(item, function, now, workers)
    return Job.model_validate(data)


def wire_bytes(item: Item, *, with_result: bool) -> int:
    """About how many bytes the job takes in a page (an overestimate), so a page can be cut short
    before it outgrows a Lambda response."""
    size = 1500 + len(item.get("payload") or "")
    size += sum(len(str(item.get(k) or "")) for k in ("error_reason", "status_reason"))
    size += sum(len(t) + 4 for t in item.get("tags") or [])
    size += sum(len(k) + len(v) + 8 for k, v in (item.get("environment") or {}).items())
    size += sum(300 + len(str(a.get("reason") or "")) for a in all_attempts(item))
    result = item.get("result")
    if with_result and result is not None:
        size += len(result) * 4 // 3 + 4
    return size
