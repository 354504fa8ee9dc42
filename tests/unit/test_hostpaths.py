"""Where a path of this process is on the engine's host: the container found from
/proc/self/mountinfo, and a path mapped through that container's mounts."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from pipeline.errors import RuntimeUnavailable
from pipeline.runtime.engine import Missing
from pipeline.runtime.hostpaths import container_id, host_path, through_mounts

ID = "668195fc7958bc18348b49452de55505339f5d6c37ef7510f41c9ac9dfd15d0b"
HOST = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
42 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw
"""
# cgroup v1, the default data-root (taken from a container of this engine)
CONTAINER = f"""\
72 58 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
89 72 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw
90 72 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/vda rw
91 72 254:0 /var/lib/docker/containers/{ID}/hosts /etc/hosts rw - ext4 /dev/vda rw
"""
# cgroup v2, a data-root on a file system of its own: the root field is relative to it
OWN_FS = f"""\
600 500 0:40 / / rw,relatime - overlay overlay rw
610 600 8:17 /docker/containers/{ID}/hostname /etc/hostname rw - xfs /dev/sdb1 rw
"""
# a volume mounted at /etc/hosts-like paths is not the engine's file
NOT_ENGINE = f"""\
700 600 8:17 /volumes/x/_data /data rw - ext4 /dev/sdb1 rw
701 600 8:17 /foo/containers/{ID}/bar /srv/containers rw - ext4 /dev/sdb1 rw
"""
MOUNTS: list[dict[str, Any]] = [
    {"Type": "volume", "Name": "warm", "Source": "/var/lib/docker/volumes/warm/_data",
     "Destination": "/run/faasflow/warm"},
    {"Type": "bind", "Source": "/srv/faasflow", "Destination": "/run"},
    {"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock"},
    {"Type": "tmpfs", "Source": "", "Destination": "/scratch"},
]


@pytest.mark.parametrize(("mountinfo", "ident"), [
    (HOST, None), (CONTAINER, ID), (OWN_FS, ID), (NOT_ENGINE, None), ("", None),
])
def test_the_container_is_found_from_the_engines_files(mountinfo: str, ident: str | None
                                                      ) -> None:
    assert container_id(mountinfo) == ident


@pytest.mark.parametrize(("path", "host"), [
    ("/run/faasflow/warm", "/var/lib/docker/volumes/warm/_data"),
    ("/run/faasflow/warm/abc/def", "/var/lib/docker/volumes/warm/_data/abc/def"),
    ("/run/faasflow/warmer", "/srv/faasflow/faasflow/warmer"),  # a prefix of names, not parts
    ("/run/x", "/srv/faasflow/x"),
    ("/scratch/x", None),  # a tmpfs of the container: nothing on the host
    ("/home/x", None),  # the container's own layer
])
def test_a_path_maps_through_the_longest_mount_above_it(path: str, host: str | None) -> None:
    mapped = through_mounts(PurePosixPath(path), MOUNTS)
    assert mapped == (None if host is None else PurePosixPath(host))


class Inspector:
    def __init__(self, mounts: list[dict[str, Any]] | None) -> None:
        self.mounts = mounts
        self.asked: list[str] = []

    def container_mounts(self, ident: str) -> list[dict[str, Any]]:
        self.asked.append(ident)
        if self.mounts is None:
            raise Missing(ident)
        return self.mounts


def test_on_the_host_a_path_is_its_own_and_the_engine_is_not_asked() -> None:
    engine = Inspector(MOUNTS)
    assert host_path(Path("/run/x"), engine, HOST) == Path("/run/x")
    assert engine.asked == []


def test_in_a_container_a_path_is_mapped_through_its_mounts() -> None:
    engine = Inspector(MOUNTS)
    assert host_path(Path("/run/faasflow/warm/a"), engine, CONTAINER) == Path(
        "/var/lib/docker/volumes/warm/_data/a")
    assert engine.asked == [ID]


def test_in_a_container_the_engine_does_not_know_a_path_is_its_own() -> None:
    """The engine itself runs in that container (Docker in Docker)."""
    assert host_path(Path("/run/x"), Inspector(None), CONTAINER) == Path("/run/x")


def test_a_path_on_no_mount_says_what_to_mount() -> None:
    with pytest.raises(RuntimeUnavailable, match="/home/x must be on a volume or a bind mount"):
        host_path(Path("/home/x"), Inspector(MOUNTS), CONTAINER)
