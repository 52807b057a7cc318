"""Resource use of one attempt: the series the worker samples, and its summary.

The worker samples the job's process tree every ``SAMPLE_SECONDS`` and once at the end, and stores
the whole series as ONE object per attempt next to the attempt's log (a PUT per attempt, never one
per sample). The job item keeps only the summary (peaks, mean, bytes), so listing jobs stays cheap.

The stored object is compact (one row of numbers per sample, column names once); the API expands
it into ``Sample`` objects. A long job's series stays bounded: past ``MAX_SAMPLES`` neighbouring
samples are merged (the interval doubles), keeping each pair's peak memory and mean CPU.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SAMPLE_SECONDS = 5.0
MAX_SAMPLES = 2048  # per attempt: 2048 rows of 5 numbers is about 80 KB of JSON
COLUMNS = ("t", "cpu_percent", "memory_mb", "net_rx_bytes", "net_tx_bytes")
FORMAT_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sample(_Model):
    """One point of the series."""

    t: float = Field(description="seconds since the attempt started (the runner was ready)")
    cpu_percent: float = Field(
        description="CPU use of the process tree since the previous sample; 100 = one core"
    )
    memory_mb: float = Field(
        description="most resident memory (MiB) of the process tree seen since the previous sample"
    )
    net_rx_bytes: int | None = Field(
        default=None,
        description="bytes received since the attempt started (the container's network; None off Linux)",
    )
    net_tx_bytes: int | None = Field(default=None, description="bytes sent since the attempt started")


class StatisticsSummary(_Model):
    """What the job item keeps of an attempt's series (``Attempt.statistics``)."""

    samples: int = 0
    interval_seconds: float = SAMPLE_SECONDS
    cpu_peak_percent: float | None = None
    cpu_mean_percent: float | None = None
    memory_peak_mb: float | None = None
    net_rx_bytes: int | None = None
    net_tx_bytes: int | None = None


SUMMARY_FIELDS = tuple(StatisticsSummary.model_fields)


class AttemptStatistics(StatisticsSummary):
    """The series of one attempt (``GET /jobs/{id}/statistics``)."""

    attempt: int
    run: int = 0
    series: list[Sample] = Field(default_factory=list)


class JobStatistics(_Model):
    """Response of ``GET /jobs/{id}/statistics``: the attempts that have a series, oldest first."""

    job_id: str
    attempts: list[AttemptStatistics] = Field(default_factory=list)


def merge_pairs(rows: list[list[Any]]) -> list[list[Any]]:
    """Halve a series: each pair becomes one row at the later time, with the pair's mean CPU, its
    peak memory and the later (cumulative) network counters."""
    merged: list[list[Any]] = []
    for i in range(0, len(rows) - 1, 2):
        a, b = rows[i], rows[i + 1]
        merged.append([b[0], round((a[1] + b[1]) / 2, 1), max(a[2], b[2]), b[3], b[4]])
    if len(rows) % 2:
        merged.append(rows[-1])
    return merged


def summarize(rows: list[list[Any]], interval: float, memory_peak_mb: float | None) -> StatisticsSummary:
    """The summary of a series; ``memory_peak_mb`` is the runner's finer-grained peak, when known."""
    cpu = [r[1] for r in rows]
    peak_memory = max([r[2] for r in rows] + [memory_peak_mb or 0.0]) if rows or memory_peak_mb else None
    last = rows[-1] if rows else None
    return StatisticsSummary(
        samples=len(rows),
        interval_seconds=interval,
        cpu_peak_percent=max(cpu) if cpu else None,
        cpu_mean_percent=round(sum(cpu) / len(cpu), 1) if cpu else None,
        memory_peak_mb=round(peak_memory, 1) if peak_memory is not None else None,
        net_rx_bytes=last[3] if last else None,
        net_tx_bytes=last[4] if last else None,
    )


def to_document(rows: list[list[Any]], summary: StatisticsSummary) -> dict[str, Any]:
    """The stored object of one attempt."""
    return {"v": FORMAT_VERSION, "columns": list(COLUMNS), "rows": rows, **summary.model_dump()}


def from_document(document: dict[str, Any], attempt: int, run: int) -> AttemptStatistics:
    columns = document.get("columns") or list(COLUMNS)
    series = [Sample(**dict(zip(columns, row, strict=False))) for row in document.get("rows") or []]
    summary = {k: document.get(k) for k in StatisticsSummary.model_fields if k in document}
    return AttemptStatistics(attempt=attempt, run=run, series=series, **summary)
