"""In-memory fakes of the core ports (``geobatch_core.ports``), for benchmarks and fast unit tests.

They keep the semantics the worker relies on (conditional job transitions with ABSENT / one-of
expectations, Increment, appended / replaced attempt records, SQS visibility and receipts) but do
no I/O, so a benchmark against them measures the worker's own overhead. The state contract tests
(tests/infra/test_state_contract.py) run them beside moto and SQLite, so they answer alike.

One module per port family: ``stores`` (the Function and Job tables), ``queue``, ``blobs``.
Imported as ``fakes`` (benchmark scripts, run from benchmarks/) or ``benchmarks.fakes`` (tests),
so the modules import each other relatively.
"""

from .blobs import FakeBlobStore
from .queue import FakeQueue
from .stores import FakeFunctionStore, FakeJobStore

__all__ = ["FakeBlobStore", "FakeFunctionStore", "FakeJobStore", "FakeQueue"]
