"""The socket root of a process: its lock, its directories, its copy of the runtime, the
judging of other instances, and a container's directory handed back to root."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RuntimeUnavailable
from pipeline.runtime.shim import SHIM_DIR
from pipeline.runtime.sockets import SocketRoot, hand_back


class NoEngine:
    """Outside a container no engine is asked where a path is."""

    def container_mounts(self, ident: str) -> list[dict[str, Any]]:
        raise AssertionError("asked the engine")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[SocketRoot]:
    opened = SocketRoot(tmp_path / "warm", NoEngine())  # type: ignore[arg-type]
    yield opened
    opened.close()


def test_an_instance_holds_its_lock_and_a_read_only_runtime(root: SocketRoot) -> None:
    assert root.open() == root.root.resolve()
    assert root.open() == root.root.resolve()  # once
    assert sorted(os.listdir(root.root)) == [root.instance, f"{root.instance}.lock"]
    assert (root.shim / "runtime.py").read_bytes() == (SHIM_DIR / "runtime.py").read_bytes()
    assert stat.S_IMODE(root.shim.stat().st_mode) == 0o555
    assert stat.S_IMODE((root.shim / "runtime.py").stat().st_mode) == 0o444
    assert stat.S_IMODE(root.home.stat().st_mode) == 0o700
    assert root.host(root.shim) == str(root.root.resolve() / root.instance / "shim")


def test_an_instance_is_alive_while_its_lock_is_held_and_leaves_nothing_when_closed(
        root: SocketRoot) -> None:
    other = SocketRoot(root.root, NoEngine())  # type: ignore[arg-type]
    root.open()
    other.open()
    assert other.others() == {root.instance}
    with other.if_dead(root.instance) as dead:
        assert not dead
    assert (root.home / "shim").is_dir()  # left alone

    root.close()
    assert other.others() == set()
    other.close()
    assert os.listdir(root.root) == []


@pytest.mark.parametrize("lock", ["free", "missing"])
def test_a_dead_instances_directory_and_lock_are_removed(root: SocketRoot, lock: str) -> None:
    root.open()
    dead = "01234567"
    (root.root / dead / "c0ffee").mkdir(parents=True)
    if lock == "free":
        (root.root / f"{dead}.lock").touch()
    (root.root / "not-an-instance").mkdir()
    assert root.others() == {dead}

    with root.if_dead(dead) as found_dead:
        assert found_dead
    assert sorted(os.listdir(root.root)) == sorted(
        [root.instance, f"{root.instance}.lock", "not-an-instance"])


def test_a_containers_directory_is_the_functions_user_until_handed_back(
        root: SocketRoot) -> None:
    root.open()
    directory = root.directory("abcdef01")
    assert (directory.stat().st_uid, directory.stat().st_gid) == (65534, 65534)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(directory / "runtime.sock"))
    (directory / "left").write_bytes(b"x")
    (directory / "tree").mkdir()
    (directory / "tree" / "leaf").touch()
    try:
        assert hand_back(directory)
    finally:
        listening.close()
    assert (directory.stat().st_uid, directory.stat().st_gid) == (0, 0)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert os.listdir(directory) == ["runtime.sock"]


def test_a_socket_that_is_no_socket_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runtime.sock").symlink_to("/var/run/docker.sock")
    assert not hand_back(tmp_path)
    (tmp_path / "runtime.sock").unlink()
    assert not hand_back(tmp_path)  # none at all


def test_a_socket_path_too_long_is_the_hosts_fault(tmp_path: Path) -> None:
    root = SocketRoot(tmp_path / ("d" * 80), NoEngine())  # type: ignore[arg-type]
    root.open()
    try:
        with pytest.raises(RuntimeUnavailable, match="too long for a unix socket"):
            root.directory("abcdef01")
    finally:
        root.close()
