"""Functions: your Python code, built into an image, that jobs call.

The parts of a Function live apart: its settings and their checks in :mod:`geobatch.function_settings`,
what it does with its jobs in :mod:`geobatch.function_jobs`
(bulk submission in :mod:`geobatch.submission`, waiting in :mod:`geobatch.waiting`, bulk operations in
:mod:`geobatch.bulk`), and the plumbing it shares with :class:`~geobatch.Job` in :mod:`geobatch.resource`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic

from geobatch import bundle
from geobatch.client import Client, get_default_client
from geobatch.filters import Field
from geobatch.function_jobs import FunctionJobs
from geobatch.function_settings import (
    CREATE_ONLY,
    SETTINGS,
    check_resources,
    check_setting,
    default_image,
    fargate_partner,
)
from geobatch.resource import same_call_key, validation_error
from geobatch.search import Search
from geobatch.submission import JobBulkCreateError, JobBulkCreateResult
from geobatch.wire import errors, models
from geobatch.wire.models import FunctionStatus

__all__ = ["Function", "JobBulkCreateError", "JobBulkCreateResult"]


class Function(FunctionJobs):
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

    _collection = "/functions"
    _noun = "Function"

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
        unknown = set(extra) - set(SETTINGS)
        if unknown:
            raise TypeError(
                f"Function() got unknown arguments {sorted(unknown)}; settings are {list(SETTINGS)}"
            )
        self._init_function(client, function, include_data, include_modules)
        if name is None and function is not None:
            name = re.sub(r"^[^A-Za-z0-9]+", "", bundle.default_name(function)) or "function"
        given = dict(
            name=name,
            image=image if image is not None else default_image(),
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
        self._local = {k: check_setting(k, v) for k, v in given.items() if v is not None}
        fargate_partner(self._local)
        self._modified = set(self._local)
        if "cpus" in self._local or "memory" in self._local:
            self._check_resources()

    # ------------------------------------------------------------------ internals

    def _init_function(
        self,
        client: Client | None,
        function: Callable[..., Any] | str | None = None,
        include_data: Iterable[str] | None = None,
        include_modules: Iterable[str] | None = None,
    ) -> None:
        self._init_resource(client)
        self._bundle_pending = False
        self._unanswered: dict[str, str] = {}  # batch fingerprint -> reference_id sent without answer
        self._create_key: tuple[str, str] | None = None
        self._includes: builtins.list[str] = []
        self._function = function
        self._include_data = builtins.list(include_data) if include_data is not None else None
        self._include_modules = builtins.list(include_modules) if include_modules is not None else None

    @classmethod
    def _from_wire(cls, data: Mapping[str, Any] | models.Function, client: Client | None) -> Function:
        fn = cls.__new__(cls)
        fn._init_function(client)
        fn._update(data)
        return fn

    def _update(self, data: Mapping[str, Any] | models.Function) -> Function:
        wire = data if isinstance(data, models.Function) else models.Function.model_validate(data)
        if wire.job_statistics is None and self._wire is not None and "job.statistics" in self._includes:
            wire.job_statistics = self._wire.job_statistics
        self._saved(wire)
        return self

    def _set_field(self, name: str, value: Any) -> None:
        if self._wire is not None and name in CREATE_ONLY:
            raise AttributeError(
                f"{name} is fixed once the Function is created: create a new Function instead"
            )
        self._local[name] = check_setting(name, value)
        self._modified.add(name)

    def _check_resources(self) -> None:
        check_resources(self._get_field("cpus"), self._get_field("memory"))

    def _unsaved(self) -> bool:
        return bool(self._modified) or self._bundle_pending

    # ------------------------------------------------------------------ persistence

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
            changed = {k: self._local[k] for k in self._modified if k in SETTINGS}
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
        self._create_key = same_call_key(self._create_key, payload)
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
