"""Field types and checks of the wire models (resources, image, timeout, requirements, names, tags,
the environment) and their base class.

Plain functions, so the SDK can check a value before a request is sent and the control plane
gives the same answer when it validates it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Any

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from geobatch.wire import limits

# Fargate task sizes: memory (MB) allowed for each vCPU count (AWS Batch on Fargate refuses any other
# pair at job submission, long after the Function was saved). 0.25 vCPU allows 512, 1024 and 2048 only.
FARGATE_MEMORY: dict[float, Sequence[int]] = {
    0.25: (512, 1024, 2048),
    0.5: range(1024, 4097, 1024),
    1.0: range(2048, 8193, 1024),
    2.0: range(4096, 16385, 1024),
    4.0: range(8192, 30721, 1024),
    8.0: range(16384, 61441, 4096),
    16.0: range(32768, 122881, 8192),
}
# Base images the worker runtime supports: geobatch_core needs Python 3.11 or newer (StrEnum,
# datetime.UTC), so a python3.10 image would build and then fail at the worker's first import.
SUPPORTED_IMAGES = ("python3.11", "python3.12", "python3.13")
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mb|mi|mib|m|gb|gi|gib|g)?\s*$", re.IGNORECASE)


def parse_memory(value: Any) -> int:
    """Memory in MB from an int or a string such as ``"512MB"``, ``"2GB"``, ``"1Gi"``, ``"1024Mi"``."""
    if isinstance(value, bool):
        raise ValueError("memory must be a number of MB or a string like '2GB'")
    if isinstance(value, int | float):
        return _memory_in_range(value)
    if isinstance(value, str):
        match = _MEMORY_RE.match(value)
        if match:
            number, unit = float(match.group(1)), (match.group(2) or "mb").lower()
            return _memory_in_range(number * 1024 if unit.startswith("g") else number)
    raise ValueError(
        f"memory {value!r} is not understood: give MB as an int, or a string like '512MB', '2GB', '1Gi'"
    )


def _memory_in_range(number: float) -> int:
    # inf, nan and 1e309 are numbers JSON can carry; none is an amount of memory.
    if not math.isfinite(number) or not 0 < number <= limits.MAX_MEMORY_MB:
        raise ValueError(f"memory {number:g} MB is out of range: give 1 to {limits.MAX_MEMORY_MB} MB")
    return int(number)


def parse_cpus(value: Any) -> float:
    """vCPUs from a number or a string such as ``"2vCPU"``."""
    if isinstance(value, bool):
        raise ValueError("cpus must be a number")
    if isinstance(value, str):
        digits = re.sub(r"[^0-9.]", "", value)
        if not digits:
            raise ValueError(f"cpus {value!r} is not a number: use one of {sorted(FARGATE_MEMORY)}")
        value = float(digits)
    return float(value)


def check_resources(cpus: float, memory: int) -> None:
    if cpus not in FARGATE_MEMORY:
        raise ValueError(
            f"cpus={cpus:g} is not allowed: use one of {', '.join(f'{c:g}' for c in FARGATE_MEMORY)}"
        )
    allowed = FARGATE_MEMORY[cpus]
    if memory not in allowed:
        choices = (
            f"use {allowed.start}-{allowed.stop - 1} MB in steps of {allowed.step} MB"
            if isinstance(allowed, range)
            else f"Fargate allows only {', '.join(map(str, allowed))} MB"
        )
        raise ValueError(f"memory={memory} MB does not fit cpus={cpus:g}: {choices}")


def check_image(image: str) -> str:
    if image not in SUPPORTED_IMAGES:
        raise ValueError(
            f"image {image!r} is not supported: the worker runtime needs Python 3.11 or newer; "
            f"use one of {', '.join(SUPPORTED_IMAGES)}"
        )
    return image


def check_timeout(timeout: int | None) -> int | None:
    if timeout is not None and timeout > limits.MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"timeout={timeout} s is over the {limits.MAX_TIMEOUT_SECONDS} s maximum: a job's queue message "
            "can be held at most 12 hours from its receipt (SQS), so a longer job would be retried while "
            "it still runs; split the work into shorter jobs"
        )
    return timeout


def check_requirement(line: str) -> str:
    """Accept PEP 508 requirements, comments and pip options, as a requirements.txt would."""
    stripped = line.strip()
    if (
        not stripped
        or stripped.startswith(("#", "-"))
        or stripped.startswith(("https://", "http://", "git+"))
    ):
        return stripped
    try:
        Requirement(stripped)
    except InvalidRequirement as exc:
        raise ValueError(f"requirement {line!r} does not parse: {exc}") from None
    return stripped


Memory = Annotated[int, BeforeValidator(parse_memory)]
Cpus = Annotated[float, BeforeValidator(parse_cpus)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Tag = Annotated[str, Field(min_length=1, max_length=limits.MAX_TAG_CHARS)]
Environment = dict[str, str]


def check_environment(env: Environment | None) -> Environment | None:
    if env is None:
        return None
    if len(env) > limits.MAX_ENV_VARS:
        raise ValueError(f"environment has {len(env)} variables; at most {limits.MAX_ENV_VARS} are allowed")
    size = sum(len(k) + len(v) for k, v in env.items())
    if size > limits.MAX_ENV_BYTES:
        raise ValueError(f"environment is {size} bytes; at most {limits.MAX_ENV_BYTES} are allowed")
    for key in env:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ValueError(f"environment variable name {key!r} is invalid: use letters, digits and _")
        if "\x00" in env[key]:
            raise ValueError(
                f"environment variable {key!r} holds a NUL character, which no process environment can "
                "carry: remove it"
            )
        if key.startswith(("GEOBATCH_", "AWS_")):
            raise ValueError(
                f"environment variable {key!r} is reserved (GEOBATCH_* and AWS_* are set by GeoBatch)"
            )
    return env


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)
