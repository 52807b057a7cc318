"""Pacing of AWS Batch SubmitJob calls: one token bucket for the whole account, in the Jobs table.

AWS Batch allows about 50 SubmitJob calls per second per account and region. A scaler pass over
many Functions submits one array job per Function that lacks workers, and passes overlap (one per
submit, plus the schedule), so a bucket per invocation would not hold the account's budget. The
bucket is one item (``layout.PACING_PARTITION``) changed with a compare-and-set on its timestamp:
every caller, in every invocation, takes its tokens from the same item. A caller that finds the
bucket empty sleeps until a token is due.

On throttling anyway (another tool of the account submits too), the caller empties the bucket
(every invocation then waits) and backs off exponentially with full jitter before trying again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.ports import Item, JobRows

SUBMITS_PER_SECOND = 40.0  # under Batch's 50 TPS, leaving room for the account's other callers
BURST = 10  # at most: then no second sees more than BURST + rate = 50 calls
MILLI = 1000  # tokens are stored in thousandths, as integers: an exact compare-and-set
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 8.0
THROTTLE_RETRIES = 6
_KEY = "batch-submit"


class SubmitPacer:
    """Takes one token per SubmitJob call from the account-wide bucket; backs off on throttling."""

    def __init__(
        self,
        jobs: JobRows,
        *,
        clock: Callable[[], datetime],
        rate: float = SUBMITS_PER_SECOND,
        burst: int = BURST,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._jobs = jobs
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._sleep = sleep
        self._jitter = jitter
        self.waited = 0.0  # seconds this pacer slept (for a pass's report and the benchmark)

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    def _read(self) -> Item | None:
        try:
            return self._jobs.get_row(layout.PACING_PARTITION, _KEY, consistent=True)
        except errors.NotFoundError:
            return None

    def _level(self, item: Item | None, now_ms: int) -> int:
        """Milli-tokens in the bucket now (refilled since the item was last written)."""
        if item is None:
            return self.burst * MILLI
        refill = max(0, now_ms - int(item["at_ms"])) * self.rate  # ms × tokens/s = milli-tokens
        return int(min(self.burst * MILLI, int(item["milli_tokens"]) + refill))

    def _write(self, item: Item | None, milli_tokens: int, now_ms: int) -> bool:
        changes = {"milli_tokens": milli_tokens, "at_ms": now_ms}
        if item is None:
            created = self._jobs.put_rows(
                [{"function_id": layout.PACING_PARTITION, "job_key": _KEY, **changes}]
            )
            return bool(created)
        expect = {"at_ms": item["at_ms"], "milli_tokens": item["milli_tokens"]}
        return (
            self._jobs.update_row(layout.PACING_PARTITION, _KEY, changes=changes, expect=expect) is not None
        )

    def acquire(self) -> None:
        """Take one token, sleeping until one is due when the bucket is empty."""
        while True:
            item, now_ms = self._read(), self._now_ms()
            level = self._level(item, now_ms)
            if level >= MILLI:
                if self._write(item, level - MILLI, now_ms):
                    return
                continue  # another caller took tokens in between: read again
            self._pause((MILLI - level) / (self.rate * MILLI))

    def throttled(self, attempt: int) -> None:
        """Batch said TooManyRequests: empty the bucket for everyone, then back off (attempt ≥ 0)."""
        item, now_ms = self._read(), self._now_ms()
        if item is None or self._level(item, now_ms) > 0:
            self._write(item, 0, now_ms)  # lost race: someone else drained or took it; fine either way
        ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        self._pause(ceiling * self._jitter())

    def _pause(self, seconds: float) -> None:
        self.waited += seconds
        self._sleep(seconds)


def submit_paced(
    pacer: SubmitPacer | None, call: Callable[[], Any], is_throttle: Callable[[Exception], bool]
) -> Any:
    """Run one SubmitJob ``call`` under the pacer, retrying throttled calls with backoff."""
    if pacer is None:
        return call()
    for attempt in range(THROTTLE_RETRIES):
        pacer.acquire()
        try:
            return call()
        except Exception as exc:
            if not is_throttle(exc) or attempt == THROTTLE_RETRIES - 1:
                raise
            pacer.throttled(attempt)
    raise AssertionError("unreachable")
