"""Runs user code in a child process that is reused across jobs of one Function.

The child imports the Function's entrypoint once, so imports stay warm; each job gets its own
environment, a timestamped log of its stdout/stderr, and CPU/peak-memory figures. A job that
hangs past its timeout, is canceled, goes over its memory limit or kills its process gets the
process killed and a fresh one for the next job.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from geobatch_core import limits
from geobatch_core.codec import encode_result

POLL_SECONDS = 0.05


@dataclass
class RunResult:
    status: str  # success, failure, timeout, canceled
    exit_code: int | None = None
    error: str | None = None
    result: bytes | None = None
    result_meta: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    runtime: float = 0.0
    peak_memory_mb: float | None = None
    cpu_seconds: float | None = None


# --------------------------------------------------------------------------- child side


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _LogCapture:
    """Points fds 1 and 2 at a pipe; a thread stamps each line into the job's log file."""

    def __init__(self, path: str):
        # Line-buffered: a job that is killed keeps every line it printed.
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
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_main(conn: Connection, bundle_dir: str, entrypoint: str) -> None:
    """Entry of the child process: import once, then run jobs until told to stop."""
    sys.path.insert(0, bundle_dir)
    os.chdir(bundle_dir)
    # Line buffering so each printed line is stamped when it is printed, not when a buffer fills.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    func: Any = None
    import_error: str | None = None
    try:
        module_name, attr = entrypoint.split(":")
        func = getattr(importlib.import_module(module_name), attr)
    except BaseException:
        import_error = traceback.format_exc()
    base_env = dict(os.environ)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        _, payload_json, job_env, log_path = request
        payload = json.loads(payload_json)
        os.environ.clear()
        os.environ.update({**base_env, **job_env})
        capture = _LogCapture(log_path)
        capture.start()
        cpu0 = _cpu()
        reply: tuple[Any, ...]
        try:
            if import_error is not None:
                print(import_error, file=sys.stderr)
                reply = (
                    "error",
                    "could not import the function: " + import_error.strip().splitlines()[-1],
                    1,
                )
            else:
                value = func(*(payload.get("args") or []), **(payload.get("kwargs") or {}))
                data, meta = encode_result(value)
                if data is not None and len(data) > limits.MAX_RESULT_BYTES:
                    raise ValueError(
                        f"the result is {len(data)} bytes; at most {limits.MAX_RESULT_BYTES} are allowed"
                    )
                reply = ("ok", data, meta)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            reply = ("error", f"SystemExit: the function called sys.exit({exc.code!r})", code or 1)
        except BaseException as exc:
            # The user's frames only: the first frame is this runner.
            traceback.print_exception(
                type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None
            )
            message = f"{type(exc).__name__}: {exc}"
            reply = ("error", message[:2000], 1)
        finally:
            capture.stop()
            os.environ.clear()
            os.environ.update(base_env)
        conn.send((*reply, _cpu() - cpu0))


# --------------------------------------------------------------------------- parent side


def _read_status(pid: int, field_name: str) -> float | None:
    """A memory figure (MiB) of a process from /proc; None where /proc is not available."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM, so the peak we read is this job's, not the process's.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def read_log(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if len(data) > limits.MAX_LOG_BYTES:
        half = limits.MAX_LOG_BYTES // 2
        data = data[:half] + b"\n[geobatch] log truncated: the middle was dropped\n" + data[-half:]
    return data.decode("utf-8", "replace")


class Runner:
    """The parent's handle on the reusable child process."""

    def __init__(
        self, bundle_dir: str, entrypoint: str, *, memory_limit_mb: float | None = None, log_dir: str
    ):
        self._bundle_dir = bundle_dir
        self._entrypoint = entrypoint
        self._memory_limit_mb = memory_limit_mb
        self._log_dir = Path(log_dir)
        self._ctx = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None

    def _ensure_child(self) -> tuple[Any, Connection]:
        if self._process is None or not self._process.is_alive() or self._conn is None:
            self.close()
            parent, child = self._ctx.Pipe()
            self._process = self._ctx.Process(
                target=child_main, args=(child, self._bundle_dir, self._entrypoint), daemon=True
            )
            self._process.start()
            child.close()
            self._conn = parent
        return self._process, self._conn

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                if self._process is not None and self._process.is_alive():
                    self._conn.send(("stop",))
            self._conn.close()
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=2)
        self._process, self._conn = None, None

    def run(
        self,
        payload_json: str,
        env: dict[str, str],
        *,
        timeout: float,
        cancel: threading.Event,
        log_name: str,
    ) -> RunResult:
        process, conn = self._ensure_child()
        _reset_peak(process.pid)
        log_path = self._log_dir / f"{log_name}.log"
        started = time.monotonic()
        conn.send(("run", payload_json, env, str(log_path)))
        peak = 0.0
        outcome: RunResult | None = None
        while outcome is None:
            reply = None
            if conn.poll(POLL_SECONDS):
                try:
                    reply = conn.recv()
                except (EOFError, OSError):
                    # The pipe closed: the process died (e.g. os._exit). Fall through to the liveness
                    # check below; a `continue` here would poll the closed pipe forever.
                    process.join(timeout=1)
            if reply is not None:
                if reply[0] == "ok":
                    outcome = RunResult("success", 0, None, reply[1], reply[2] or {}, cpu_seconds=reply[3])
                else:
                    outcome = RunResult("failure", int(reply[2]), reply[1], cpu_seconds=reply[3])
                break
            rss = _read_status(process.pid, "VmHWM") or _read_status(process.pid, "VmRSS")
            peak = max(peak, rss or 0.0)
            elapsed = time.monotonic() - started
            if not process.is_alive():
                code = process.exitcode
                signal_note = f" (killed by signal {-code})" if code is not None and code < 0 else ""
                exit_code = 128 - code if code is not None and code < 0 else code
                outcome = RunResult(
                    "failure", exit_code, f"the function's process exited with code {exit_code}{signal_note}"
                )
                self.close()
            elif self._memory_limit_mb and peak > self._memory_limit_mb:
                self._kill()
                outcome = RunResult(
                    "failure",
                    137,
                    f"out of memory: peak {peak:,.0f} MiB of {self._memory_limit_mb:,.0f} MiB limit",
                )
            elif elapsed > timeout:
                self._kill()
                outcome = RunResult("timeout", None, f"timeout: still running after {timeout:g} s")
            elif cancel.is_set():
                self._kill()
                outcome = RunResult("canceled", None, "canceled while running")
        if self._process is not None and self._process.is_alive():
            peak = max(peak, _read_status(self._process.pid, "VmHWM") or 0.0)
        outcome.runtime = time.monotonic() - started
        outcome.peak_memory_mb = round(peak, 1) if peak else None
        outcome.log = read_log(log_path)
        with contextlib.suppress(OSError):
            log_path.unlink()
        return outcome
