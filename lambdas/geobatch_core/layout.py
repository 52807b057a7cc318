"""Names of things in S3, SQS and DynamoDB: one place, so IAM prefixes and code agree."""

FUNCTIONS_OWNER_INDEX = "owner-created"  # Functions table GSI: owner (HASH), creation_date (RANGE)
JOB_TTL_ATTRIBUTE = "expires_at"  # on the Jobs table: submission references expire
# Where a worker (and so user code, which runs with its role) may PutMetricData: apart from the
# control plane's namespace, which the alarms read, so a job cannot silence or raise an alarm.
WORKER_METRICS_NAMESPACE = "GeoBatch/Workers"
REFERENCE_TTL_SECONDS = 7 * 86400  # a bulk reference_id is remembered (resends dedupe) this long
# Records of write requests sent with an Idempotency-Key: Jobs-table items under "req#<caller>".
REQUEST_PARTITION_PREFIX = "req#"


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
