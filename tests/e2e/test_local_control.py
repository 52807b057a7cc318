"""Local mode's daemon and control loop: one daemon per home, the same scaler pass as AWS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import geobatch as gb
from geobatch.local.daemon import ALREADY_RUNNING
from geobatch.wire.models import TERMINAL
from geobatch_core.adapters.events import LogPublisher
from geobatch_core.adapters.sqlite import open_state
from geobatch_core.services.scaling import COMPLETED
from tests.support import GENEROUS_SECONDS, wait_until

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]
GEOBATCH = [sys.executable, "-c", "from geobatch.cli import main; main()"]


def identity(x):
    return x


def daemons_of(home: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"geobatch.local.daemon" in cmdline and str(home).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def test_two_concurrent_local_up_start_one_daemon_and_both_see_it(daemon_home):
    starters = [
        subprocess.Popen([*GEOBATCH, "local", "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [s.communicate(timeout=180)[0].decode() for s in starters]
    assert [s.returncode for s in starters] == [0, 0], outputs
    (pid,) = daemons_of(daemon_home)
    status = subprocess.run([*GEOBATCH, "local", "status", "--json"], capture_output=True, check=True)
    state = json.loads(status.stdout)
    assert state["pid"] == pid and state["since"]
    assert all(state["api_url"] in out for out in outputs)  # both name the one daemon
    text = subprocess.run([*GEOBATCH, "local", "status"], capture_output=True, text=True, check=True)
    assert f"pid {pid}" in text.stdout and "since" in text.stdout
    # A daemon started by hand for a home that has one exits at once and leaves it alone.
    extra = subprocess.run([sys.executable, "-m", "geobatch.local.daemon", "--home", str(daemon_home)])
    assert extra.returncode == ALREADY_RUNNING
    assert daemons_of(daemon_home) == [pid]


def wait_for(predicate, what: str, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    # No wall-clock limit (``timeout`` is kept for the callers): pytest-timeout stops a hang.
    return wait_until(predicate, what, poll=0.2)


def completion_announced(local_stack, fn: gb.Function) -> bool:  # type: ignore[no-untyped-def]
    return any(t == COMPLETED and d["function_id"] == fn.id for t, d in list(local_stack.events.published))


def test_a_job_whose_message_reaches_the_dead_letter_queue_ends_in_failure(saved, local_stack):
    fn = saved(identity, auto_start=False)  # stopped: no worker takes the message
    job = fn(1)
    _, _, queue = open_state(local_stack.state_path)
    url = local_stack.services.functions.get(fn.id).queue_url
    # A message that keeps killing its workers: received, never acknowledged, again and again,
    # until SQS's redrive policy (the same in local mode) moves it to the dead-letter queue.
    for _ in range(local_stack.services.settings.max_receive_count):
        (message,) = queue.receive(url, max_messages=1, wait_seconds=5, visibility_seconds=0)
    assert queue.receive(url, max_messages=1, wait_seconds=0, visibility_seconds=0) == []
    wait_for(lambda: job.refresh().status in TERMINAL, "the dead letter was never drained")
    assert job.status == gb.JobStatus.FAILURE
    assert "received" in job.error_reason and "times" in job.error_reason
    # The job was the stopped Function's only work: its busy period ends with one event.
    wait_for(lambda: completion_announced(local_stack, fn), "no completion event")


def test_a_stopped_function_whose_jobs_were_all_cancelled_announces_completion(saved, local_stack):
    fn = saved(identity, auto_start=False)
    fn.map([[i] for i in range(3)])
    assert sorted(fn.cancel_jobs()) and fn.refresh().job_statistics.get("canceled") == 3
    wait_for(lambda: completion_announced(local_stack, fn), "no completion event")
    announced = [d for t, d in local_stack.events.published if t == COMPLETED and d["function_id"] == fn.id]
    assert len(announced) == 1 and announced[0]["job_statistics"]["canceled"] == 3


def test_local_events_keep_only_the_latest():
    events = LogPublisher(keep=3)
    for i in range(5):
        events.publish(COMPLETED, {"function_id": f"fn-{i}"})
    assert [d["function_id"] for _, d in events.published] == ["fn-2", "fn-3", "fn-4"]


def test_stopping_a_daemon_started_from_this_process_reaps_it(daemon_home):
    """The SDK (or a test) that started local mode and stops it again: the daemon ends on SIGTERM
    and is reaped, not left a zombie that the stop mistakes for a running daemon (waiting its whole
    timeout, then sending SIGKILL to a process that had already stopped cleanly)."""
    import os

    from geobatch.local import start_background, stop_background

    state = start_background(daemon_home, timeout=GENEROUS_SECONDS)
    assert stop_background(daemon_home)
    with pytest.raises(ChildProcessError):  # reaped by the stop: no zombie is left for this call
        os.waitpid(int(state["pid"]), os.WNOHANG)
