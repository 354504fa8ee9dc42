"""What the runtime's integration tests share: the runtimes of this checkout built into images,
function images made from them, and a Docker Engine that a test can take away.

The runtime images are built here, under test tags, from ``functions/runtime/<lang>``: the
shared ``faasflow/runtime-<lang>:latest`` may hold another checkout's runtime, and these tests
are about this one. Unchanged, a build is the layer cache's no-op.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import docker

from pipeline.runtime.engine import Engine
from pipeline.specs import FunctionSpec, Language, Mode

REPO = Path(__file__).resolve().parents[2]
HANDLER_FILES = {"python": "handler.py", "node": "handler.js"}


def build_runtime_images() -> dict[str, str]:
    """``faasflow-test/runtime-<lang>:latest`` from this checkout; their image ids."""
    client = docker.from_env()
    try:
        ids = {}
        for lang in HANDLER_FILES:
            image, _ = client.images.build(path=str(REPO / "functions" / "runtime" / lang),
                                           tag=f"faasflow-test/runtime-{lang}:latest", rm=True,
                                           forcerm=True)
            ids[lang] = str(image.id)
        return ids
    finally:
        client.close()


def build_function_image(runtime_image: str, lang: str, source: str, folder: Path,
                         tag: str) -> str:
    """What ``fn build`` makes of a handler (its loader variables, the runtime's entrypoint
    and label), FROM ``runtime_image``; the image id. It runs warm and cold alike."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = HANDLER_FILES[lang]
    (folder / handler).write_text(source)
    (folder / "Dockerfile").write_text(
        f"FROM {runtime_image}\nCOPY {handler} /home/app/{handler}\n"
        f"ENV FAASFLOW_HANDLER=/home/app/{handler} FAASFLOW_MAIN=main FAASFLOW_MODE=cold\n")
    client = docker.from_env()
    try:
        image, _ = client.images.build(path=str(folder), tag=tag, rm=True, forcerm=True)
        return str(image.id)
    finally:
        client.close()


def code_function(name: str, image: str, code: str, lang: str = "python",
                  **fields: object) -> FunctionSpec:
    """A warm code function (sent with /init) on a runtime image."""
    spec = FunctionSpec(name=name, image=image, image_digest=image, mode=Mode.WARM,
                        runtime=Language(lang), code=code, max_concurrency=1)
    return replace(spec, **fields)  # type: ignore[arg-type]


class EngineProxy:
    """A unix socket in front of dockerd's that a test can cut: then the engine is gone for
    whoever talks through the proxy (connections break, new ones are refused), while dockerd
    and its containers carry on."""

    def __init__(self, path: Path) -> None:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        self._target = host.removeprefix("unix://")
        self.path = path
        self.url = f"unix://{path}"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def engine(self) -> Engine:
        """An engine adapter that talks through the proxy."""
        return Engine(base_url=self.url)

    def cut(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with suppress(FileNotFoundError):
            self.path.unlink()
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self._target)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)


def iter_mounts() -> Iterator[tuple[str, str]]:
    """(mount point, file system type) of this host's mounts."""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            yield fields[1], fields[2]
