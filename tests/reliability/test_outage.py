"""A dead dependency: AWS (moto's server) becomes unreachable mid-run, then comes back.

The workers and the API reach moto through a TCP gate that the test closes (connections refused,
open ones reset: what ``kill -9`` of moto looks like from outside) and reopens; moto's state
survives, as AWS's would. The workers must ride it out (no crash, leases kept honest), the API must
answer 503 while its store is unreachable, and every job must end terminal exactly once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from geobatch_core.services.context import Services, Settings
from tests.conftest import FakeLambdaContext, apigw_event
from tests.reliability.faults import FaultPlan
from tests.reliability.harness import OWNER, Fleet, check_invariants, queue_settled, ready_function, submit

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gate:
    """A TCP forwarder to ``target`` that can be shut (refuse and reset) and opened again."""

    def __init__(self, target: int):
        self.target = target
        self.port = _free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._shut = False

    def open(self) -> None:
        self._shut = False
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            self._shut = True
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                if self._shut:  # accepted just before the gate shut: it must not get through
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def gated_services(tmp_path: Path) -> Iterator[tuple[Services, Gate]]:
    from moto.server import ThreadedMotoServer

    from geobatch.local.builder import LocalImageBuilder
    from geobatch.local.executor import LocalExecutor
    from geobatch_core import wiring
    from geobatch_core.adapters.environment import provisioned_stores

    moto_port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    server.start()
    gate = Gate(moto_port)
    gate.open()
    endpoint = f"http://127.0.0.1:{gate.port}"
    session = boto3.session.Session(region_name="us-east-1")
    # A request left unanswered through the gate (moto's server, loaded, has left one hanging) would
    # hold its worker for botocore's 60 s read timeout, past the fleet's stop; real DynamoDB answers
    # or resets. A shorter read timeout keeps the outage (refused, reset) what the test is about.
    session._session.set_default_client_config(Config(read_timeout=10, connect_timeout=5))
    svc = wiring.compose(
        provisioned_stores(session, endpoint),
        executor=LocalExecutor(tmp_path / "home", {}),
        builder=LocalImageBuilder(tmp_path / "home", pip_args="--no-index"),
        settings=Settings(queue_prefix="outage", lost_worker_seconds=5, retry_base_seconds=0.5),
    )
    try:
        yield svc, gate
    finally:
        gate.shut()
        server.stop()


def api_status(svc: Services, method: str, path: str) -> int:
    from geobatch_api import app as api_app
    from geobatch_api import context as api_context

    previous = api_context.configure(svc)
    try:
        event = apigw_event(method, path, principal=OWNER)
        return int(api_app.handler(event, FakeLambdaContext())["statusCode"])
    finally:
        api_context.configure(previous)


def test_aws_unreachable_mid_run(gated_services: tuple[Services, Gate]) -> None:
    svc, gate = gated_services
    function = ready_function(svc, "outage", timeout=30, retry_count=1)
    submit(svc, function, [("slow", 0)] * 24, "outage")
    fleet = Fleet(svc, FaultPlan(seed=7), [function.id], per_function=2)
    fleet.tend()
    try:
        deadline = time.monotonic() + 240  # generous: the suite runs beside others on 2 cores
        while Counter(i.status for i in _jobs(svc, function))["success"] < 4:
            assert time.monotonic() < deadline, "the fleet never started"
            time.sleep(0.2)
        gate.shut()  # moto is gone for longer than a lease
        outage_ends = time.monotonic() + 2.5 * svc.settings.lost_worker_seconds
        statuses = []
        while time.monotonic() < outage_ends:
            statuses.append(api_status(svc, "GET", f"/functions/{function.id}"))
            time.sleep(1)
        gate.open()
        alive = [t.is_alive() for ts in fleet._threads.values() for t, _ in ts]
        fleet.run_until(lambda: queue_settled(svc, function.id))
    finally:
        fleet.stop()
    # The first call may still get through on a connection made as the gate shut; after that,
    # 503 every time (never a 500).
    assert 503 in statuses and set(statuses[1:]) == {503}, statuses
    assert alive == [True, True] and fleet.crashes == [] and fleet.started == 2
    checked: Counter[str] = Counter()
    assert check_invariants(svc, function, checked) == []
    assert checked == {"success": 24}
    assert api_status(svc, "GET", f"/functions/{function.id}") == 200


def _jobs(svc: Services, function: Any) -> list[Any]:
    from tests.reliability.harness import all_jobs

    return all_jobs(svc, function.id)
