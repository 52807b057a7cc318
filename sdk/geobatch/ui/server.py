"""The monitor's HTTP server: static files plus a same-origin JSON proxy to one GeoBatch API.

Only the standard library is used. The server binds 127.0.0.1 and nothing else, and it guards the
proxy (which acts with the user's AWS credentials) against other web pages and other targets:

- only ``/functions...`` and ``/jobs...`` paths of the configured API are forwarded, with methods
  GET, POST, PATCH and DELETE; the target URL is always ``client.api_url + path``;
- the ``Host`` header must name this server on a loopback name (defeats DNS rebinding);
- proxy calls must carry the ``X-GeoBatch-UI`` header, which a cross-site page cannot send
  without a CORS preflight that this server never approves (defeats cross-site request forgery);
- responses never contain credentials or signed headers, only the API's body.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from geobatch.client import Client
from geobatch.wire import codec, errors

__all__ = ["MonitorServer", "serve"]

HOST = "127.0.0.1"
UI_HEADER = "X-GeoBatch-UI"
MAX_BODY = 1024 * 1024
# Ids are short tokens; anything else (dots, slashes, encodings, '@') is refused before forwarding.
_API_PATH = re.compile(r"^/(functions|jobs|operations)(/[A-Za-z0-9_\-]{1,128}){0,2}$")
_RESULT_PATH = re.compile(r"^/ui-api/result/([A-Za-z0-9_\-]{1,128})$")
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/functions.js": ("functions.js", "text/javascript; charset=utf-8"),
    "/jobs.js": ("jobs.js", "text/javascript; charset=utf-8"),
    "/detail.js": ("detail.js", "text/javascript; charset=utf-8"),
    "/stats-chart.js": ("stats-chart.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")
# Answer headers the page reads (a long log comes in parts; this one says where the next starts).
_FORWARDED_HEADERS = ("X-GeoBatch-Next-Offset",)
# The page needs nothing from elsewhere: no scripts, styles or connections to other origins.
_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _static(name: str) -> bytes:
    return resources.files("geobatch.ui").joinpath("static", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: MonitorServer
    protocol_version = "HTTP/1.1"
    server_version = "geobatch-ui"

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"code": code, "message": message, "errors": []}).encode()
        self._send(status, body)

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.server.server_address[1]
        return host in {f"{name}:{port}" for name in _LOOPBACK_NAMES}

    def _origin_ok(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return True  # same-origin GETs and non-browser clients send none
        parts = urlsplit(origin)
        return parts.scheme == "http" and f"{parts.hostname}:{parts.port}" in {
            f"{name}:{self.server.server_address[1]}" for name in _LOOPBACK_NAMES
        }

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if not self._host_ok():
            self._error(421, "bad_host", "use http://127.0.0.1:<port>/ to open the monitor")
            return
        if self.server.maps.handle(self):  # the map page and its API (geobatch.ui.mapview)
            return
        url = urlsplit(self.path)
        if url.path in _STATIC and self.command in ("GET", "HEAD"):
            name, content_type = _STATIC[url.path]
            self._send(200, _static(name), content_type)
            return
        if not (url.path.startswith("/api/") or url.path.startswith("/ui-api/")):
            self._error(404, "not_found", f"no page {url.path}")
            return
        if not self.headers.get(UI_HEADER) or not self._origin_ok():
            self._error(403, "forbidden", f"proxy calls need the {UI_HEADER} header and this origin")
            return
        try:
            if url.path == "/ui-api/config":
                # Read on every refresh: after local mode restarts on another port, the client
                # follows it (geobatch.local's state file) and the page shows where it went.
                self._send(200, json.dumps({"api_url": self.server.client.api_url}).encode())
            elif match := _RESULT_PATH.match(url.path):
                self._result(match.group(1))
            elif url.path.startswith("/api/"):
                self._proxy(url.path[len("/api") :], url.query)
            else:
                self._error(404, "not_found", f"no route {url.path}")
        except ConnectionError:
            return  # the page went away (reload, close) before the answer: nothing to tell it
        except errors.GeoBatchError as exc:
            self._send(exc.status, json.dumps(exc.to_body()).encode())
        except Exception as exc:  # the page shows one line; the details stay in this process
            self.log_error("proxy error: %r", exc)
            self._error(502, "proxy_error", f"{type(exc).__name__}: {exc}")

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise errors.PayloadTooLargeError(f"request body over {MAX_BODY} bytes")
        return self.rfile.read(length) if length else None

    def _proxy(self, path: str, query: str) -> None:
        """Forward one call to the configured API, signed by this process's client."""
        if not _API_PATH.match(path) or self.command not in ("GET", "POST", "PATCH", "DELETE"):
            self._error(400, "bad_path", f"the monitor does not forward {self.command} {path}")
            return
        body = self._read_body()
        headers = {"Content-Type": "application/json"} if body else {}
        if path.endswith("/log"):
            headers["Accept"] = "application/x-ndjson"
        params = dict(parse_qsl(query, keep_blank_values=False))
        response = self.server.client.request(self.command, path, params=params, body=body, headers=headers)
        answer = {k.lower(): v for k, v in response.headers.items()}
        extra = {name: answer[name.lower()] for name in _FORWARDED_HEADERS if name.lower() in answer}
        self._send(response.status, response.data, answer.get("content-type") or "application/json", extra)

    def _result(self, job_id: str) -> None:
        """A job's result decoded here, because a large one lives behind a presigned S3 URL."""
        from geobatch.job import Job

        job = Job.get(job_id, client=self.server.client)
        data = job.result_bytes()
        value = codec.decode_result(data)  # a JSON value, or the raw bytes when it is not JSON
        is_json = data is not None and not isinstance(value, bytes)
        payload = {"size": len(data or b""), "json": is_json, "value": value if is_json else None}
        self._send(200, json.dumps(payload, default=str).encode())


class MonitorServer(ThreadingHTTPServer):
    """The monitor: a threaded HTTP server on 127.0.0.1 bound to one :class:`Client`."""

    daemon_threads = True

    def __init__(
        self,
        client: Client,
        port: int = 0,
        verbose: bool = False,
        *,
        basemap: str | None = None,
        aws_env: dict[str, str] | None = None,
    ):
        from geobatch.ui.mapview import MapRoutes

        self.client = client
        # Follow local mode to a new port after `local down`/`up`, but never start it again
        # from a poll of an open page.
        client.restarts_local_mode = False
        self.verbose = verbose
        # Map tiles read COGs with aws_env (None: local mode's S3 when the client is local, else AWS).
        self.maps = MapRoutes(client, aws_env=aws_env, basemap=basemap)
        super().__init__((HOST, port), _Handler)

    def server_close(self) -> None:
        self.maps.close()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that closes a connection early is routine; anything else is worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8765/``."""
        return f"http://{HOST}:{self.server_address[1]}/"

    def start(self) -> MonitorServer:
        """Serve in a daemon thread (for tests and notebooks); stop with ``shutdown()``."""
        threading.Thread(target=self.serve_forever, name="geobatch-ui", daemon=True).start()
        return self


def serve(client: Client, port: int = 0, verbose: bool = False, basemap: str | None = None) -> MonitorServer:
    """Build the monitor server for ``client`` on 127.0.0.1:``port`` (0: a free port), not yet serving."""
    return MonitorServer(client, port=port, verbose=verbose, basemap=basemap)
