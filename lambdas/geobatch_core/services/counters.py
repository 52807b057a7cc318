"""Per-status job counts: read in one small request, whatever the number of jobs; and the
operator's recount that checks (and, if ever needed, corrects) them against the jobs themselves.

The counts are kept by the JobStore in the same atomic write as every job change: a DynamoDB
transaction (``adapters.dynamodb_counts``, which says why transactions rather than a stream) or a
SQLite trigger in the write's own transaction (local mode). So they never lag the jobs and are
exact under duplicates, lost answers, retries and crashes: a write either happened with its count
or did not happen at all.

A recount scans every job (its cost grows with the Function, which is why nothing polls it). It is
exact only over a quiet stretch: the counts' version is read before and after the scan, and a
difference means jobs moved meanwhile, so the recount says "busy" instead of comparing a moving
scan with moving counts. A correction is applied only if the version is still the one compared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from geobatch.wire.models import JobStatus
from geobatch_core.ports import JobStore, Key


def job_statistics(jobs: JobStore, function_id: str) -> dict[str, int]:
    """Counts for all eight statuses (zeros included), from the Function's counter items."""
    stored = jobs.counts(function_id).by_status
    counts = {s.value: 0 for s in JobStatus}
    counts.update({status: int(n) for status, n in stored.items() if n})
    return counts


@dataclass(frozen=True)
class Recount:
    function_id: str
    counted: dict[str, int]  # from the jobs themselves
    stored: dict[str, int]  # what the counter items said
    busy: bool = False  # jobs moved during the scan: nothing compared, retry when quiet
    corrected: bool = False
    drift: dict[str, int] = field(default_factory=dict)  # counted - stored, non-zero entries

    @property
    def exact(self) -> bool:
        return not self.busy and not self.drift


def recount(jobs: JobStore, function_id: str, *, correct: bool = False) -> Recount:
    """Count the Function's jobs by scanning them and compare with the stored counts; with
    ``correct``, make the stored counts equal the scan (only if nothing moved since)."""
    before = jobs.counts(function_id)
    counted: Counter[str] = Counter()
    start: Key | None = None
    while True:
        page, start = jobs.query(
            function_id, start=start, limit=5000, newest_first=False, projection=["status"], consistent=True
        )
        counted.update(j.status for j in page)
        if not start:
            break
    after = jobs.counts(function_id)
    stored = {s: int(n) for s, n in after.by_status.items() if n}
    if before.version != after.version:
        return Recount(function_id, dict(counted), stored, busy=True)
    drift = {s: counted.get(s, 0) - stored.get(s, 0) for s in set(counted) | set(stored)}
    drift = {s: d for s, d in drift.items() if d}
    if not (drift and correct):
        return Recount(function_id, dict(counted), stored, drift=drift)
    corrected = jobs.correct_counts(function_id, drift, version=after.version)
    # Not corrected: a job moved between the second read and the correction; nothing was changed.
    return Recount(function_id, dict(counted), stored, busy=not corrected, corrected=corrected, drift=drift)
