"""Submitting a Function's jobs in bulk: argument checks, request-sized batches, idempotent resends.

Each batch carries a ``reference_id``; a batch sent without a clear answer is remembered by its
fingerprint and goes again under the same reference, so a lost answer never doubles jobs. A batch
the server measures bigger than the request limit (413) is halved, since nothing was created.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import pydantic

from geobatch.job import Job
from geobatch.resource import batch_fingerprint, validation_error
from geobatch.wire import codec, errors, limits, models

if TYPE_CHECKING:
    from geobatch.function import Function

__all__ = ["JobBulkCreateError", "JobBulkCreateResult", "map_jobs", "submit_batch"]

# Room in a bulk request for everything but the per-job arguments (function id, tags, JSON syntax).
BULK_OVERHEAD_BYTES = 64_000
# Answers that say the batch was refused (nothing created): no reference to remember.
_REJECTED = (errors.BadRequestError, errors.NotFoundError, errors.AuthError, errors.PayloadTooLargeError)


@dataclass
class JobBulkCreateError:
    """A batch of ``Function.map`` that could not be submitted: its inputs, reference and the error.

    Submitting it again is safe: ``fn.map(error.args, error.kwargs, tags=error.tags,
    environments=error.environments)`` on the same Function object resends the batch under the same
    ``reference_id``, so if the batch was in fact created (only the answer was lost) its jobs are
    returned instead of created twice. (``fn.map(error.args)`` is the same call when the batch had
    no kwargs, tags or environments.)
    """

    function_id: str
    args: list[list[Any]] | None
    kwargs: list[dict[str, Any]] | None
    environments: list[dict[str, str] | None] | None
    reference_id: str
    exception: Exception
    tags: list[str] | None = None

    def __str__(self) -> str:
        count = len(self.args if self.args is not None else self.kwargs or [])
        return f"batch {self.reference_id} of {count} jobs failed: {self.exception}"


class JobBulkCreateResult(list[Job]):
    """The jobs created by ``Function.map`` (a list), plus the batches that failed in ``errors``."""

    def __init__(self, jobs: Iterable[Job] = ()):
        super().__init__(jobs)
        self.errors: list[JobBulkCreateError] = []

    @property
    def is_success(self) -> bool:
        """True when every batch was submitted."""
        return not self.errors

    def append_error(self, error: JobBulkCreateError) -> None:
        """Record a failed batch."""
        self.errors.append(error)


class _Columns(NamedTuple):
    """The per-job inputs of a bulk submission, each None or one entry per job."""

    args: builtins.list[builtins.list[Any]] | None
    kwargs: builtins.list[dict[str, Any]] | None
    envs: builtins.list[dict[str, str] | None] | None

    def part(self, start: int, stop: int) -> _Columns:
        def cut(values: builtins.list[Any] | None) -> Any:
            return None if values is None else values[start:stop]

        return _Columns(cut(self.args), cut(self.kwargs), cut(self.envs))

    def sizes(self, count: int) -> builtins.list[int]:
        """The JSON size of each job's inputs (``PayloadTooLargeError`` if one is over the limit)."""
        sizes = [
            len(codec.encode_args(self.args[i] if self.args else [], self.kwargs[i] if self.kwargs else {}))
            + (len(json.dumps(self.envs[i])) if self.envs else 0)
            for i in range(count)
        ]
        for i, size in enumerate(sizes):
            if size > limits.MAX_ARGS_BYTES:
                raise errors.PayloadTooLargeError(
                    f"the arguments of job {i} are {size:,} bytes of JSON; at most {limits.MAX_ARGS_BYTES:,} "
                    "are allowed: put large inputs in S3 and pass their keys"
                )
        return sizes


def map_jobs(
    fn: Function,
    args: Iterable[Iterable[Any]] | None,
    kwargs: Iterable[Mapping[str, Any]] | None,
    tags: builtins.list[str] | None,
    batch_size: int,
    environments: Iterable[Mapping[str, str] | None] | None,
) -> JobBulkCreateResult:
    """What ``fn.map(...)`` does (see :meth:`geobatch.Function.map`)."""
    if not 1 <= batch_size <= limits.MAX_JOBS_PER_REQUEST:
        raise errors.ValidationError(f"batch_size must be 1-{limits.MAX_JOBS_PER_REQUEST}, not {batch_size}")
    columns, count = _columns(args, kwargs, environments)
    result = JobBulkCreateResult()
    if count == 0:
        return result
    fn.save()
    for number, (start, stop) in enumerate(_batches(columns.sizes(count), batch_size)):
        part = columns.part(start, stop)
        try:
            result.extend(submit_batch(fn, part, tags))
        except errors.GeoBatchError as exc:
            fn._forget_statistics()
            if number == 0 or isinstance(exc, errors.NotFoundError):
                raise
            reference_id = getattr(exc, "reference_id", "")
            result.append_error(JobBulkCreateError(fn.id, *part, reference_id, exc, tags))
    fn._forget_statistics()
    return result


def _columns(
    args: Iterable[Iterable[Any]] | None,
    kwargs: Iterable[Mapping[str, Any]] | None,
    environments: Iterable[Mapping[str, str] | None] | None,
) -> tuple[_Columns, int]:
    """The checked inputs and the number of jobs (``ValidationError`` for inputs of other shapes)."""
    bulk_args = _positional_lists(args) if args is not None else None
    bulk_kwargs = (
        [dict(_mapping(k, "kwargs", i)) for i, k in enumerate(kwargs)] if kwargs is not None else None
    )
    bulk_envs = (
        [dict(_mapping(e, "environments", i)) if e is not None else None for i, e in enumerate(environments)]
        if environments is not None
        else None
    )
    given = (("args", bulk_args), ("kwargs", bulk_kwargs), ("environments", bulk_envs))
    lengths = {n: len(v) for n, v in given if v is not None}
    if not lengths:
        raise errors.ValidationError("give args (one list of positional arguments per job) and/or kwargs")
    if len(set(lengths.values())) > 1:
        raise errors.ValidationError(
            f"args, kwargs and environments must have the same length, got {lengths}"
        )
    return _Columns(bulk_args, bulk_kwargs, bulk_envs), next(iter(lengths.values()))


def submit_batch(fn: Function, part: _Columns, tags: builtins.list[str] | None) -> builtins.list[Job]:
    """Submit one batch of ``fn``'s jobs; halve it when the server finds it too large."""
    # A batch sent before without a clear answer goes again under its first reference.
    batch_print = batch_fingerprint(part.args, part.kwargs, part.envs, tags)
    reference_id = fn._unanswered.get(batch_print) or uuid.uuid4().hex
    try:
        body = models.JobBulkCreate(
            function_id=fn.id,
            bulk_args=part.args,
            bulk_kwargs=part.kwargs,
            bulk_environments=part.envs,
            tags=tags or [],
            reference_id=reference_id,
        )
    except pydantic.ValidationError as exc:
        raise validation_error(exc, "job batch") from None
    try:
        # One encoded body: the client's retries resend these bytes, reference included.
        page = models.JobPage.model_validate(
            fn.client.post("/jobs/bulk", body.model_dump(mode="json", exclude_none=True))
        )
    except errors.PayloadTooLargeError:
        count = body.count
        if count <= 1:
            raise
        # The server measured it bigger than we did: halve it (nothing was created).
        half = count // 2
        return [job for a, b in ((0, half), (half, count)) for job in submit_batch(fn, part.part(a, b), tags)]
    except errors.GeoBatchError as exc:
        exc.reference_id = reference_id  # type: ignore[attr-defined]
        if not isinstance(exc, _REJECTED):
            fn._unanswered[batch_print] = reference_id
        raise
    fn._unanswered.pop(batch_print, None)
    return [Job._from_wire(job, fn.client) for job in page.data]


def _positional_lists(args: Iterable[Any]) -> builtins.list[builtins.list[Any]]:
    if isinstance(args, str | bytes | Mapping):
        raise errors.ValidationError("args must be a list with one entry per job, e.g. [(x,), (y,)]")
    result = []
    for i, item in enumerate(args):
        if isinstance(item, str | bytes):
            raise errors.ValidationError(
                f"args[{i}] is the string {item[:40]!r}: each element of args is the list of positional "
                f"arguments of one job, so write [({item[:20]!r},), ...] or [[x] for x in values]"
            )
        if isinstance(item, Mapping):
            raise errors.ValidationError(
                f"args[{i}] is a mapping: pass keyword arguments with kwargs=[{{...}}, ...]"
            )
        try:
            result.append(builtins.list(item))
        except TypeError:
            raise errors.ValidationError(
                f"args[{i}] is {item!r}, not a list of positional arguments: "
                "wrap it, e.g. [(x,) for x in values]"
            ) from None
    return result


def _mapping(value: Any, what: str, index: int) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise errors.ValidationError(f"{what}[{index}] is {value!r}, not a dict")
    return value


def _batches(sizes: builtins.list[int], batch_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``batch_size`` jobs whose arguments fit in one request."""
    budget = limits.MAX_REQUEST_BYTES - BULK_OVERHEAD_BYTES
    start, used = 0, 0
    for i, size in enumerate(sizes):
        cost = size + 8  # separators and the list brackets around each job
        if i > start and (i - start >= batch_size or used + cost > budget):
            yield start, i
            start, used = i, 0
        used += cost
    if start < len(sizes):
        yield start, len(sizes)
