"""The worker's job metrics: one CloudWatch embedded-metric-format (EMF) record per ended job.

``JobsSucceeded``, ``JobsFailed`` and ``JobsTimedOut`` (a count of 1) and ``JobDuration`` (the
last attempt's runtime, seconds) in the namespace ``layout.WORKER_METRICS_NAMESPACE``, with a
``function_id`` dimension: what the dashboard's job widgets plot (``stacks/dashboard.py``).

Workers write into their own namespace, never the control plane's ``GeoBatch`` that the alarms
read: user code runs beside the worker (its output reaches the same log stream, its role may put
metrics only into the workers' namespace), so nothing it writes can silence or raise an alarm.
A retried attempt is not a job that ended, and a canceled job is not a measure of the work: only
success, failure and timeout are recorded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from geobatch_core import layout

__all__ = ["JOB_METRICS", "emit_job_metrics", "job_record"]

# The metric each terminal status counts (the names the dashboard plots, from layout).
JOB_METRICS = layout.JOB_ENDED_METRICS
DURATION = layout.JOB_DURATION_METRIC


def job_record(
    function_id: str, status: str, runtime: float, now: float | None = None
) -> dict[str, Any] | None:
    """The EMF record of a job of ``function_id`` that ended ``status`` after ``runtime`` seconds;
    None for statuses that are not counted."""
    metric = JOB_METRICS.get(status)
    if metric is None:
        return None
    return {
        "_aws": {
            "Timestamp": int((time.time() if now is None else now) * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": layout.WORKER_METRICS_NAMESPACE,
                    "Dimensions": [["function_id"]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}, {"Name": DURATION, "Unit": "Seconds"}],
                }
            ],
        },
        "function_id": function_id,
        metric: 1,
        DURATION: round(float(runtime), 3),
    }


def emit_job_metrics(function_id: str, status: str, runtime: float, stream: TextIO | None = None) -> None:
    """Write the job's EMF record as one line (an EMF record must be a whole log event)."""
    record = job_record(function_id, status, runtime)
    if record is None:
        return
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(record, separators=(",", ":")) + "\n")
    out.flush()
