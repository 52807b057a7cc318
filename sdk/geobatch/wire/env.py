"""Environment keys shared by the CDK stacks, the Lambdas, the worker, local mode and the tests.

Every component reads its configuration through these names, so a rename here is a rename
everywhere and the names cannot drift apart.
"""

# Control plane (API Lambda, scaler, build and batch event Lambdas)
FUNCTIONS_TABLE = "GEOBATCH_FUNCTIONS_TABLE"
JOBS_TABLE = "GEOBATCH_JOBS_TABLE"
BUCKET = "GEOBATCH_BUCKET"
QUEUE_PREFIX = "GEOBATCH_QUEUE_PREFIX"
STAGE = "GEOBATCH_STAGE"
ADMIN_PRINCIPALS = "GEOBATCH_ADMIN_PRINCIPALS"  # comma-separated IAM ARNs that may see every tenant
EXECUTOR = "GEOBATCH_EXECUTOR"  # "batch" in AWS, "local" in local mode
IMAGE_BUILDER = "GEOBATCH_IMAGE_BUILDER"  # "codebuild" in AWS, "local" in local mode
BATCH_JOB_QUEUE = "GEOBATCH_BATCH_JOB_QUEUE"
BATCH_JOB_DEFINITION_PREFIX = "GEOBATCH_BATCH_JOB_DEFINITION_PREFIX"
BATCH_PLATFORM = "GEOBATCH_BATCH_PLATFORM"  # FARGATE or EC2: how job definitions are registered
WORKER_ROLE_ARN = "GEOBATCH_WORKER_ROLE_ARN"  # one shared worker role (when no boundary is given)
# With a boundary, each Function's workers get a role of their own, created under this boundary.
WORKER_PERMISSIONS_BOUNDARY = "GEOBATCH_WORKER_PERMISSIONS_BOUNDARY"
# ... and the data role its user code runs with (only the Function's data_access), under this one.
WORKER_DATA_BOUNDARY = "GEOBATCH_WORKER_DATA_BOUNDARY"
FUNCTIONS_TABLE_ARN = "GEOBATCH_FUNCTIONS_TABLE_ARN"
JOBS_TABLE_ARN = "GEOBATCH_JOBS_TABLE_ARN"
WORKER_EXECUTION_ROLE_ARN = "GEOBATCH_WORKER_EXECUTION_ROLE_ARN"
CODEBUILD_PROJECT = "GEOBATCH_CODEBUILD_PROJECT"
ECR_REPOSITORY_URI = "GEOBATCH_ECR_REPOSITORY_URI"
EVENT_BUS = "GEOBATCH_EVENT_BUS"
LOG_RETENTION_DAYS = "GEOBATCH_LOG_RETENTION_DAYS"
OWNERSHIP = "GEOBATCH_OWNERSHIP"  # "role" (sessions of a role share) or "session" (each its own owner)
LOST_WORKER_SECONDS = "GEOBATCH_LOST_WORKER_SECONDS"  # SQS visibility = time to detect a dead worker
# The S3 locations Functions may declare (the operator's bound, cdk.json context "data_access"), as
# JSON {"read": [...], "write": [...]} of s3:// patterns; unset (local mode) means anything.
DATA_ACCESS = "GEOBATCH_DATA_ACCESS"
WORKER_LOG_GROUP = "GEOBATCH_WORKER_LOG_GROUP"  # the stack's log group of worker containers

# Worker (set on the Batch job definition, or by the local executor)
WORKER_FUNCTION_ID = "GEOBATCH_FUNCTION_ID"
WORKER_QUEUE_URL = "GEOBATCH_QUEUE_URL"
WORKER_IDLE_SECONDS = "GEOBATCH_WORKER_IDLE_SECONDS"
WORKER_POLL_SECONDS = "GEOBATCH_WORKER_POLL_SECONDS"
WORKER_ID = "GEOBATCH_WORKER_ID"
WORKER_MEMORY_LIMIT_MB = "GEOBATCH_WORKER_MEMORY_LIMIT_MB"
# Seconds after which a worker claims no new job and exits (AWS Batch's attempt timeout is later).
WORKER_LIFETIME_SECONDS = "GEOBATCH_WORKER_LIFETIME_SECONDS"
# The Function's data role: the worker assumes it and serves its credentials to user code alone.
WORKER_DATA_ROLE_ARN = "GEOBATCH_WORKER_DATA_ROLE_ARN"

# User code (set by the worker for every job)
# The Function's public locations (data_access.public), space-separated s3:// patterns: read them
# unsigned (GDAL: AWS_NO_SIGN_REQUEST=YES for those paths; boto3: Config(signature_version=UNSIGNED)).
# geobatch.data_access.gdal_options(href) and reads_unsigned(href) read it.
UNSIGNED_S3 = "GEOBATCH_UNSIGNED_S3"

# SDK / CLI
API_URL = "GEOBATCH_API_URL"
LOCAL_HOME = "GEOBATCH_HOME"  # where local mode keeps its state, environments and logs
LOCAL_PIP_ARGS = "GEOBATCH_LOCAL_PIP_ARGS"  # extra pip arguments of the local image builder
LOCAL_STATE = "GEOBATCH_LOCAL_STATE"  # local mode: the SQLite file of Functions, Jobs and queues

# Standard AWS names that boto3 honours on its own
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_REGION = "AWS_DEFAULT_REGION"
SCALER_FUNCTION = "GEOBATCH_SCALER_FUNCTION"  # the API invokes the scaler asynchronously on submit
