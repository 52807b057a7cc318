"""A boto3 client whose connection failures are GeoBatch's ``ServiceError`` (transient, HTTP 503).

botocore raises ``ClientError`` when AWS answers and ``HTTPClientError`` subclasses (connection
refused or reset, timeouts) when nothing answers. The adapters map the first; this maps the
second in one place, so a dead or unreachable endpoint (moto killed in local mode, a network
partition in AWS) is an outage the callers already handle: workers back off and keep their
leases honest, the API answers 503, never a traceback or a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from botocore.exceptions import EndpointConnectionError, HTTPClientError

from geobatch.wire import errors

Client = TypeVar("Client")


class Reachable:
    def __init__(self, client: Any, service: str):
        self._client = client
        self._service = service
        self.meta = client.meta  # botocore reads it (presigning, events)
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name.startswith("_"):
            return target
        return functools.partial(self._call, target, name)

    def _call(self, target: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return target(*args, **kwargs)
        except (HTTPClientError, EndpointConnectionError) as exc:
            raise errors.ServiceError(
                f"{self._service} is unreachable ({name}): {type(exc).__name__}; retry shortly"
            ) from None


def reachable(client: Client, service: str) -> Client:
    """``client`` with connection failures as ``ServiceError`` (idempotent: wraps once). Typed as the
    client it wraps: every call goes through to it, with the same arguments and answers."""
    return client if isinstance(client, Reachable) else cast(Client, Reachable(client, service))
