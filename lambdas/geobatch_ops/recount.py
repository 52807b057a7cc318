"""The operator's recount: check a Function's per-status counts against its jobs, and correct them.

The counts move in the same atomic write as every job change, so a recount finds nothing to
correct unless something outside GeoBatch wrote the Jobs table (a manual edit, a restore from a
backup of one table but not of its counter items). It reads every job of the Function (its cost
grows with the Function: an operator's tool, never polled) and compares only over a quiet stretch
(see ``services.counters.recount``)::

    # a deployed stack (the operator's AWS credentials; table names from the stack's outputs)
    GEOBATCH_FUNCTIONS_TABLE=... GEOBATCH_JOBS_TABLE=... python -m geobatch_ops.recount --all
    # local mode (its SQLite file)
    GEOBATCH_LOCAL_STATE=~/.geobatch/local/state.sqlite python -m geobatch_ops.recount FUNCTION_ID --correct

Prints one JSON line per Function; exits 1 if any Function's counts differ from its jobs (after
``--correct``: if any could not be corrected), 2 if any was busy throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from geobatch.wire import env
from geobatch_core.ports import FunctionStore, JobStore
from geobatch_core.services.counters import Recount, recount

BUSY_TRIES = 5  # a Function whose jobs keep moving: try this often, a second apart


def stores(environ: Mapping[str, str]) -> tuple[FunctionStore, JobStore]:
    if environ.get(env.LOCAL_STATE):
        from geobatch_core.adapters.sqlite import open_state

        functions, jobs, _ = open_state(environ[env.LOCAL_STATE])
        return functions, jobs
    import boto3

    from geobatch_core.adapters.dynamodb import DynamoFunctionStore, DynamoJobStore

    dynamodb = boto3.session.Session().client("dynamodb")
    return (
        DynamoFunctionStore(dynamodb, environ[env.FUNCTIONS_TABLE]),
        DynamoJobStore(dynamodb, environ[env.JOBS_TABLE]),
    )


def every_function(functions: FunctionStore) -> Iterable[str]:
    start = None
    while True:
        records, start = functions.list_by_owner(None, start=start, limit=500)
        yield from (f.id for f in records if f.owner)
        if not start:
            return


def recount_quietly(jobs: JobStore, function_id: str, *, correct: bool, pause: float = 1.0) -> Recount:
    for _ in range(BUSY_TRIES - 1):
        report = recount(jobs, function_id, correct=correct)
        if not report.busy:
            return report
        time.sleep(pause)
    return recount(jobs, function_id, correct=correct)


def run(argv: Sequence[str], environ: Mapping[str, str], out: Any = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m geobatch_ops.recount", description=__doc__.split("\n")[0]
    )
    parser.add_argument("function_ids", nargs="*", help="Functions to recount")
    parser.add_argument("--all", action="store_true", help="every Function of every owner")
    parser.add_argument("--correct", action="store_true", help="make the counts equal the jobs")
    args = parser.parse_args(argv)
    if bool(args.function_ids) == args.all:
        parser.error("give Function ids or --all (not both)")
    functions, jobs = stores(environ)
    worst = 0
    for function_id in args.function_ids or every_function(functions):
        report = recount_quietly(jobs, function_id, correct=args.correct)
        print(json.dumps({**asdict(report), "exact": report.exact}, sort_keys=True), file=out)
        if report.busy:
            worst = max(worst, 2)
        elif report.drift and not report.corrected:
            worst = max(worst, 1)
    return worst


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], os.environ))
