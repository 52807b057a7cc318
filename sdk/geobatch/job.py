"""Jobs: one call of a Function with its arguments, status, log and result."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pydantic

from geobatch import polling
from geobatch.client import Client, get_default_client
from geobatch.filters import Field, keyword_filter
from geobatch.job_output import JobOutput, JobResultError
from geobatch.resource import same_call_key, validation_error
from geobatch.search import JobSearch
from geobatch.wire import codec, models

if TYPE_CHECKING:
    from geobatch.function import Function
    from geobatch.statistics import AttemptStatistics

__all__ = ["Job", "JobResultError", "validation_error"]

_NEW_ONLY = frozenset({"function_id", "args", "kwargs", "environment"})


class Job(JobOutput):
    """One call of a Function: its arguments, status, attempts, log and result.

    Usually created by calling a Function (``fn(x)``) or ``fn.map(...)``. ``Job(function_id, args,
    kwargs).save()`` does the same by id. Jobs compare and hash by id, so they work in sets.
    """

    _collection = "/jobs"
    _noun = "job"

    id = Field("id", doc="The job's id (None until saved).")
    function_id = Field("function_id", settable=True, doc="The id of the Function this job calls.")
    creation_date = Field("creation_date", "date", doc="When the job was submitted (UTC).")
    status = Field("status", doc="The JobStatus.")
    args = Field("args", settable=True, doc="Positional arguments (JSON values).")
    kwargs = Field("kwargs", settable=True, doc="Keyword arguments (JSON values).")
    environment = Field(
        "environment", settable=True, doc="Environment variables (merged over the Function's)."
    )
    tags = Field("tags", "tags", settable=True, doc="Tags (set them, then save()).")
    error_reason = Field("error_reason", doc="Why the last attempt failed.")
    status_reason = Field("status_reason", doc="More about the current status.")
    execution_count = Field(
        "execution_count",
        doc="How many times the job was started, over all its runs (as in Descartes Labs); each run "
        "has its own retry budget of retry_count + 1 starts.",
    )
    run = Field("run", doc="How many times the job was rerun (0 for the first run).")
    exit_code = Field("exit_code", doc="Exit code of the last attempt.")
    runtime = Field("runtime", doc="Seconds the last attempt ran.")
    last_execution_date = Field("last_execution_date", "date", doc="When the last attempt started.")
    last_completion_date = Field("last_completion_date", "date", doc="When the last attempt ended.")
    reference_id = Field("reference_id", doc="The bulk submission this job came from.")
    has_result = Field("has_result", doc="True when a result is stored.")
    result_size = Field("result_size", doc="Size of the stored result in bytes.")

    def __init__(
        self,
        function_id: str,
        args: Any = None,
        kwargs: Mapping[str, Any] | None = None,
        client: Client | None = None,
        environment: Mapping[str, str] | None = None,
        tags: builtins.list[str] | None = None,
    ):
        local = {
            "function_id": function_id,
            "args": builtins.list(args) if args is not None else [],
            "kwargs": dict(kwargs or {}),
            "environment": dict(environment) if environment is not None else None,
            "tags": builtins.list(tags or []),
        }
        self._init_resource(client, local)
        self._result_included = False
        self._submit_key: tuple[str, str] | None = None

    # ------------------------------------------------------------------ internals

    @classmethod
    def _from_wire(
        cls, data: Mapping[str, Any] | models.Job, client: Client | None, *, included: bool = False
    ) -> Job:
        job = cls.__new__(cls)
        job._init_resource(client)
        job._submit_key = None
        return job._update(data, included=included)

    def _update(self, data: Mapping[str, Any] | models.Job, *, included: bool = False) -> Job:
        self._saved(data if isinstance(data, models.Job) else models.Job.model_validate(data))
        self._result_included = included
        return self

    def _set_field(self, name: str, value: Any) -> None:
        if self._wire is not None and name in _NEW_ONLY:
            raise AttributeError(f"{name} of a submitted job cannot change; only tags can")
        if name == "tags":
            if isinstance(value, str):
                raise TypeError("tags is a list of strings, e.g. ['demo']")
            value = builtins.list(value or [])
        self._local[name] = value
        self._modified.add(name)

    # ------------------------------------------------------------------ persistence

    def save(self) -> Job:
        """Submit a new job, or save changed tags of an existing one. Returns the job."""
        if self._wire is None:
            try:
                spec = models.JobSpec(**{k: v for k, v in self._local.items() if v is not None})
            except pydantic.ValidationError as exc:
                raise validation_error(exc, "job") from None
            codec.encode_args(spec.args, spec.kwargs)  # a clear error for values JSON cannot carry
            # Kept until the submission succeeds: save() again after a lost answer makes no second job.
            payload = spec.model_dump(mode="json", exclude_none=True)
            self._submit_key = same_call_key(self._submit_key, payload)
            self._update(self.client.post("/jobs", payload, idempotency_key=self._submit_key[1]))
        elif self._modified:
            try:
                body = models.JobTags(tags=self._local.get("tags", self._wire.tags))
            except pydantic.ValidationError as exc:
                raise validation_error(exc, "tags") from None
            self._update(self.client.patch(self._path, body.model_dump(mode="json")))
        return self

    @classmethod
    def get(cls, id: str, client: Client | None = None, include: Any = None) -> Job:
        """The job with this id (``NotFoundError`` if there is none); its result always comes with it
        (``include=["result"]`` is accepted for Descartes Labs code)."""
        client = client or get_default_client()
        params = {"include": builtins.list(include) if isinstance(include, list | tuple) else include}
        return cls._from_wire(client.get(f"/jobs/{id}", params), client)

    @classmethod
    def search(cls, client: Client | None = None) -> JobSearch[Job]:
        """A lazy :class:`JobSearch` over your jobs: add ``.filter(...)``, ``.sort(...)``, ``.limit(n)``."""
        client = client or get_default_client()

        def factory(item: dict[str, Any], params: dict[str, Any]) -> Job:
            return cls._from_wire(item, client, included="result" in str(params.get("include") or ""))

        return JobSearch("/jobs", factory, client)

    @classmethod
    def list(
        cls,
        function_id: str | None = None,
        status: Any = None,
        page_size: int = 100,
        client: Client | None = None,
        **filters: Any,
    ) -> JobSearch[Job]:
        """Your jobs (of ``function_id`` if given), ``page_size`` per request.

        Keyword filters work as in the Descartes Labs client: ``status`` (a status or a list of
        them), ``tags`` (jobs with any of them) and any other job field by equality, e.g.
        ``Job.list(function_id=F, status="failure")``. A name that is no job field is a ``TypeError``.
        """
        search = cls.search(client).param(page_size=page_size)
        if function_id is not None:
            search = search.param(function_id=function_id)
        if status is not None:
            filters["status"] = status
        for name, value in filters.items():
            search = search.filter(keyword_filter(name, value))
        return search

    def refresh(self) -> Job:
        """Read the job again from the API."""
        included = self._result_included
        params = {"include": "result"} if included else None
        return self._update(self.client.get(self._path, params), included=included)

    def delete(self, delete_result: bool = False) -> None:
        """Delete the job and its log; its stored result too if ``delete_result``."""
        self.client.request("DELETE", self._path, params={"delete_results": delete_result})

    # ------------------------------------------------------------------ control

    def cancel(self) -> Job:
        """Cancel the job: a pending job at once, a running one best effort. Nothing if it already ended."""
        return self._update(self.client.post(f"{self._path}/cancel"))

    def rerun(self) -> Job:
        """Run an unsuccessful job (failure, timeout, canceled) again."""
        return self._update(self.client.post(f"{self._path}/rerun"))

    def wait_for_completion(self, timeout: float | None = None, interval: float | None = None) -> Job:
        """Poll until the job ends (in any terminal status); ``TimeoutError`` after ``timeout`` seconds."""
        delay = interval or min(self.client.poll_interval, 5.0)
        deadline = polling.deadline(timeout)
        while True:
            self.refresh()
            if self.status in models.TERMINAL:
                return self
            if polling.passed(deadline):
                raise TimeoutError(f"job {self.id} did not finish within {timeout} s (status {self.status})")
            polling.pause(delay, deadline)
            if interval is None:
                delay = min(delay * 1.5, 30.0)

    # ------------------------------------------------------------------ timings

    @property
    def function(self) -> Function:
        """The job's Function, read from the API (not cached)."""
        from geobatch.function import Function

        return Function.get(self._get_field("function_id"), client=self.client)

    @property
    def attempts(self) -> builtins.list[models.Attempt]:
        """Every execution of the job in every run, oldest first, numbered from 1 across reruns, with
        its run, timings, exit code and reason (``log(attempt=n)`` reads the log of attempt n)."""
        return builtins.list(self._wire.attempts) if self._wire else []

    @property
    def statistics(self) -> AttemptStatistics | None:
        """CPU, memory and network of the newest finished attempt: a series sampled every 5 s plus
        its peaks (``memory_peak_mb``, ``cpu_peak_percent``, ...), read from the API on each access;
        None until an attempt has ended. See :meth:`attempt_statistics` for the others."""
        from geobatch import statistics

        return statistics.latest(self)

    def attempt_statistics(self, attempt: int | None = None) -> builtins.list[AttemptStatistics]:
        """The series of attempt ``attempt`` (1-based, as in :attr:`attempts`), or of the newest
        attempts (up to 10) that have one, oldest first."""
        from geobatch import statistics

        return statistics.attempt_statistics(self, attempt)

    @property
    def timings(self) -> dict[str, Any]:
        """How long the job waited and ran: ``queued_seconds``, ``started``, ``ended``, ``runtime``.

        ``queued_seconds`` is from submission to the start of the first attempt (``None`` until the
        job starts); ``started``/``ended`` are the first attempt's start and the last one's end;
        ``runtime`` is the seconds the last attempt ran.
        """
        attempts = self.attempts
        created = self.creation_date
        started = attempts[0].started if attempts and attempts[0].started else self.last_execution_date
        ended = (attempts[-1].ended if attempts else None) or self.last_completion_date
        queued = (started - created).total_seconds() if started and created else None
        return {
            "queued_seconds": None if queued is None else max(0.0, queued),
            "started": started,
            "ended": ended,
            "runtime": self.runtime,
        }

    # ------------------------------------------------------------------ python protocol

    def to_dict(self) -> dict[str, Any]:
        """The job's attributes as JSON-ready values."""
        if self._wire is None:
            return {k: v for k, v in self._local.items() if v is not None}
        data = self._wire.model_dump(mode="json", exclude={"result"})
        data.update(self._local)
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        if self._wire is None or other._wire is None:
            return self is other
        return self._wire.id == other._wire.id

    def __hash__(self) -> int:
        return hash(self._wire.id) if self._wire is not None else id(self)

    def __repr__(self) -> str:
        if self._wire is None:
            return f"Job(function_id={self._local.get('function_id')!r}, state='new')"
        extra = f", error_reason={self.error_reason!r}" if self.error_reason else ""
        return f"Job(id={self.id!r}, function_id={self.function_id!r}, status={str(self.status)!r}{extra})"
