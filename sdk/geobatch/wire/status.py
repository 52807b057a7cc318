"""The status enums of jobs and Functions, and the status sets the state machine reasons with."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Status of a job, as in the Descartes Labs compute client."""

    PENDING = "pending"
    RUNNING = "running"
    CANCEL = "cancel"
    CANCELING = "canceling"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CANCELED = "canceled"

    @classmethod
    def terminal(cls) -> list[JobStatus]:
        return [cls.SUCCESS, cls.FAILURE, cls.TIMEOUT, cls.CANCELED]

    @classmethod
    def outstanding(cls) -> list[JobStatus]:
        return [cls.PENDING, cls.RUNNING, cls.CANCEL, cls.CANCELING]

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(JobStatus.terminal())
RERUNNABLE = frozenset({JobStatus.FAILURE, JobStatus.TIMEOUT, JobStatus.CANCELED})


class FunctionStatus(StrEnum):
    """Status of a Function's image and dispatch, as in the Descartes Labs compute client."""

    AWAITING_BUNDLE = "awaiting_bundle"
    BUILDING = "building"
    BUILD_FAILED = "build_failed"
    READY = "ready"
    STOPPED = "stopped"
