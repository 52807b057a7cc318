"""Filter expressions and Search builders serialise to the API's filter JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from geobatch import Function, Job, JobStatus
from geobatch.search import And, Or, Term, to_iso

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expression", "op", "val"),
    [
        (Job.status == JobStatus.FAILURE, "eq", "failure"),
        (Job.status != "success", "ne", "success"),
        (Job.runtime < 5, "lt", 5),
        (Job.runtime <= 5, "le", 5),
        (Job.execution_count > 1, "gt", 1),
        (Job.exit_code >= 2, "ge", 2),
        (Function.name.prefix("km"), "prefix", "km"),
        (Function.name.startswith("km"), "prefix", "km"),
        (Function.name.like("%means%"), "ilike", "%means%"),
        (Job.id.in_(["a", "b"]), "in", ["a", "b"]),
        (Job.id.any_of(("a",)), "in", ["a"]),
        (Job.status.in_(JobStatus.terminal()), "in", ["success", "failure", "timeout", "canceled"]),
        (Job.tags == "demo", "eq", "demo"),
    ],
)
def test_operators(expression: Term, op: str, val: object) -> None:
    assert expression.to_filter() == [{"op": op, "name": expression.name, "val": val}]


def test_and_is_flattened_at_top_level_and_or_nests() -> None:
    a, b, c = Job.status == "failure", Job.tags == "x", Job.runtime > 3
    assert (a & b & c).to_filter() == [t.serialize() for t in (a, b, c)]
    assert isinstance(a & b, And)
    combined = (a | b) & c
    assert combined.to_filter() == [{"or": [a.serialize(), b.serialize()]}, c.serialize()]
    nested = a | (b & c)
    assert isinstance(nested, Or)
    assert nested.to_filter() == [{"or": [a.serialize(), {"and": [b.serialize(), c.serialize()]}]}]
    assert (a | b | c).serialize() == {"or": [a.serialize(), b.serialize(), c.serialize()]}


def test_expressions_refuse_python_and_or() -> None:
    with pytest.raises(TypeError, match="&"):
        bool(Job.status == "x")


def test_datetimes_accept_datetime_iso_string_and_timestamp() -> None:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    expected = "2024-05-01T12:00:00Z"
    assert (Job.creation_date > moment).val == expected
    assert (Job.creation_date > "2024-05-01T12:00:00Z").val == expected
    assert (Job.creation_date > "2024-05-01T14:00:00+02:00").val == expected
    assert (Job.creation_date > moment.timestamp()).val == expected
    other_zone = moment.astimezone(timezone(timedelta(hours=-5)))
    assert (Job.last_completion_date <= other_zone).val == expected
    with pytest.raises(ValueError, match="ISO-8601"):
        to_iso("yesterday")


def test_sort_fields() -> None:
    search = Job.search().sort(-Job.creation_date, Job.id, "-runtime")
    assert search.query_params()["sort"] == "-creation_date,id,-runtime"
    descending = -Job.runtime
    assert str(-descending) == "runtime"


def test_search_is_immutable(client: object) -> None:
    base = Job.search()
    filtered = base.filter(Job.status == "failure")
    limited = filtered.limit(5).param(function_id="fn1")
    assert "filter" not in base.query_params()
    assert "limit" not in filtered.query_params()
    assert "function_id" not in filtered.query_params()
    params = limited.query_params()
    assert json.loads(params["filter"]) == [{"op": "eq", "name": "status", "val": "failure"}]
    assert params["limit"] == 5 and params["page_size"] == 5 and params["function_id"] == "fn1"
    with pytest.raises(ValueError):
        base.limit(-1)


def test_iterates_pages_with_cursor_only(client: object, http: object) -> None:
    from .conftest import job_body

    fake = http
    fake.on(  # type: ignore[attr-defined]
        "GET",
        "/jobs",
        lambda call: (
            (200, {"data": [job_body("j3")], "meta": {"page_cursor": None}})
            if "page_cursor" in call.query
            else (200, {"data": [job_body("j1"), job_body("j2")], "meta": {"page_cursor": "c1"}})
        ),
    )
    jobs = Job.search().filter(Job.status == "pending").collect()
    assert [j.id for j in jobs] == ["j1", "j2", "j3"]
    first, second = fake.calls  # type: ignore[attr-defined]
    assert "filter" in first.query
    assert set(second.query) == {"page_cursor", "page_size"}
    assert Job.search().limit(2).collect()[1].id == "j2"


def test_count_uses_count_param(client: object, http: object) -> None:
    http.on("GET", "/jobs", (200, {"data": [], "meta": {"total": 42}}))  # type: ignore[attr-defined]
    assert Job.search().filter(Job.tags == "x").count() == 42
    call = http.calls[-1]  # type: ignore[attr-defined]
    assert call.query["count"] == "true"
    assert Job.search().limit(10).count() == 10


def test_bulk_operations_follow_the_cursor(client: object, http: object) -> None:
    replies = [
        (200, {"job_ids": ["a", "b"], "page_cursor": "next"}),
        (200, {"job_ids": ["c"], "page_cursor": None}),
    ]
    http.on("POST", "/jobs/cancel", replies)  # type: ignore[attr-defined]
    ids = Job.search().param(function_id="fn1").filter(Job.status == "pending").cancel()
    assert ids == ["a", "b", "c"]
    first, second = (c.json() for c in http.find("POST", "/jobs/cancel"))  # type: ignore[attr-defined]
    assert first["function_id"] == "fn1"
    assert first["filter"] == [{"op": "eq", "name": "status", "val": "pending"}]
    assert "page_cursor" not in first and second["page_cursor"] == "next"


def test_page_reads_one_page_and_the_next_by_cursor(client: object, http: object) -> None:
    from .conftest import job_body

    http.on(  # type: ignore[attr-defined]
        "GET",
        "/jobs",
        lambda call: (
            (200, {"data": [job_body("j3", status="success", result="IjEi")], "meta": {"page_cursor": None}})
            if "page_cursor" in call.query
            else (200, {"data": [job_body("j1"), job_body("j2")], "meta": {"page_cursor": "c1"}})
        ),
    )
    search = Job.search().filter(Job.status == "pending").param(page_size=2, include="result")
    first = search.page()
    assert [j.id for j in first.items] == ["j1", "j2"] and first.next_cursor == "c1"
    second = search.page(first.next_cursor)
    assert [j.id for j in second.items] == ["j3"] and second.next_cursor is None
    assert second.items[0].result() == "1"  # the items are Jobs, made as the search makes them
    one, two = http.calls  # type: ignore[attr-defined]
    assert "filter" in one.query and one.query["page_size"] == "2"
    # The cursor carries the query: the second request sends only it and the page size.
    assert two.query == {"page_cursor": "c1", "page_size": "2"}
