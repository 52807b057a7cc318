"""Ports: what the core needs from the outside world.

Adapters in ``geobatch_core.adapters`` implement them with boto3 (DynamoDB, SQS, S3, AWS Batch,
CodeBuild); local mode implements the executor and image builder with subprocesses and
virtualenvs. Core services receive ports as arguments and never build them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Required, TypedDict, Unpack

if TYPE_CHECKING:
    from geobatch_core.records import AttemptRecord, FunctionRecord, JobRecord

Item = dict[str, Any]
"""A row of a table as its store holds it: what is not a Function or a job (an operation's record,
a submission reference, an idempotency record), and the items the records map to and from."""
Key = dict[str, Any]


class FunctionStore(Protocol):
    def put_new(self, function: FunctionRecord) -> None:
        """Create a Function item; ``ConflictError`` if the id exists."""

    def get(self, function_id: str) -> FunctionRecord:
        """The Function; ``NotFoundError`` if there is none."""

    def update(
        self, function_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> FunctionRecord:
        """Set ``changes`` (a value of None removes the attribute) when every ``expect`` attribute holds
        its value (a list value means "one of"); returns the new item. ``ConflictError`` when an
        expectation fails, ``NotFoundError`` when the item is gone."""

    def delete(self, function_id: str) -> None: ...

    def list_by_owner(
        self, owner: str | None, *, start: Key | None, limit: int
    ) -> tuple[list[FunctionRecord], Key | None]:
        """Functions of one owner, newest first (all owners when ``owner`` is None)."""


@dataclass(frozen=True)
class JobCounts:
    """A Function's jobs per status as its store keeps them, moved in the same atomic write as every
    job change (see ``services.counters``). ``version`` changes with every counted write (opaque:
    the store reads it back to check that nothing moved, see ``JobStore.correct_counts``)."""

    by_status: Mapping[str, int]
    version: str


class JobWrite(TypedDict, total=False):
    """A conditional job write, as ``JobStore.transition`` takes it (its keywords): apply ``changes``
    (a value of None removes the attribute, ``store.Increment`` adds) only if every ``expect``
    attribute holds its value (a list means one of, ``store.ABSENT`` that it is missing);
    optionally append an attempt entry, or replace the one its number names, in the same write."""

    changes: Required[Mapping[str, Any]]
    expect: Required[Mapping[str, Any]]
    append_attempt: AttemptRecord | None
    replace_last_attempt: AttemptRecord | None


class JobPage(TypedDict, total=False):
    """One page of a Function's jobs, as ``JobStore.query`` takes it (its keywords): after the
    exclusive ``start`` key (None: from the first), at most ``limit`` jobs, in creation order or
    newest first; only the ``projection`` attributes if given (and the key attributes,
    ``function_id`` and ``job_key``, always: a projected job is still a ``JobRecord``);
    ``consistent``: a strongly consistent read, which sees every write acknowledged before it."""

    start: Required[Key | None]
    limit: Required[int]
    newest_first: Required[bool]
    projection: Sequence[str] | None
    consistent: bool


class JobRows(Protocol):
    """The Jobs table row by row, as untyped items: jobs, and the rows kept beside them under
    partitions of their own (``services.operations``' records and markers). What ``JobStore``'s
    typed job methods are made of (``store.TypedJobs``)."""

    def put_rows(self, rows: Sequence[Item], *, check_existing: bool = True) -> list[str]:
        """Create rows that do not exist yet; returns the keys created (existing ones are left alone).
        ``check_existing=False`` when the caller knows none can exist (a first submission)."""

    def get_row(self, partition: str, key: str, *, consistent: bool = False) -> Item:
        """The row; ``NotFoundError`` if there is none."""

    def update_row(self, partition: str, key: str, **write: Unpack[JobWrite]) -> Item | None:
        """The conditional write ``write`` (see ``JobWrite``): the new row, or None when the
        condition failed."""

    def query_rows(self, partition: str, **page: Unpack[JobPage]) -> tuple[list[Item], Key | None]:
        """One page of a partition's rows in key order (see ``JobPage``). A projection keeps the key
        attributes (``function_id``, ``job_key``) besides those it names."""

    def query_index_rows(
        self, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[Item], Key | None]:
        """One page of the Jobs index ``layout.JOB_INDEXES[sort]``: the jobs whose partition attribute
        (owner, or function_id) is ``partition`` that have ``sort``, in ``sort`` order, after the
        exclusive ``start`` (a key of the table's and the index's attributes, from an item)."""


class JobStore(JobRows, Protocol):
    def reserve_reference(
        self, function_id: str, reference_id: str, now_ms: int, fingerprint: str = ""
    ) -> tuple[int, bool]:
        """Record a submission reference; returns the time (ms) of its first use, so a resent batch
        gets the same job ids, and whether this call was that first use. ``ConflictError`` when the
        reference was first used with another ``fingerprint`` (different jobs)."""

    def claim_request(
        self, scope: str, key: str, fingerprint: str, *, now_s: int, lease_s: int, ttl_s: int
    ) -> Item | None:
        """Claim an idempotency key for one execution: None when claimed, else its record (with
        ``state`` "done" and the stored response, or "pending" while another execution runs)."""

    def complete_request(self, scope: str, key: str, fingerprint: str, response: Mapping[str, Any]) -> None:
        """Store the response of a claimed key's execution."""

    def release_request(self, scope: str, key: str) -> None:
        """Forget a claimed key whose execution failed transiently, so a retry executes again."""

    def put_new_batch(self, jobs: Sequence[JobRecord], *, check_existing: bool = True) -> list[str]:
        """Create jobs that do not exist yet; returns the keys created (existing ones are left alone).
        ``check_existing=False`` when the caller knows none can exist (a first submission)."""

    def get(self, function_id: str, job_key: str, *, consistent: bool = False) -> JobRecord: ...

    def transition(self, function_id: str, job_key: str, **write: Unpack[JobWrite]) -> JobRecord | None:
        """The conditional write ``write`` (see ``JobWrite``): the job as written, or None when the
        condition failed."""

    def query(self, function_id: str, **page: Unpack[JobPage]) -> tuple[list[JobRecord], Key | None]:
        """One page of a Function's jobs in creation order (``consistent``: a strongly consistent read,
        which sees every write that was acknowledged before it)."""

    def delete_batch(self, keys: Iterable[tuple[str, str]]) -> None: ...

    def counts(self, function_id: str) -> JobCounts:
        """The Function's per-status counts: one small read, whatever the number of jobs."""

    def correct_counts(self, function_id: str, deltas: Mapping[str, int], *, version: str) -> bool:
        """Add ``deltas`` to the counts if their ``version`` is still the one read (False if not)."""

    def delete_counts(self, function_id: str) -> None:
        """The Function is gone: remove its counts."""

    def query_index(
        self, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[JobRecord], Key | None]:
        """``query_index_rows``' page as jobs."""


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt: str
    body: str
    receive_count: int = 1


class Queue(Protocol):
    def create(self, name: str, *, max_receive_count: int, visibility_seconds: int) -> tuple[str, str]:
        """Create a job queue and its dead-letter queue; returns (queue_url, dlq_url)."""

    def delete(self, queue_url: str) -> None: ...

    def send_batch(self, queue_url: str, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        """Send in batches of 10; raises ``ServiceError`` if any message could not be sent."""

    def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]: ...

    def delete_batch(self, queue_url: str, receipts: Sequence[str]) -> None: ...

    def change_visibility_batch(self, queue_url: str, entries: Sequence[tuple[str, int]]) -> None:
        """(receipt, seconds) pairs; a message whose receipt is stale is skipped."""

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) approximate message counts."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes:
        """``NotFoundError`` when absent."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """Size in bytes; ``NotFoundError`` when absent."""

    def delete(self, keys: Sequence[str]) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def presign_put(self, key: str, *, seconds: int, max_bytes: int) -> str: ...

    def presign_get(self, key: str, *, seconds: int) -> str: ...


class Executor(Protocol):
    """Runs workers for a Function (AWS Batch array jobs, or local subprocesses)."""

    def register(self, function: FunctionRecord) -> Mapping[str, Any]:
        """Prepare to run the Function's workers (e.g. register a job definition); returns attributes
        to store on the Function item."""

    def running_workers(self, function: FunctionRecord) -> int:
        """Workers started and not yet finished (including those still being placed)."""

    def worker_states(self, function: FunctionRecord) -> Mapping[str, int]:
        """Active workers by state; "RUNNING" for those running, other keys (e.g. RUNNABLE: waiting
        for capacity from AWS Batch) for those not yet started. Used to say why jobs wait."""

    def start_workers(self, function: FunctionRecord, count: int) -> None: ...

    def stop_workers(self, function: FunctionRecord) -> None:
        """Best effort: ask the Function's workers to stop (they return unstarted messages)."""

    def release(self, function: FunctionRecord) -> None:
        """The Function is deleted: remove what ``register`` made for it (job definition, role)."""


class EventPublisher(Protocol):
    """Publishes service events (EventBridge in AWS, a log line locally)."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class ImageBuilder(Protocol):
    def start_build(self, function: FunctionRecord, *, bundle_key: str, image_hash: str) -> Mapping[str, Any]:
        """Start building the Function's image; returns attributes to store on the Function item
        (e.g. build_id). The build's end reaches ``services.functions.finish_build``."""

    def image_uri(self, image_hash: str) -> str:
        """Where the image of this recipe lives once built."""

    def existing_image(self, image_hash: str) -> str | None:
        """The image URI already built for this hash, if any (identical requirements reuse it)."""
