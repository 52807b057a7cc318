"""Functions: your Python code, built into an image, that jobs call."""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from geobatch import bundle
from geobatch.client import Client, get_default_client
from geobatch.job import Job, validation_error
from geobatch.search import Expression, Field, JobSearch, Search, bulk_job_operation
from geobatch.wire import codec, errors, limits, models
from geobatch.wire.models import FunctionStatus, JobStatus

__all__ = ["Function", "JobBulkCreateError", "JobBulkCreateResult"]

_SETTINGS = (
    "name",
    "cpus",
    "memory",
    "maximum_concurrency",
    "timeout",
    "retry_count",
    "environment",
    "enabled",
    "auto_start",
    "data_access",
)
_CREATE_ONLY = frozenset({"image", "requirements"})
_OUTSTANDING = tuple(s.value for s in JobStatus.outstanding())
_AS_COMPLETED_CHUNK = 128
_MAX_POLL_SECONDS = 60.0
# Room in a bulk request for everything but the per-job arguments (function id, tags, JSON syntax).
_BULK_OVERHEAD_BYTES = 64_000


@dataclass
class JobBulkCreateError:
    """A batch of ``Function.map`` that could not be submitted: its inputs, reference and the error.

    Submitting it again is safe: ``fn.map(error.args, error.kwargs, tags=error.tags,
    environments=error.environments)`` on the same Function object resends the batch under the same
    ``reference_id``, so if the batch was in fact created (only the answer was lost) its jobs are
    returned instead of created twice. (``fn.map(error.args)`` is the same call when the batch had
    no kwargs, tags or environments.)
    """

    function_id: str
    args: list[list[Any]] | None
    kwargs: list[dict[str, Any]] | None
    environments: list[dict[str, str] | None] | None
    reference_id: str
    exception: Exception
    tags: list[str] | None = None

    def __str__(self) -> str:
        count = len(self.args if self.args is not None else self.kwargs or [])
        return f"batch {self.reference_id} of {count} jobs failed: {self.exception}"


class JobBulkCreateResult(list[Job]):
    """The jobs created by ``Function.map`` (a list), plus the batches that failed in ``errors``."""

    def __init__(self, jobs: Iterable[Job] = ()):
        super().__init__(jobs)
        self.errors: list[JobBulkCreateError] = []

    @property
    def is_success(self) -> bool:
        """True when every batch was submitted."""
        return not self.errors

    def append_error(self, error: JobBulkCreateError) -> None:
        """Record a failed batch."""
        self.errors.append(error)


def _default_image() -> str | None:
    # Source code is shipped, so the image's Python should match the one it was written for.
    minor = sys.version_info.minor
    image = f"python3.{minor}"
    return image if image in models.SUPPORTED_IMAGES and sys.version_info.major == 3 else None


def _check(name: str, value: Any) -> Any:
    """``value`` for setting ``name``, normalised and validated (``ValidationError`` otherwise)."""
    try:
        if value is None:
            return None
        if name == "memory":
            return models.parse_memory(value)
        if name == "cpus":
            return models.parse_cpus(value)
        if name == "image":
            return models.check_image(str(value).removesuffix(":latest"))
        if name == "requirements":
            return bundle.read_requirements(value)
        if name in _SETTINGS:
            checked = models.FunctionSettings.model_validate({name: value})
            if name == "data_access":
                return checked.data_access  # an S3Access, with its locations in canonical spelling
            return dict(value) if name == "environment" else value
    except pydantic.ValidationError as exc:
        raise validation_error(exc, name) from None
    except ValueError as exc:
        raise errors.ValidationError(str(exc)) from None
    raise AttributeError(f"{name} cannot be set")


class Function:
    """A Python function that runs as jobs on GeoBatch.

    ``Function(fn, requirements=[...], cpus=1, memory="2GB")`` is local until :meth:`save` (or the
    first call or :meth:`map`) uploads the code and starts the image build. Unset values are left to
    the service's defaults. ``function`` is a plain ``def`` (its source is shipped, so it must import
    what it uses inside its body) or a ``"package.module:function"`` string.

    Args:
        function: the callable, or a dotted ``"pkg.mod:func"`` / ``"pkg.mod.func"`` string.
        requirements: pip requirements, as a list or the path of a requirements file.
        include_data: globs (relative to the current directory) of data files to ship with the code.
        include_modules: names of your own modules or packages to ship with the code.
        name: the Function's name (default: the function's name).
        image: the base image, ``"python3.11"`` to ``"python3.13"`` (default: your Python's version).
        cpus: vCPUs per job: 0.25, 0.5, 1, 2, 4, 8 or 16 (or ``"2vCPU"``).
        memory: MB per job (or ``"2GB"``, ``"1Gi"``, ``"512MB"``); it must fit ``cpus``. Given only
            one of the two, the other is its default if that fits, else the smallest Fargate partner
            (``memory=512`` gets 0.25 vCPU, ``cpus=4`` 8 GB).
        maximum_concurrency: most jobs running at once.
        timeout: seconds before a job is stopped with status ``timeout`` (at most 39600, 11 h: a job's
            queue message can be held at most 12 h).
        retry_count: automatic retries of a failed job.
        environment: environment variables for every job.
        enabled: whether new jobs and reruns are accepted.
        auto_start: whether the Function becomes ``ready`` (dispatching jobs) once built.
        data_access: the S3 locations its jobs read and write, a :class:`~geobatch.S3Access` (or
            a dict like it), e.g. ``S3Access(read=["s3://bucket/models/*"],
            write=["s3://bucket/products/v1/*"], public=["s3://sentinel-cogs/*"])``. Workers may
            touch only these (and the Function's own state); a deployed stack refuses locations
            outside what its operator allows with a ``ValidationError`` when the Function is saved.
        client: the :class:`~geobatch.Client` to use (default: the default client).
    """

    id = Field("id", doc="The Function's id (None until saved).")
    name = Field("name", settable=True, doc="The Function's name.")
    status = Field("status", doc="The FunctionStatus.")
    owner = Field("owner", doc="The IAM principal that owns the Function.")
    creation_date = Field("creation_date", "date", doc="When it was created (UTC).")
    modified_date = Field("modified_date", "date", doc="When it last changed (UTC).")
    image = Field("image", settable=True, doc="The base image (fixed once created).")
    requirements = Field("requirements", settable=True, doc="pip requirements (fixed once created).")
    cpus = Field("cpus", settable=True, doc="vCPUs per job.")
    memory = Field("memory", settable=True, doc="Memory per job, in MB.")
    maximum_concurrency = Field("maximum_concurrency", settable=True, doc="Most jobs running at once.")
    timeout = Field("timeout", settable=True, doc="Seconds before a job times out.")
    retry_count = Field("retry_count", settable=True, doc="Automatic retries of a failed job.")
    environment = Field("environment", settable=True, doc="Environment variables of every job.")
    enabled = Field("enabled", settable=True, doc="Whether new jobs and reruns are accepted.")
    auto_start = Field("auto_start", settable=True, doc="Whether it becomes ready once built.")
    data_access = Field(
        "data_access", settable=True, doc="The S3Access: S3 locations its jobs may read and write."
    )
    entrypoint = Field("entrypoint", doc="module:attribute of the callable inside the bundle.")
    image_uri = Field("image_uri", doc="The built container image.")
    status_reason = Field("status_reason", doc="More about the status (e.g. why the build failed).")

    def __init__(
        self,
        function: Callable[..., Any] | str | None = None,
        requirements: Iterable[str] | str | None = None,
        include_data: Iterable[str] | None = None,
        include_modules: Iterable[str] | None = None,
        name: str | None = None,
        image: str | None = None,
        cpus: float | str | None = None,
        memory: int | str | None = None,
        maximum_concurrency: int | None = None,
        timeout: int | None = None,
        retry_count: int | None = None,
        environment: Mapping[str, str] | None = None,
        enabled: bool | None = None,
        auto_start: bool | None = None,
        data_access: models.S3Access | Mapping[str, Any] | None = None,
        client: Client | None = None,
        **extra: Any,
    ):
        unknown = set(extra) - set(_SETTINGS)
        if unknown:
            raise TypeError(
                f"Function() got unknown arguments {sorted(unknown)}; settings are {list(_SETTINGS)}"
            )
        self._client = client
        self._wire: models.Function | None = None
        self._bundle_pending = False
        self._unanswered: dict[str, str] = {}  # batch fingerprint -> reference_id sent without answer
        self._create_key: tuple[str, str] | None = None
        self._includes: builtins.list[str] = []
        self._function = function
        self._include_data = builtins.list(include_data) if include_data is not None else None
        self._include_modules = builtins.list(include_modules) if include_modules is not None else None
        if name is None and function is not None:
            name = re.sub(r"^[^A-Za-z0-9]+", "", bundle.default_name(function)) or "function"
        given = dict(
            name=name,
            image=image if image is not None else _default_image(),
            requirements=requirements,
            cpus=cpus,
            memory=memory,
            maximum_concurrency=maximum_concurrency,
            timeout=timeout,
            retry_count=retry_count,
            environment=environment,
            enabled=enabled,
            auto_start=auto_start,
            data_access=data_access,
            **extra,
        )
        self._local: dict[str, Any] = {k: _check(k, v) for k, v in given.items() if v is not None}
        _fargate_partner(self._local)
        self._modified: set[str] = set(self._local)
        if "cpus" in self._local or "memory" in self._local:
            self._check_resources()

    # ------------------------------------------------------------------ internals

    @property
    def client(self) -> Client:
        """The client this Function uses (the default client unless one was given)."""
        if self._client is None:
            self._client = get_default_client()
        return self._client

    @classmethod
    def _from_wire(cls, data: Mapping[str, Any] | models.Function, client: Client | None) -> Function:
        fn = cls.__new__(cls)
        fn._client = client
        fn._bundle_pending = False
        fn._unanswered = {}
        fn._create_key = None
        fn._includes = []
        fn._function = None
        fn._include_data = fn._include_modules = None
        fn._local = {}
        fn._modified = set()
        fn._wire = None
        fn._update(data)
        return fn

    def _update(self, data: Mapping[str, Any] | models.Function) -> Function:
        wire = data if isinstance(data, models.Function) else models.Function.model_validate(data)
        if wire.job_statistics is None and self._wire is not None and "job.statistics" in self._includes:
            wire.job_statistics = self._wire.job_statistics
        self._wire = wire
        self._local = {}
        self._modified = set()
        return self

    def _get_field(self, name: str) -> Any:
        if name in self._local:
            return self._local[name]
        return getattr(self._wire, name) if self._wire is not None else None

    def _set_field(self, name: str, value: Any) -> None:
        if self._wire is not None and name in _CREATE_ONLY:
            raise AttributeError(
                f"{name} is fixed once the Function is created: create a new Function instead"
            )
        self._local[name] = _check(name, value)
        self._modified.add(name)

    def _check_resources(self) -> None:
        cpus = self._get_field("cpus")
        memory = self._get_field("memory")
        try:
            models.check_resources(
                float(cpus if cpus is not None else limits.DEFAULT_CPUS),
                int(memory if memory is not None else limits.DEFAULT_MEMORY_MB),
            )
        except ValueError as exc:
            raise errors.ValidationError(str(exc)) from None

    @property
    def _path(self) -> str:
        if self._wire is None:
            raise errors.BadRequestError("this Function is not saved yet: call save() first")
        return f"/functions/{self._wire.id}"

    # ------------------------------------------------------------------ persistence

    @property
    def state(self) -> str:
        """``"new"`` (not saved), ``"modified"`` (unsaved changes) or ``"saved"``."""
        if self._wire is None:
            return "new"
        return "modified" if self._modified or self._bundle_pending else "saved"

    def save(self) -> Function:
        """Create the Function (upload its code and start the build) or save changed settings.

        A new Function is created, its code zip uploaded and its build started (status
        ``building``); a saved one with changes is PATCHed with just those; otherwise nothing happens.
        """
        if self._wire is None:
            self._create()
        elif self._bundle_pending:
            raise errors.ConflictError(
                f"the code upload of Function {self.id} failed earlier and its upload URL may have expired: "
                "delete it (fn.delete()) and save a new Function"
            )
        elif self._modified:
            changed = {k: self._local[k] for k in self._modified if k in _SETTINGS}
            self._check_resources()
            try:
                body = models.FunctionUpdate(**changed)
            except pydantic.ValidationError as exc:
                raise validation_error(exc, "Function settings") from None
            self._update(self.client.patch(self._path, body.model_dump(mode="json", exclude_unset=True)))
        return self

    def _create(self) -> None:
        if self._function is None:
            raise errors.ValidationError(
                "this Function has no code: give the function to run, Function(my_func)"
            )
        if "name" not in self._local:
            raise errors.ValidationError("give the Function a name: Function(..., name='my-function')")
        built = bundle.make_bundle(
            self._function,
            include_modules=self._include_modules,
            include_data=self._include_data,
            requirements=self._local.get("requirements"),
        )
        fields = {k: v for k, v in self._local.items() if k != "requirements"}
        try:
            body = models.FunctionCreate(**fields, requirements=built.requirements)
        except pydantic.ValidationError as exc:
            raise validation_error(exc, "Function") from None
        # One key for this Function's creation, kept until it succeeds: retries inside the client
        # and a second save() after a lost answer create one Function, not two.
        payload = body.model_dump(mode="json", exclude_unset=True)
        self._create_key = _same_call_key(self._create_key, payload)
        created = models.FunctionCreated.model_validate(
            self.client.post("/functions", payload, idempotency_key=self._create_key[1])
        )
        self._update(created.function)
        self._bundle_pending = True
        self.client.put_presigned(created.bundle_upload_url, built.data)
        self._update(self.client.post(f"{self._path}/bundle"))
        self._bundle_pending = False

    @classmethod
    def get(cls, id: str, client: Client | None = None, include: Iterable[str] | None = None) -> Function:
        """The Function with this id; ``include=["job.statistics"]`` also loads job counts."""
        client = client or get_default_client()
        includes = builtins.list(include or [])
        fn = cls._from_wire(client.get(f"/functions/{id}", {"include": includes or None}), client)
        fn._includes = includes
        return fn

    @classmethod
    def search(cls, client: Client | None = None) -> Search[Function]:
        """A lazy :class:`Search` over your Functions: add ``.filter(...)``, ``.sort(...)``, ``.limit(n)``."""
        client = client or get_default_client()
        return Search(
            "/functions", lambda item, _params: cls._from_wire(item, client), client, server_limit=False
        )

    @classmethod
    def list(cls, page_size: int = 100, client: Client | None = None, **params: Any) -> Search[Function]:
        """Your Functions, ``page_size`` per request (iterate the result, or ``.collect()`` it)."""
        return cls.search(client).param(page_size=page_size, **params)

    def refresh(self, includes: Iterable[str] | None = None) -> Function:
        """Read the Function again; ``includes=["job.statistics"]`` also loads (and keeps) job counts."""
        if includes is not None:
            self._includes = sorted(set(self._includes) | set(includes))
        self._update(self.client.get(self._path, {"include": self._includes or None}))
        return self

    def delete(self, delete_results: bool = False) -> None:
        """Delete the Function and its jobs (canceling outstanding ones); results too if ``delete_results``.

        Results outlive the Function unless ``delete_results=True``.
        """
        while True:
            response = self.client.request("DELETE", self._path, params={"delete_results": delete_results})
            if response.status != 202:
                break

    # ------------------------------------------------------------------ submitting jobs

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
        if not 1 <= batch_size <= limits.MAX_JOBS_PER_REQUEST:
            raise errors.ValidationError(
                f"batch_size must be 1-{limits.MAX_JOBS_PER_REQUEST}, not {batch_size}"
            )
        bulk_args = _positional_lists(args) if args is not None else None
        bulk_kwargs = (
            [dict(_mapping(k, "kwargs", i)) for i, k in enumerate(kwargs)] if kwargs is not None else None
        )
        bulk_envs = (
            [
                dict(_mapping(e, "environments", i)) if e is not None else None
                for i, e in enumerate(environments)
            ]
            if environments is not None
            else None
        )
        given = (("args", bulk_args), ("kwargs", bulk_kwargs), ("environments", bulk_envs))
        lengths = {n: len(v) for n, v in given if v is not None}
        if not lengths:
            raise errors.ValidationError("give args (one list of positional arguments per job) and/or kwargs")
        if len(set(lengths.values())) > 1:
            raise errors.ValidationError(
                f"args, kwargs and environments must have the same length, got {lengths}"
            )
        count = next(iter(lengths.values()))
        result = JobBulkCreateResult()
        if count == 0:
            return result
        self.save()
        sizes = [
            len(codec.encode_args(bulk_args[i] if bulk_args else [], bulk_kwargs[i] if bulk_kwargs else {}))
            + (len(json.dumps(bulk_envs[i])) if bulk_envs else 0)
            for i in range(count)
        ]
        for i, size in enumerate(sizes):
            if size > limits.MAX_ARGS_BYTES:
                raise errors.PayloadTooLargeError(
                    f"the arguments of job {i} are {size:,} bytes of JSON; at most {limits.MAX_ARGS_BYTES:,} "
                    "are allowed: put large inputs in S3 and pass their keys"
                )
        for number, (start, stop) in enumerate(_batches(sizes, batch_size)):

            def part(
                values: builtins.list[Any] | None, a: int = start, b: int = stop
            ) -> builtins.list[Any] | None:
                return values[a:b] if values is not None else None

            try:
                result.extend(self._submit_batch(part(bulk_args), part(bulk_kwargs), part(bulk_envs), tags))
            except errors.GeoBatchError as exc:
                self._forget_statistics()
                if number == 0 or isinstance(exc, errors.NotFoundError):
                    raise
                result.append_error(
                    JobBulkCreateError(
                        self.id,
                        part(bulk_args),
                        part(bulk_kwargs),
                        part(bulk_envs),
                        getattr(exc, "reference_id", ""),
                        exc,
                        tags,
                    )
                )
        self._forget_statistics()
        return result

    def _forget_statistics(self) -> None:
        # Counts loaded before a submission are stale: the next read of job_statistics reloads them.
        if self._wire is not None:
            self._wire.job_statistics = None

    def _submit_batch(
        self,
        bulk_args: builtins.list[Any] | None,
        bulk_kwargs: builtins.list[Any] | None,
        bulk_envs: builtins.list[Any] | None,
        tags: builtins.list[str] | None,
    ) -> builtins.list[Job]:
        # A batch sent before without a clear answer goes again under its first reference.
        batch_print = _batch_fingerprint(bulk_args, bulk_kwargs, bulk_envs, tags)
        reference_id = self._unanswered.get(batch_print) or uuid.uuid4().hex
        try:
            body = models.JobBulkCreate(
                function_id=self.id,
                bulk_args=bulk_args,
                bulk_kwargs=bulk_kwargs,
                bulk_environments=bulk_envs,
                tags=tags or [],
                reference_id=reference_id,
            )
        except pydantic.ValidationError as exc:
            raise validation_error(exc, "job batch") from None
        try:
            # One encoded body: the client's retries resend these bytes, reference included.
            page = models.JobPage.model_validate(
                self.client.post("/jobs/bulk", body.model_dump(mode="json", exclude_none=True))
            )
        except errors.PayloadTooLargeError:
            count = body.count
            if count <= 1:
                raise
            # The server measured it bigger than we did: halve it (nothing was created).
            half = count // 2
            pieces = [(0, half), (half, count)]
            return [
                job
                for a, b in pieces
                for job in self._submit_batch(
                    bulk_args[a:b] if bulk_args is not None else None,
                    bulk_kwargs[a:b] if bulk_kwargs is not None else None,
                    bulk_envs[a:b] if bulk_envs is not None else None,
                    tags,
                )
            ]
        except errors.GeoBatchError as exc:
            exc.reference_id = reference_id  # type: ignore[attr-defined]
            if not isinstance(exc, _REJECTED):
                self._unanswered[batch_print] = reference_id
            raise
        self._unanswered.pop(batch_print, None)
        return [
            Job._from_wire(_with_sent(job, i, bulk_args, bulk_kwargs, bulk_envs, tags), self.client)
            for i, job in enumerate(page.data)
        ]

    # ------------------------------------------------------------------ jobs

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
    ) -> Function:
        """Wait until the Function is built and none of its jobs is pending or running.

        Polls every ``interval`` seconds (default 2 in local mode, 10 in the cloud, backing off while
        nothing changes). Shows a progress bar on stderr when it is a terminal (``progress=``
        overrides). Raises ``BuildFailedError`` if the build fails and ``TimeoutError`` after
        ``timeout`` seconds. If the Function is stopped (e.g. from the monitor) with pending jobs, it
        says so once (a ``RuntimeWarning``) and keeps waiting for someone to start it again;
        ``raise_if_stopped=True`` raises ``ConflictError`` instead.
        """
        base = interval or self.client.poll_interval
        delay = base
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _ProgressBar(sys.stderr.isatty() if progress is None else progress)
        last: dict[str, int] | None = None
        warned: set[str] = set()
        try:
            while True:
                self.refresh(includes=["job.statistics"])
                stats = self.job_statistics
                bar.update(self, stats)
                self._raise_if_stuck(stats, raise_if_stopped=raise_if_stopped, warned=warned)
                outstanding = sum(stats[s] for s in _OUTSTANDING)
                if self.status in (FunctionStatus.READY, FunctionStatus.STOPPED) and outstanding == 0:
                    return self
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"Function {self.name} ({self.id}) is not done after {timeout} s: "
                        f"status {self.status}, {outstanding} jobs outstanding"
                    )
                # Poll less often while nothing moves; go back to the base rate when something does.
                delay = base if stats != last else min(delay * 1.5, max(base, _MAX_POLL_SECONDS))
                last = stats
                time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
        finally:
            bar.close()

    def _raise_if_stuck(
        self,
        stats: Mapping[str, int] | None = None,
        *,
        raise_if_stopped: bool = True,
        warned: set[str] | None = None,
    ) -> None:
        if self.status == FunctionStatus.BUILD_FAILED:
            reason = f": {self.status_reason}" if self.status_reason else ""
            raise errors.BuildFailedError(
                f"Function {self.name} ({self.id}) failed to build{reason}; read fn.build_log() "
                f"or `geobatch functions build-log {self.id}`"
            )
        if stats is None:
            return
        active = sum(stats[s] for s in ("running", "cancel", "canceling"))
        if self.status == FunctionStatus.STOPPED and stats["pending"] and not active:
            message = (
                f"Function {self.name} ({self.id}) is stopped with {stats['pending']} pending jobs, "
                "which will not run until it is started (fn.start(), or Start in the monitor)"
            )
            if raise_if_stopped:
                raise errors.ConflictError(message)
            if warned is not None and "stopped" not in warned:
                warned.add("stopped")
                warnings.warn(f"{message}: still waiting", RuntimeWarning, stacklevel=3)
        elif warned is not None:
            warned.discard("stopped")  # started again: say so again if it stops again

    def as_completed(
        self, jobs: Iterable[Job], timeout: float | None = None, interval: float | None = None
    ) -> Iterator[Job]:
        """Yield each of ``jobs`` as it ends (in any terminal status), refreshed.

        Polls the API for up to 128 jobs per request; the interval doubles up to 60 s while nothing
        finishes and resets when something does. Raises ``BuildFailedError`` if the build fails and
        ``TimeoutError`` after ``timeout`` seconds.
        """
        waiting: dict[str, Job] = {}
        for job in jobs:
            if job.function_id != self.id:
                raise errors.ValidationError(
                    f"job {job.id} belongs to Function {job.function_id}, not {self.id}"
                )
            waiting[job.id] = job
        base = interval or self.client.poll_interval
        delay = base
        deadline = None if timeout is None else time.monotonic() + timeout
        terminal = JobStatus.terminal()
        while waiting:
            found = False
            ids = builtins.list(waiting)
            for i in range(0, len(ids), _AS_COMPLETED_CHUNK):
                chunk = ids[i : i + _AS_COMPLETED_CHUNK]
                search = self.jobs.filter(Job.id.in_(chunk) & Job.status.in_(terminal)).param(
                    page_size=len(chunk)
                )
                for done in search:
                    if done.id in waiting:
                        found = True
                        yield waiting.pop(done.id)._update(done._wire)  # type: ignore[arg-type]
            if not waiting:
                return
            self.refresh()
            self._raise_if_stuck()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(waiting)} jobs of Function {self.id} did not finish within {timeout} s"
                )
            delay = base if found else min(delay * 2, _MAX_POLL_SECONDS)
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))

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
        filters: builtins.list[dict[str, Any]] = []
        if isinstance(query, Search):
            filters = query.filter_list()
        elif isinstance(query, Expression):
            filters = query.to_filter()
        elif query is not None:
            raise TypeError(f"query must be a job search or a filter expression, not {query!r}")
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

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Function:
        """Dispatch pending jobs (status ``ready``)."""
        return self._update(self.client.patch(self._path, {"status": FunctionStatus.READY.value}))

    def stop(self) -> Function:
        """Stop dispatching pending jobs (status ``stopped``); running jobs go on."""
        return self._update(self.client.patch(self._path, {"status": FunctionStatus.STOPPED.value}))

    def enable(self) -> Function:
        """Accept new jobs and reruns (saved at once if the Function exists)."""
        self.enabled = True
        return self.save() if self._wire is not None else self

    def disable(self) -> Function:
        """Reject new jobs and reruns (saved at once if the Function exists)."""
        self.enabled = False
        return self.save() if self._wire is not None else self

    def build_log(self) -> str:
        """The log of the image build (``NotFoundError`` until the build has started)."""
        response = self.client.request("GET", f"{self._path}/log", headers={"Accept": "text/plain"})
        data = response.data
        if data[:2] == b"\x1f\x8b":  # gzip that the transport did not decode
            import gzip

            data = gzip.decompress(data)
        return data.decode("utf-8", errors="replace")

    def failure_summary(self) -> models.FailureSummary:
        """Failed and timed-out jobs grouped by cause, largest group first.

        Causes are the exception type and message with numbers and ids stripped, or one of
        out of memory, timeout and worker lost; each group names one example job::

            for group in fn.failure_summary().groups:
                print(group.count, group.cause, group.example_job_id)
        """
        return models.FailureSummary.model_validate(self.client.get(f"{self._path}/failures"))

    # ------------------------------------------------------------------ python protocol

    def to_dict(self) -> dict[str, Any]:
        """The Function's attributes as JSON-ready values."""
        data = self._wire.model_dump(mode="json") if self._wire is not None else {}
        for key, value in self._local.items():
            data[key] = value.model_dump(mode="json") if isinstance(value, pydantic.BaseModel) else value
        return data

    def __repr__(self) -> str:
        if self._wire is None:
            return f"Function(name={self._local.get('name')!r}, state='new')"
        return (
            f"Function(id={self.id!r}, name={self.name!r}, status={str(self.status)!r}, state={self.state!r})"
        )


# ---------------------------------------------------------------------------- helpers


def _fargate_partner(settings: dict[str, Any]) -> None:
    """Given only cpus or only memory that the other's default (1 vCPU, 2 GB) does not fit, choose
    the smallest Fargate partner: ``memory=512`` runs on 0.25 vCPU, ``cpus=4`` with 8 GB."""
    cpus, memory = settings.get("cpus"), settings.get("memory")
    if cpus is not None and memory is None and cpus in models.FARGATE_MEMORY:
        if limits.DEFAULT_MEMORY_MB not in models.FARGATE_MEMORY[cpus]:
            settings["memory"] = min(models.FARGATE_MEMORY[cpus])
    elif memory is not None and cpus is None:
        fits = [c for c, allowed in sorted(models.FARGATE_MEMORY.items()) if memory in allowed]
        if fits and limits.DEFAULT_CPUS not in fits:
            settings["cpus"] = fits[0]


# Answers that say the batch was refused (nothing created): no reference to remember.
_REJECTED = (errors.BadRequestError, errors.NotFoundError, errors.AuthError, errors.PayloadTooLargeError)


def _batch_fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _same_call_key(previous: tuple[str, str] | None, body: Any) -> tuple[str, str]:
    """(body fingerprint, Idempotency-Key): the previous key while the body is the same."""
    print_ = _batch_fingerprint(body)
    return previous if previous is not None and previous[0] == print_ else (print_, uuid.uuid4().hex)


def _positional_lists(args: Iterable[Any]) -> builtins.list[builtins.list[Any]]:
    if isinstance(args, str | bytes | Mapping):
        raise errors.ValidationError("args must be a list with one entry per job, e.g. [(x,), (y,)]")
    result = []
    for i, item in enumerate(args):
        if isinstance(item, str | bytes):
            raise errors.ValidationError(
                f"args[{i}] is the string {item[:40]!r}: each element of args is the list of positional "
                f"arguments of one job, so write [({item[:20]!r},), ...] or [[x] for x in values]"
            )
        if isinstance(item, Mapping):
            raise errors.ValidationError(
                f"args[{i}] is a mapping: pass keyword arguments with kwargs=[{{...}}, ...]"
            )
        try:
            result.append(builtins.list(item))
        except TypeError:
            raise errors.ValidationError(
                f"args[{i}] is {item!r}, not a list of positional arguments: "
                "wrap it, e.g. [(x,) for x in values]"
            ) from None
    return result


def _mapping(value: Any, what: str, index: int) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise errors.ValidationError(f"{what}[{index}] is {value!r}, not a dict")
    return value


def _batches(sizes: builtins.list[int], batch_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``batch_size`` jobs whose arguments fit in one request."""
    budget = limits.MAX_REQUEST_BYTES - _BULK_OVERHEAD_BYTES
    start, used = 0, 0
    for i, size in enumerate(sizes):
        cost = size + 8  # separators and the list brackets around each job
        if i > start and (i - start >= batch_size or used + cost > budget):
            yield start, i
            start, used = i, 0
        used += cost
    if start < len(sizes):
        yield start, len(sizes)


@dataclass
class _ProgressBar:
    """A one-line progress bar on stderr, redrawn in place with ``\\r``."""

    enabled: bool
    width: int = 30
    _shown: int = field(default=0, repr=False)

    def update(self, fn: Function, stats: Mapping[str, int]) -> None:
        if not self.enabled:
            return
        total = sum(stats.values())
        done = sum(stats[s.value] for s in JobStatus.terminal())
        filled = self.width * done // total if total else 0
        counts = " ".join(f"{k}={v}" for k, v in stats.items() if v)
        line = (
            f"{fn.name} [{fn.status}] [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {counts}"
        )
        sys.stderr.write("\r" + line.ljust(self._shown))
        sys.stderr.flush()
        self._shown = len(line)

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = 0


def _with_sent(
    job: models.Job,
    index: int,
    bulk_args: builtins.list[Any] | None,
    bulk_kwargs: builtins.list[Any] | None,
    bulk_envs: builtins.list[Any] | None,
    tags: builtins.list[str] | None,
) -> models.Job:
    """A submitted job as the service answers it (its id and state, not an echo of what was sent:
    the answer stays small whatever the jobs carry) completed with what this call sent."""
    args = bulk_args[index] if bulk_args is not None else []
    kwargs = bulk_kwargs[index] if bulk_kwargs is not None else {}
    sent = json.loads(codec.encode_args(args, kwargs))  # as the service stores and returns them
    update: dict[str, Any] = {}
    if job.args is None and job.kwargs is None:
        update.update(args=sent.get("args"), kwargs=sent.get("kwargs"))
    if job.environment is None and bulk_envs is not None and bulk_envs[index]:
        update["environment"] = bulk_envs[index]
    if not job.tags and tags:
        update["tags"] = builtins.list(tags)
    return job.model_copy(update=update) if update else job
