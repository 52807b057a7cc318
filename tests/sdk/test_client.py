"""Client configuration, signing, retries and error mapping."""

from __future__ import annotations

from typing import Any

import pytest

import geobatch
import geobatch as gb
from geobatch import client as client_module
from geobatch.client import Client
from geobatch.wire import env, errors

from .conftest import API, FakeHTTP

pytestmark = pytest.mark.unit


def test_url_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    def fake_local() -> str:
        started.append("local")
        return "http://127.0.0.1:8765/"

    import geobatch.local

    monkeypatch.setattr(geobatch.local, "ensure_local_api", fake_local)
    monkeypatch.setenv(env.API_URL, "https://from-env.test/prod/")
    assert Client("https://explicit.test/").api_url == "https://explicit.test"
    assert Client().api_url == "https://from-env.test/prod"
    monkeypatch.delenv(env.API_URL)
    lazy = Client()
    assert started == []  # local mode starts only when the URL is needed
    assert lazy.api_url == "http://127.0.0.1:8765"
    assert started == ["local"] and lazy.is_local and lazy.poll_interval == 2.0
    assert not Client("https://x.execute-api.us-east-1.amazonaws.com/prod").is_local


def test_configure_sets_default() -> None:
    configured = geobatch.configure("https://configured.test", region="eu-west-1")
    try:
        assert client_module.get_default_client() is configured
        assert configured.region == "eu-west-1"
    finally:
        geobatch.set_default_client(None)


def test_requests_are_sigv4_signed(client: Client, http: FakeHTTP) -> None:
    http.on("GET", "/functions/fn1", (200, {"ok": True}))
    assert client.get("/functions/fn1") == {"ok": True}
    headers = http.calls[0].headers
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


def test_local_credentials_when_none(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoCredentials:
        region_name = None

        def get_credentials(self) -> None:
            return None

    http = FakeHTTP()
    http.on("GET", "/x", (200, {}))
    c = Client(API, session=NoCredentials(), http=http)
    c.get("/x")
    assert "Credential=local/" in http.calls[0].headers["Authorization"]
    assert c.region == "us-east-1"


def test_retries_resend_same_body_and_resign(client: Client, http: FakeHTTP) -> None:
    http.on(
        "POST",
        "/jobs/bulk",
        [(503, {"code": "service_unavailable", "message": "busy"}), (429, None), (201, {})],
    )
    client.post("/jobs/bulk", {"reference_id": "r1"})
    calls = http.find("POST", "/jobs/bulk")
    assert len(calls) == 3
    assert len({c.body for c in calls}) == 1


def test_retries_give_up_with_typed_error(client: Client, http: FakeHTTP) -> None:
    http.on("GET", "/x", (503, {"code": "service_unavailable", "message": "DynamoDB is down"}))
    with pytest.raises(errors.ServiceError, match="DynamoDB is down"):
        client.get("/x")
    assert len(http.calls) == client.retries + 1


def test_connection_errors_are_retried(client: Client) -> None:
    from urllib3.exceptions import NewConnectionError

    class Flaky(FakeHTTP):
        failures = 2

        def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise NewConnectionError(None, "refused")  # type: ignore[arg-type]
            return super().request(*args, **kwargs)

    flaky = Flaky()
    flaky.on("GET", "/x", (200, {"ok": 1}))
    client._http = flaky
    assert client.get("/x") == {"ok": 1}
    always = Flaky()
    always.failures = 10
    client._http = always
    with pytest.raises(errors.ServiceError, match="cannot reach"):
        client.get("/x")


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, {"code": "not_found", "message": "no such job"}, errors.NotFoundError),
        (
            422,
            {"code": "validation_error", "message": "bad", "errors": [{"loc": ["cpus"]}]},
            errors.ValidationError,
        ),
        (400, {"code": "bad_request", "message": "bad"}, errors.BadRequestError),
        (409, {"code": "conflict", "message": "running"}, errors.ConflictError),
        (409, {"code": "job_not_successful", "message": "failed"}, errors.JobFailedError),
        (413, {"code": "payload_too_large", "message": "big"}, errors.PayloadTooLargeError),
        (403, {"message": "Missing Authentication Token"}, errors.AuthError),
        (418, "teapot", errors.GeoBatchError),
    ],
)
def test_error_mapping(client: Client, http: FakeHTTP, status: int, body: object, cls: type) -> None:
    http.on("GET", "/x", (status, body))
    with pytest.raises(cls) as caught:
        client.get("/x")
    assert type(caught.value) is cls
    if isinstance(body, dict) and body.get("errors"):
        assert caught.value.errors == body["errors"]


def test_presigned_requests_are_not_signed(client: Client, http: FakeHTTP) -> None:
    url = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=abc"
    http.on("PUT", url, (200, b""))
    client.put_presigned(url, b"zip")
    call = http.calls[0]
    assert "Authorization" not in call.headers and call.headers["Content-Type"] == "application/zip"


def test_a_read_timeout_says_slow_and_that_calling_again_is_safe(client: Any, http: Any) -> None:
    from urllib3.exceptions import ReadTimeoutError

    def slow(call: Any) -> Any:
        raise ReadTimeoutError(None, call.path, "Read timed out. (read timeout=60)")

    http.on("POST", "/jobs/bulk", slow)
    with pytest.raises(gb.ApiTimeoutError, match="is slow") as raised:
        client.post("/jobs/bulk", {"x": 1})
    assert "calling the same method again is safe" in str(raised.value)
    keys = {c.headers.get("Idempotency-Key") for c in http.find("POST", "/jobs/bulk")}
    assert len(http.find("POST", "/jobs/bulk")) == 4 and len(keys) == 1  # every retry, one key
    assert isinstance(raised.value, gb.ServiceError)  # code that caught ServiceError still does


def test_a_refused_connection_is_down_not_slow(client: Any, http: Any) -> None:
    from urllib3.exceptions import NewConnectionError

    def down(call: Any) -> Any:
        raise NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]

    http.on("GET", "/functions", down)
    with pytest.raises(gb.ServiceError, match="cannot reach") as raised:
        client.get("/functions")
    assert not isinstance(raised.value, gb.ApiTimeoutError)
