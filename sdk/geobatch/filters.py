"""Filter expressions over Functions and Jobs, and the field descriptors that build them.

Build expressions from the class attributes, e.g.::

    Job.search().filter((Job.status == JobStatus.FAILURE) & (Job.creation_date > "2024-05-01"))
    Function.search().filter(Function.name.prefix("kmeans")).sort(-Function.creation_date)

They serialise to the API's filter JSON: a list (ANDed) of ``{"op", "name", "val"}`` terms or
``{"or": [...]}`` / ``{"and": [...]}`` groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, overload

__all__ = [
    "And",
    "Attribute",
    "Expression",
    "Field",
    "Or",
    "SortField",
    "Term",
    "keyword_filter",
    "sort_key",
    "to_iso",
]


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
            flat.extend(part.parts if type(part) is type(self) else [part])
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


def keyword_filter(name: str, value: Any, fields: Iterable[str] | None = None) -> Expression:
    """The filter a Descartes Labs style keyword means: ``status="failure"`` is equality, a list
    (``status=[...]``, ``tags=[...]``) matches any of its values."""
    known = sorted(fields if fields is not None else _JOB_FIELDS)
    if name not in known:
        raise TypeError(f"cannot filter jobs by {name!r}: use one of {', '.join(known)}")
    attribute = Attribute(name, "tags" if name == "tags" else "date" if name.endswith("_date") else "value")
    if isinstance(value, list | tuple | set | frozenset):
        return attribute.in_(list(value))
    equal: Term = attribute == value  # (value is Any, so mypy would take the comparison as Any)
    return equal


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
