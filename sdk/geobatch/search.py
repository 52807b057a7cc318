"""Lazy, immutable searches over Functions and Jobs, read page by page or all at once.

The filter expressions they take live in :mod:`geobatch.filters` (and are importable from here).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from geobatch.bulk import bulk_job_operation
from geobatch.filters import (
    And,
    Attribute,
    Expression,
    Field,
    Or,
    SortField,
    Term,
    keyword_filter,
    sort_key,
    to_iso,
)
from geobatch.operation import BulkResult
from geobatch.wire import limits

if TYPE_CHECKING:
    from geobatch.client import Client

__all__ = [
    "And",
    "Attribute",
    "Expression",
    "Field",
    "JobSearch",
    "Or",
    "Page",
    "Search",
    "SortField",
    "Term",
    "bulk_job_operation",
    "keyword_filter",
    "to_iso",
]

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a search: its items and the cursor of the next page (None after the last)."""

    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


class Search(Generic[T]):
    """A lazy, immutable query: every method returns a new Search; iterate it to run it.

    ``factory(item, params)`` turns each item of the answer (a dict) into the SDK object; it also
    gets the query parameters (e.g. to know whether results were included).
    """

    def __init__(
        self,
        path: str,
        factory: Callable[[dict[str, Any], dict[str, Any]], T],
        client: Client,
        *,
        server_limit: bool = True,
    ):
        self._path = path
        self._factory = factory
        self._client = client
        self._server_limit = server_limit
        self._filters: list[Expression] = []
        self._sort: list[str] = []
        self._limit: int | None = None
        self._params: dict[str, Any] = {}

    def _copy(self) -> Self:
        new = copy.copy(self)
        new._filters = list(self._filters)
        new._sort = list(self._sort)
        new._params = copy.deepcopy(self._params)
        return new

    def filter(self, expression: Expression) -> Self:
        """A new search with ``expression`` ANDed to the current filters."""
        if not isinstance(expression, Expression):
            raise TypeError(
                f"{expression!r} is not a filter expression (build one like Job.status == 'failure')"
            )
        new = self._copy()
        new._filters.append(expression)
        return new

    def sort(self, *fields: Attribute | SortField | str) -> Self:
        """A new search sorted by ``fields`` (``-Job.runtime`` or ``"-runtime"`` for descending)."""
        new = self._copy()
        new._sort = [sort_key(f) for f in fields]
        return new

    def limit(self, n: int | None) -> Self:
        """A new search returning at most ``n`` items in total (``None``: no limit)."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ValueError(f"limit must be a non-negative int or None, not {n!r}")
        new = self._copy()
        new._limit = n
        return new

    def param(self, **params: Any) -> Self:
        """A new search with extra query parameters (e.g. ``page_size=500``, ``include="result"``)."""
        new = self._copy()
        new._params.update(params)
        return new

    def filter_list(self) -> list[dict[str, Any]]:
        """The filters as the API's JSON list."""
        return [term for expr in self._filters for term in expr.to_filter()]

    def query_params(self) -> dict[str, Any]:
        """The query parameters of the first request."""
        params: dict[str, Any] = {"page_size": limits.DEFAULT_PAGE_SIZE}
        params.update(self._params)
        if self._filters:
            params["filter"] = json.dumps(self.filter_list(), separators=(",", ":"))
        if self._sort:
            params["sort"] = ",".join(self._sort)
        if self._limit is not None and self._server_limit:
            params["limit"] = self._limit
            params["page_size"] = max(1, min(int(params["page_size"]), self._limit))
        return params

    def __iter__(self) -> Iterator[T]:
        """Run the query and yield the items, fetching pages as needed."""
        if self._limit == 0:
            return
        seen = 0
        params = self.query_params()
        for page in self._client.iter_pages(self._path, params):
            for item in page.get("data") or []:
                yield self._factory(item, params)
                seen += 1
                if self._limit is not None and seen >= self._limit:
                    return

    def collect(self) -> list[T]:
        """Run the query and return all the items in a list."""
        return list(self)

    def page(self, cursor: str | None = None) -> Page[T]:
        """One page of the results: the first, or the one at ``cursor`` (a page's ``next_cursor``).

        The cursor carries the query, so the page at a cursor is read with this search's page size
        only; its filters and sort order are the ones of the search that made the cursor.
        """
        params = self.query_params()
        if cursor:
            params = {"page_cursor": cursor, "page_size": params["page_size"]}
        answer = self._client.get(self._path, params)
        items = [self._factory(item, params) for item in answer.get("data") or []]
        return Page(items, (answer.get("meta") or {}).get("page_cursor"))

    def count(self) -> int:
        """The number of matching items (one request when the API can count)."""
        params = self.query_params()
        params.update(count=True, page_size=1)
        params.pop("limit", None)
        page = self._client.get(self._path, params)
        total = (page.get("meta") or {}).get("total")
        if total is None:  # this endpoint cannot count: count the items instead
            return sum(1 for _ in self._copy().limit(None))
        return int(total) if self._limit is None else min(int(total), self._limit)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r}, {self.query_params()!r})"


class JobSearch(Search[T]):
    """A :class:`Search` over jobs, with server-side bulk operations on the matching jobs."""

    def _bulk(self, action: str, delete_results: bool = False) -> BulkResult:
        function_id = self._params.get("function_id")
        if self._limit is not None:
            # The bulk endpoints have no limit: choose the jobs here, then send their ids.
            ids = [str(cast(Any, job).id) for job in self]
            return bulk_job_operation(
                self._client, action, self.filter_list(), function_id, ids, delete_results=delete_results
            )
        return bulk_job_operation(
            self._client, action, self.filter_list(), function_id, None, delete_results=delete_results
        )

    def cancel(self) -> BulkResult:
        """Cancel the matching jobs (pending ones at once, running ones best effort); return their ids.

        Over many jobs the service cancels them in the background: the call waits for that
        operation and returns an empty list whose ``operation`` says how many were canceled."""
        return self._bulk("cancel")

    def rerun(self) -> BulkResult:
        """Run the matching unsuccessful jobs (failure, timeout, canceled) again; return their ids."""
        return self._bulk("rerun")

    def delete(self, delete_results: bool = False) -> BulkResult:
        """Delete the matching jobs and their logs (and results if ``delete_results``); return their ids."""
        return self._bulk("delete", delete_results=delete_results)
