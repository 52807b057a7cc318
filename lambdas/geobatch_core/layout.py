"""Names of things in S3, SQS and DynamoDB: one place, so IAM prefixes and code agree."""

import zlib

FUNCTIONS_OWNER_INDEX = "owner-created"  # Functions table GSI: owner (HASH), creation_date (RANGE)
# Jobs table GSIs, by the sort a listing asks for: (index name, partition attribute, sort attribute,
# sort attribute type). The stack (stacks/state.py), provision.create_tables (moto, tests) and the
# SQLite schema (local mode) are all built from this table. Items without the sort attribute are
# not in the index (sparse): a job has a runtime and a last completion once an attempt has ended.
JOB_INDEXES: dict[str, tuple[str, str, str, str]] = {
    "creation_date": ("owner-created", "owner", "creation_date", "S"),  # all of an owner's jobs, in time
    "runtime": ("function-runtime", "function_id", "runtime", "N"),
    "last_completion_date": ("function-completed", "function_id", "last_completion_date", "S"),
}
JOB_TTL_ATTRIBUTE = "expires_at"  # on the Jobs table: submission references expire
# Where a worker (and so user code, which runs with its role) may PutMetricData: apart from the
# control plane's namespace, which the alarms read, so a job cannot silence or raise an alarm.
WORKER_METRICS_NAMESPACE = "GeoBatch/Workers"
# The job metrics workers publish there (dimension function_id) and the dashboard plots: a count
# per job that ended success, failure or timeout, and the ended job's last runtime in seconds.
JOB_ENDED_METRICS = {"success": "JobsSucceeded", "failure": "JobsFailed", "timeout": "JobsTimedOut"}
JOB_DURATION_METRIC = "JobDuration"
# Job keys are hex; submission references ("ref#...") sort after this bound, so a listing of a
# Function's jobs reads its key range below it.
JOB_KEY_CEILING = "g"
WORKER_METRICS_DIMENSION = "function_id"  # their one dimension
# Workers publish each metric as a statistic set per worker-minute (geobatch_worker/metrics.py):
# CloudWatch answers these statistics of statistic sets, and no percentiles (those need raw values).
WORKER_METRICS_STATISTICS = ("SampleCount", "Sum", "Minimum", "Maximum", "Average")


def worker_metric_names() -> tuple[str, ...]:
    """Every metric a worker publishes into ``WORKER_METRICS_NAMESPACE`` (with the one dimension
    ``WORKER_METRICS_DIMENSION``): the worker, the dashboard and their tests read this list."""
    return (*JOB_ENDED_METRICS.values(), JOB_DURATION_METRIC)


REFERENCE_TTL_SECONDS = 7 * 86400  # a bulk reference_id is remembered (resends dedupe) this long
# Records of write requests sent with an Idempotency-Key: Jobs-table items under "req#<caller>".
REQUEST_PARTITION_PREFIX = "req#"
# Per-status job counts: Jobs-table items in the Function's own partition (so a worker's role, bound
# to its Function's partition, may move them with its jobs), keys sorting after every job key.
COUNT_KEY_PREFIX = "~count#"
COUNT_SHARDS = 32  # counter items per Function: spreads concurrent transactions (see counters.py)


def counted_partition(function_id: str) -> bool:
    """Whether a Jobs-table partition holds a Function's jobs (counted), not one of the service's
    own records (``req#``, ``op#``, ``pace#`` partitions: Function ids are hex, never with "#")."""
    return "#" not in function_id


def count_key(job_key: str) -> str:
    """The counter item a job's status changes are counted on (stable per job)."""
    return f"{COUNT_KEY_PREFIX}{zlib.crc32(job_key.encode()) % COUNT_SHARDS:02d}"


# Background bulk operations (services.operations): their records, and one marker per unfinished one
# (what the scaler reads each pass), are Jobs-table items in partitions of their own.
OPERATION_RECORDS = "op#records"
OPERATION_ACTIVE = "op#active"
OPERATION_TTL_SECONDS = 7 * 86400  # a finished operation stays readable this long
# The account-wide token bucket that paces AWS Batch SubmitJob calls (services.pacing).
PACING_PARTITION = "pace#"


def bundle_key(function_id: str) -> str:
    return f"bundles/{function_id}.zip"


def build_log_key(function_id: str) -> str:
    return f"builds/{function_id}.log"


def args_key(function_id: str, job_key: str) -> str:
    return f"args/{function_id}/{job_key}.json"


def result_key(function_id: str, job_key: str) -> str:
    return f"results/{function_id}/{job_key}"


def log_key(function_id: str, job_key: str, run: int, attempt: int) -> str:
    return f"logs/{function_id}/{job_key}/{run}.{attempt}.log"


def statistics_key(function_id: str, job_key: str, run: int, attempt: int) -> str:
    """The CPU/memory/network series of one attempt: one object, next to its log."""
    return f"logs/{function_id}/{job_key}/{run}.{attempt}.stats.json"


def live_log_key(function_id: str, job_key: str, run: int, attempt: int, part: int) -> str:
    """A numbered part of the log of a running attempt (replaced by ``log_key`` when it ends)."""
    return f"logs/{function_id}/{job_key}/{run}.{attempt}.live/{part:04d}.log"


def queue_name(prefix: str, function_id: str) -> str:
    return f"{prefix}-{function_id}"


def job_definition_name(prefix: str, function_id: str) -> str:
    return f"{prefix}-{function_id}"
