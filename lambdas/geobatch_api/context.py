"""The API Lambda's ports: those of this container, which ``geobatch_core.wiring`` builds or is given.

(``configure`` and ``services`` are wiring's; the ops Lambdas take them from there directly.)
"""

from __future__ import annotations

from geobatch_core.wiring import configure, services

__all__ = ["configure", "services"]
