"""The plumbing Function and Job share: a wire document, unsaved local values, a client and a path.

A resource is ``new`` until it is saved (``_wire`` is None), then ``saved`` or ``modified`` (local
changes not yet saved). Field descriptors (:class:`geobatch.filters.Field`) read through
:meth:`Resource._get_field`: the local value if there is one, else the last answer of the API.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, ClassVar

import pydantic

from geobatch.client import Client, get_default_client
from geobatch.wire import errors

__all__ = ["Resource", "batch_fingerprint", "same_call_key", "validation_error"]


def validation_error(exc: pydantic.ValidationError, what: str) -> errors.ValidationError:
    """A GeoBatch ValidationError with one readable line per invalid field."""
    problems = []
    for item in exc.errors():
        location = ".".join(str(part) for part in item.get("loc", ())) or what
        problems.append(f"{location}: {errors.plain_problem(dict(item))}")
    return errors.ValidationError(f"invalid {what}: " + "; ".join(problems), [dict(e) for e in exc.errors()])


def batch_fingerprint(*parts: Any) -> str:
    """A digest of a request's content, to recognise the same request sent again."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def same_call_key(previous: tuple[str, str] | None, body: Any) -> tuple[str, str]:
    """(body fingerprint, Idempotency-Key): the previous key while the body is the same."""
    print_ = batch_fingerprint(body)
    return previous if previous is not None and previous[0] == print_ else (print_, uuid.uuid4().hex)


class Resource:
    """Base of :class:`~geobatch.Function` and :class:`~geobatch.Job`."""

    _collection: ClassVar[str] = ""  # the API path of the collection, e.g. "/jobs"
    _noun: ClassVar[str] = ""  # how messages name one, e.g. "job"

    _client: Client | None
    _wire: Any
    _local: dict[str, Any]
    _modified: set[str]

    def _init_resource(self, client: Client | None, local: dict[str, Any] | None = None) -> None:
        self._client = client
        self._wire = None
        self._local = local if local is not None else {}
        self._modified = set()

    @property
    def client(self) -> Client:
        """The client this object uses (the default client unless one was given)."""
        if self._client is None:
            self._client = get_default_client()
        return self._client

    def _get_field(self, name: str) -> Any:
        if name in self._local:
            return self._local[name]
        return getattr(self._wire, name) if self._wire is not None else None

    def _saved(self, wire: Any) -> None:
        """Take ``wire`` (a validated answer of the API) as the saved state: local changes are gone."""
        self._wire = wire
        self._local = {}
        self._modified = set()

    @property
    def _path(self) -> str:
        if self._wire is None:
            raise errors.BadRequestError(f"this {self._noun} is not saved yet: call save() first")
        return f"{self._collection}/{self._wire.id}"

    def _unsaved(self) -> bool:
        """True when the object has changes the API does not have yet."""
        return bool(self._modified)

    @property
    def state(self) -> str:
        """``"new"`` (not saved yet), ``"modified"`` (unsaved changes) or ``"saved"``."""
        if self._wire is None:
            return "new"
        return "modified" if self._unsaved() else "saved"
