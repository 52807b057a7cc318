"""A Function's settings: their names, how each is checked, and the defaults chosen on the client."""

from __future__ import annotations

import sys
from typing import Any

import pydantic

from geobatch import bundle
from geobatch.resource import validation_error
from geobatch.wire import errors, limits, models

__all__ = ["CREATE_ONLY", "SETTINGS", "check_resources", "check_setting", "default_image", "fargate_partner"]

SETTINGS = (
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
CREATE_ONLY = frozenset({"image", "requirements"})


def default_image() -> str | None:
    """The base image of this Python, if it is a supported one."""
    # Source code is shipped, so the image's Python should match the one it was written for.
    minor = sys.version_info.minor
    image = f"python3.{minor}"
    return image if image in models.SUPPORTED_IMAGES and sys.version_info.major == 3 else None


def check_setting(name: str, value: Any) -> Any:
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
        if name in SETTINGS:
            checked = models.FunctionSettings.model_validate({name: value})
            if name == "data_access":
                return checked.data_access  # an S3Access, with its locations in canonical spelling
            return dict(value) if name == "environment" else value
    except pydantic.ValidationError as exc:
        raise validation_error(exc, name) from None
    except ValueError as exc:
        raise errors.ValidationError(str(exc)) from None
    raise AttributeError(f"{name} cannot be set")


def check_resources(cpus: Any, memory: Any) -> None:
    """``ValidationError`` unless ``cpus`` and ``memory`` (None: the defaults) are a Fargate size."""
    try:
        models.check_resources(
            float(cpus if cpus is not None else limits.DEFAULT_CPUS),
            int(memory if memory is not None else limits.DEFAULT_MEMORY_MB),
        )
    except ValueError as exc:
        raise errors.ValidationError(str(exc)) from None


def fargate_partner(settings: dict[str, Any]) -> None:
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
