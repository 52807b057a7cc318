"""Turns HTTP requests on 127.0.0.1 into API Gateway REST events for the real API handler.

Local mode does not verify SigV4 signatures (only loopback callers can reach it); the access key
id in the Authorization header names the principal, so several local "users" can be told apart.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
LOCAL_ACCOUNT = "000000000000"
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9_\-]+)/")


@dataclass
class LambdaContext:
    function_name: str = "geobatch-api-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:geobatch-api-local"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = ""
    log_group_name: str = "local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def principal_from_headers(headers: dict[str, str]) -> str | None:
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    return f"arn:aws:iam::{LOCAL_ACCOUNT}:user/{match.group(1)}" if match else None


def to_event(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    principal = principal_from_headers(headers)
    return {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": parts.path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "accountId": LOCAL_ACCOUNT,
            "identity": {"sourceIp": "127.0.0.1", "userArn": principal, "user": principal},
        },
        "body": text or None,
        "isBase64Encoded": is_b64,
    }


ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
BODY_SECONDS = 30  # a client that promises more body than it sends gets a 400, not a hung thread


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"code": code, "message": message, "errors": []}).encode()


class ApiRequestHandler(BaseHTTPRequestHandler):
    """One connection to local mode's API: each request becomes an API Gateway event for the handler
    of its :class:`ApiServer`; malformed requests get the API's JSON error shape."""

    protocol_version = "HTTP/1.1"
    timeout = BODY_SECONDS  # socket timeout of each connection (reads of the body included)

    @property
    def _api_server(self) -> ApiServer:
        return cast(ApiServer, self.server)

    def _read_body(self) -> bytes | None:
        """The body, or None after answering a 4xx for a bad Content-Length or a short body."""
        raw = self.headers.get("Content-Length") or "0"
        if not raw.strip().isdigit():
            self._refuse(400, "bad_request", f"Content-Length {raw[:40]!r} is not a number of bytes")
            return None
        length, max_body = int(raw), self._api_server.max_body
        if length > max_body:
            self._refuse(413, "payload_too_large", f"request body over {max_body} bytes")
            return None
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            body = b""
        if len(body) < length:
            self._refuse(
                400,
                "bad_request",
                f"request body is shorter than its Content-Length ({len(body)} of {length} bytes)",
            )
            return None
        return body

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.close_connection = True  # the rest of the stream cannot be trusted
        self._reply(
            status,
            {"Content-Type": "application/json", "Connection": "close"},
            _error_body(code, message),
        )

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.path == "/health":
            self._reply(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        method = "GET" if self.command == "HEAD" else self.command
        event = to_event(method, self.path, headers, body)
        with self._api_server.invoking:
            response = self._api_server.api_handler(event, LambdaContext(str(uuid.uuid4())))
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        out_headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[key] = values[-1]
        self._reply(int(response.get("statusCode", 200)), out_headers, data)

    def do_OPTIONS(self) -> None:
        if self._read_body() is None:
            return
        self._reply(204, {"Allow": ALLOWED_METHODS}, b"")

    def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        if (headers.get("Connection") or "").lower() == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # HEAD: the headers of the GET, no body
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers a URI over 64 KiB, a bad request line or an unknown method itself, in
        # HTML; keep the API's error shape (JSON with code and message) for those too.
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method no route has: say which ones exist
            code, message = (
                405,
                f"method {getattr(self, 'command', '?')} is not allowed: use {ALLOWED_METHODS}",
            )
        data = _error_body(
            "method_not_allowed" if code == 405 else "bad_request" if code < 500 else "internal_error",
            message or HTTPStatus(code).phrase,
        )
        self.close_connection = True
        self.send_response(code, message)
        if code == 405:
            self.send_header("Allow", ALLOWED_METHODS)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the API handler logs each request itself


class ApiServer(ThreadingHTTPServer):
    """Local mode's API on ``host:port``: a thread per connection, the API ``handler`` behind it,
    given one event at a time.

    One at a time because a Lambda execution environment gets one event at a time, and the
    handler relies on it: Powertools' resolver keeps the request it is resolving (its event, its
    route's arguments) on the module-wide ``app`` while the route runs. Two at once, and one
    request's route can read the other's path (a 422 "path.function_id: is required") or answer
    with the other's Function. Connections, bodies and answers still go side by side.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Handler, max_body: int) -> None:
        self.api_handler = handler
        self.invoking = threading.Lock()
        self.max_body = max_body
        super().__init__(address, ApiRequestHandler)


def make_server(host: str, port: int, handler: Handler, max_body: int) -> ThreadingHTTPServer:
    return ApiServer((host, port), handler, max_body)
