"""Sorted listings through the Jobs table's indexes, via the real API handler on moto: a global
time order across Functions, runtime and last-completion order, and owner-bound cursors."""

from __future__ import annotations

from typing import Any

import pytest

from geobatch_core.services import paging
from geobatch_core.services.job_wire import to_wire
from tests.core.helpers import ALICE, BOB, ready_function
from tests.core.test_api import SQUARE, make_ready, submit

pytestmark = pytest.mark.moto


def listed(api: Any, principal: str = ALICE, **query: Any) -> list[str]:
    """Every id of a listing, following its cursor page by page."""
    ids: list[str] = []
    status, page = api("GET", "/jobs", query={**query, "page_size": 2}, principal=principal)
    while True:
        assert status == 200, page
        ids += [j["id"] for j in page["data"]]
        cursor = page["meta"]["page_cursor"]
        if not cursor:
            return ids
        status, page = api("GET", "/jobs", query={"page_cursor": cursor, "page_size": 2}, principal=principal)


def test_jobs_of_every_function_list_in_one_time_order(api: Any) -> None:
    first = make_ready(api, name="first")
    second = ready_function(api.services, SQUARE, "square").id  # the same image: ready at once
    batches = [submit(api, first, 2, "a"), submit(api, second, 3, "b"), submit(api, first, 1, "c")]
    status, _ = api("POST", "/functions", body={"name": "bobs"}, principal=BOB)
    assert status == 201
    in_time = [j.id for page in batches for j in page.data]
    assert listed(api) == in_time  # not Function after Function
    newest = listed(api, sort="-creation_date")
    assert [j.split("-")[0] for j in newest] == [first, second, second, second, first, first]
    assert listed(api, principal=BOB) == []


def test_runtime_and_completion_order_match_the_in_memory_sort(api: Any) -> None:
    svc = api.services
    function_id = make_ready(api)
    jobs = submit(api, function_id, 7).data
    runtimes = {0: 4.5, 2: 1.0, 3: 9.25, 5: 2.0}  # the others have not run yet
    for index, runtime in runtimes.items():
        key = jobs[index].id.rsplit("-", 1)[1]
        done = f"2026-01-0{index + 1}T00:00:00.000Z"
        changes = {"status": "success", "runtime": runtime, "last_completion_date": done}
        assert svc.jobs.transition(function_id, key, changes=changes, expect={"status": "pending"})
    stored = [svc.jobs.get(function_id, j.id.rsplit("-", 1)[1]) for j in jobs]
    for sort in ("runtime", "-runtime", "last_completion_date", "-last_completion_date"):
        order = [(sort.lstrip("-"), sort.startswith("-"))]
        in_memory = paging.sort_items(stored, order, key_of=lambda j: to_wire(j).model_dump())
        expected = [j.id for j in in_memory]
        assert listed(api, function_id=function_id, sort=sort) == expected, sort
    filtered = listed(
        api, function_id=function_id, sort="-runtime", filter='[{"op":"eq","name":"status","val":"pending"}]'
    )
    assert filtered == [jobs[i].id for i in (1, 4, 6)]


def test_index_cursors_are_bound_to_their_owner(api: Any) -> None:
    function_id = make_ready(api)
    submit(api, function_id, 4)
    status, page = api("GET", "/jobs", query={"page_size": 1})
    owner_cursor = page["meta"]["page_cursor"]
    status, page = api("GET", "/jobs", query={"page_size": 1, "function_id": function_id, "sort": "-runtime"})
    function_cursor = page["meta"]["page_cursor"]
    status, body = api("GET", "/jobs", query={"page_cursor": owner_cursor}, principal=BOB)
    assert status == 400 and "page_cursor" in body["message"]
    status, body = api("GET", "/jobs", query={"page_cursor": function_cursor}, principal=BOB)
    assert status == 404
    state = paging.decode(owner_cursor)
    state["ix"]["key"] = {**state["ix"]["key"], "owner": BOB}  # edited to read another owner's index
    status, body = api("GET", "/jobs", query={"page_cursor": paging.encode(state)})
    assert status == 400
    state["ix"]["key"] = {"function_id": function_id, "job_key": "zz"}
    status, body = api("GET", "/jobs", query={"page_cursor": paging.encode(state)})
    assert status == 400
