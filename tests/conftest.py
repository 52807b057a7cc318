"""Shared fixtures: AWS is moto (in-process for adapters/handlers, its server for local mode)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from geobatch.wire import env
from tests import moto_transactions
from tests.support import GENEROUS_SECONDS

pytest_plugins = ["tests.xdist_groups"]  # which tests share an xdist worker (make test runs -n)
moto_transactions.install()  # moto's transactions without whole-table copies (see the module)
EVENTS = Path(__file__).parent / "events"
REGION = "us-east-1"

# No test may reach a real AWS account, whatever the developer's shell has configured.
for _key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", env.API_URL, env.AWS_ENDPOINT_URL):
    os.environ.pop(_key, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        env.AWS_REGION: REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "GeoBatchTest",
    }
)
# Nor the developer's own local mode (~/.geobatch): a test that starts local mode without a home of
# its own gets this session's, and whatever runs there is stopped when the session ends.
SESSION_HOME = Path(tempfile.mkdtemp(prefix="geobatch-test-home-"))
os.environ[env.LOCAL_HOME] = str(SESSION_HOME)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from geobatch.local import stop_background

    stop_background(SESSION_HOME)
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


def apigw_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, Any] | None = None,
    principal: str = "arn:aws:iam::123456789012:user/alice",
) -> dict[str, Any]:
    """A real API Gateway REST (IAM-authorised proxy) event, as AWS sends it to the Lambda."""
    event = copy.deepcopy(json.loads((EVENTS / "apigw_rest_iam.json").read_text()))
    event["path"] = path
    event["httpMethod"] = method
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = "/prod" + path
    event["requestContext"]["identity"]["userArn"] = principal
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
        event["multiValueQueryStringParameters"] = {k: [str(v)] for k, v in query.items()}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


class FakeLambdaContext:
    function_name = "geobatch-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:geobatch-api"
    memory_limit_in_mb = 1024
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/geobatch-api"
    log_stream_name = "2026/11/26/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def moto_services(tmp_path: Path) -> Iterator[Any]:
    """Core services on moto's in-process AWS, with the real local builder and executor ports."""
    from moto import mock_aws

    from geobatch.local.builder import LocalImageBuilder
    from geobatch.local.executor import LocalExecutor
    from geobatch_core import wiring
    from geobatch_core.adapters.environment import provisioned_stores
    from geobatch_core.services.context import Settings

    with mock_aws():
        yield wiring.compose(
            provisioned_stores(boto3.session.Session(region_name=REGION)),
            executor=LocalExecutor(tmp_path / "home", {}),
            builder=LocalImageBuilder(tmp_path / "home", pip_args="--no-index"),
            settings=Settings(queue_prefix="test", lost_worker_seconds=5, retry_base_seconds=1.0),
        )


@pytest.fixture
def api(moto_services: Any) -> Iterator[Any]:
    """Calls the real API Lambda handler with API Gateway events; returns (status, json body)."""
    from geobatch_api import app as api_app
    from geobatch_api import context as api_context

    previous = api_context.configure(moto_services)

    def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = api_app.handler(apigw_event(method, path, **kwargs), FakeLambdaContext())
        body = response.get("body") or ""
        headers = {**(response.get("headers") or {})}
        headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
        content_type = headers.get("Content-Type", "")
        parsed = json.loads(body) if body and content_type.startswith("application/json") else body
        return int(response["statusCode"]), parsed

    call.services = moto_services  # type: ignore[attr-defined]
    yield call
    api_context.configure(previous)  # e.g. the session's local mode


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Local mode running in this process: moto server, the API on 127.0.0.1, worker subprocesses."""
    from geobatch.local.stack import LocalOptions, LocalStack

    home = tmp_path_factory.mktemp("geobatch-home")
    # --no-index: builds never reach a package index; requirements must already be installed.
    stack = LocalStack(
        LocalOptions(home=home, pip_args="--no-index", lost_worker_seconds=4, worker_idle_seconds=3)
    ).start()
    stack.wait_ready(timeout=GENEROUS_SECONDS)  # 10 s by default: too short with 4 workers starting theirs
    yield stack
    stack.stop()


@pytest.fixture
def local_api(local_stack: Any) -> Iterator[Any]:
    """A ``geobatch.Client`` connected to local mode, as the user ``alice``."""
    import geobatch as gb

    client = gb.Client(local_stack.api_url)
    gb.set_default_client(client)
    yield client
    gb.set_default_client(None)


# Every test says what it touches with exactly one suite marker (``make test-<suite>`` runs one
# suite; ``geo`` is a topic that goes with a suite). A test without one, or with two, would fall
# out of (or into) the wrong loop, so collection refuses it.
SUITES = ("unit", "moto", "local", "infra", "reliability", "rehearsal", "install", "bench", "image")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        suites = sorted({m.name for m in item.iter_markers() if m.name in SUITES})
        if len(suites) != 1:
            wrong.append(f"  {item.nodeid}: {', '.join(suites) or 'no suite marker'}")
    if wrong:
        raise pytest.UsageError(
            f"each test needs exactly one of the markers {', '.join(SUITES)}:\n" + "\n".join(wrong)
        )
