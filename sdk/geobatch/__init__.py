"""GeoBatch: any Python function, mapped over many inputs on AWS Batch, with two calls.

    import geobatch as gb

    fn = gb.Function(my_function, requirements=["numpy"], cpus=1, memory="2GB")
    fn.map([(tile,) for tile in tiles])
    fn.wait_for_completion()

The API is the Descartes Labs compute client's (``Function``, ``Job``, ``JobStatus``, ...), so
code written for it ports by changing the import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geobatch.bundle import BoundGlobalError
    from geobatch.client import Client, ComputeClient, configure, get_default_client, set_default_client
    from geobatch.data_access import S3Access
    from geobatch.function import Function, JobBulkCreateError, JobBulkCreateResult
    from geobatch.job import Job, JobResultError
    from geobatch.operation import BulkResult, Operation, OperationFailedError, OperationState
    from geobatch.search import JobSearch, Search
    from geobatch.statistics import AttemptStatistics
    from geobatch.wire.codec import ComputeResult, EncodingError, Serializable
    from geobatch.wire.errors import (
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
    from geobatch.wire.models import FunctionStatus, JobStatus

# The names above are imported on first use (PEP 562), so ``import geobatch.wire`` (what the
# control plane, the worker and every job's child process import) does not load the whole SDK.
_LAZY = {
    "ApiTimeoutError": "geobatch.wire.errors",
    "AttemptStatistics": "geobatch.statistics",
    "AuthError": "geobatch.wire.errors",
    "BadRequestError": "geobatch.wire.errors",
    "BoundGlobalError": "geobatch.bundle",
    "BuildFailedError": "geobatch.wire.errors",
    "BulkResult": "geobatch.operation",
    "Client": "geobatch.client",
    "ComputeClient": "geobatch.client",
    "ComputeResult": "geobatch.wire.codec",
    "ConflictError": "geobatch.wire.errors",
    "EncodingError": "geobatch.wire.codec",
    "Function": "geobatch.function",
    "FunctionStatus": "geobatch.wire.models",
    "GeoBatchError": "geobatch.wire.errors",
    "Job": "geobatch.job",
    "JobBulkCreateError": "geobatch.function",
    "JobBulkCreateResult": "geobatch.function",
    "JobFailedError": "geobatch.wire.errors",
    "JobResultError": "geobatch.job",
    "JobSearch": "geobatch.search",
    "JobStatus": "geobatch.wire.models",
    "NotFoundError": "geobatch.wire.errors",
    "Operation": "geobatch.operation",
    "OperationFailedError": "geobatch.operation",
    "OperationState": "geobatch.operation",
    "PayloadTooLargeError": "geobatch.wire.errors",
    "S3Access": "geobatch.data_access",
    "Search": "geobatch.search",
    "Serializable": "geobatch.wire.codec",
    "ServiceError": "geobatch.wire.errors",
    "ThrottledError": "geobatch.wire.errors",
    "ValidationError": "geobatch.wire.errors",
    "configure": "geobatch.client",
    "get_default_client": "geobatch.client",
    "set_default_client": "geobatch.client",
}

__version__ = "0.1.0"

__all__ = [
    "ApiTimeoutError",
    "AttemptStatistics",
    "AuthError",
    "BadRequestError",
    "BoundGlobalError",
    "BuildFailedError",
    "BulkResult",
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
    "Operation",
    "OperationFailedError",
    "OperationState",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'geobatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
