"""The API Lambda's ports: built from its environment once per container, or injected."""

from __future__ import annotations

import os

from geobatch_core.services.context import Services

_services: Services | None = None


def configure(services: Services | None) -> Services | None:
    """Local mode and tests inject ready-made ports; ``None`` goes back to the environment.
    Returns the ports that were configured before, so a caller can put them back."""
    global _services
    previous, _services = _services, services
    return previous


def services() -> Services:
    global _services
    if _services is None:
        from geobatch_core.adapters.aws import services_from_env

        _services = services_from_env(os.environ)
    return _services
