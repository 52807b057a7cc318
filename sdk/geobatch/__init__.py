"""GeoBatch: any Python function, mapped over many inputs on AWS Batch, with two calls.

    import geobatch as gb

    fn = gb.Function(my_function, requirements=["numpy"], cpus=1, memory="2GB")
    fn.map([(tile,) for tile in tiles])
    fn.wait_for_completion()

The API is the Descartes Labs compute client's (``Function``, ``Job``, ``JobStatus``, ...), so
code written for it ports by changing the import.
"""

from geobatch.bundle import BoundGlobalError
from geobatch.client import Client, ComputeClient, configure, get_default_client, set_default_client
from geobatch.data_access import S3Access
from geobatch.function import Function, JobBulkCreateError, JobBulkCreateResult
from geobatch.job import Job, JobResultError
from geobatch.search import JobSearch, Search
from geobatch_core.codec import ComputeResult, EncodingError, Serializable
from geobatch_core.errors import (
    ApiTimeoutError,
    AuthError,
    BadRequestError,
    BuildFailedError,
    ConflictError,
    GeoBatchError,
    JobFailedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    ThrottledError,
    ValidationError,
)
from geobatch_core.models import FunctionStatus, JobStatus

__version__ = "0.1.0"

__all__ = [
    "ApiTimeoutError",
    "AuthError",
    "BadRequestError",
    "BoundGlobalError",
    "BuildFailedError",
    "Client",
    "ComputeClient",
    "ComputeResult",
    "ConflictError",
    "EncodingError",
    "Function",
    "FunctionStatus",
    "GeoBatchError",
    "Job",
    "JobBulkCreateError",
    "JobBulkCreateResult",
    "JobFailedError",
    "JobResultError",
    "JobSearch",
    "JobStatus",
    "NotFoundError",
    "PayloadTooLargeError",
    "S3Access",
    "Search",
    "Serializable",
    "ServiceError",
    "ThrottledError",
    "ValidationError",
    "__version__",
    "configure",
    "get_default_client",
    "set_default_client",
]
