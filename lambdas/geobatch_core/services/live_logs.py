"""The log of a running attempt, shipped in numbered parts while it runs.

The worker appends the new lines of a running job's log as an S3 part every few seconds and
counts the parts on the attempt record (one PUT and one conditional write per part, fenced by the
claim token like every other write of the attempt). The interval grows with the parts and their
number is capped, so a job's live log costs at most ``MAX_PARTS`` × 2 requests however long it
runs; when the attempt ends, its whole log is stored as before and the parts are deleted.
"""

from __future__ import annotations

from dataclasses import replace

from geobatch.wire.errors import NotFoundError
from geobatch.wire.models import JobStatus
from geobatch_core import layout
from geobatch_core.ports import BlobStore, JobStore
from geobatch_core.records import AttemptRecord, JobRecord
from geobatch_core.services.decisions import last_attempt

FIRST_SECONDS = 5.0  # a job that ends sooner ships no part at all
MAX_PARTS = 40
PART_BYTES = 1_000_000
ACTIVE = [JobStatus.RUNNING.value, JobStatus.CANCEL.value, JobStatus.CANCELING.value]


def interval(parts: int) -> float:
    """Seconds before part ``parts`` (0-based): 5 s for the first ten, then longer and longer."""
    return FIRST_SECONDS * (1 + parts // 10)


def part_keys(function_id: str, job: JobRecord, attempt: int, parts: int) -> list[str]:
    run = int(job.run or 0)
    return [layout.live_log_key(function_id, job.job_key, run, attempt, i) for i in range(parts)]


def ship_part(
    jobs: JobStore, blobs: BlobStore, job: JobRecord, attempt: int, token: str, part: int, data: bytes
) -> bool:
    """Store part ``part`` and count it on the running attempt; False if the job is not ours any more."""
    function_id = job.function_id
    (key,) = part_keys(function_id, job, attempt, part + 1)[part:]
    blobs.put(key, data, content_type="text/plain; charset=utf-8")
    record = replace(last_attempt(job), number=attempt, live_log_parts=part + 1)
    done = jobs.transition(
        function_id,
        job.job_key,
        changes={},
        expect={"status": ACTIVE, "claim_token": token, "execution_count": attempt},
        replace_last_attempt=record,
    )
    return done is not None


def live_text(blobs: BlobStore, job: JobRecord, number: int, attempt: AttemptRecord) -> str | None:
    """The parts shipped so far, joined; None if they are gone (the attempt just ended)."""
    keys = part_keys(job.function_id, job, number, int(attempt.live_log_parts or 0))
    try:
        return b"".join(blobs.get(k) for k in keys).decode("utf-8", "replace")
    except NotFoundError:
        return None
