"""Job use cases: submit, get, list (filters, sort, cursor), cancel, rerun, delete, log, result."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from geobatch_core import errors, filters, layout, limits
from geobatch_core.codec import EncodingError, encode_args
from geobatch_core.models import (
    RERUNNABLE,
    TERMINAL,
    FunctionStatus,
    Job,
    JobBulkCreate,
    JobIds,
    JobPage,
    JobQuery,
    JobSpec,
    JobStatus,
    LogLine,
    Meta,
    ResultBody,
)
from geobatch_core.ports import Item
from geobatch_core.services import paging
from geobatch_core.services.access import OwnedFunctions, owned_function, owned_job, split_job_id
from geobatch_core.services.context import Services, iso, new_id
from geobatch_core.services.iterate import all_functions

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
    return {k: v for k, v in attempt.items() if k not in ("log", "log_key", "number")}


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


# --------------------------------------------------------------------------- submit


def _job_key(created_ms: int, reference_id: str, index: int) -> str:
    # Time-ordered and deterministic: a resent batch (same reference) maps to the same keys.
    return f"{created_ms:011x}{hashlib.sha256(reference_id.encode()).hexdigest()[:8]}{index:03x}"


def _payloads(bulk: JobBulkCreate) -> list[str]:
    """Every job's encoded arguments, checked before anything is written: a refused request must
    leave nothing behind (no job, no blob, no reference)."""
    payloads = []
    for index in range(bulk.count):
        args = bulk.bulk_args[index] if bulk.bulk_args is not None else []
        kwargs = bulk.bulk_kwargs[index] if bulk.bulk_kwargs is not None else {}
        try:
            payload = encode_args(args, kwargs)
        except EncodingError as exc:
            raise errors.BadRequestError(f"job {index}: {exc}") from None
        if len(payload) > limits.MAX_ARGS_BYTES:
            raise errors.PayloadTooLargeError(
                f"job {index}: arguments are {len(payload)} bytes as JSON; at most {limits.MAX_ARGS_BYTES} "
                "are allowed: pass a reference (e.g. an S3 key) instead"
            )
        payloads.append(payload)
    return payloads


def bulk_fingerprint(bulk: JobBulkCreate) -> str:
    """What a reference_id stands for: the jobs (arguments, environments) and tags it submitted."""
    content = bulk.model_dump(mode="json", exclude={"reference_id", "function_id"})
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def submit_jobs(svc: Services, principal: str, bulk: JobBulkCreate) -> JobPage:
    function = owned_function(svc, principal, bulk.function_id)
    if not function.get("enabled", True):
        raise errors.ConflictError(f"Function {bulk.function_id} is disabled: enable it to submit jobs")
    if function["status"] == FunctionStatus.BUILD_FAILED.value:
        raise errors.ConflictError(
            f"Function {bulk.function_id} failed to build: fix it and save a new Function"
        )
    payloads = _payloads(bulk)
    now = svc.clock()
    now_ms = int(now.timestamp() * 1000)
    created_ms, fresh = svc.jobs.reserve_reference(
        bulk.function_id, bulk.reference_id, now_ms, bulk_fingerprint(bulk)
    )
    created = datetime.fromtimestamp(created_ms / 1000, now.tzinfo)
    items: list[Item] = []
    for index, payload in enumerate(payloads):
        env = bulk.bulk_environments[index] if bulk.bulk_environments is not None else None
        key = _job_key(created_ms, bulk.reference_id, index)
        item: Item = {
            "function_id": bulk.function_id,
            "job_key": key,
            "owner": function["owner"],
            "status": JobStatus.PENDING.value,
            "creation_date": iso(created),
            "environment": env or None,
            "tags": list(bulk.tags),
            "reference_id": bulk.reference_id,
            "run": 0,
            "execution_count": 0,
        }
        if len(payload) > limits.INLINE_ARGS_BYTES:
            item["args_key"] = layout.args_key(bulk.function_id, key)
            svc.blobs.put(item["args_key"], payload.encode(), content_type="application/json")
        else:
            item["payload"] = payload
        items.append(item)
    svc.jobs.put_new_batch(items, check_existing=not fresh)
    # On a resend some messages may already be queued: duplicates are harmless, workers drop them.
    svc.queue.send_batch(function["queue_url"], [message_body(i) for i in items])
    mark_active(svc, function)
    if svc.on_submit:
        svc.on_submit(bulk.function_id)
    return JobPage(data=[to_wire(i) for i in items], meta=Meta(total=len(items)))


def mark_active(svc: Services, function: Item) -> None:
    """Note that the Function has work, so its completion is announced when the work is done."""
    if not function.get("active"):
        svc.functions.update(function["id"], {"active": True})
        function["active"] = True


def submit_job(svc: Services, principal: str, spec: JobSpec) -> Job:
    bulk = JobBulkCreate(
        function_id=spec.function_id,
        bulk_args=[spec.args],
        bulk_kwargs=[spec.kwargs],
        bulk_environments=[spec.environment],
        tags=spec.tags,
        reference_id=spec.reference_id or new_id(12),
    )
    return submit_jobs(svc, principal, bulk).data[0]


# --------------------------------------------------------------------------- read


def get_job(svc: Services, principal: str, job_id_: str) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    if "args_key" in item:
        payload = json.loads(svc.blobs.get(item["args_key"]))
        item = {**item, "payload": json.dumps(payload)}
    workers = svc.executor.worker_states(function) if item["status"] == JobStatus.PENDING.value else None
    return to_wire(item, function=function, now=svc.clock(), with_result=True, workers=workers)


def _function_ids(svc: Services, principal: str, function_id: str | None) -> list[str]:
    if function_id:
        owned_function(svc, principal, function_id)
        return [function_id]
    owner = None if principal in svc.settings.admins else principal
    return [fid for _, fid in sorted((i["creation_date"], i["id"]) for i in all_functions(svc, owner))]


def _iter_matching(
    svc: Services,
    state: dict[str, Any],
    predicate: Any,
    newest_first: bool,
    functions: OwnedFunctions,
    batch: int = 1000,
) -> Iterator[tuple[Item, dict[str, Any]]]:
    """Matching job items with the cursor state that resumes right after each one."""
    fids: list[str] = state["fids"]
    fi, key = state.get("fi", 0), state.get("key")
    now = svc.clock()
    while fi < len(fids):
        fid = fids[fi]
        function = functions.get(fid)  # 404 for a Function the caller does not own
        items, last = svc.jobs.query(fid, start=key, limit=batch, newest_first=newest_first)
        for item in items:
            wire = to_wire(item, function=function, now=now).model_dump()
            if predicate(wire):
                yield item, {**state, "fi": fi, "key": {"function_id": fid, "job_key": item["job_key"]}}
        if last:
            key = last
        else:
            fi, key = fi + 1, None


def _cursor_state(cursor: str) -> dict[str, Any]:
    state = paging.checked(paging.decode(cursor), ("fids", "filter", "sort", "limit", "offset", "fi", "key"))
    fids: list[str] = state.get("fids") or []
    fi, key = state.get("fi", 0), state.get("key")
    valid = "fids" in state and fi <= len(fids)
    if valid and key is not None:
        # Job keys are hex: anything else would start the store's query outside its key range.
        in_range = _HEX.fullmatch(key["job_key"]) is not None
        valid = in_range and fi < len(fids) and key["function_id"] == fids[fi]
    if not valid:
        raise errors.BadRequestError(paging.INVALID_CURSOR)
    return state


_HEX = re.compile(r"[0-9a-f]{1,64}")


def list_jobs(
    svc: Services,
    principal: str,
    *,
    function_id: str | None = None,
    filter_json: str | list[Any] | None = None,
    sort: str | None = None,
    page_size: int = limits.DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    limit: int | None = None,
    count: bool = False,
    include_result: bool = False,
) -> JobPage:
    if cursor:
        state = _cursor_state(cursor)
    else:
        _, terms = filters.parse(filter_json, filters.JOB_FIELDS)
        pinned = function_id or filters.equality_value(terms, "function_id")
        state = {
            "fids": _function_ids(svc, principal, pinned),
            "filter": terms,
            "sort": sort,
            "limit": limit,
        }
    predicate, _ = filters.parse(state.get("filter"), filters.JOB_FIELDS)
    order = filters.parse_sort(state.get("sort"), filters.JOB_FIELDS)
    functions = OwnedFunctions(svc, principal)
    now = svc.clock()
    newest_first = order[:1] in ([("creation_date", True)], [("id", True)])
    streaming = not order or order[0][0] in ("creation_date", "id")

    if count:
        total = sum(
            1 for _ in _iter_matching(svc, {**state, "fi": 0, "key": None}, predicate, False, functions)
        )
        if state.get("limit") is not None:
            total = min(total, int(state["limit"]))
        return JobPage(data=[], meta=Meta(total=total))

    remaining = state.get("limit")
    want = page_size if remaining is None else max(0, min(page_size, int(remaining)))
    page: list[Item] = []
    next_state: dict[str, Any] | None = None
    if streaming:
        if want:
            # Read about a page at a time: a page of 100 should not read 1,000 items.
            batch = max(100, min(1000, 2 * want))
            for item, resume in _iter_matching(svc, state, predicate, newest_first, functions, batch):
                page.append(item)
                if len(page) == want:
                    next_state = resume
                    break
    else:
        rows = []
        for item, _ in _iter_matching(svc, {**state, "fi": 0, "key": None}, predicate, False, functions):
            rows.append(item)
            if len(rows) > limits.MAX_IN_MEMORY_SORT:
                raise errors.BadRequestError(
                    f"sorting by {order[0][0]} works on at most {limits.MAX_IN_MEMORY_SORT} jobs: "
                    "narrow the filter, or sort by creation_date"
                )
        rows = paging.sort_items(rows, order, key_of=lambda i: to_wire(i).model_dump())
        offset = int(state.get("offset", 0))
        page = rows[offset : offset + want]
        if offset + len(page) < len(rows):
            next_state = {**state, "offset": offset + len(page)}
    if next_state is not None and remaining is not None:
        next_state["limit"] = int(remaining) - len(page)
        if next_state["limit"] <= 0:
            next_state = None
    workers: dict[str, Mapping[str, int]] = {}
    for item in page:  # only pages with pending jobs ask the executor, once per Function
        fid = item["function_id"]
        if item["status"] == JobStatus.PENDING.value and fid not in workers:
            workers[fid] = svc.executor.worker_states(functions.get(fid))
    data = [
        to_wire(
            i,
            function=functions.get(i["function_id"]),
            now=now,
            with_result=include_result,
            workers=workers.get(i["function_id"]),
        )
        for i in page
    ]
    return JobPage(data=data, meta=Meta(page_cursor=paging.encode(next_state) if next_state else None))


# --------------------------------------------------------------------------- change


def cancel_item(svc: Services, item: Item) -> Item:
    """Pending → canceled at once; running → cancel (the worker stops it: canceling → canceled)."""
    for _ in range(5):
        status = item["status"]
        now = iso(svc.clock())
        if status == JobStatus.PENDING.value:
            new = svc.jobs.transition(
                item["function_id"],
                item["job_key"],
                changes={"status": JobStatus.CANCELED.value, "last_completion_date": now, "retry_at": None},
                expect={"status": status, "run": item.get("run", 0)},
            )
        elif status == JobStatus.RUNNING.value:
            new = svc.jobs.transition(
                item["function_id"],
                item["job_key"],
                changes={"status": JobStatus.CANCEL.value},
                expect={"status": status, "execution_count": item.get("execution_count", 0)},
            )
        else:
            return item  # already terminal or being canceled
        if new is not None:
            return new
        item = svc.jobs.get(item["function_id"], item["job_key"], consistent=True)
    raise errors.ConflictError(f"job {job_id(item)} changed too often to cancel; try again")


def rerun_item(svc: Services, item: Item, function: Item) -> Item:
    """An unsuccessful job starts a new run: pending again, with a fresh retry budget."""
    if item["status"] not in RERUNNABLE:
        return item
    if not function.get("enabled", True):
        raise errors.ConflictError(f"Function {function['id']} is disabled: enable it to rerun jobs")
    run = int(item.get("run", 0)) + 1
    new = svc.jobs.transition(
        item["function_id"],
        item["job_key"],
        changes={
            "status": JobStatus.PENDING.value,
            "run": run,
            # The retry budget is per run; the history and the count of starts carry over.
            "earlier_attempts": all_attempts(item),
            "earlier_executions": executions(item),
            "execution_count": 0,
            "attempts": [],
            "claim_msg": None,
            "error_reason": None,
            "status_reason": None,
            "exit_code": None,
            "runtime": None,
            "retry_at": None,
            "last_completion_date": None,
        },
        expect={"status": item["status"], "run": item.get("run", 0)},
    )
    if new is None:
        return svc.jobs.get(item["function_id"], item["job_key"], consistent=True)
    svc.queue.send_batch(function["queue_url"], [message_body(new)])
    mark_active(svc, function)
    return new


def _job_blobs(item: Item, *, results: bool) -> list[str]:
    keys = [a["log_key"] for a in all_attempts(item) if a.get("log_key")]
    if item.get("args_key"):
        keys.append(item["args_key"])
    if results and item.get("result_key"):
        keys.append(item["result_key"])
    return keys


def delete_items(svc: Services, items: list[Item], *, delete_results: bool) -> list[Item]:
    """Delete jobs that are not running (pending ones are canceled first); returns those deleted."""
    deletable = []
    for item in items:
        if item["status"] == JobStatus.PENDING.value:
            item = cancel_item(svc, item)
        if item["status"] in TERMINAL:
            deletable.append(item)
    if not delete_results:
        for item in deletable:
            keep_result(svc, item)
    blobs = [k for i in deletable for k in _job_blobs(i, results=delete_results)]
    svc.blobs.delete(blobs)
    svc.jobs.delete_batch((i["function_id"], i["job_key"]) for i in deletable)
    return deletable


def keep_result(svc: Services, item: Item) -> None:
    """A small result lives inside its job item: before the item goes, copy it to where large
    results are, so every kept result outlives its job at ``layout.result_key`` (and
    ``GET /jobs/{id}/result`` still answers while the Function exists)."""
    if item.get("result") is not None and "result_key" not in item:
        svc.blobs.put(layout.result_key(item["function_id"], item["job_key"]), bytes(item["result"]))


def cancel_job(svc: Services, principal: str, job_id_: str) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    return to_wire(cancel_item(svc, item), function=function, now=svc.clock())


def rerun_job(svc: Services, principal: str, job_id_: str) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    return to_wire(rerun_item(svc, item, function), function=function, now=svc.clock())


def delete_job(svc: Services, principal: str, job_id_: str, *, delete_results: bool) -> None:
    item, _ = owned_job(svc, principal, job_id_)
    if item["status"] not in TERMINAL and item["status"] != JobStatus.PENDING.value:
        raise errors.ConflictError(
            f"job {job_id_} is {item['status']}: cancel it and wait before deleting it"
        )
    delete_items(svc, [item], delete_results=delete_results)


def update_tags(svc: Services, principal: str, job_id_: str, tags: list[str]) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    new = svc.jobs.transition(item["function_id"], item["job_key"], changes={"tags": list(tags)}, expect={})
    if new is None:
        raise errors.NotFoundError(f"job {job_id_} does not exist")
    return to_wire(new, function=function, now=svc.clock())


def bulk_operation(svc: Services, principal: str, operation: str, query: JobQuery) -> JobIds:
    """Cancel, rerun or delete the jobs a filter selects, at most 1000 per call (follow the cursor)."""
    filter_terms = list(query.filter)
    if query.job_ids is not None:
        for jid in query.job_ids:
            split_job_id(jid)
        filter_terms.append({"op": "in", "name": "id", "val": list(query.job_ids)})
    if operation == "rerun":
        filter_terms.append({"op": "in", "name": "status", "val": sorted(s.value for s in RERUNNABLE)})
    elif operation == "cancel":
        filter_terms.append(
            {"op": "in", "name": "status", "val": [JobStatus.PENDING.value, JobStatus.RUNNING.value]}
        )
    page = list_jobs(
        svc,
        principal,
        function_id=query.function_id,
        filter_json=filter_terms,
        page_size=limits.MAX_BULK_OPERATION,
        cursor=query.page_cursor,
    )
    changed: list[str] = []
    functions = OwnedFunctions(svc, principal)
    for job in page.data:
        fid, key = split_job_id(job.id)
        item = svc.jobs.get(fid, key, consistent=True)
        function = functions.get(fid)
        if operation == "cancel":
            cancel_item(svc, item)
            changed.append(job.id)
        elif operation == "rerun":
            if rerun_item(svc, item, function).get("run", 0) != item.get("run", 0):
                changed.append(job.id)
        else:
            changed.extend(job_id(i) for i in delete_items(svc, [item], delete_results=query.delete_results))
    return JobIds(job_ids=changed, page_cursor=page.meta.page_cursor)


# --------------------------------------------------------------------------- outputs


def job_log(svc: Services, principal: str, job_id_: str, attempt: int | None = None) -> list[LogLine]:
    item, _ = owned_job(svc, principal, job_id_)
    attempts = all_attempts(item)
    if not attempts:
        return []
    if attempt is None:
        record = attempts[-1]
    else:
        if not 1 <= attempt <= len(attempts):
            raise errors.NotFoundError(f"job {job_id_} has attempts 1 to {len(attempts)}, not {attempt}")
        record = attempts[attempt - 1]
    if record.get("log_key"):
        text = svc.blobs.get(record["log_key"]).decode("utf-8", "replace")
    else:
        text = record.get("log") or ""
    return [parse_log_line(line, record.get("started")) for line in text.splitlines()]


def parse_log_line(line: str, fallback: str | None) -> LogLine:
    stamp, sep, message = line.partition("\t")
    if sep:
        try:
            return LogLine(date=datetime.fromisoformat(stamp.replace("Z", "+00:00")), log=message)
        except ValueError:
            pass
    return LogLine(
        date=datetime.fromisoformat((fallback or "1970-01-01T00:00:00Z").replace("Z", "+00:00")), log=line
    )


def job_result(svc: Services, principal: str, job_id_: str) -> ResultBody:
    try:
        item, _ = owned_job(svc, principal, job_id_)
    except errors.NotFoundError:
        return _kept_result(svc, principal, job_id_)
    if item["status"] != JobStatus.SUCCESS.value:
        raise errors.JobFailedError(f"job {job_id_} is {item['status']}, not success: it has no result")
    if "result" in item:
        data = item["result"]
        return ResultBody(job_id=job_id_, size=len(data), data=base64.b64encode(data).decode())
    if "result_key" in item:
        size = int(item.get("result_size") or svc.blobs.size(item["result_key"]))
        url = svc.blobs.presign_get(item["result_key"], seconds=limits.PRESIGNED_URL_SECONDS)
        return ResultBody(job_id=job_id_, size=size, url=url)
    raise errors.NotFoundError(f"job {job_id_} returned None: no result was stored")


def _kept_result(svc: Services, principal: str, job_id_: str) -> ResultBody:
    """The result a deleted job left behind (deleted with ``delete_results=False``)."""
    function_id, key = split_job_id(job_id_)
    owned_function(svc, principal, function_id)  # 404 unless the caller owns the Function
    result_key = layout.result_key(function_id, key)
    if not svc.blobs.exists(result_key):
        raise errors.NotFoundError(f"job {job_id_} does not exist, and left no result")
    size = svc.blobs.size(result_key)
    if size <= limits.INLINE_RESULT_BYTES:
        data = svc.blobs.get(result_key)
        return ResultBody(job_id=job_id_, size=size, data=base64.b64encode(data).decode())
    url = svc.blobs.presign_get(result_key, seconds=limits.PRESIGNED_URL_SECONDS)
    return ResultBody(job_id=job_id_, size=size, url=url)
