"""Local mode: moto's server for DynamoDB/SQS/S3, the real API handler behind an HTTP adapter,
worker subprocesses instead of AWS Batch, and virtualenvs instead of CodeBuild. All on 127.0.0.1."""

from __future__ import annotations

import contextlib
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
from geobatch.wire import env, errors, limits
from geobatch.wire.data_access import Bound
from geobatch.wire.models import FunctionStatus
from geobatch_core import wiring
from geobatch_core.adapters import provision
from geobatch_core.adapters.environment import Stores
from geobatch_core.adapters.events import LogPublisher
from geobatch_core.adapters.s3 import S3BlobStore
from geobatch_core.adapters.s3 import make_client as make_s3_client
from geobatch_core.adapters.sqlite import Database, open_state
from geobatch_core.services.context import Services, Settings
from geobatch_core.services.iterate import all_functions
from geobatch_core.services.lease import LEASE_ATTRIBUTE
from geobatch_ops import scaler

log = logging.getLogger("geobatch.local")

BUCKET = "geobatch-local"
REGION = "us-east-1"
# Job progress reaches the disk's platters at least this often (submissions at once): the bound
# on what an operating-system crash or power loss rolls back. A process crash loses nothing.
CHECKPOINT_SECONDS = 2.0
PURGE_SECONDS = 3600.0  # how often expired references and idempotency records are deleted
LOCAL_OPERATION_SECONDS = 2.0  # of each scaler pass, for background bulk operations


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ObjectServer:
    """Local mode's S3 (``geobatch.local.objects``: moto, every object written through to files).

    Its own process, not a thread: moto keeps its state in module globals, which an in-process
    ``mock_aws`` (tests, notebooks) resets. It dies with the daemon (Linux: parent-death signal),
    so a crashed daemon never leaves an S3 server behind that a restarted one cannot see.
    """

    def __init__(self, port: int, root: Path, log_path: Path):
        self.port = port
        self._root = root
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "geobatch.local.objects", "--root", str(self._root)]
        command += ["--port", str(self.port), "--parent-pid", str(os.getpid())]
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout  # restoring many objects takes a while
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"local S3 exited at start: see {self._log_path}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"local S3 did not listen on port {self.port} within {timeout:.0f} s")

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
        self.state_path = options.home / "state.sqlite"
        self.moto = ObjectServer(self.moto_port, options.home / "objects", options.home / "logs" / "s3.log")
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.api_port = options.api_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self._stop = threading.Event()
        self._wakeup = threading.Event()  # a submit wakes the scaler
        self._threads: list[threading.Thread] = []
        self.services: Services | None = None
        self.events = LogPublisher(keep=1000)  # completion events become log lines
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
            env.LOCAL_STATE: str(self.state_path),
            env.BUCKET: BUCKET,
            env.LOST_WORKER_SECONDS: str(self.options.lost_worker_seconds),
            **self.options.extra_env,
        }

    def _session(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )

    def start(self) -> LocalStack:
        from geobatch_worker.contain import undumpable

        undumpable()  # the daemon holds the state file open: its /proc/<pid>/fd is no way in for jobs
        self.moto.start()
        session = self._session()
        s3 = make_s3_client(session, self.moto_url)
        provision.create_bucket(s3, BUCKET)
        self.services = self._make_services(s3)
        self._recover_after_restart()
        from geobatch_api import app as api_app

        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        self._previous_services = wiring.configure(self.services)
        self.http = make_server(
            "127.0.0.1", self.api_port, api_app.handler, limits.MAX_REQUEST_BYTES + 100_000
        )
        self._spawn(self.http.serve_forever, "api")
        self._spawn(self._scale_loop, "scaler")
        return self

    def _make_services(self, s3: Any) -> Services:
        """The ports: SQLite state, local S3, worker subprocesses, virtualenv builds."""
        self.state = Database(self.state_path)
        functions, jobs, queue = open_state(self.state_path, self.state)
        self._jobs_store = jobs
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
        return wiring.compose(
            Stores(functions, jobs, queue, S3BlobStore(s3, BUCKET)),
            executor=self.executor,
            builder=LocalImageBuilder(self.options.home, pip_args=self.options.pip_args),
            settings=settings,
            on_submit=self._wake,
            events=self.events,
        )

    def _recover_after_restart(self) -> None:
        """What a previous daemon left when it stopped or crashed: a build it was running has no
        thread left to end it; a scaling lease it held would keep this daemon's scaler away for
        up to ``LEASE_SECONDS`` (the home's lock says no other pass can be running)."""
        assert self.services is not None
        for function in all_functions(self.services, None):
            if (lease := function.scaling_lease) is not None:
                with contextlib.suppress(errors.ConflictError, errors.NotFoundError):
                    self.services.functions.update(
                        function.id, {LEASE_ATTRIBUTE: None}, expect={LEASE_ATTRIBUTE: lease}
                    )
            if function.status == FunctionStatus.BUILDING.value and function.image_hash:
                log.info("resuming the build of %s", function.id)
                self.services.builder.start_build(
                    function, bundle_key=function.bundle_key or "", image_hash=function.image_hash
                )

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=f"geobatch-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wake(self, function_id: str) -> None:
        self._wakeup.set()

    def _scale_loop(self) -> None:
        """The scaler pass, every ``scale_interval`` or when a submit wakes it (as in AWS)."""
        assert self.services is not None
        synced = time.monotonic()
        purge_at = time.monotonic()  # at start, then every PURGE_SECONDS
        while not self._stop.is_set():
            try:
                # Each Function's failure is logged by the pass itself, which goes on with the others.
                scaler.run_pass(self.services, operation_seconds=LOCAL_OPERATION_SECONDS)
            except Exception:
                log.exception("scaling failed")
            if time.monotonic() - synced >= CHECKPOINT_SECONDS:
                synced = time.monotonic()
                try:
                    self.state.checkpoint()
                except Exception:
                    log.exception("checkpoint failed")
            if time.monotonic() >= purge_at:
                purge_at = time.monotonic() + PURGE_SECONDS
                try:  # what DynamoDB's TTL removes in AWS (they already count as absent)
                    self._jobs_store.purge_expired(int(time.time()))
                except Exception:
                    log.exception("purging expired idempotency records failed")
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
        wiring.configure(self._previous_services)

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
