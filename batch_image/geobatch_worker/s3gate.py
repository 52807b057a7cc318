"""Local mode's S3 as a job sees it: only the locations its Function declared.

In AWS a job's S3 requests carry its worker role, whose policy allows the Function's ``data_access``
locations. Local mode's S3 (moto on loopback) checks no credentials at all, so the worker parent
gives its user-code child this gate's address instead of the real endpoint and no real keys: each
request is allowed as the worker role's policy would allow it (``data_access.statements``: reads
get GetObject and a prefix-limited ListBucket, writes PutObject and multipart uploads) and forwarded
unchanged, or refused with S3's own ``AccessDenied``. The control plane's objects (bundles,
arguments, results, logs) are refused whatever a Function declares.

Path-style requests only (what boto3 and GDAL send to an address like ``127.0.0.1:port``).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from geobatch.wire import data_access

STATE_PREFIXES = data_access.STATE_PREFIXES  # the control plane's own: never a job's to touch
# Query parameters of a plain ListObjects(V2) request; anything else on a bucket is refused.
LIST_PARAMS = {
    "list-type",
    "prefix",
    "delimiter",
    "continuation-token",
    "max-keys",
    "start-after",
    "marker",
    "encoding-type",
    "fetch-owner",
}
# Sub-resources of an object request that are multipart uploads (allowed with a write location).
MULTIPART_PARAMS = {"uploads", "uploadId", "partNumber", "x-id"}


class Rules:
    """What one Function's jobs may do in local S3."""

    def __init__(self, access: Mapping[str, Any] | None, state_bucket: str):
        access = access or {}
        self.reads = data_access.locations([*(access.get("read") or []), *(access.get("public") or [])])
        self.writes = data_access.locations(access.get("write"))
        self.state_bucket = state_bucket

    def allows(self, method: str, bucket: str, key: str, query: Mapping[str, list[str]]) -> bool:
        if not bucket:
            return False  # ListBuckets: no worker role allows it
        if bucket == self.state_bucket and key.startswith(STATE_PREFIXES):
            return False
        if {".", ".."} & set(key.split("/")):
            return False  # S3 keeps such keys literally; a server that normalised them would escape
        if not key:
            return self._bucket_request(method, bucket, query)
        if method in ("GET", "HEAD") and not (set(query) - {"partNumber", "versionId", "x-id"}):
            return any(loc.matches(bucket, key) for loc in self.reads)
        if method in ("PUT", "POST", "DELETE") and set(query) <= MULTIPART_PARAMS:
            if method == "DELETE" and "uploadId" not in query:
                return False  # DeleteObject is not among the write actions; aborting an upload is
            return any(loc.matches(bucket, key) for loc in self.writes)
        return False

    def _bucket_request(self, method: str, bucket: str, query: Mapping[str, list[str]]) -> bool:
        mine = [loc for loc in self.reads if loc.bucket == bucket]
        if method == "HEAD" and not query:
            return bool(mine or any(loc.bucket == bucket for loc in self.writes))
        if method != "GET" or set(query) - LIST_PARAMS:
            return False
        prefix = (query.get("prefix") or [""])[0]
        # As the s3:prefix condition of the worker role: under a readable prefix, or a readable key.
        return any((loc.prefix and prefix.startswith(loc.key)) or loc.key == prefix for loc in mine)


def split_path(raw_path: str) -> tuple[str, str, dict[str, list[str]]]:
    parts = urlsplit(raw_path)
    path = unquote(parts.path)
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key, parse_qs(parts.query, keep_blank_values=True)


def _denied(message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GateServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self._body()
        bucket, key, query = split_path(self.path)
        if not self.server.rules.allows(self.command, bucket, key, query):
            message = (
                f"the Function's data_access does not allow {self.command} s3://{bucket}/{key}: "
                "declare the location in the Function's data_access"
            )
            self._reply(403, {"Content-Type": "application/xml"}, _denied(message))
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=300)
        try:
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")
            }
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            passed = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in ("connection", "transfer-encoding", "content-length")
            }
            self._reply(
                response.status,
                passed,
                data,
                head=self.command == "HEAD",
                length=response.getheader("Content-Length"),
            )
        finally:
            upstream.close()

    def _body(self) -> bytes:
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        chunks = []  # forwarded with a Content-Length instead (moto takes either)
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        del self.headers["Transfer-Encoding"]
        return b"".join(chunks)

    def _reply(
        self,
        status: int,
        headers: Mapping[str, str],
        data: bytes,
        *,
        head: bool = False,
        length: str | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", length if head and length is not None else str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _GateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rules: Rules, upstream: tuple[str, int]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rules = rules
        self.upstream = upstream


class S3Gate:
    """A running gate in front of ``upstream_url`` (local S3) for one Function's jobs."""

    def __init__(self, upstream_url: str, access: Mapping[str, Any] | None, state_bucket: str):
        parts = urlsplit(upstream_url)
        self._server = _GateServer(
            Rules(access, state_bucket), (parts.hostname or "127.0.0.1", parts.port or 80)
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-gate", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
