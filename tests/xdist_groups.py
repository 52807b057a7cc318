"""Which tests share a pytest-xdist worker when ``make test`` runs the suite side by side.

``make test`` runs ``pytest -n N --dist loadgroup``: each test runs once, on one of N worker
processes, and tests of one group run on the same worker, one after the other, as in a serial run.
The groups follow from what a test's fixtures share:

- a session fixture of a suite's conftest (the CDK synthesis of ``tests/infra``, the moto cloud and
  deployed stack of ``tests/rehearsal``) groups every test using it, so it is built once (keyed by
  the conftest's folder);
- a module fixture (a browser, a moto server, a Function whose jobs ran, the fault suite's artifact
  file) groups its module's tests, so it is built once and the module sees one fixture;
- ``PER_WORKER`` session fixtures are the exception: each worker starts its own (local mode on free
  ports, in a temporary home), so the local end-to-end tests spread over the workers. Within one
  worker they still run one at a time against that worker's local mode, as in a serial run.

Tests with none of these run wherever a worker is free. The longest work is handed out first, so
that no long test starts last and runs alone at the end: groups and tests are ordered by the time
they declare (the sum of their ``pytest.mark.timeout``, or pyproject's default, a rough measure of
their length: the install check and the fault suite declare 900 s), longest first.

How the groups reach the scheduler: xdist's own ``loadgroup`` reads an ``@group`` suffix that it
writes into node ids, which pytest 9 no longer lets a plugin change (the suffix is silently lost
and every test is scheduled alone). So the workers, which collect, write ``{node id: group}`` to a
file the controller named (``GROUPS_FILE``), and the controller's scheduler (``GroupScheduling``,
xdist's ``LoadGroupScheduling`` with the groups from that file) reads it once every worker has
collected. Without ``-n`` (``make test-<suite>``, a plain ``pytest``) nothing here does anything.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

GROUPS_FILE = "GEOBATCH_XDIST_GROUPS_FILE"  # env: where the workers write the groups

# Session fixtures every worker may start for itself (cheap, isolated: free ports, own home).
PER_WORKER = frozenset({"local_stack"})
# pytest's own session fixtures (one per worker is what xdist gives them anyway).
BUILTIN = frozenset({"tmp_path_factory", "worker_id", "testrun_uid", "record_testsuite_property"})


def _shared_fixtures(item: pytest.Item) -> Iterator[tuple[str, str, str]]:
    """(scope, name, where it is defined) of the item's module and session fixtures."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name)
        if not definitions or name in PER_WORKER or name in BUILTIN:
            continue
        fixture = definitions[-1]
        if fixture.scope in ("module", "session"):
            yield fixture.scope, name, fixture.baseid


def group_of(item: pytest.Item) -> str | None:
    """The xdist group of a test: its suite's session fixtures, else its module's fixtures, else none."""
    marker = item.get_closest_marker("xdist_group")
    if marker is not None:  # a test may still name its group itself
        return str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))
    shared = sorted(_shared_fixtures(item))
    sessions = sorted({baseid or "tests" for scope, _, baseid in shared if scope == "session"})
    if sessions:
        return "session:" + "+".join(sessions)
    if any(scope == "module" for scope, _, _ in shared):
        return "module:" + item.nodeid.split("::", 1)[0]
    return None


def _distributing(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") == "loadgroup"


def pytest_configure(config: pytest.Config) -> None:
    """On the controller of ``-n N --dist loadgroup``: name the groups file (workers inherit it)."""
    if _distributing(config) and not hasattr(config, "workerinput"):
        os.environ[GROUPS_FILE] = str(Path(tempfile.mkdtemp(prefix="xdist-groups-")) / "groups.json")


def pytest_unconfigure(config: pytest.Config) -> None:
    target = os.environ.get(GROUPS_FILE)
    if target and not hasattr(config, "workerinput"):
        shutil.rmtree(Path(target).parent, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: write every grouped test's group (each worker collects the same; last one wins)."""
    target = os.environ.get(GROUPS_FILE)
    if not hasattr(config, "workerinput") or not target:
        return
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    _longest_first(config, items, groups)
    partial = Path(f"{target}.{config.workerinput['workerid']}")
    partial.write_text(json.dumps(groups))
    partial.replace(target)


def _declared_seconds(config: pytest.Config, item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(config.getini("timeout") or 300)


def _longest_first(config: pytest.Config, items: list[pytest.Item], groups: dict[str, str]) -> None:
    """Reorder ``items`` (the same way on every worker): units (a group, or a test alone) by their
    declared seconds, longest first; within a group, the tests keep their order."""
    weight: dict[str, float] = {}
    for item in items:
        unit = groups.get(item.nodeid, item.nodeid)
        weight[unit] = weight.get(unit, 0.0) + _declared_seconds(config, item)
    position = {item.nodeid: n for n, item in enumerate(items)}
    items.sort(
        key=lambda i: (-weight[groups.get(i.nodeid, i.nodeid)], groups.get(i.nodeid, ""), position[i.nodeid])
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if not _distributing(config):
        return None
    from xdist.scheduler import LoadGroupScheduling

    config.option.loadscopereorder = False  # the workers' order (longest first) is the order

    class GroupScheduling(LoadGroupScheduling):
        """``loadgroup`` with the groups the workers wrote (see the module's docstring)."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # first called once every worker has collected
                path = Path(os.environ[GROUPS_FILE])
                self.groups = json.loads(path.read_text()) if path.exists() else {}
                self.log(f"{len(set(self.groups.values()))} groups of {len(self.groups)} tests")
            return self.groups.get(nodeid) or super()._split_scope(nodeid)

    return GroupScheduling(config, log)
