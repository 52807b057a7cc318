"""Every S3 request a piece of code makes, recorded at a moto S3 server and named as IAM names it.

boto3 and GDAL (``/vsis3/`` through libcurl) both reach the server over HTTP, so recording at the
server sees everything the tile job does, whichever library sends it. Each request becomes the IAM
action and resource it is authorised as (path-style addressing, as GeoBatch's local endpoints use);
a request that fits none of the mapped operations fails the test instead of being skipped.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.infra.iam_eval import Request


@dataclass(frozen=True)
class S3Call:
    method: str
    bucket: str
    key: str
    query: dict[str, list[str]]
    signed: bool  # False: an anonymous (unsigned) request, which no IAM policy is consulted for

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def iam(self, partition: str = "aws") -> Request:
        """The action and resource IAM authorises this request as."""
        objects = f"arn:{partition}:s3:::{self.bucket}/{self.key}"
        if not self.key:
            if self.method == "GET" and not ({"acl", "policy", "location"} & set(self.query)):
                context = {"s3:prefix": self.query["prefix"][0]} if "prefix" in self.query else {}
                return Request("s3:ListBucket", f"arn:{partition}:s3:::{self.bucket}", context)
        elif self.method in ("GET", "HEAD") and not ({"acl", "tagging", "uploadId"} & set(self.query)):
            return Request("s3:GetObject", objects)
        elif self.method == "PUT" and not ({"acl", "tagging"} & set(self.query)):
            return Request("s3:PutObject", objects)  # also UploadPart
        elif self.method == "POST" and ({"uploads"} | {"uploadId"}) & set(self.query):
            return Request("s3:PutObject", objects)  # Create/CompleteMultipartUpload
        elif self.method == "DELETE" and "uploadId" in self.query:
            return Request("s3:AbortMultipartUpload", objects)
        raise AssertionError(f"no IAM mapping for S3 request {self.method} {self.uri} {self.query}")


class Recorder:
    """WSGI middleware in front of moto's server app: appends an ``S3Call`` per request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls: list[S3Call] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
        bucket, _, key = path.partition("/")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        signed = bool(environ.get("HTTP_AUTHORIZATION")) or "X-Amz-Credential" in query
        with self._lock:
            self.calls.append(S3Call(environ["REQUEST_METHOD"], bucket, key, query, signed))
        return self.app(environ, start_response)

    @contextmanager
    def recording(self) -> Iterator[list[S3Call]]:
        """The calls made inside the block (earlier ones are forgotten)."""
        with self._lock:
            self.calls = []
        made: list[S3Call] = []
        yield made
        with self._lock:
            made.extend(self.calls)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def recording_s3_server() -> Iterator[tuple[str, Recorder]]:
    """A moto server on 127.0.0.1 whose every request is recorded; yields (endpoint, recorder)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    assert server._server is not None
    recorder = Recorder(server._server.app)
    server._server.app = recorder  # werkzeug's handler calls server.app per request
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        server.stop()
