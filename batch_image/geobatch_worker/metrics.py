"""The worker's job metrics, published to CloudWatch by the worker parent with PutMetricData.

``JobsSucceeded``, ``JobsFailed`` and ``JobsTimedOut`` (a sample of 1 per job that ended so) and
``JobDuration`` (the ended job's last runtime, seconds) go into ``layout.WORKER_METRICS_NAMESPACE``
with the one dimension ``function_id`` (``layout.worker_metric_names()``): what the dashboard's job
widgets plot (``stacks/dashboard.py``).

Why not EMF log lines (what this module wrote before): in AWS Batch a container's log reaches
CloudWatch through the awslogs driver, which sends no EMF header, and there is no CloudWatch agent,
so CloudWatch never turned those lines into metrics. Why not a request per job: at $0.01 per 1,000
PutMetricData requests that would cost more than the rest of the control plane for short jobs. So
the worker aggregates: per (function_id, metric) a statistic set (SampleCount, Sum, Minimum,
Maximum) of what ended since the last flush, published every ``FLUSH_SECONDS`` and once more at
exit (``close``, which the graceful SIGTERM path reaches too): at most one request per worker per
minute in which a job ended, plus one at exit (``benchmarks/worker_metrics.py`` counts them). The
price of statistic sets: CloudWatch derives Sum, SampleCount, Minimum, Maximum and Average from
them, but no percentiles; the dashboard plots only those (``layout.WORKER_METRICS_STATISTICS``).

Publishing never fails or delays a job: ``record`` only adds to a dict under a lock; requests are
sent by a thread of their own (not the heartbeat's: a slow CloudWatch must never hold up the
leases), with a few short tries, after which the data is logged and dropped. A lost answer to a
request CloudWatch did store may count that minute twice in the metric; jobs are never affected.

Only the worker parent publishes, with its own role, which may put metrics only into the workers'
namespace; the control plane's ``GeoBatch``, which the alarms read, is out of reach of workers and
of the user code beside them, so no job can silence or raise an alarm. A retried attempt is not a
job that ended, and a canceled job is not a measure of the work: only success, failure and timeout
are recorded.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from geobatch_core import layout

__all__ = ["FLUSH_SECONDS", "JobMetrics", "StatisticSet", "cloudwatch_client"]

log = logging.getLogger("geobatch.worker")

FLUSH_SECONDS = 60.0  # CloudWatch's standard resolution: finer would cost requests and show nothing more
PUT_TRIES = 3
CLOSE_SECONDS = 20.0  # how long exit waits for the last flush (AWS Batch kills 30 s after SIGTERM)
MAX_DATA_PER_REQUEST = 1000  # PutMetricData takes at most 1,000 different metrics per request
JOB_METRICS = layout.JOB_ENDED_METRICS  # the metric each terminal status counts
DURATION = layout.JOB_DURATION_METRIC
UNITS = {**dict.fromkeys(JOB_METRICS.values(), "Count"), DURATION: "Seconds"}
# Answers worth another try; anything else (access denied, a refused parameter) will not change.
RETRYABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestTimeout"}
)


class MetricsClient(Protocol):
    def put_metric_data(self, **kwargs: Any) -> Any: ...


def cloudwatch_client(session: Any) -> Any:
    """The worker's CloudWatch client: short timeouts and no retries of botocore's own (``JobMetrics``
    retries, a bounded number of times), so the last flush stays short when the worker exits."""
    config = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    return session.client("cloudwatch", config=config)


@dataclass
class StatisticSet:
    """What CloudWatch keeps of a metric's samples in a minute: their count, sum, least and most."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def values(self) -> dict[str, float]:
        return {
            "SampleCount": float(self.count),
            "Sum": self.total,
            "Minimum": self.low,
            "Maximum": self.high,
        }


class JobMetrics:
    """The job metrics of one worker: recorded as jobs end, published by a thread of their own.

    ``client`` None records nothing (a worker run without CloudWatch: benchmarks, most tests).
    """

    def __init__(
        self,
        client: MetricsClient | None,
        *,
        interval: float = FLUSH_SECONDS,
        tries: int = PUT_TRIES,
        backoff_seconds: float = 0.5,
    ):
        self._client = client
        self._interval = interval
        self._tries = tries
        self._backoff = backoff_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], StatisticSet] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.requests = 0  # PutMetricData requests sent (tries included)
        self.dropped = 0  # data points given up after their tries

    def record(self, function_id: str, status: str, runtime: float) -> None:
        """A job of ``function_id`` ended ``status`` after ``runtime`` seconds (not counted unless
        success, failure or timeout)."""
        metric = JOB_METRICS.get(status)
        if metric is None or self._client is None:
            return
        with self._lock:
            self._pending.setdefault((function_id, metric), StatisticSet()).add(1.0)
            self._pending.setdefault((function_id, DURATION), StatisticSet()).add(max(0.0, float(runtime)))

    def start(self) -> None:
        if self._client is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._publish, name="geobatch-metrics", daemon=True)
        self._thread.start()

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Publish what is left and stop (bounded: the worker exits after ``timeout`` at most)."""
        self._stop.set()
        if self._thread is None:
            self.flush()
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("job metrics: the last flush did not end in %ss; exiting without it", timeout)

    def _publish(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
        self.flush()  # the jobs that ended since the last flush

    def flush(self) -> int:
        """Send what was recorded since the last flush and forget it; returns the data points sent."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending or self._client is None:
            return 0
        now = datetime.datetime.now(datetime.UTC)
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": layout.WORKER_METRICS_DIMENSION, "Value": function_id}],
                "Timestamp": now,
                "StatisticValues": stats.values(),
                "Unit": UNITS[metric],
            }
            for (function_id, metric), stats in sorted(pending.items())
        ]
        sent = 0
        for start in range(0, len(data), MAX_DATA_PER_REQUEST):
            chunk = data[start : start + MAX_DATA_PER_REQUEST]
            sent += len(chunk) if self._put(chunk) else 0
        return sent

    def _put(self, data: list[dict[str, Any]]) -> bool:
        assert self._client is not None
        delay = self._backoff
        for attempt in range(1, self._tries + 1):
            self.requests += 1
            try:
                self._client.put_metric_data(Namespace=layout.WORKER_METRICS_NAMESPACE, MetricData=data)
                return True
            except (BotoCoreError, ClientError) as exc:
                if attempt == self._tries or not _retryable(exc):
                    self.dropped += len(data)
                    log.warning(
                        "job metrics: dropped %d data points after %d tries: %s", len(data), attempt, exc
                    )
                    return False
                log.info("job metrics: %s (try %d of %d); retrying", exc, attempt, self._tries)
            time.sleep(delay * random.uniform(1.0, 2.0))  # nosec B311 (jitter, not cryptography)
            delay *= 2
        return False


def _retryable(exc: BotoCoreError | ClientError) -> bool:
    """Unreachable endpoints, throttling and 5xx are worth another try; refusals are not."""
    if isinstance(exc, BotoCoreError):
        return not isinstance(exc, ParamValidationError)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES
