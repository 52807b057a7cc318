"""AWS Batch's "Batch Job State Change" EventBridge events, as the batch_events Lambda reads them.

``parse_batch_job_event`` turns one into a ``BatchJobOutcome`` (a worker's end: a plain worker, an
array child or an array parent), apart from the executor that submits the workers
(``adapters.batch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geobatch.wire import env


@dataclass(frozen=True)
class BatchJobOutcome:
    """What the batch_events Lambda needs from a "Batch Job State Change" event."""

    job_id: str
    job_name: str
    status: str
    status_reason: str = ""
    exit_code: int | None = None
    container_reason: str = ""
    out_of_memory: bool = False
    function_id: str | None = None
    job_queue: str = ""
    job_definition: str = ""
    array_index: int | None = None
    array_size: int | None = None
    array_status_summary: dict[str, int] = field(default_factory=dict)
    log_stream_name: str | None = None

    @property
    def is_array_parent(self) -> bool:
        return self.array_size is not None and self.array_index is None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def failed(self) -> bool:
        return self.status == "FAILED"


def parse_batch_job_event(event: Mapping[str, Any]) -> BatchJobOutcome:
    """Parse an EventBridge ``aws.batch`` "Batch Job State Change" event.

    ``detail`` has the shape of ``DescribeJobs``' job: jobId, jobName, status, statusReason,
    container{exitCode, reason, logStreamName, environment}, arrayProperties{size | index,
    statusSummary}, tags. Raises ``ValueError`` for any other event.
    """
    if event.get("source") != "aws.batch" or event.get("detail-type") != "Batch Job State Change":
        raise ValueError(
            f"not a Batch Job State Change event: {event.get('source')}/{event.get('detail-type')}"
        )
    detail = event.get("detail") or {}
    container = detail.get("container") or {}
    attempts = detail.get("attempts") or []
    last_container = (attempts[-1].get("container") or {}) if attempts else {}
    exit_code = container.get("exitCode", last_container.get("exitCode"))
    container_reason = str(container.get("reason") or last_container.get("reason") or "")
    status_reason = str(detail.get("statusReason") or "")
    array = detail.get("arrayProperties") or {}
    environment = {e.get("name"): e.get("value") for e in container.get("environment") or []}
    function_id = environment.get(env.WORKER_FUNCTION_ID) or (detail.get("tags") or {}).get(
        "geobatch:function"
    )
    reasons = f"{status_reason} {container_reason}"
    return BatchJobOutcome(
        job_id=str(detail.get("jobId", "")),
        job_name=str(detail.get("jobName", "")),
        status=str(detail.get("status", "")),
        status_reason=status_reason,
        exit_code=int(exit_code) if exit_code is not None else None,
        container_reason=container_reason,
        out_of_memory="OutOfMemoryError" in reasons or exit_code == 137,
        function_id=function_id,
        job_queue=str(detail.get("jobQueue", "")),
        job_definition=str(detail.get("jobDefinition", "")),
        array_index=int(array["index"]) if "index" in array else None,
        array_size=int(array["size"]) if "size" in array else None,
        array_status_summary={str(k): int(v) for k, v in (array.get("statusSummary") or {}).items()},
        log_stream_name=container.get("logStreamName") or last_container.get("logStreamName"),
    )
