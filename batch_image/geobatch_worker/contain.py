"""What user code (a job, or a requirement's setup.py in a local build) may see and change.

Two layers, both applied before user code runs:

- **Environment**: the child gets the worker's environment without the control plane's names
  (``GEOBATCH_*``: tables, bucket, queue, local state file); in local mode also without the local
  S3's address and keys, which it replaces by the Function's gate (``s3gate``); in AWS without the
  task role's credentials, which it replaces by the Function's data role (``credentials``).
- **File system** (Linux user + mount namespaces, no root needed): the environments user code
  runs in (the Function's virtualenv, the GeoBatch installation's site-packages and source roots)
  are mounted read-only, and local mode's state (SQLite file, objects, logs) is covered by empty
  mounts. The setup happens in a first user namespace and is then sealed by entering a second one:
  mounts inherited by a less privileged namespace are locked, so user code, although it holds
  capabilities in its own namespace, can neither remount them writable nor unmount them.

Limits, said plainly: where unprivileged user namespaces are disabled the file-system layer is
skipped (the job's log says so) and only the environment layer holds; a job runs as the same
user as the worker, so files another process of that user holds open stay reachable through
``/proc/<pid>/fd``, and a job can connect to any port on loopback (local S3 checks no keys).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from geobatch.wire import env
from geobatch_core.records import FunctionRecord
from geobatch_worker import credentials
from geobatch_worker.s3gate import S3Gate

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_DUMPABLE = 4
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
_KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME
LOCAL_S3_NAMES = (  # local S3's address and every way boto3 finds keys, replaced by the gate's
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)
GATE_KEY = "geobatch-job"  # what the child signs with; the gate allows by location, not by key


def child_environ(environ: Mapping[str, str], *, gate_url: str | None) -> dict[str, str]:
    """The environment a user-code child starts with (each job adds its own on top)."""
    kept = {k: v for k, v in environ.items() if not k.startswith("GEOBATCH_")}
    if gate_url is not None:  # local mode: the gate in place of local S3 and its keys
        for name in LOCAL_S3_NAMES:
            kept.pop(name, None)
        kept.update(AWS_ENDPOINT_URL=gate_url, AWS_ACCESS_KEY_ID=GATE_KEY, AWS_SECRET_ACCESS_KEY=GATE_KEY)
    return kept


def local_home(environ: Mapping[str, str]) -> Path | None:
    state = environ.get(env.LOCAL_STATE)
    return Path(state).parent if state else None


def hidden_paths(home: Path | None, *, keep: Iterable[Path] = ()) -> list[str]:
    """Everything of local mode's home but its environments (and ``keep``): state, objects, logs."""
    if home is None or not home.is_dir():
        return []
    kept = {p.resolve() for p in keep} | {(home / "envs").resolve()}
    return sorted(str(p) for p in home.iterdir() if p.resolve() not in kept)


def code_paths() -> list[str]:
    """Where the Python code of this interpreter lives: its prefix, site-packages, GeoBatch's roots."""
    import geobatch
    import geobatch_core
    import geobatch_worker

    paths = {sys.prefix, sys.base_prefix, *(p for p in sys.path if p and os.path.isdir(p))}
    for module in (geobatch, geobatch_core, geobatch_worker):
        paths.add(str(Path(module.__file__ or "").resolve().parents[1]))
    return sorted(p for p in paths if p and os.path.isdir(p) and p != "/")


class Containment:
    """What one worker's user-code children get: their environment, what they seal, and who answers
    their AWS requests (local mode: the S3 gate; AWS: the data role's credentials endpoint)."""

    def __init__(
        self, function: FunctionRecord, environ: Mapping[str, str], *, workdir: str, worker_id: str = ""
    ):
        home = local_home(environ)
        self.gate: S3Gate | None = None
        self.credentials: credentials.CredentialServer | None = None
        if home is not None:
            undumpable()  # this worker's environment names local S3 and the state file
        if home is not None and environ.get(env.AWS_ENDPOINT_URL):
            self.gate = S3Gate(
                environ[env.AWS_ENDPOINT_URL], function.data_access, environ.get(env.BUCKET, "")
            )
        self.environ = child_environ(environ, gate_url=self.gate.url if self.gate else None)
        if home is None:  # AWS: the data role in place of the task role (credentials.py)
            self.environ = credentials.child_environ(self.environ)
            self.credentials, names = credentials.serve_data_role(
                environ.get(env.WORKER_DATA_ROLE_ARN), function.id, worker_id
            )
            self.environ.update(names)
        self.environ["HOME"] = workdir if home is not None else self.environ.get("HOME", workdir)
        cwd = os.getcwd()
        # Local mode only: in the image, user code runs as a user that cannot write the environment.
        self.sealed = (
            {"ro": [p for p in code_paths() if p != cwd or p in _roots()], "hide": hidden_paths(home)}
            if home is not None
            else {}
        )

    def close(self) -> None:
        if self.gate is not None:
            self.gate.close()
        if self.credentials is not None:
            self.credentials.close()


def _roots() -> set[str]:
    import geobatch

    return {str(Path(geobatch.__file__ or "").resolve().parents[1])}


# --------------------------------------------------------------------------- namespaces


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(libc.mount(encode(source), encode(target), encode(fstype), flags, None), f"mount {target}")


def _enter_user_namespace(libc: ctypes.CDLL) -> None:
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _read_only(libc: ctypes.CDLL, path: str) -> None:
    _mount(libc, path, path, None, MS_BIND | MS_REC)
    kept = os.statvfs(path).f_flag & _KEPT_FLAGS  # flags a user namespace may not drop
    _mount(libc, None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def _hide(libc: ctypes.CDLL, path: str) -> None:
    if os.path.isdir(path):
        _mount(libc, "none", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV)
    else:
        _mount(libc, "/dev/null", path, None, MS_BIND)


def undumpable() -> None:
    """Close this process's ``/proc/<pid>`` (environment, open files, memory) to user code.

    A process of the same user may read another's ``/proc/<pid>/environ`` or follow its
    ``/proc/<pid>/fd`` links to files it holds open (local mode's state file) unless that process
    is not dumpable; then only a holder of CAP_SYS_PTRACE in the first user namespace may, which a
    sealed job is not (its capabilities are in its own namespace). Core dumps are off with it.
    """
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def seal(read_only: Iterable[str], hidden: Iterable[str]) -> str | None:
    """Enter namespaces where ``read_only`` cannot be written and ``hidden`` shows nothing.

    Returns None when all of it holds, else what does not (the job's log shows it): without user
    namespaces nothing is changed; a path that cannot be mounted on is left as it is, the others
    are still sealed (a job should run, and say how it is contained, rather than not run)."""
    libc = _libc()
    try:
        _enter_user_namespace(libc)
    except OSError as exc:
        return f"user namespaces are not available ({exc.strerror})"
    problems: list[str] = []
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    # Hide first: a hidden path under a read-only one could not be mounted on once that is read-only.
    steps = [(_hide, p) for p in hidden] + [(_read_only, p) for p in read_only]
    for step, path in steps:
        if not os.path.lexists(path):
            continue
        try:
            step(libc, path)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
    # The second namespace locks what the first set up (read-only, and covered paths stay covered).
    _enter_user_namespace(libc)
    return f"could not seal {', '.join(problems)}" if problems else None


def main(argv: list[str]) -> None:
    """``python -m geobatch_worker.contain [--ro PATH]... [--hide PATH]... -- COMMAND...``: run
    COMMAND sealed (the local builder runs pip this way). Refuses to run unsealed only if asked."""
    read_only: list[str] = []
    hidden: list[str] = []
    while argv and argv[0] != "--":
        flag, value, argv = argv[0], argv[1], argv[2:]
        (read_only if flag == "--ro" else hidden).append(value)
    command = argv[1:]
    why_not = seal(read_only, hidden)
    if why_not is not None:
        print(f"[geobatch] not contained: {why_not}", file=sys.stderr)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
