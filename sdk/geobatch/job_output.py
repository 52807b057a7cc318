"""A job's output: its result and its log (the methods :class:`~geobatch.Job` inherits)."""

from __future__ import annotations

import base64
import builtins
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pydantic

from geobatch.client import Client, get_default_client
from geobatch.resource import Resource
from geobatch.wire import codec, errors, models
from geobatch.wire.models import JobStatus

__all__ = ["JobOutput", "JobResultError"]


class JobResultError(errors.JobFailedError, ValueError):
    """The job has no result to give: it has not completed, or did not complete successfully.

    Also a ``ValueError``, as in the Descartes Labs client, so ported ``except ValueError`` works.
    """


class JobOutput(Resource):
    """The result and log methods of :class:`~geobatch.Job` (a base class: use ``Job``)."""

    _wire: models.Job | None
    _result_included: bool

    if TYPE_CHECKING:
        id: Any
        status: Any
        error_reason: Any

        def refresh(self) -> Any: ...

    def result(self, cast_type: Any = None) -> Any:
        """The job's return value (``None`` if it returned nothing).

        Decoded with ``cast_type.deserialize(bytes)`` if given, else as JSON, else the raw bytes.
        Raises :class:`JobResultError` if the job has not completed successfully.
        """
        if self.status != JobStatus.SUCCESS:
            self.refresh()
        if self.status != JobStatus.SUCCESS:
            if self.status in models.TERMINAL:
                reason = f": {self.error_reason}" if self.error_reason else ""
                raise JobResultError(
                    f"job {self.id} was not completed successfully (status {self.status}){reason}"
                )
            raise JobResultError(f"job {self.id} has not completed (status {self.status})")
        return codec.decode_result(self.result_bytes(), cast_type)

    @classmethod
    def get_result(cls, id: str, cast_type: Any = None, client: Client | None = None) -> Any:
        """The stored result of job ``id``, decoded as :meth:`result` does: also after the job was
        deleted with ``delete_results=False`` (``fn.delete_jobs(...)``), as long as its Function
        exists. (The bytes stay in the stack's bucket at ``results/<function_id>/<job key>`` even
        after that.) ``NotFoundError`` if there is no such job and it left no result."""
        client = client or get_default_client()
        try:
            body = models.ResultBody.model_validate(client.get(f"/jobs/{id}/result"))
        except errors.JobFailedError as exc:
            raise JobResultError(exc.message, exc.errors) from None
        data = base64.b64decode(body.data) if body.data is not None else None
        if data is None and body.url:
            data = client.get_presigned(body.url)
        return codec.decode_result(data, cast_type)

    def result_bytes(self) -> bytes | None:
        """The stored result as bytes, or ``None`` when the job stored none."""
        assert self._wire is not None
        if self._wire.result is not None:
            return base64.b64decode(self._wire.result)
        if self._result_included and not self._wire.has_result:
            return None  # the listing said so: no need to ask again
        try:
            body = models.ResultBody.model_validate(self.client.get(f"{self._path}/result"))
        except errors.NotFoundError:
            return None
        except errors.JobFailedError as exc:
            raise JobResultError(exc.message, exc.errors) from None
        if body.data is not None:
            return base64.b64decode(body.data)
        if body.url:
            return self.client.get_presigned(body.url)
        return None

    def iter_log(self, timestamps: bool = True, attempt: int | None = None) -> Iterator[str]:
        """The job's log, line by line as it streams (the latest attempt unless ``attempt`` is given).

        With ``timestamps`` each line starts with its time, in local time.
        """
        offset: str | None = None
        while True:
            # A long log comes in parts; each answer says where the next one starts.
            response = self.client.request(
                "GET",
                f"{self._path}/log",
                params={"attempt": attempt, "offset": offset},
                headers={"Accept": "application/x-ndjson"},
                stream=True,
            )
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                try:
                    line = models.LogLine.model_validate(json.loads(raw))
                except (ValueError, pydantic.ValidationError):
                    yield raw.decode("utf-8", errors="replace")  # not NDJSON: show it as it is
                    continue
                text = line.log.rstrip("\n")
                yield f"{_local_time(line.date)} {text}" if timestamps else text
            offset = {k.lower(): v for k, v in response.headers.items()}.get("x-geobatch-next-offset")
            if not offset:
                return

    def log(self, timestamps: bool = True, attempt: int | None = None) -> str:
        """The whole log as one string (see :meth:`iter_log`)."""
        lines = builtins.list(self.iter_log(timestamps=timestamps, attempt=attempt))
        return "\n".join(lines) + ("\n" if lines else "")


def _local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
