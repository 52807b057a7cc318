"""Local executor: worker subprocesses in place of AWS Batch array jobs."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geobatch.local.builder import python_of
from geobatch.local.objects import die_with_parent
from geobatch.wire import env
from geobatch_core.records import FunctionRecord


class LocalExecutor:
    def __init__(self, home: Path, base_env: Mapping[str, str], *, idle_seconds: float = 5.0):
        self._logs = home / "logs"
        self._logs.mkdir(parents=True, exist_ok=True)
        self._base_env = dict(base_env)
        self._idle_seconds = idle_seconds
        self._workers: dict[str, list[subprocess.Popen[bytes]]] = {}
        self._lock = threading.Lock()
        self._counter = 0

    def register(self, function: FunctionRecord) -> Mapping[str, Any]:
        return {}  # nothing to register: a subprocess needs no job definition

    def _alive(self, function_id: str) -> list[subprocess.Popen[bytes]]:
        alive = [p for p in self._workers.get(function_id, []) if p.poll() is None]
        self._workers[function_id] = alive
        return alive

    def running_workers(self, function: FunctionRecord) -> int:
        with self._lock:
            return len(self._alive(function.id))

    def worker_states(self, function: FunctionRecord) -> Mapping[str, int]:
        running = self.running_workers(function)
        return {"RUNNING": running} if running else {}

    def start_workers(self, function: FunctionRecord, count: int) -> None:
        with self._lock:
            for _ in range(count):
                self._counter += 1
                worker_id = f"local-{function.id}-{self._counter}"
                environ = {
                    **self._base_env,
                    env.WORKER_FUNCTION_ID: function.id,
                    env.WORKER_QUEUE_URL: function.queue_url or "",
                    env.WORKER_ID: worker_id,
                    env.WORKER_IDLE_SECONDS: str(self._idle_seconds),
                    env.WORKER_POLL_SECONDS: "1",
                    # Enforce the Function's memory as a container limit would in the cloud.
                    env.WORKER_MEMORY_LIMIT_MB: str(function.memory),
                }
                log = open(self._logs / f"{worker_id}.log", "ab")  # noqa: SIM115 (owned by the child)
                process = subprocess.Popen(
                    [python_of(function.image_uri or ""), "-m", "geobatch_worker"],
                    env=environ,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # A worker never outlives its daemon: a crashed daemon's S3 goes with it.
                    preexec_fn=functools.partial(die_with_parent, os.getpid(), signal.SIGKILL),
                )
                log.close()
                self._workers.setdefault(function.id, []).append(process)

    def stop_workers(self, function: FunctionRecord) -> None:
        with self._lock:
            for process in self._alive(function.id):
                process.send_signal(signal.SIGTERM)

    def release(self, function: FunctionRecord) -> None:
        pass  # a subprocess leaves nothing registered behind

    def worker_pids(self, function_id: str) -> list[int]:
        with self._lock:
            return [p.pid for p in self._alive(function_id)]

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            processes = [p for ps in self._workers.values() for p in ps if p.poll() is None]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
