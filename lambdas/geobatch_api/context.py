"""The API Lambda's ports: built from its environment once per container, or injected."""

from __future__ import annotations

import os

from geobatch_core.services.context import Services

_services: Services | None = None


def configure(services: Services | None) -> None:
    """Local mode and tests inject ready-made ports; ``None`` goes back to the environment."""
    global _services
    _services = services


def services() -> Services:
    global _services
    if _services is None:
        from geobatch_core.adapters.aws import services_from_env

        _services = services_from_env(os.environ)
    return _services
