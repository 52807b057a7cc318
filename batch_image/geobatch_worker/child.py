"""The user-code process (the runner): imports the Function once, then runs jobs the parent sends.

Started by ``Runner`` as ``python -c <bootstrap> FD BUNDLE ENTRYPOINT LEASE_FILE`` in its own
session. It answers on the channel only as itself: a copy made by ``os.fork()`` in user code loses
the channel at fork time and exits when it gets back here, and the parent checks the sender of
every byte anyway. When a job ends, everything it started is killed before the answer is sent.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from geobatch.wire import limits
from geobatch.wire.codec import encode_result
from geobatch_worker import contain, proctree
from geobatch_worker.channel import Channel, child_channel
from geobatch_worker.lease import LeaseFile

LEASE_EXIT = 86  # the exit code of a runner that stopped itself because its lease ran out
WATCHDOG_SECONDS = 0.2


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _LogCapture:
    """Points fds 1 and 2 at a pipe; a thread stamps each line into the job's log file."""

    def __init__(self, path: str):
        # Line-buffered: a job that is killed keeps every line it printed, and the parent can ship
        # the file while the job runs.
        self._file = open(path, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._read, self._write = os.pipe()
        self._saved = (os.dup(1), os.dup(2))
        self._written = 0
        self._dropped = 0
        self._thread = threading.Thread(target=self._pump, daemon=True)

    def _pump(self) -> None:
        with os.fdopen(self._read, "rb", buffering=0) as stream:
            pending = b""
            while chunk := stream.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._line(line)
            if pending:
                self._line(pending)

    def _line(self, raw: bytes) -> None:
        if self._written > limits.MAX_LOG_BYTES:
            self._dropped += 1
            return
        text = f"{_stamp()}\t{raw.decode('utf-8', 'replace')}\n"
        self._written += len(text)
        self._file.write(text)

    def start(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._write, 1)
        os.dup2(self._write, 2)
        os.close(self._write)
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._thread.join(timeout=5)
        if self._dropped:
            self._file.write(
                f"{_stamp()}\t[geobatch] {self._dropped} more log lines dropped: over the log limit\n"
            )
        self._file.close()


def _cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class _Runner:
    def __init__(self, channel: Channel, lease: LeaseFile):
        self.channel: Channel | None = channel
        self.lease = lease
        self.pid = os.getpid()
        self.func: Any = None
        self.import_error: str | None = None
        self.spared: frozenset[int] = frozenset()  # what the import started (e.g. a local cluster)
        self.not_sealed: str | None = None  # why the file-system containment is missing, if it is
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        # A fork of user code is not the runner: it must never read requests or write answers.
        if self.channel is not None:
            with contextlib.suppress(OSError):
                self.channel.close()
            self.channel = None

    def _leave_if_not_runner(self) -> None:
        if os.getpid() != self.pid:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(0)  # a forked copy whose user code returned

    def watchdog(self) -> None:
        """End the job's whole tree when the lease runs out or the worker parent dies (SIGKILL,
        OOM): nothing the job started may outlive the worker or run on without a lease."""
        parent = os.getppid()
        while True:
            time.sleep(WATCHDOG_SECONDS)
            if self.lease.expired():
                proctree.kill_descendants(self.pid)
                os._exit(LEASE_EXIT)
            if os.getppid() != parent:
                proctree.kill_descendants(self.pid)
                os._exit(1)

    def load(self, bundle_dir: str, entrypoint: str) -> None:
        try:
            module_name, attr = entrypoint.split(":")
            self.func = getattr(importlib.import_module(module_name), attr)
        except BaseException:
            self.import_error = traceback.format_exc()
        self._leave_if_not_runner()
        self.spared = frozenset(proctree.children(self.pid))

    def serve(self) -> None:
        assert self.channel is not None
        self.channel.send({"t": "ready", "pid": self.pid})
        base_env = dict(os.environ)
        while True:
            try:
                header, body = self.channel.recv()
            except EOFError:
                header, body = {"t": "stop"}, b""
            if header.get("t") != "run":
                proctree.kill_descendants(self.pid)  # what the import started goes with the runner
                return
            os.environ.clear()
            os.environ.update({**base_env, **header["env"]})
            reply, data = self._run(header, body)
            os.environ.clear()
            os.environ.update(base_env)
            if self.channel is None:
                return
            self.channel.send(reply, data)

    def _run(self, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        capture = _LogCapture(header["log"])
        capture.start()
        if self.not_sealed is not None:
            print(self.not_sealed, file=sys.stderr)
        cpu0 = _cpu()
        reply: dict[str, Any]
        data = b""
        try:
            reply, data = self._call(json.loads(body))
        finally:
            self._leave_if_not_runner()
            killed = proctree.kill_descendants(self.pid, self.spared)
            proctree.reap()
            if killed:
                print(f"[geobatch] stopped {killed} processes the job left running", file=sys.stderr)
            capture.stop()
        reply.update(token=header["token"], cpu=_cpu() - cpu0)
        return reply, data

    def _call(self, payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        if self.import_error is not None:
            print(self.import_error, file=sys.stderr)
            last = self.import_error.strip().splitlines()[-1]
            return {"t": "error", "message": "could not import the function: " + last, "code": 1}, b""
        try:
            value = self.func(*(payload.get("args") or []), **(payload.get("kwargs") or {}))
            self._leave_if_not_runner()
            encoded, meta = encode_result(value)
            if encoded is not None and len(encoded) > limits.MAX_RESULT_BYTES:
                raise ValueError(
                    f"the result is {len(encoded)} bytes; at most {limits.MAX_RESULT_BYTES} are allowed"
                )
            return {"t": "ok", "meta": meta or {}, "none": encoded is None}, encoded or b""
        except SystemExit as exc:
            self._leave_if_not_runner()
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            message = f"SystemExit: the function called sys.exit({exc.code!r})"
            return {"t": "error", "message": message, "code": code or 1}, b""
        except BaseException as exc:
            self._leave_if_not_runner()
            # The user's frames only: the first frame is this runner.
            traceback.print_exception(
                type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None
            )
            return {"t": "error", "message": f"{type(exc).__name__}: {exc}"[:2000], "code": 1}, b""


def main(argv: list[str]) -> None:
    fd, bundle_dir, entrypoint, lease_path = int(argv[0]), argv[1], argv[2], argv[3]
    sealed = json.loads(argv[4]) if len(argv) > 4 else {}
    # Before any user code: the environments read-only, the control plane's local state out of sight.
    not_sealed = contain.seal(sealed.get("ro", []), sealed.get("hide", [])) if sealed else None
    proctree.become_subreaper()
    sys.path.insert(0, bundle_dir)
    os.chdir(bundle_dir)
    # Line buffering so each printed line is stamped when it is printed, not when a buffer fills.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    runner = _Runner(
        child_channel(fd, max_body=limits.MAX_ARGS_BYTES * 2), LeaseFile(lease_path, writable=False)
    )
    if not_sealed is not None:
        runner.not_sealed = f"[geobatch] environments are not read-only to this job: {not_sealed}"
    threading.Thread(target=runner.watchdog, daemon=True).start()
    runner.load(bundle_dir, entrypoint)
    runner.serve()
