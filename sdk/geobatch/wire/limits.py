"""Documented limits, enforced by the API and checked early by the SDK."""

MAX_JOBS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 5_500_000  # under Lambda's 6 MB synchronous payload limit
MAX_ARGS_BYTES = 1_000_000  # one job's args + kwargs as JSON
INLINE_ARGS_BYTES = 16_000  # larger arguments are kept in S3, not in the job item
INLINE_RESULT_BYTES = 4_000  # larger results go to S3
INLINE_LOG_BYTES = 2_000  # larger attempt logs go to S3
MAX_LOG_BYTES = 10_000_000  # per attempt; the head and tail are kept beyond this
MAX_RESULT_BYTES = 100_000_000
MAX_TAGS = 50
MAX_TAG_CHARS = 256
MAX_ENV_VARS = 100
MAX_ENV_BYTES = 16_000
MAX_REQUIREMENTS = 200
MAX_BUNDLE_BYTES = 50_000_000
MAX_RETRY_COUNT = 10
# A job's SQS message can stay invisible at most 12 hours from its receipt (SQS's ceiling, however
# often the worker extends its lease), so no job may run longer than that minus the time a worker
# needs to start it and record its outcome.
SQS_MAX_LEASE_SECONDS = 43_200
LEASE_MARGIN_SECONDS = 3_600
MAX_TIMEOUT_SECONDS = SQS_MAX_LEASE_SECONDS - LEASE_MARGIN_SECONDS  # 11 h
MAX_CONCURRENCY = 1000
DEFAULT_CONCURRENCY = 5  # small problems become big problems when new code scales to 500 at once
DEFAULT_TIMEOUT_SECONDS = 900
DEFAULT_CPUS = 1.0
DEFAULT_MEMORY_MB = 2048
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_BULK_OPERATION = 1000  # job ids per bulk cancel/rerun/delete request; the SDK sends more in chunks
# A bulk cancel/rerun/delete runs inside its request (200 with the ids) when its filter is settled by
# reading at most SYNC_BULK_SCAN jobs and matches at most SYNC_BULK_JOBS: a few seconds of DynamoDB
# calls, far from API Gateway's 29 s. Anything larger becomes a background operation (202).
SYNC_BULK_JOBS = 250
SYNC_BULK_SCAN = 2000
MAX_IN_MEMORY_SORT = 10_000
PRESIGNED_URL_SECONDS = 900
IDEMPOTENCY_KEY_SECONDS = 86_400  # an Idempotency-Key is remembered (its answer replayed) this long
IDEMPOTENCY_LEASE_SECONDS = 60  # over the API's 29 s timeout: then a retry may run a lost execution again
IDEMPOTENCY_KEY_CHARS = 255
IDEMPOTENT_RESPONSE_BYTES = 300_000  # compressed; a larger answer is not stored, its retry runs again
MAX_JSON_DEPTH = 64  # nesting of job arguments, results of parsing a request body
MAX_REQUEST_DEPTH = MAX_JSON_DEPTH + 8  # a request body wraps the arguments in a few levels
MAX_FILTER_DEPTH = 16  # nested and/or groups of a filter
MAX_MEMORY_MB = 122_880  # the largest Fargate task
# Answers stay under Lambda's 6 MB response limit (the body is escaped once more inside it):
MAX_PAGE_BYTES = 3_000_000  # a job page is cut short (with a cursor) before its estimate passes this
MAX_LOG_PAGE_BYTES = 2_000_000  # one GET of a log; the X-GeoBatch-Next-Offset header says where to go on
