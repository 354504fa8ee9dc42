"""Build a function folder into a local image, with the Docker Engine's classic builder.

The tag is ``faasflow-fn/<name>:<first 12 hex of the context digest>``: a sha256 over the
folder's files (path, executable bit, content), the generated Dockerfile and the ids of the
images it builds FROM. The same folder on the same runtime image gives the same tag, so an
existing tag means there is nothing to build; a rebuilt runtime image gives a new one.

Python and Node functions get a generated Dockerfile: FROM ``faasflow/runtime-<lang>``, the
folder copied to /home/app, and the variables the runtime reads at start to load the handler
itself (no /init needed). A ``dockerfile`` function is built from its own Dockerfile.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.cli.manifest import Manifest, ManifestError, load_manifest
from pipeline.errors import RuntimeUnavailable
from pipeline.runtime.engine import Engine, Missing, Refused

REPOSITORY = "faasflow-fn"
APP_DIR = "/home/app"
RUNTIME_IMAGES = {lang: f"faasflow/runtime-{lang}:latest" for lang in ("python", "node")}
# Left out of the build context (and of the digest): hidden files and folders such as .git or
# .venv, and Python's bytecode caches.
IGNORED_DIRS = ("__pycache__",)
IGNORED_SUFFIXES = (".pyc",)
FROM_LINE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)

Progress = Callable[[str], None]


class BuildError(Exception):
    """The folder cannot be built: a bad manifest, a missing file or base image, a failed step,
    or no Docker Engine."""


@dataclass(frozen=True, slots=True)
class ContextFile:
    path: str  # relative, with forward slashes
    source: Path
    executable: bool


@dataclass(frozen=True, slots=True)
class Built:
    manifest: Manifest
    tag: str
    image_id: str
    built: bool  # False: the tag existed already


def context_files(folder: Path) -> list[ContextFile]:
    """The folder's files that make the build context, sorted by path."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in names:
            if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
                continue
            source = Path(root, name)
            if not source.is_file():
                continue  # sockets, fifos, broken links
            path = source.relative_to(folder).as_posix()
            files.append(ContextFile(path, source, os.access(source, os.X_OK)))
    return sorted(files, key=lambda f: f.path)


def context_digest(files: Iterable[ContextFile], dockerfile: str | None = None,
                   parents: Sequence[str] = ()) -> str:
    """sha256 (hex) over the files' paths, executable bits and contents, the generated
    Dockerfile and the parent image ids: what decides the image."""
    digest = hashlib.sha256()
    for file in files:
        content = file.source.read_bytes()
        digest.update(f"file\0{file.path}\0{int(file.executable)}\0{len(content)}\0".encode())
        digest.update(content)
    if dockerfile is not None:
        digest.update(f"dockerfile\0{len(dockerfile)}\0{dockerfile}".encode())
    for parent in parents:
        digest.update(f"parent\0{parent}\0".encode())
    return digest.hexdigest()


def image_tag(name: str, digest: str) -> str:
    return f"{REPOSITORY}/{name}:{digest[:12]}"


def generated_dockerfile(manifest: Manifest) -> str | None:
    """The Dockerfile of a Python or Node function; None for a ``dockerfile`` function."""
    if manifest.handler_file is None:
        return None
    env = {
        "FAASFLOW_HANDLER": f"{APP_DIR}/{manifest.handler_file}",
        "FAASFLOW_MAIN": manifest.main,
        "FAASFLOW_MODE": manifest.mode or "cold",
        "FAASFLOW_FUNCTION": manifest.name,
    }
    return "\n".join([
        f"FROM {RUNTIME_IMAGES[manifest.lang]}",
        f"COPY app/ {APP_DIR}/",
        f"WORKDIR {APP_DIR}",
        "ENV " + " ".join(f"{k}={v}" for k, v in env.items()),
        "LABEL " + " ".join(f"{k}={v}" for k, v in _labels(manifest).items()),
        "",
    ])


def _labels(manifest: Manifest) -> dict[str, str]:
    labels = {"faasflow.function": manifest.name, "faasflow.lang": manifest.lang}
    if manifest.mode:
        labels["faasflow.mode"] = manifest.mode
    return labels


def parent_images(manifest: Manifest, folder: Path, dockerfile: str | None) -> list[str]:
    """The images the build starts FROM (for a Dockerfile: each FROM naming an image)."""
    if dockerfile is not None:
        return [RUNTIME_IMAGES[manifest.lang]]
    try:
        text = (folder / "Dockerfile").read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"a dockerfile function needs {folder / 'Dockerfile'}: {exc}") from None
    stages: set[str] = set()
    parents = []
    for line in text.splitlines():
        match = FROM_LINE.match(line)
        if not match:
            continue
        image = match.group(1)
        if image.lower() not in stages and image.lower() != "scratch":
            parents.append(image)
        alias = re.search(r"\s+AS\s+(\S+)\s*$", line, re.IGNORECASE)
        if alias:
            stages.add(alias.group(1).lower())
    return parents


def context_tar(files: Sequence[ContextFile], dockerfile: str | None) -> bytes:
    """The build context: the folder as is, or under app/ beside the generated Dockerfile.
    Owner root, fixed times and modes: the content alone decides the layers."""
    prefix = "app/" if dockerfile is not None else ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        added: set[str] = set()

        def add(name: str, data: bytes | None, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        if dockerfile is not None:
            add("Dockerfile", dockerfile.encode(), 0o644)
            add("app", None, 0o755)
        for file in files:
            parts = (prefix + file.path).split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in added and directory != "app":
                    added.add(directory)
                    add(directory, None, 0o755)
            add(prefix + file.path, file.source.read_bytes(), 0o755 if file.executable else 0o644)
    return buffer.getvalue()


class Builder:
    """Builds function images through the engine adapter; its errors become ``BuildError``."""

    def __init__(self) -> None:
        try:
            self._engine = Engine(timeout_s=600)
            self._engine.ping()
        except RuntimeUnavailable as exc:
            raise BuildError(str(exc)) from exc

    def close(self) -> None:
        self._engine.close()

    def image_id(self, ref: str) -> str | None:
        try:
            return self._engine.image_id(ref)
        except (Refused, RuntimeUnavailable) as exc:
            raise BuildError(str(exc)) from exc

    def build(self, folder: Path, progress: Progress | None = None) -> Built:
        manifest = _load(folder)
        if manifest.handler_file and not (folder / manifest.handler_file).is_file():
            raise BuildError(f"a {manifest.lang} function needs {folder / manifest.handler_file}")
        dockerfile = generated_dockerfile(manifest)
        parents = parent_images(manifest, folder, dockerfile)
        parent_ids = [self.image_id(p) or "" for p in parents]
        if dockerfile is not None and not parent_ids[0]:
            raise BuildError(f"{parents[0]} is missing: build it with compose/images.sh")
        files = context_files(folder)
        tag = image_tag(manifest.name, context_digest(files, dockerfile, parent_ids))
        existing = self.image_id(tag)
        image_id = existing or self._build(manifest, files, dockerfile, tag, progress)
        latest = f"{REPOSITORY}/{manifest.name}:latest"
        try:
            self._engine.tag(image_id, latest)
        except (Missing, Refused, RuntimeUnavailable) as exc:
            raise BuildError(f"cannot tag {latest}: {exc}") from exc
        return Built(manifest, tag, image_id, built=existing is None)

    def _build(self, manifest: Manifest, files: Sequence[ContextFile], dockerfile: str | None,
               tag: str, progress: Progress | None) -> str:
        # A generated Dockerfile carries the labels itself: one step instead of one each.
        labels = _labels(manifest) if dockerfile is None else None
        image_id = None
        try:
            for chunk in self._engine.build(context_tar(files, dockerfile), tag, labels):
                if "error" in chunk:
                    raise BuildError(f"building {tag} failed: {str(chunk['error']).strip()}")
                line = str(chunk.get("stream", "")).rstrip()
                if line and progress is not None:
                    progress(line)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
        except (Missing, Refused, RuntimeUnavailable) as exc:
            raise BuildError(f"building {tag} failed: {exc}") from exc
        return image_id or self.image_id(tag) or ""


def _load(folder: Path) -> Manifest:
    try:
        return load_manifest(folder)
    except ManifestError as exc:
        raise BuildError(str(exc)) from exc
