"""Event publishers: EventBridge in AWS, the log locally."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core.adapters.aws_errors import ErrorMap

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "geobatch"
ERRORS = ErrorMap("EventBridge")


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, bus: str = "default"):
        self._events = client
        self._bus = bus

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry: PutEventsRequestEntryTypeDef = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str),
            "EventBusName": self._bus,
        }
        try:
            result = self._events.put_events(Entries=[entry])
        except ClientError as exc:
            raise ERRORS.error(exc, f"publishing the {detail_type} event") from None
        if result.get("FailedEntryCount"):
            raise errors.ServiceError(f"EventBridge refused the {detail_type} event")


class LogPublisher:
    """Local mode: an event is a log line (``geobatch.events``), e.g. for ``tail -f daemon.log``."""

    def __init__(self, logger: logging.Logger | None = None, *, keep: int = 1000):
        self._log = logger or logging.getLogger("geobatch.events")
        # The latest ``keep`` events only: a daemon that runs for weeks must not grow with each one.
        self._keep = keep
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.published.append((detail_type, dict(detail)))
        if len(self.published) > self._keep:
            del self.published[: len(self.published) - self._keep]
        self._log.info("%s: %s", detail_type, json.dumps(detail, default=str))
