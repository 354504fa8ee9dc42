"""Where a path of this process is on the Docker Engine's host: the source to give the engine
when a container is to bind-mount it.

On the host, a path is its own host path. In a container (a worker of a Swarm deployment,
talking to its node's engine through /var/run/docker.sock), the engine resolves bind sources
on the host, so a path of this container's filesystem has to be mapped through the
container's own mounts: it must lie on a volume or a bind mount. Which container this is
comes from /proc/self/mountinfo, where the engine's per-container files (/etc/hostname,
/etc/hosts, /etc/resolv.conf) are mounted from ``…/containers/<id>/`` — on cgroup v1 and v2
alike, unlike /proc/self/cgroup.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pipeline.errors import RuntimeUnavailable
from pipeline.runtime.engine import Missing

MOUNTINFO = Path("/proc/self/mountinfo")
_ENGINE_FILES = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})
_CONTAINER = re.compile(r"/containers/([0-9a-f]{64})/")


class Inspector(Protocol):
    def container_mounts(self, ident: str) -> list[dict[str, Any]]:
        """The container's ``Mounts`` (Type, Source, Destination…); ``Missing`` when the
        engine knows no such container."""
        ...


def container_id(mountinfo: str) -> str | None:
    """The id of the container whose /proc/self/mountinfo this is; None outside one."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] in _ENGINE_FILES:
            found = _CONTAINER.search(fields[3])
            if found:
                return found.group(1)
    return None


def through_mounts(path: PurePosixPath, mounts: Iterable[Mapping[str, Any]]
                   ) -> PurePosixPath | None:
    """``path`` (absolute, in the container) on the host: through the mount whose
    destination is its longest prefix, Source + the rest. None when it is on no mount, or on
    one with no host source (a tmpfs)."""
    found = [(PurePosixPath(str(mount.get("Destination") or "")), mount) for mount in mounts]
    under = [(where, mount) for where, mount in found
             if where.is_absolute() and path.is_relative_to(where)]
    if not under:
        return None
    destination, mount = max(under, key=lambda pair: len(pair[0].parts))
    source = str(mount.get("Source") or "")
    return PurePosixPath(source) / path.relative_to(destination) if source else None


def host_path(path: Path, engine: Inspector, mountinfo: str | None = None) -> Path:
    """``path`` (absolute, symlinks resolved) as the engine's host sees it. ``mountinfo``:
    this process's, read once when not given (the caller keeps what it maps: the socket
    root's host path is asked for once per process). A container the engine does not know
    is not one of its own (the engine itself runs in that container): then the path is its
    own."""
    ident = _own_container() if mountinfo is None else container_id(mountinfo)
    if ident is None:
        return path
    try:
        mounts = engine.container_mounts(ident)
    except Missing:
        return path
    mapped = through_mounts(PurePosixPath(path), mounts)
    if mapped is None:
        raise RuntimeUnavailable(
            f"{path} must be on a volume or a bind mount of this container ({ident[:12]}): "
            "the Docker Engine cannot reach it otherwise to mount it into warm containers")
    return Path(mapped)


@functools.cache
def _own_container() -> str | None:
    try:
        return container_id(MOUNTINFO.read_text())
    except OSError:  # no /proc: no container of an engine either
        return None
