"""Local mode's API answers requests that arrive at the same time each with its own answer.

Its HTTP server takes a thread per connection, and the API handler behind it is the Lambda's, which
keeps each request on the (module-wide) Powertools resolver while it runs. A Lambda environment
gets one event at a time; local mode must not give it two.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections import Counter
from typing import Any

import pytest

import geobatch as gb

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]

THREADS = 8
ROUNDS = 25


def noop(x):
    return x


def test_requests_at_the_same_time_each_get_their_own_answer(local_api: gb.Client, local_stack: Any) -> None:
    made = [gb.Function(noop, name=f"concurrent-{uuid.uuid4().hex[:6]}", client=local_api) for _ in range(2)]
    for fn in made:
        fn.save()
    ids = [fn.id for fn in made]
    wrong: Counter[str] = Counter()

    def check(api: gb.Client, path: str, expect: Any) -> None:
        try:
            body = api.request("GET", path).json()
        except gb.GeoBatchError as exc:
            wrong[f"{path}: {type(exc).__name__}: {str(exc)[:100]}"] += 1
            return
        try:
            right = expect(body)
        except (KeyError, TypeError):
            right = False
        if not right:
            wrong[f"{path}: another answer: {str(body)[:100]}"] += 1

    def client(n: int) -> None:
        api = gb.Client(local_stack.api_url, retries=0)  # a connection of its own, no retry to hide an error
        for i in range(ROUNDS):
            fid = ids[(n + i) % 2]
            check(api, f"/functions/{fid}", lambda b, fid=fid: b["id"] == fid)
            check(api, f"/functions/{fid}/failures", lambda b: b["failed"] == 0)
            check(api, "/functions", lambda b: all("id" in f for f in b["data"]))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # the server runs in this process: its threads interleave finely
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
        for fn in made:
            fn.delete()
    assert not wrong, dict(wrong)
