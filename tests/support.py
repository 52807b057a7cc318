"""What the tests (and the benchmarks) share: code bundles, ready Functions, waiting.

Waiting has no wall-clock deadline: a loaded machine is slow, not wrong. A wait that never ends is
stopped by pytest-timeout (``timeout`` in pyproject, or the test's ``pytest.mark.timeout``), which
fails the test with the stack of where it hung.
"""

from __future__ import annotations

import io
import textwrap
import time
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from geobatch_core.records import FunctionRecord

ALICE = "arn:aws:iam::123456789012:user/alice"
# Where a product call takes a time limit (``geobatch.local.start_background``: 60 s), tests pass this
# one: long enough that only a start that hangs reaches it, even on 2 loaded cores running the suite
# side by side (a local daemon starts in 2-20 s there), and short of the tests' pytest-timeout.
GENEROUS_SECONDS = 240.0
BOB = "arn:aws:iam::123456789012:user/bob"
T = TypeVar("T")


def entry_bundle(entry: str) -> bytes:
    """A code bundle whose ``__gbentry__.py`` is ``entry`` (which defines ``main``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("__gbentry__.py", entry)
    return buf.getvalue()


def bundle(source: str, name: str = "main") -> bytes:
    """A code bundle as the SDK makes it: the function's source plus ``main = name``."""
    return entry_bundle(textwrap.dedent(source) + f"\n\nmain = {name}\n")


class Unwired:
    """A port that a test or benchmark does not exercise: any use of it fails, naming the port.

    (It raises AttributeError, so the composition root's ``isinstance`` checks see a plain object.)
    """

    def __init__(self, port: str) -> None:
        self._port = port

    def __getattr__(self, attr: str) -> Any:
        raise AttributeError(f"no {self._port} is wired here (.{attr} was asked for)")


def compose_stores(
    functions: Any,
    jobs: Any,
    queue: Any,
    blobs: Any,
    *,
    executor: Any = None,
    builder: Any = None,
    settings: Any = None,
) -> Any:
    """``Services`` of these stores (e.g. the in-memory fakes of ``benchmarks/fakes.py``), assembled
    by the composition root (``geobatch_core.wiring.compose``) as every deployable assembles its own;
    the executor and builder are ``Unwired`` unless given."""
    from geobatch_core import wiring
    from geobatch_core.adapters.environment import Stores

    return wiring.compose(
        Stores(functions, jobs, queue, blobs),
        executor=executor if executor is not None else Unwired("executor"),
        builder=builder if builder is not None else Unwired("builder"),
        settings=settings,
    )


def wait_until(check: Callable[[], T], what: str = "", *, poll: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy, and return that (no deadline: see above)."""
    while True:
        value = check()
        if value:
            return value
        time.sleep(poll)


def ready_function(
    svc: Any,
    source: str | None = None,
    name: str = "main",
    principal: str = ALICE,
    *,
    build: bool = True,
    entry: str | None = None,
    image_uri: str | None = None,
    **settings: Any,
) -> FunctionRecord:
    """A Function created through the real services with its bundle uploaded, once ready (its
    record, as the store reads it back).

    With ``build`` the image is built by the services' builder (the local builder in tests); without
    it the Function is simply marked ready (for tests and benchmarks that measure something else).
    The bundle is ``source`` with ``main = name``, or the whole ``entry`` module.
    """
    from geobatch.wire.models import FunctionCreate, FunctionStatus
    from geobatch_core.services import functions

    created = functions.create_function(svc, principal, FunctionCreate(name=name, **settings))
    function_id = created.function.id
    code = entry_bundle(entry) if entry is not None else bundle(source or "", name)
    svc.blobs.put(f"bundles/{function_id}.zip", code)
    if not build:
        ready: dict[str, Any] = {"status": FunctionStatus.READY.value}
        if image_uri is not None:
            ready["image_uri"] = image_uri
        return svc.functions.update(function_id, ready)
    functions.bundle_uploaded(svc, principal, function_id)
    return wait_status(svc, function_id, FunctionStatus.READY)


def wait_status(svc: Any, function_id: str, *wanted: Any) -> FunctionRecord:
    """The Function's record once its status is one of ``wanted``."""

    def reached() -> FunctionRecord | None:
        function: FunctionRecord = svc.functions.get(function_id)
        return function if function.status in {w.value for w in wanted} else None

    return wait_until(reached, f"Function {function_id} to become {wanted}")


def worker_metric(cloudwatch: Any, function_id: str, metric: str, *statistics: str) -> list[dict[str, Any]]:
    """A worker metric's data points over the last hour for one Function, read back from CloudWatch
    as the dashboard's SEARCH would read them (one hour-long period: at most one point)."""
    import datetime

    from geobatch_core import layout

    now = datetime.datetime.now(datetime.UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace=layout.WORKER_METRICS_NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": layout.WORKER_METRICS_DIMENSION, "Value": function_id}],
        StartTime=now - datetime.timedelta(hours=1),
        EndTime=now + datetime.timedelta(minutes=5),
        Period=3600,
        Statistics=list(statistics or ("Sum",)),
    )
    return list(answer["Datapoints"])
