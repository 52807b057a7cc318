"""Function use cases: create, bundle → build, finish build, get, list, update, delete."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import stat
import zipfile
from collections.abc import Callable
from typing import Any

from geobatch.wire import errors, limits
from geobatch.wire.models import (
    Function,
    FunctionCreate,
    FunctionCreated,
    FunctionPage,
    FunctionStatus,
    FunctionUpdate,
    Meta,
    S3Access,
    check_resources,
)
from geobatch_core import filters, layout
from geobatch_core.records import FunctionRecord, function_wire
from geobatch_core.services import counters, paging
from geobatch_core.services.access import can_access, owned_function
from geobatch_core.services.context import Services, iso, new_id
from geobatch_core.services.iterate import all_functions

DISPATCHABLE = (FunctionStatus.READY.value,)


def to_wire(function: FunctionRecord, statistics: dict[str, int] | None = None) -> Function:
    return function_wire(function, statistics)


def create_function(svc: Services, principal: str, spec: FunctionCreate) -> FunctionCreated:
    access = (spec.data_access or S3Access()).model_dump(mode="json")
    svc.settings.data_bound.check(access)  # before anything is created: a refusal leaves nothing behind
    now = iso(svc.clock())
    function_id = new_id()
    queue_url, dlq_url = svc.queue.create(
        layout.queue_name(svc.settings.queue_prefix, function_id),
        max_receive_count=svc.settings.max_receive_count,
        visibility_seconds=svc.settings.lost_worker_seconds,
    )
    record = FunctionRecord(
        id=function_id,
        owner=principal,
        name=spec.name,
        status=FunctionStatus.AWAITING_BUNDLE.value,
        creation_date=now,
        modified_date=now,
        entrypoint=spec.entrypoint,
        image=spec.image,
        requirements=spec.requirements,
        cpus=spec.cpus if spec.cpus is not None else limits.DEFAULT_CPUS,
        memory=spec.memory if spec.memory is not None else limits.DEFAULT_MEMORY_MB,
        maximum_concurrency=spec.maximum_concurrency or limits.DEFAULT_CONCURRENCY,
        timeout=spec.timeout or limits.DEFAULT_TIMEOUT_SECONDS,
        retry_count=spec.retry_count if spec.retry_count is not None else 0,
        environment=spec.environment or {},
        enabled=spec.enabled if spec.enabled is not None else True,
        auto_start=spec.auto_start if spec.auto_start is not None else True,
        data_access=access,
        queue_url=queue_url,
        dlq_url=dlq_url,
        bundle_key=layout.bundle_key(function_id),
    )
    svc.functions.put_new(record)
    url = svc.blobs.presign_put(
        layout.bundle_key(function_id),
        seconds=limits.PRESIGNED_URL_SECONDS,
        max_bytes=limits.MAX_BUNDLE_BYTES,
    )
    return FunctionCreated(function=function_wire(record), bundle_upload_url=url)


def check_bundle(data: bytes) -> None:
    """The control plane only reads the archive's directory: never extracts, imports or runs it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise errors.BadRequestError("the uploaded bundle is not a zip file") from None
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            raise errors.BadRequestError(f"the bundle has an unsafe path {name!r}: use relative paths only")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise errors.BadRequestError(f"the bundle has a symbolic link {name!r}: links are not allowed")
    if sum(i.file_size for i in archive.infolist()) > 4 * limits.MAX_BUNDLE_BYTES:
        raise errors.PayloadTooLargeError("the bundle unpacks to more than 200 MB")


def image_hash(svc: Services, function: FunctionRecord) -> str:
    # create_function writes both (its spec defaults them): never absent.
    recipe = "\n".join(
        [function.image or "", svc.settings.runtime_version, *sorted(function.requirements or [])]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:32]


def bundle_uploaded(svc: Services, principal: str, function_id: str) -> Function:
    """The zip is in S3: check it, then build the image (or reuse one with the same recipe)."""
    function = owned_function(svc, principal, function_id)
    if function.status not in (FunctionStatus.AWAITING_BUNDLE, FunctionStatus.BUILD_FAILED):
        raise errors.ConflictError(
            f"Function {function_id} is {function.status}: its bundle was already built"
        )
    bundle_key = function.bundle_key or ""  # create_function writes it: never absent
    try:
        size = svc.blobs.size(bundle_key)
    except errors.NotFoundError:
        raise errors.BadRequestError(
            "no bundle was uploaded: PUT the zip to bundle_upload_url first"
        ) from None
    if size > limits.MAX_BUNDLE_BYTES:
        raise errors.PayloadTooLargeError(
            f"the bundle is {size} bytes; at most {limits.MAX_BUNDLE_BYTES} allowed"
        )
    check_bundle(svc.blobs.get(bundle_key))
    digest = image_hash(svc, function)
    existing = svc.builder.existing_image(digest)
    expect = {"status": [FunctionStatus.AWAITING_BUNDLE.value, FunctionStatus.BUILD_FAILED.value]}
    if existing:
        svc.functions.update(
            function_id, {"status": FunctionStatus.BUILDING.value, "image_hash": digest}, expect=expect
        )
        return to_wire(finish_build(svc, function_id, succeeded=True, image_uri=existing, log="image reused"))
    function = svc.functions.update(
        function_id,
        {
            "status": FunctionStatus.BUILDING.value,
            "image_hash": digest,
            "build_started": iso(svc.clock()),
            "status_reason": None,
            "modified_date": iso(svc.clock()),
        },
        expect=expect,
    )
    started = svc.builder.start_build(function, bundle_key=function.bundle_key or "", image_hash=digest)
    if started:
        function = svc.functions.update(function_id, dict(started))
    return to_wire(function)


def finish_build(
    svc: Services,
    function_id: str,
    *,
    succeeded: bool,
    image_uri: str | None,
    log: str | None,
    reason: str = "",
) -> FunctionRecord:
    """The end of an image build (CodeBuild event in AWS, the local builder locally)."""
    if log is not None:
        svc.blobs.put(
            layout.build_log_key(function_id), log.encode(), content_type="text/plain; charset=utf-8"
        )
    building = {"status": FunctionStatus.BUILDING.value}
    if not succeeded:
        return svc.functions.update(
            function_id,
            {
                "status": FunctionStatus.BUILD_FAILED.value,
                "status_reason": reason or "the image build failed: see Function.build_log()",
                "modified_date": iso(svc.clock()),
            },
            expect=building,
        )
    function = svc.functions.get(function_id)
    ready = FunctionStatus.STOPPED if function.auto_start is False else FunctionStatus.READY
    registered = svc.executor.register(dataclasses.replace(function, image_uri=image_uri))
    function = svc.functions.update(
        function_id,
        {
            "status": ready.value,
            "image_uri": image_uri,
            "status_reason": None,
            "modified_date": iso(svc.clock()),
            **registered,
        },
        expect=building,
    )
    if svc.on_submit:
        svc.on_submit(function_id)
    return function


def build_reporter(svc: Services) -> Callable[[str, bool, str | None, str, str], None]:
    """The callback an asynchronous local builder calls when a build ends."""

    def report(function_id: str, ok: bool, image_uri: str | None, log: str, reason: str) -> None:
        finish_build(svc, function_id, succeeded=ok, image_uri=image_uri, log=log, reason=reason)

    return report


def job_statistics(svc: Services, function_id: str) -> dict[str, int]:
    """Counts per status, kept with every job write (``services.counters``): one small read."""
    return counters.job_statistics(svc.jobs, function_id)


def get_function(svc: Services, principal: str, function_id: str, *, statistics: bool = False) -> Function:
    function = owned_function(svc, principal, function_id)
    return to_wire(function, job_statistics(svc, function_id) if statistics else None)


def list_functions(
    svc: Services,
    principal: str,
    *,
    filter_json: str | None,
    sort: str | None,
    page_size: int,
    cursor: str | None,
    statistics: bool,
    limit: int | None = None,
) -> FunctionPage:
    """A principal has few Functions (hundreds at most), so they are read whole, filtered and sorted
    here, and paged by offset; the cursor carries the query so later pages need only the cursor."""
    state: dict[str, Any] = (
        paging.checked(paging.decode(cursor), ("filter", "sort", "limit", "offset"))
        if cursor
        else {"filter": filter_json, "sort": sort, "limit": limit, "offset": 0}
    )
    predicate, _ = filters.parse(state.get("filter"), filters.FUNCTION_FIELDS)
    order = filters.parse_sort(state.get("sort"), filters.FUNCTION_FIELDS) or [("creation_date", True)]
    owner = None if principal in svc.settings.admins else principal
    rows = [to_wire(f).model_dump() for f in all_functions(svc, owner) if can_access(svc, principal, f)]
    rows = paging.sort_items([r for r in rows if predicate(r)], order, key_of=lambda r: r)
    total = len(rows) if state.get("limit") is None else min(len(rows), int(state["limit"]))
    offset = int(state.get("offset", 0))
    page = rows[offset : min(offset + page_size, total)]
    next_offset = offset + len(page)
    next_cursor = paging.encode({**state, "offset": next_offset}) if next_offset < total else None
    data = [
        Function.model_validate({**r, "job_statistics": job_statistics(svc, r["id"]) if statistics else None})
        for r in page
    ]
    return FunctionPage(data=data, meta=Meta(page_cursor=next_cursor, total=total))


def update_function(svc: Services, principal: str, function_id: str, update: FunctionUpdate) -> Function:
    function = owned_function(svc, principal, function_id)
    changes: dict[str, Any] = update.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if not changes:
        return to_wire(function)
    check_resources(
        float(changes.get("cpus") or function.cpus or 0), int(changes.get("memory") or function.memory or 0)
    )
    if "data_access" in changes:
        svc.settings.data_bound.check(changes["data_access"])
    expect: dict[str, Any] = {}
    if "status" in changes:
        allowed = [FunctionStatus.READY.value, FunctionStatus.STOPPED.value]
        if function.status not in allowed:
            raise errors.ConflictError(_not_built(function_id, str(function.status)))
        expect["status"] = allowed
    changes["modified_date"] = iso(svc.clock())
    # Registering again also rewrites the worker role's policy (the executor's roles.ensure).
    runtime_changed = any(k in changes for k in ("cpus", "memory", "timeout", "environment", "data_access"))
    function = svc.functions.update(function_id, changes, expect=expect or None)
    if runtime_changed and function.image_uri:
        registered = svc.executor.register(function)
        if registered:
            function = svc.functions.update(function_id, dict(registered))
    if changes.get("status") == FunctionStatus.STOPPED.value:
        svc.executor.stop_workers(function)
    elif svc.on_submit:
        svc.on_submit(function_id)
    return to_wire(function)


def build_log(svc: Services, principal: str, function_id: str) -> str:
    owned_function(svc, principal, function_id)
    try:
        return svc.blobs.get(layout.build_log_key(function_id)).decode("utf-8", "replace")
    except errors.NotFoundError:
        raise errors.NotFoundError(f"Function {function_id} has no build log yet") from None


def _not_built(function_id: str, status: str) -> str:
    """Why a Function cannot be started or stopped yet, and what to do instead."""
    what = f"Function {function_id} is {status}: only a built Function can be started or stopped"
    if status == FunctionStatus.BUILD_FAILED.value:
        return (
            f"{what}; read its build log (geobatch functions build-log {function_id}), fix its "
            "requirements and save it again"
        )
    return f"{what}; wait until its build ends, or set auto_start to false so that it is stopped when built"
