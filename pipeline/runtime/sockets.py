"""The socket root of one process: its instance id, the lock that says it lives, the
directories of its warm containers and its copy of the Python runtime (the layout, and why,
is in ``pipeline.runtime.containers``). Every method blocks; callers run them in a thread.

    <root>/<instance>.lock         flock'ed by its process for as long as it runs
    <root>/<instance>/shim/        the Python runtime, read-only, for exec mode
    <root>/<instance>/<suffix>/    one warm container's /run/faasflow: its runtime.sock
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pipeline.errors import RuntimeUnavailable
from pipeline.runtime.engine import Engine
from pipeline.runtime.hostpaths import host_path
from pipeline.runtime.shim import SHIM_DIR

SOCKET_NAME = "runtime.sock"
SHIM_FILES = ("runtime.py",)
MAX_SOCKET_PATH = 107  # bytes in sun_path, less its terminating NUL
NOBODY_ID = 65534  # pipeline.runtime.docker.NOBODY, the user of every function container
# Short ids: the socket's path, <root>/<instance>/<suffix>/runtime.sock, must fit in
# MAX_SOCKET_PATH, and a root under a state directory can be 70 bytes long already.
ID_BYTES = 4
INSTANCE = re.compile(r"[0-9a-f]{8}")


class SocketRoot:
    """This process's part of ``root``. ``open`` (on first use) takes the lock and makes the
    instance's directory; ``close`` removes them."""

    def __init__(self, root: Path, engine: Engine) -> None:
        self.root = root
        self.instance = secrets.token_hex(ID_BYTES)
        self._engine = engine
        self._opening = threading.Lock()
        self._lock: int | None = None
        self._host_root: Path | None = None

    @property
    def home(self) -> Path:
        return self.root / self.instance

    @property
    def shim(self) -> Path:
        return self.home / "shim"

    def open(self) -> Path:
        """The root's host path (see ``hostpaths``), once the instance is set up."""
        with self._opening:
            if self._host_root is None:
                try:
                    self._host_root = self._set_up()
                except PermissionError as exc:
                    raise RuntimeUnavailable(
                        f"cannot set up warm containers' sockets in {self.root} ({exc}): "
                        "run faasflow as root beside dockerd") from None
            return self._host_root

    def _set_up(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        host_root = host_path(self.root.resolve(), self._engine)
        # locked before it appears under its name: whoever finds it may judge it
        staging = self.root / f"{self.instance}.new"
        fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(staging, self.root / f"{self.instance}.lock")
        self._lock = fd
        self.home.mkdir(mode=0o700)
        self.shim.mkdir()
        for name in SHIM_FILES:
            shutil.copyfile(SHIM_DIR / name, self.shim / name)
            (self.shim / name).chmod(0o444)
        self.shim.chmod(0o555)
        return host_root

    def host(self, local: Path) -> str:
        """Where the engine finds ``local``, a path under the root (after ``open``)."""
        assert self._host_root is not None
        return str(self._host_root / local.relative_to(self.root))

    def directory(self, suffix: str) -> Path:
        """A new warm container's directory, its runtime's to write in (mode 0700)."""
        directory = self.home / suffix
        if len(os.fsencode(directory / SOCKET_NAME)) > MAX_SOCKET_PATH:
            raise RuntimeUnavailable(f"{directory / SOCKET_NAME} is too long for a unix "
                                     "socket: point FAASFLOW_RUNTIME_SOCKET_DIR at a shorter "
                                     "directory")
        try:
            directory.mkdir(mode=0o700)
            os.chown(directory, NOBODY_ID, NOBODY_ID)
        except PermissionError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeUnavailable(f"cannot give {directory} to the functions' user "
                                     f"({exc}): run faasflow as root beside dockerd") from None
        return directory

    def close(self) -> None:
        """The instance's directory, then its lock: a clean end leaves nothing behind."""
        with self._opening:
            if self._lock is None:
                return
            shutil.rmtree(self.home, ignore_errors=True)
            (self.root / f"{self.instance}.lock").unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None
            self._host_root = None

    def others(self) -> set[str]:
        """The other instances that left a directory or a lock here."""
        found = {entry.name.removesuffix(".lock") for entry in os.scandir(self.root)}
        return {name for name in found if INSTANCE.fullmatch(name)} - {self.instance}

    @contextmanager
    def if_dead(self, instance: str) -> Iterator[bool]:
        """Whether ``instance``'s process is gone: its lock missing, or free. Its lock stays
        held here while the block runs (it cleans up after the dead), then goes."""
        lock = self.root / f"{instance}.lock"
        fd: int | None = None
        with suppress(FileNotFoundError):
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        try:
            dead = fd is None or _locked(fd)
            yield dead
            if dead:
                shutil.rmtree(self.root / instance, ignore_errors=True)
                lock.unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)


def hand_back(directory: Path, *, adopt_link: bool = False) -> bool:
    """Give a container's directory back to root once its runtime listens: the function can
    create nothing there any more, and whatever else it left is removed (root still
    connects to the socket). Whether ``runtime.sock`` is a socket (not, say, a symlink the
    function planted to send this process elsewhere).

    ``adopt_link``: an Fn FDK binds a socket under a name of its own and symlinks
    ``runtime.sock`` to it; a link to a socket beside it, by a bare name, is replaced by that
    socket (once the directory is root's, nothing can swap them any more)."""
    os.chown(directory, 0, 0)
    directory.chmod(0o755)
    if adopt_link:
        _adopt(directory)
    for entry in os.scandir(directory):
        if entry.name != SOCKET_NAME:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
    try:
        return stat.S_ISSOCK(os.lstat(directory / SOCKET_NAME).st_mode)
    except FileNotFoundError:
        return False


def _adopt(directory: Path) -> None:
    link = directory / SOCKET_NAME
    try:
        target = os.readlink(link)
    except OSError:  # missing, or not a link
        return
    if not target or "/" in target or target in (".", "..", SOCKET_NAME):
        return
    try:
        if stat.S_ISSOCK(os.lstat(directory / target).st_mode):
            os.replace(directory / target, link)
    except FileNotFoundError:
        return


def _locked(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
