"""What a Function does with its jobs: submit them, wait for them, read their results, and
cancel, rerun or delete them in bulk.

:class:`~geobatch.Function` inherits these methods; the work is done in :mod:`geobatch.submission`,
:mod:`geobatch.waiting` and :mod:`geobatch.bulk`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from geobatch import submission, waiting
from geobatch.bulk import bulk_job_operation, query_filters
from geobatch.job import Job
from geobatch.resource import Resource
from geobatch.search import JobSearch
from geobatch.submission import JobBulkCreateResult
from geobatch.wire import codec, models
from geobatch.wire.models import JobStatus

if TYPE_CHECKING:
    from geobatch.function import Function

__all__ = ["FunctionJobs"]


class FunctionJobs(Resource):
    """The job methods of :class:`~geobatch.Function` (a base class: use ``Function``)."""

    _wire: models.Function | None
    _unanswered: dict[str, str]  # batch fingerprint -> reference_id sent without an answer

    if TYPE_CHECKING:
        id: Any

        def save(self) -> Any: ...

        def refresh(self, includes: Iterable[str] | None = None) -> Any: ...

    def _function_self(self) -> Function:
        return cast("Function", self)

    def _forget_statistics(self) -> None:
        # Counts loaded before a submission are stale: the next read of job_statistics reloads them.
        if self._wire is not None:
            self._wire.job_statistics = None

    def __call__(
        self,
        *args: Any,
        tags: builtins.list[str] | None = None,
        environment: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Submit one job ``function(*args, **kwargs)`` (saving the Function first) and return it."""
        self.save()
        job = Job(self.id, args, kwargs, client=self.client, environment=environment, tags=tags).save()
        self._forget_statistics()
        return job

    def map(
        self,
        args: Iterable[Iterable[Any]] | None,
        kwargs: Iterable[Mapping[str, Any]] | None = None,
        tags: builtins.list[str] | None = None,
        batch_size: int = 1000,
        environments: Iterable[Mapping[str, str] | None] | None = None,
    ) -> JobBulkCreateResult:
        """Submit one job per element of ``args`` (each an iterable of positional arguments).

        ``kwargs`` and ``environments``, if given, hold one mapping per job and must be as long as
        ``args``. Jobs are sent in batches of at most ``batch_size`` (1-1000) and of at most the
        request size limit; each batch has an idempotency reference, so retried requests never
        create duplicates. If the first batch fails the error is raised; later failures are kept in
        ``result.errors`` (see ``result.is_success``) and the other batches still go in.
        """
        return submission.map_jobs(self._function_self(), args, kwargs, tags, batch_size, environments)

    @property
    def jobs(self) -> JobSearch[Job]:
        """A :class:`JobSearch` over this Function's jobs."""
        return Job.search(self.client).param(function_id=self.id)

    @property
    def job_statistics(self) -> dict[str, int]:
        """Number of jobs per status (all eight statuses), loaded from the API if not loaded yet
        (and again after this object submitted jobs)."""
        if self._wire is None:
            return {}
        if self._wire.job_statistics is None:
            self.refresh(includes=["job.statistics"])
        stats = dict(self._wire.job_statistics or {})
        return {s.value: int(stats.get(s.value, 0)) for s in JobStatus}

    def wait_for_completion(
        self,
        timeout: float | None = None,
        interval: float | None = None,
        progress: bool | None = None,
        raise_if_stopped: bool = False,
    ) -> Any:
        """Wait until the Function is built and none of its jobs is pending or running.

        Polls every ``interval`` seconds (default 2 in local mode, 10 in the cloud, backing off while
        nothing changes). Shows a progress bar on stderr when it is a terminal (``progress=``
        overrides). Raises ``BuildFailedError`` if the build fails and ``TimeoutError`` after
        ``timeout`` seconds. If the Function is stopped (e.g. from the monitor) with pending jobs, it
        says so once (a ``RuntimeWarning``) and keeps waiting for someone to start it again;
        ``raise_if_stopped=True`` raises ``ConflictError`` instead.
        """
        return waiting.wait_for_function(self._function_self(), timeout, interval, progress, raise_if_stopped)

    def as_completed(
        self, jobs: Iterable[Job], timeout: float | None = None, interval: float | None = None
    ) -> Iterator[Job]:
        """Yield each of ``jobs`` as it ends (in any terminal status), refreshed.

        Polls the API for up to 128 jobs per request; the interval doubles up to 60 s while nothing
        finishes and resets when something does. Raises ``BuildFailedError`` if the build fails and
        ``TimeoutError`` after ``timeout`` seconds.
        """
        return waiting.as_completed(self._function_self(), jobs, timeout, interval)

    def iter_results(self, cast_type: Any = None) -> Iterator[Any]:
        """The results of this Function's successful jobs, one at a time (small ones come with the list)."""
        search = self.jobs.filter(Job.status == JobStatus.SUCCESS).param(include="result")
        for job in search:
            yield codec.decode_result(job.result_bytes(), cast_type)

    def results(self, cast_type: Any = None) -> builtins.list[Any]:
        """All results of the successful jobs in a list (prefer :meth:`iter_results` for many)."""
        return builtins.list(self.iter_results(cast_type))

    def _bulk(
        self, action: str, query: Any, job_ids: Iterable[str] | None, delete_results: bool = False
    ) -> builtins.list[str]:
        filters = query_filters(query)
        ids = builtins.list(job_ids) if job_ids is not None else None
        return bulk_job_operation(self.client, action, filters, self.id, ids, delete_results=delete_results)

    def cancel_jobs(self, query: Any = None, job_ids: Iterable[str] | None = None) -> builtins.list[str]:
        """Cancel this Function's jobs matching ``query`` (a search or expression) and/or ``job_ids``."""
        return self._bulk("cancel", query, job_ids)

    def rerun(self, query: Any = None, job_ids: Iterable[str] | None = None) -> builtins.list[str]:
        """Rerun this Function's unsuccessful jobs (failure, timeout, canceled) matching the query/ids."""
        return self._bulk("rerun", query, job_ids)

    def delete_jobs(
        self, query: Any = None, job_ids: Iterable[str] | None = None, delete_results: bool = False
    ) -> builtins.list[str]:
        """Delete this Function's finished jobs matching the query/ids (results too if asked); their ids."""
        return self._bulk("delete", query, job_ids, delete_results=delete_results)
