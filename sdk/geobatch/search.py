"""Filter expressions and lazy, immutable searches over Functions and Jobs.

Build expressions from the class attributes, e.g.::

    Job.search().filter((Job.status == JobStatus.FAILURE) & (Job.creation_date > "2024-05-01"))
    Function.search().filter(Function.name.prefix("kmeans")).sort(-Function.creation_date)

They serialise to the API's filter JSON: a list (ANDed) of ``{"op", "name", "val"}`` terms or
``{"or": [...]}`` / ``{"and": [...]}`` groups.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, overload

from geobatch.operation import BulkResult, bulk_job_operation
from geobatch.wire import limits

if TYPE_CHECKING:
    from geobatch.client import Client

__all__ = ["And", "Attribute", "Expression", "Field", "JobSearch", "Or", "Search", "SortField", "Term"]

T = TypeVar("T")


def to_iso(value: Any) -> str:
    """ISO-8601 UTC string of a datetime, an ISO string or a unix timestamp.

    A naive datetime (or ISO string without offset) is taken as local time, like Python does.
    The format is the one the API writes (``2024-05-01T12:00:00Z``), so string comparisons agree.
    """
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a date: give a datetime, an ISO-8601 string or a unix timestamp")
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 date such as '2024-05-01T12:00:00Z'") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise TypeError(f"{value!r} is not a date: give a datetime, an ISO-8601 string or a unix timestamp")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Expression:
    """A filter expression; combine with ``&`` (and) and ``|`` (or)."""

    def serialize(self) -> dict[str, Any]:
        """This expression as one filter term or group."""
        raise NotImplementedError

    def to_filter(self) -> list[dict[str, Any]]:
        """The API filter list (a top-level AND is flattened into the list)."""
        return [self.serialize()]

    def __and__(self, other: Expression) -> And:
        return And([self, other])

    def __or__(self, other: Expression) -> Or:
        return Or([self, other])

    def __bool__(self) -> bool:
        # `a == b and c == d` would silently drop a term: make the mistake loud.
        raise TypeError(
            "combine filter expressions with & and |, not `and`/`or`, and wrap each in parentheses"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.serialize()!r})"


class Term(Expression):
    """One comparison: ``{"op": op, "name": name, "val": val}``."""

    def __init__(self, op: str, name: str, val: Any):
        self.op, self.name, self.val = op, name, val

    def serialize(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "val": self.val}


class _Group(Expression):
    key = ""

    def __init__(self, parts: Iterable[Expression]):
        flat: list[Expression] = []
        for part in parts:
            if not isinstance(part, Expression):
                raise TypeError(
                    f"{part!r} is not a filter expression (build one like Job.status == 'failure')"
                )
            # (a & b) & c is one AND of three terms, not a nested group.
            flat.extend(cast(_Group, part).parts if type(part) is type(self) else [part])
        self.parts: list[Expression] = flat

    def serialize(self) -> dict[str, Any]:
        return {self.key: [p.serialize() for p in self.parts]}


class And(_Group):
    """All of the parts."""

    key = "and"

    def to_filter(self) -> list[dict[str, Any]]:
        return [p.serialize() for p in self.parts]


class Or(_Group):
    """Any of the parts."""

    key = "or"


class SortField:
    """A sort key: a field name, descending when ``descending`` (``-Job.creation_date``)."""

    def __init__(self, name: str, descending: bool = False):
        self.name, self.descending = name, descending

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.name

    def __neg__(self) -> SortField:
        return SortField(self.name, not self.descending)


class Attribute:
    """A filterable field of a Function or Job, used as ``Job.status == "failure"``.

    ``kind`` is ``"date"`` for datetimes (which accept datetime, ISO string or unix timestamp),
    ``"tags"`` for tag lists (``Job.tags == "x"`` means "has tag x"), else ``"value"``.
    """

    def __init__(self, name: str, kind: str = "value"):
        self.name, self.kind = name, kind

    def _value(self, value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if self.kind == "date":
            return to_iso(value)
        if isinstance(value, Attribute | Expression):
            raise TypeError(f"compare {self.name} with a value, not with {value!r}")
        return value

    def _term(self, op: str, value: Any) -> Term:
        return Term(op, self.name, self._value(value))

    def __eq__(self, value: Any) -> Term:  # type: ignore[override]
        return self._term("eq", value)

    def __ne__(self, value: Any) -> Term:  # type: ignore[override]
        return self._term("ne", value)

    def __lt__(self, value: Any) -> Term:
        return self._term("lt", value)

    def __le__(self, value: Any) -> Term:
        return self._term("le", value)

    def __gt__(self, value: Any) -> Term:
        return self._term("gt", value)

    def __ge__(self, value: Any) -> Term:
        return self._term("ge", value)

    __hash__ = object.__hash__

    def in_(self, values: Iterable[Any]) -> Term:
        """The field equals one of ``values``."""
        if isinstance(values, str | bytes):
            raise TypeError(f"{self.name}.in_() takes a list of values, not the string {values!r}")
        return Term("in", self.name, [self._value(v) for v in values])

    any_of = in_

    def prefix(self, value: str) -> Term:
        """The field starts with ``value``."""
        return Term("prefix", self.name, str(value))

    startswith = prefix

    def like(self, pattern: str) -> Term:
        """Case-insensitive SQL-style match: ``%`` is any run of characters, ``_`` one character."""
        return Term("ilike", self.name, str(pattern))

    def __neg__(self) -> SortField:
        return SortField(self.name, descending=True)

    def __repr__(self) -> str:
        return f"Attribute({self.name!r})"


class Field(Attribute):
    """A document attribute: the filter :class:`Attribute` on the class, the value on an instance.

    ``Job.status == "failure"`` builds a filter; ``job.status`` reads the job's status. The owner
    class implements ``_get_field(name)`` and, for settable fields, ``_set_field(name, value)``.
    """

    def __init__(self, name: str, kind: str = "value", *, settable: bool = False, doc: str = ""):
        super().__init__(name, kind)
        self.settable = settable
        self.__doc__ = doc or f"The {name.replace('_', ' ')}."

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Field: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Any: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._get_field(self.name)  # type: ignore[attr-defined]

    def __set__(self, obj: object, value: Any) -> None:
        if not self.settable:
            raise AttributeError(f"{self.name} is read-only")
        obj._set_field(self.name, value)  # type: ignore[attr-defined]


def sort_key(field: Attribute | SortField | str) -> str:
    """The API spelling of a sort field: ``name`` or ``-name``."""
    if isinstance(field, Attribute):
        return field.name
    if isinstance(field, SortField):
        return str(field)
    if isinstance(field, str) and field.strip("-"):
        return field.strip()
    raise TypeError(f"{field!r} is not a sort field: give an attribute like -Job.creation_date or 'name'")


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


def keyword_filter(name: str, value: Any, fields: Iterable[str] | None = None) -> Expression:
    """The filter a Descartes Labs style keyword means: ``status="failure"`` is equality, a list
    (``status=[...]``, ``tags=[...]``) matches any of its values."""
    known = sorted(fields if fields is not None else _JOB_FIELDS)
    if name not in known:
        raise TypeError(f"cannot filter jobs by {name!r}: use one of {', '.join(known)}")
    attribute = Attribute(name, "tags" if name == "tags" else "date" if name.endswith("_date") else "value")
    if isinstance(value, list | tuple | set | frozenset):
        return attribute.in_(list(value))
    return attribute == value


_JOB_FIELDS = (
    "id",
    "status",
    "tags",
    "creation_date",
    "last_execution_date",
    "last_completion_date",
    "execution_count",
    "exit_code",
    "runtime",
    "reference_id",
    "error_reason",
)


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
