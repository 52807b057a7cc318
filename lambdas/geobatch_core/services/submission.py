"""Job submission: one call or a bulk of up to 1,000, idempotent per reference_id."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from geobatch.wire import errors, limits
from geobatch.wire.codec import EncodingError, encode_args
from geobatch.wire.models import FunctionStatus, Job, JobBulkCreate, JobPage, JobSpec, JobStatus, Meta
from geobatch_core import layout
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services.access import owned_function
from geobatch_core.services.context import Services, iso, new_id
from geobatch_core.services.job_wire import message_body, to_wire


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
    """The jobs created, in the request's order, each as its id and state only: what the caller
    sent (arguments, environments, tags) is not echoed back. A full echo of 1,000 jobs with 50
    tags of 256 characters is 13 MB, over Lambda's 6 MB response limit (a 502 after the jobs were
    written); the SDK fills in what it sent (``geobatch.Function.map``)."""
    return JobPage(data=[submitted(i) for i in _create(svc, principal, bulk)], meta=Meta(total=bulk.count))


def submitted(job: JobRecord) -> Job:
    """A just-created job without what its submitter sent: a few hundred bytes whatever it carries."""
    return Job(
        id=job.id,
        function_id=job.function_id,
        creation_date=job.creation_date,
        status=JobStatus(job.status),
        reference_id=job.reference_id,
        run=job.run or 0,
    )


def _create(svc: Services, principal: str, bulk: JobBulkCreate) -> list[JobRecord]:
    function = owned_function(svc, principal, bulk.function_id)
    if function.enabled is False:
        raise errors.ConflictError(f"Function {bulk.function_id} is disabled: enable it to submit jobs")
    if function.status == FunctionStatus.BUILD_FAILED.value:
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
    jobs: list[JobRecord] = []
    for index, payload in enumerate(payloads):
        env = bulk.bulk_environments[index] if bulk.bulk_environments is not None else None
        key = _job_key(created_ms, bulk.reference_id, index)
        args_key = layout.args_key(bulk.function_id, key) if len(payload) > limits.INLINE_ARGS_BYTES else None
        if args_key is not None:
            svc.blobs.put(args_key, payload.encode(), content_type="application/json")
        jobs.append(
            JobRecord(
                function_id=bulk.function_id,
                job_key=key,
                owner=function.owner,
                status=JobStatus.PENDING.value,
                creation_date=iso(created),
                environment=env or None,
                tags=list(bulk.tags),
                reference_id=bulk.reference_id,
                run=0,
                execution_count=0,
                args_key=args_key,
                payload=None if args_key is not None else payload,
            )
        )
    svc.jobs.put_new_batch(jobs, check_existing=not fresh)
    # On a resend some messages may already be queued: duplicates are harmless, workers drop them.
    svc.queue.send_batch(function.queue_url or "", [message_body(j) for j in jobs])
    mark_active(svc, function)
    if svc.on_submit:
        svc.on_submit(bulk.function_id)
    return jobs


def mark_active(svc: Services, function: FunctionRecord) -> FunctionRecord:
    """Note that the Function has work, so its completion is announced when the work is done."""
    if function.active:
        return function
    return svc.functions.update(function.id, {"active": True})


def submit_job(svc: Services, principal: str, spec: JobSpec) -> Job:
    bulk = JobBulkCreate(
        function_id=spec.function_id,
        bulk_args=[spec.args],
        bulk_kwargs=[spec.kwargs],
        bulk_environments=[spec.environment],
        tags=spec.tags,
        reference_id=spec.reference_id or new_id(12),
    )
    return to_wire(_create(svc, principal, bulk)[0])  # one job: its full form is small
