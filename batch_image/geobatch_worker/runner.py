"""Runs user code in a child process (the runner) that is reused across jobs of one Function.

The runner imports the Function's entrypoint once, so imports stay warm; each job gets its own
environment, a timestamped log of its stdout/stderr, and CPU/peak-memory figures of its whole
process tree. A job's clock starts when the runner is ready (imports done); start-up has its own
limit. A job that hangs past its timeout, is canceled, goes over its memory limit, outlives its
lease or kills its process gets the runner's whole tree killed and a fresh runner for the next job.

The parent and the runner speak a data format (``channel``), never pickle; every answer carries the
job's token and comes from the runner's own pid, or the runner is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geobatch
import geobatch_core
import geobatch_worker
from geobatch.wire import limits, statistics
from geobatch_worker import proctree
from geobatch_worker.channel import Channel, ChannelError
from geobatch_worker.child import LEASE_EXIT
from geobatch_worker.lease import LeaseFile
from geobatch_worker.outcome import LOST, RunResult, Watch, answer, exit_reason, raise_breach, read_log
from geobatch_worker.sampler import Sampler

__all__ = ["LOST", "STARTUP_SECONDS", "RunResult", "Runner"]

POLL_SECONDS = 0.05
STARTUP_SECONDS = 300.0  # imports of the Function's module; its own limit, apart from the timeout
_PACKAGES = (geobatch, geobatch_core, geobatch_worker)
_ROOTS = os.pathsep.join(sorted({str(Path(m.__file__ or "").resolve().parents[1]) for m in _PACKAGES}))
_BOOTSTRAP = (
    "import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); "
    "from geobatch_worker.child import main; main(sys.argv[2:])"
)


class Runner:
    """The parent's handle on the reusable runner process."""

    def __init__(
        self,
        bundle_dir: str,
        entrypoint: str,
        *,
        memory_limit_mb: float | None = None,
        log_dir: str,
        startup_seconds: float = STARTUP_SECONDS,
        child_env: dict[str, str] | None = None,
        sealed: dict[str, list[str]] | None = None,
        sample_seconds: float = statistics.SAMPLE_SECONDS,
    ):
        self._child_env = child_env
        self._sealed = json.dumps(sealed or {})  # paths the child makes read-only / hides (contain.seal)
        self._bundle_dir = bundle_dir
        self._entrypoint = entrypoint
        self._memory_limit_mb = memory_limit_mb
        self._startup_seconds = startup_seconds
        self._sample_seconds = sample_seconds
        self._log_dir = Path(log_dir)
        self.lease = LeaseFile(str(self._log_dir / "lease"), writable=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._chan: Channel | None = None
        self.replaced = 0  # runners replaced after a protocol breach (a stranger on the channel)

    # ------------------------------------------------------------------ process

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Channel]:
        chan, child_sock = Channel.pair(max_body=limits.MAX_RESULT_BYTES + (1 << 20))
        fd = child_sock.fileno()
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _BOOTSTRAP,
                _ROOTS,
                str(fd),
                self._bundle_dir,
                self._entrypoint,
                self.lease.path,
                self._sealed,
            ],
            env=self._child_env,
            pass_fds=(fd,),
            start_new_session=True,  # its own process group: signals to the worker do not reach it
            cwd=self._bundle_dir,
            stdin=subprocess.DEVNULL,
        )
        child_sock.close()
        chan.expect_peer(process.pid)
        self._process, self._chan = process, chan
        return process, chan

    def _kill(self) -> None:
        """End the runner and everything below it."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGSTOP)  # no more forks while the tree is swept
            proctree.kill_descendants(process.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.kill()
        self.close()

    def close(self) -> None:
        process, chan = self._process, self._chan
        self._process, self._chan = None, None
        if chan is not None:
            with contextlib.suppress(OSError):
                if process is not None and process.poll() is None:
                    chan.send({"t": "stop"})
            chan.close()
        if process is not None:
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proctree.kill_descendants(process.pid)
                process.kill()
                process.wait(timeout=5)

    # ------------------------------------------------------------------ one job

    def _wait(
        self,
        accept: Callable[[dict[str, Any], bytes], RunResult | None],
        *,
        limit: float,
        on_limit: Callable[[], RunResult],
        cancel: threading.Event,
        watch: Watch,
        during: str,
        tick: Callable[[], None] | None = None,
    ) -> RunResult:
        """Wait for an answer the runner gives to ``accept``, checking limits between polls."""
        process, chan = self._process, self._chan
        assert process is not None and chan is not None
        started = time.monotonic()
        while True:
            if chan.poll(POLL_SECONDS):
                try:
                    outcome = accept(*chan.recv())
                except EOFError:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=5)  # the pipe closed: the process is dying
                except ChannelError as exc:
                    # A stranger on the channel, or an answer out of protocol: this runner cannot be
                    # trusted with another job.
                    self._kill()
                    self.replaced += 1
                    return RunResult("failure", None, f"the job broke the worker's channel: {exc}")
                else:
                    if outcome is not None:
                        return outcome
            if process.poll() is not None:
                code, reason = exit_reason(process.returncode, during)
                proctree.kill_known(watch.seen)  # its orphans went to init: end them too
                self.close()
                return RunResult(LOST if code == LEASE_EXIT else "failure", code, reason)
            outcome = self._check(process.pid, watch, cancel, started, limit, on_limit)
            if outcome is not None:
                self._kill()
                return outcome
            if tick is not None:
                tick()

    def _check(
        self,
        pid: int,
        watch: Watch,
        cancel: threading.Event,
        started: float,
        limit: float,
        on_limit: Callable[[], RunResult],
    ) -> RunResult | None:
        if self.lease.expired():
            return RunResult(LOST, None, "the worker's lease on the job ran out")
        if cancel.is_set():
            return RunResult("canceled", None, "canceled while running")
        over = watch.memory(pid)
        if over is not None:
            return over
        if time.monotonic() - started > limit:
            return on_limit()
        return None

    def _start(self, cancel: threading.Event, watch: Watch) -> RunResult | None:
        """A ready runner (imports done), or why there is none."""
        if self._process is not None and self._process.poll() is None and self._chan is not None:
            return None
        self.close()
        self._spawn()

        def ready(header: dict[str, Any], body: bytes) -> RunResult | None:
            if header.get("t") == "ready" and header.get("pid") == self._process.pid:  # type: ignore[union-attr]
                return RunResult("ready")
            raise_breach(f"unexpected {str(header.get('t'))[:40]!r} frame during start-up")
            return None

        startup = self._startup_seconds
        outcome = self._wait(
            ready,
            limit=startup,
            on_limit=lambda: RunResult(
                "failure", None, f"start-up: the function's module was not imported within {startup:g} s"
            ),
            cancel=cancel,
            watch=watch,
            during=" during start-up (imports)",
        )
        return None if outcome.status == "ready" else outcome

    def run(
        self,
        payload_json: str,
        env: dict[str, str],
        *,
        timeout: float,
        cancel: threading.Event,
        log_name: str,
        tick: Callable[[Path], None] | None = None,
    ) -> RunResult:
        watch = Watch(self._memory_limit_mb)
        log_path = self._log_dir / f"{log_name}.log"
        log_path.write_bytes(b"")
        t0 = time.monotonic()
        outcome = self._start(cancel, watch)
        started = time.monotonic()  # the job's clock starts when the runner is ready
        if outcome is None:
            assert self._process is not None and self._chan is not None
            proctree.reset_peak(self._process.pid)
            watch.peak = 0.0
            watch.sampler = Sampler(self._process.pid, self._sample_seconds)
            token = secrets.token_hex(16)
            self._chan.send(
                {"t": "run", "token": token, "env": env, "log": str(log_path)}, payload_json.encode()
            )
            outcome = self._wait(
                lambda header, body: answer(header, body, token),
                limit=timeout,
                on_limit=lambda: RunResult("timeout", None, f"timeout: still running after {timeout:g} s"),
                cancel=cancel,
                watch=watch,
                during="",
                tick=(lambda: tick(log_path)) if tick is not None else None,
            )
        alive = self._process is not None and self._process.poll() is None
        if alive:
            watch.peak = max(watch.peak, proctree.rss_mb(self._process.pid, "VmHWM"))  # type: ignore[union-attr]
        outcome.runtime = time.monotonic() - started
        outcome.startup_seconds = started - t0
        outcome.peak_memory_mb = round(watch.peak, 1) if watch.peak else None
        if watch.sampler is not None:
            outcome.statistics = watch.sampler.finish(alive, outcome.peak_memory_mb)
        outcome.log = read_log(log_path)
        with contextlib.suppress(OSError):
            log_path.unlink()
        return outcome
