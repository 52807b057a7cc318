"""In AWS, what credentials user code gets: its Function's data role, never the worker's task role.

The worker's task role may change its Function's job items, write results and logs and publish
metrics; user code must not (it could forge its own jobs' state). So the worker parent:

- **hides the task role's credentials from ``/proc``** (``hide_task_credentials``): once, at start,
  it re-executes itself with an environment without them (``/proc/<pid>/environ`` shows the
  environment a process was *executed* with, whatever it changes later) and receives them through
  a pipe into its own memory only; then it makes itself undumpable, so a process of the same user
  can read neither its ``/proc/<pid>/environ`` nor its memory, nor trace it;
- **assumes the Function's data role** (``DataRoleCredentials``: only what the Function declared
  in ``data_access``) and **serves it on loopback** (``CredentialServer``) in the format of the ECS
  container credentials endpoint: the child gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (a random
  path on 127.0.0.1) and ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, which every AWS SDK's container
  provider reads and refreshes by itself before the credentials expire. Role chaining caps a data
  role session at one hour and jobs run longer: the parent assumes the role again when its cached
  session has less than ``REFRESH_MARGIN_SECONDS`` left, so what the child fetches always outlives
  the SDKs' own refresh margins (15 and 10 minutes);
- **strips every other way to credentials** from the child's environment (``child_environ``).

What this does not cover, said plainly: on an EC2 compute environment the instance's metadata
service (169.254.169.254) is reachable from the container unless the launch template limits it
(see README, "Containment"); a library that copies credentials once (e.g. rasterio's AWSSession
hands GDAL static keys) holds them for at most the session's lifetime (at least 20 minutes).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("geobatch.worker")

# Every way an AWS SDK finds credentials in the environment (the task role's, in a container).
TASK_CREDENTIAL_NAMES = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",  # a config file can name a credential_process or a source profile
)
SECRETS_FD = "GEOBATCH_WORKER_SECRETS_FD"  # the pipe the re-executed worker reads them back from
DURATION_SECONDS = 3600  # the most a chained role session may last
REFRESH_MARGIN_SECONDS = 1200  # assume again below this: SDKs refresh 15 min before the expiry


def hide_task_credentials(environ: os._Environ[str] = os.environ) -> None:
    """Take the task role's credentials out of this process's ``/proc/<pid>/environ`` (re-exec) and
    make the process undumpable. Returns in the re-executed process, with the names back in
    ``environ`` (its memory only), so the worker's own AWS clients still find them."""
    fd = environ.pop(SECRETS_FD, None)
    if fd is not None:
        with os.fdopen(int(fd), "rb") as pipe:
            environ.update(json.loads(pipe.read()))
        undumpable()
        return
    found = {k: environ[k] for k in TASK_CREDENTIAL_NAMES if k in environ}
    if not found:
        undumpable()
        return
    read, write = os.pipe()
    os.write(write, json.dumps(found).encode())  # far below a pipe's buffer: never blocks
    os.close(write)
    os.set_inheritable(read, True)
    clean = {k: v for k, v in environ.items() if k not in found}
    clean[SECRETS_FD] = str(read)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], clean)


def undumpable() -> None:
    from geobatch_worker.contain import undumpable as close_proc

    close_proc()


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without any of the task role's credentials (what the child starts from)."""
    return {k: v for k, v in environ.items() if k not in TASK_CREDENTIAL_NAMES}


def session_name(function_id: str, worker_id: str) -> str:
    """A RoleSessionName (CloudTrail shows it): which Function's user code, on which worker."""
    return re.sub(r"[^\w+=,.@-]", "-", f"user-{function_id}-{worker_id}")[:64]


class DataRoleCredentials:
    """Sessions of the Function's data role, assumed with the worker's own credentials, cached
    until they come within ``refresh_margin`` of their expiry."""

    def __init__(
        self,
        sts_client: Any,
        role_arn: str,
        session: str,
        *,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ):
        self._sts = sts_client
        self.role_arn = role_arn
        self.session = session
        self.refresh_margin = refresh_margin
        self._lock = threading.Lock()
        self._cached: dict[str, str] | None = None
        self._expires = 0.0
        self.assumed = 0  # how many sessions were assumed (tests and logs)

    def current(self) -> dict[str, str]:
        """The endpoint's answer: AccessKeyId, SecretAccessKey, Token, Expiration (ISO 8601)."""
        with self._lock:
            if self._cached is None or self._expires - time.time() < self.refresh_margin:
                self._cached, self._expires = self._assume()
            return dict(self._cached)

    def _assume(self) -> tuple[dict[str, str], float]:
        creds = self._sts.assume_role(
            RoleArn=self.role_arn, RoleSessionName=self.session, DurationSeconds=DURATION_SECONDS
        )["Credentials"]
        expiration = creds["Expiration"]
        if not isinstance(expiration, datetime):
            expiration = datetime.fromisoformat(str(expiration).replace("Z", "+00:00"))
        self.assumed += 1
        answer = {
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["SessionToken"],
            "Expiration": expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return answer, expiration.timestamp()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        token = self.headers.get("Authorization") or ""
        if self.path != self.server.path or not hmac.compare_digest(token, self.server.token):
            self._answer(403, {"code": "AccessDenied", "message": "unknown path or token"})
            return
        try:
            self._answer(200, self.server.source.current())
        except Exception as exc:  # STS out of reach or refusing: the SDK reports it to user code
            log.error("could not assume the data role %s: %s", self.server.source.role_arn, exc)
            self._answer(500, {"code": "CredentialsUnavailable", "message": str(exc)[:500]})

    def _answer(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, source: DataRoleCredentials):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.source = source
        self.path = f"/credentials/{secrets.token_urlsafe(24)}"
        self.token = secrets.token_urlsafe(32)


class CredentialServer:
    """The loopback credentials endpoint of one worker's user-code child."""

    def __init__(self, source: DataRoleCredentials):
        self._server = _Server(source)
        self._thread = threading.Thread(target=self._server.serve_forever, name="credentials", daemon=True)
        self._thread.start()

    def child_environ(self) -> dict[str, str]:
        """What the child gets in place of the task role's names."""
        port = self._server.server_address[1]
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{port}{self._server.path}",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self._server.token,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_data_role(
    role_arn: str | None, function_id: str, worker_id: str
) -> tuple[CredentialServer | None, dict[str, str]]:
    """The server (None without a data role: user code then gets no AWS credentials at all) and the
    names to add to the child's environment."""
    if not role_arn:
        log.warning(
            "Function %s's job definition names no data role: its user code runs without AWS "
            "credentials (save or update the Function to register a current job definition)",
            function_id,
        )
        return None, {}
    import boto3

    sts = boto3.session.Session().client("sts")
    server = CredentialServer(DataRoleCredentials(sts, role_arn, session_name(function_id, worker_id)))
    return server, server.child_environ()
