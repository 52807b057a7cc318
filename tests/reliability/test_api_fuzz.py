"""API fuzzing: schemathesis generates requests from the OpenAPI document (docs/openapi.json) and sends
them over real HTTP to local mode's API (the real handler behind the HTTP adapter, moto's server).

Whatever it sends, the API must answer without a 5xx, never leak a stack trace, and give every 4xx a
JSON body with ``code`` and ``message``. The OpenAPI document itself must be the one the code makes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUTH = (
    "AWS4-HMAC-SHA256 Credential=fuzzer/20260101/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
EXAMPLES_PER_OPERATION = 25


@pytest.mark.unit
def test_committed_openapi_document_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_openapi.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from geobatch.local.stack import LocalOptions, LocalStack

    stack = LocalStack(LocalOptions(home=tmp_path_factory.mktemp("fuzz-home"), pip_args="--no-index"))
    stack.start()
    stack.wait_ready()
    try:
        yield stack
    finally:
        stack.stop()


def _seed_ids(stack: Any) -> dict[str, str]:
    """A real Function and job of the fuzzer's principal, so some generated ids hit real resources."""
    import urllib3

    http = urllib3.PoolManager()
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    created = http.request(
        "POST", stack.api_url + "/functions", body=json.dumps({"name": "fuzz"}), headers=headers
    )
    fid = json.loads(created.data)["function"]["id"]
    stack.services.functions.update(fid, {"status": "ready"})
    submitted = http.request(
        "POST",
        stack.api_url + "/jobs/bulk",
        body=json.dumps({"function_id": fid, "bulk_args": [[1]], "reference_id": "fuzz"}),
        headers=headers,
    )
    return {"function_id": fid, "job_id": json.loads(submitted.data)["data"][0]["id"]}


@pytest.mark.local
def test_fuzzed_requests_never_5xx_or_leak_a_trace(local_api: Any) -> None:
    import hypothesis
    import requests
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    raw = json.loads((ROOT / "docs" / "openapi.json").read_text())
    schema = schemathesis.openapi.from_dict(raw)
    ids = _seed_ids(local_api)
    session = requests.Session()
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    def check(case: Any) -> None:
        # Half the time, point path ids at real resources so the handlers get past the lookup.
        for name, value in (case.path_parameters or {}).items():
            if name in ids and hash(str(value)) % 2:
                case.path_parameters[name] = ids[name]
        response = case.call(base_url=local_api.api_url, session=session, headers={"Authorization": AUTH})
        statuses[response.status_code] += 1
        text = response.text
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {text[:300]}"
        if response.status_code >= 500:
            failures.append("5xx: " + where)
        if "Traceback" in text or 'File "' in text:
            failures.append("stack trace: " + where)
        if 400 <= response.status_code < 500:
            try:
                body = response.json()
            except ValueError:
                failures.append("4xx without JSON: " + where)
            else:
                if not (isinstance(body, dict) and body.get("code") and body.get("message")):
                    failures.append("4xx without code/message: " + where)

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(),  # valid requests
            operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),  # invalid ones
        )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run: a failure is reproducible
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @given(case=strategy)
        def fuzz(case: Any) -> None:
            check(case)

        fuzz()
    print(f"\nfuzzed {sum(statuses.values())} requests over {len(operations)} operations: {dict(statuses)}")
    assert not failures, "\n".join(sorted(set(failures))[:40])
    assert sum(statuses.values()) >= 10 * len(operations)
