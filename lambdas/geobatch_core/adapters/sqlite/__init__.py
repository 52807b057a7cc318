"""Local mode's state backend: Functions, Jobs and queues in one SQLite file (see ``db``)."""

from __future__ import annotations

from pathlib import Path

from geobatch_core.adapters.sqlite.db import Database
from geobatch_core.adapters.sqlite.queue import SqliteQueue
from geobatch_core.adapters.sqlite.stores import SqliteFunctionStore, SqliteJobStore

__all__ = ["Database", "SqliteFunctionStore", "SqliteJobStore", "SqliteQueue", "open_state"]


def open_state(
    path: Path | str, db: Database | None = None
) -> tuple[SqliteFunctionStore, SqliteJobStore, SqliteQueue]:
    db = db or Database(path)
    return SqliteFunctionStore(db), SqliteJobStore(db), SqliteQueue(db)
