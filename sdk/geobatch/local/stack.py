"""Local mode: moto's server for DynamoDB/SQS/S3, the real API handler behind an HTTP adapter,
worker subprocesses instead of AWS Batch, and virtualenvs instead of CodeBuild. All on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from geobatch.local.builder import LocalImageBuilder
from geobatch.local.executor import LocalExecutor
from geobatch.local.http_adapter import make_server
from geobatch_core import env, limits
from geobatch_core.adapters import provision
from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore
from geobatch_core.adapters.events import LogPublisher
from geobatch_core.adapters.s3 import S3BlobStore
from geobatch_core.adapters.s3 import make_client as make_s3_client
from geobatch_core.adapters.sqs import SqsQueue
from geobatch_core.data_access import Bound
from geobatch_core.services import functions as function_service
from geobatch_core.services import scaling
from geobatch_core.services.context import Services, Settings

log = logging.getLogger("geobatch.local")

FUNCTIONS_TABLE = "geobatch-local-functions"
JOBS_TABLE = "geobatch-local-jobs"
BUCKET = "geobatch-local"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's server in its own process on 127.0.0.1.

    Its own process, not a thread: moto keeps its state in module globals, which an in-process
    ``mock_aws`` (tests, notebooks) resets — a thread would lose local mode's tables with it.
    """

    def __init__(self, port: int, log_path: Path):
        self.port = port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto's server exited at start: see {self._log_path}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"moto's server did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)


@dataclass
class LocalOptions:
    home: Path
    api_port: int = 0
    moto_port: int = 0
    lost_worker_seconds: int = 15
    worker_idle_seconds: float = 5.0
    retry_base_seconds: float = 1.0
    scale_interval: float = 0.5
    pip_args: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)


class LocalStack:
    """Everything local mode runs, in one process (the workers are its subprocesses)."""

    def __init__(self, options: LocalOptions):
        self.options = options
        options.home.mkdir(parents=True, exist_ok=True)
        self.moto_port = options.moto_port or free_port()
        self.moto = MotoServer(self.moto_port, options.home / "logs" / "moto.log")
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.api_port = options.api_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.services: Services | None = None
        self.events = LogPublisher()  # completion events become log lines
        self.executor: LocalExecutor | None = None

    def aws_env(self) -> dict[str, str]:
        return {
            env.AWS_ENDPOINT_URL: self.moto_url,
            env.AWS_REGION: REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }

    def worker_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GEOBATCH_", "AWS_"))}
        return {
            **base,
            **self.aws_env(),
            env.FUNCTIONS_TABLE: FUNCTIONS_TABLE,
            env.JOBS_TABLE: JOBS_TABLE,
            env.BUCKET: BUCKET,
            env.LOST_WORKER_SECONDS: str(self.options.lost_worker_seconds),
            **self.options.extra_env,
        }

    def _session(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )

    def start(self) -> LocalStack:
        self.moto.start()
        session = self._session()
        dynamodb = session.client("dynamodb", endpoint_url=self.moto_url)
        s3 = make_s3_client(session, self.moto_url)
        provision.create_tables(dynamodb, FUNCTIONS_TABLE, JOBS_TABLE)
        provision.create_bucket(s3, BUCKET)
        settings = Settings(
            queue_prefix="geobatch-local",
            lost_worker_seconds=self.options.lost_worker_seconds,
            retry_base_seconds=self.options.retry_base_seconds,
            # Anything unless configured: GEOBATCH_DATA_ACCESS rehearses a deployed stack's bound.
            data_bound=Bound.from_json(os.environ.get(env.DATA_ACCESS)),
        )
        self.executor = LocalExecutor(
            self.options.home, self.worker_env(), idle_seconds=self.options.worker_idle_seconds
        )
        builder = LocalImageBuilder(self.options.home, pip_args=self.options.pip_args)
        self.services = Services(
            functions=DynamoFunctionStore(dynamodb, FUNCTIONS_TABLE),
            jobs=DynamoJobStore(dynamodb, JOBS_TABLE),
            queue=SqsQueue(session.client("sqs", endpoint_url=self.moto_url)),
            blobs=S3BlobStore(s3, BUCKET),
            executor=self.executor,
            builder=builder,
            settings=settings,
            on_submit=self._wake,
            events=self.events,
        )
        report = function_service.build_reporter(self.services)

        def build_done(
            function_id: str, ok: bool, image_uri: str | None, build_log: str, reason: str
        ) -> None:
            try:
                report(function_id, ok, image_uri, build_log, reason)
            except Exception:
                log.exception("could not record the end of the build of %s", function_id)

        builder.on_done = build_done
        from geobatch_api import app as api_app
        from geobatch_api import context as api_context

        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        self._previous_services = api_context.configure(self.services)
        self.http = make_server(
            "127.0.0.1", self.api_port, api_app.handler, limits.MAX_REQUEST_BYTES + 100_000
        )
        self._spawn(self.http.serve_forever, "api")
        self._wakeup = threading.Event()
        self._spawn(self._scale_loop, "scaler")
        return self

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=f"geobatch-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wake(self, function_id: str) -> None:
        self._wakeup.set()

    def _scale_loop(self) -> None:
        assert self.services is not None
        while not self._stop.is_set():
            try:
                scaling.scale_all(self.services)
            except Exception:
                log.exception("scaling failed")
            self._wakeup.wait(self.options.scale_interval)
            self._wakeup.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        if self.executor is not None:
            self.executor.shutdown()
        self.http.shutdown()
        self.http.server_close()
        self.moto.stop()
        from geobatch_api import context as api_context

        api_context.configure(self._previous_services)

    def wait_ready(self, timeout: float = 10.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # Our own http://127.0.0.1:<port> URL: no user-supplied scheme reaches urlopen.
                with urllib.request.urlopen(self.api_url + "/health", timeout=1) as response:  # nosec B310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("the local API did not start")
