"""An in-memory fake of the HTTP layer, for the SDK's unit tests only.

End-to-end tests use the real local API (the ``local_api`` fixture in tests/conftest.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from geobatch.client import Client, set_default_client

API = "https://api.example.test/v1"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).isoformat()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes | None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class FakeHTTP:
    """Stands in for urllib3.PoolManager: routes ``(method, path)`` to handlers and records calls."""

    routes: dict[tuple[str, str], Callable[[Call], Reply] | list[Reply] | Reply] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def on(self, method: str, path: str, reply: Callable[[Call], Reply] | list[Reply] | Reply) -> None:
        self.routes[(method, path)] = reply

    def request(self, method: str, url: str, body: bytes | None = None, headers: Any = None, **_: Any) -> Any:
        parts = urlsplit(url)
        path = parts.path.removeprefix(urlsplit(API).path) if parts.netloc == urlsplit(API).netloc else url
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        call = Call(method, path, query, dict(headers or {}), body)
        self.calls.append(call)
        route = self.routes.get((method, path))
        if route is None:
            reply: Reply = (404, {"code": "not_found", "message": f"no route {method} {path}"})
        elif callable(route):
            reply = route(call)
        elif isinstance(route, list):
            reply = route.pop(0) if len(route) > 1 else route[0]
        else:
            reply = route
        status, payload, *rest = reply
        extra = rest[0] if rest else {}
        if isinstance(payload, bytes | str):
            data = payload.encode() if isinstance(payload, str) else payload
            content_type = "text/plain"
        else:
            data = json.dumps(payload).encode() if payload is not None else b""
            content_type = "application/json"
        return urllib3.HTTPResponse(
            body=io.BytesIO(data),
            status=status,
            headers={"Content-Type": content_type, **extra},
            preload_content=False,
        )

    def find(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]


def function_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": "fn1",
        "name": "double",
        "owner": "arn:aws:iam::123456789012:user/test",
        "status": "building",
        "creation_date": NOW,
        "modified_date": NOW,
        "entrypoint": "__gbentry__:main",
        "image": "python3.11",
        "requirements": [],
        "cpus": 1.0,
        "memory": 2048,
        "maximum_concurrency": 5,
        "timeout": 900,
        "retry_count": 0,
    }
    body.update(overrides)
    return body


def job_body(job_id: str = "job1", **overrides: Any) -> dict[str, Any]:
    body = {"id": job_id, "function_id": "fn1", "creation_date": NOW, "status": "pending"}
    body.update(overrides)
    return body


@pytest.fixture
def http() -> FakeHTTP:
    return FakeHTTP()


@pytest.fixture
def client(http: FakeHTTP) -> Any:
    """A Client on the fake transport, with fixed credentials and no real sleeping; also the default."""
    from botocore.credentials import Credentials

    c = Client(API, region="eu-west-1", http=http, retries=3)
    c._credentials = Credentials("AKIDEXAMPLE", "secret")
    c._sleep = lambda _seconds: None
    set_default_client(c)
    yield c
    set_default_client(None)
