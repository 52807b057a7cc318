"""A transport that loses answers: it forwards each request to the real API and, for the chosen
ones, throws the answer away and raises what urllib3 raises when a connection drops mid-answer
(or a read timeout). The API has done the work; only the caller does not know."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError


@dataclass
class LossyHTTP:
    """Drops the answers of requests ``drop(method, path)`` selects, ``times`` of them (None: all)."""

    drop: Callable[[str, str], bool]
    times: int | None = 1
    timeout: bool = False  # raise a read timeout instead of a dropped connection
    dropped: list[tuple[str, str]] = field(default_factory=list)
    sent: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)  # the query string of each request, in order
    _http: Any = field(default_factory=lambda: urllib3.PoolManager(retries=False))

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        path = urlsplit(url).path
        self.sent.append((method, path, dict(kwargs.get("headers") or {})))
        self.queries.append(urlsplit(url).query)
        response = self._http.request(method, url, **kwargs)
        if self.drop(method, path) and (self.times is None or len(self.dropped) < self.times):
            response.read()
            response.release_conn()
            self.dropped.append((method, path))
            if self.timeout:
                raise ReadTimeoutError(self._http, url, "Read timed out. (read timeout=60)")
            raise ProtocolError("Connection aborted.", ConnectionResetError("answer lost"))
        return response

    def keys(self, method: str, path: str) -> list[str | None]:
        return [h.get("Idempotency-Key") for m, p, h in self.sent if m == method and p == path]


def lossy_client(api_url: str, http: LossyHTTP, retries: int = 2) -> Any:
    import geobatch as gb

    client = gb.Client(api_url, http=http, retries=retries)
    client._sleep = lambda _seconds: None
    return client
