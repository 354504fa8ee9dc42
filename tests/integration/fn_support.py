"""Images built with the Fn Project's real Python FDK (``fdk`` from PyPI), as ``fn build``
makes them (``tests/integration/fdk/Dockerfile``), FROM faasflow's base image.

Image builds here reach no package index: the FDK's wheels (and pip's own, to install them)
are downloaded on the host with this interpreter's pip, once, into a cache, and copied into
each build context. Likewise the Node FDK (``@fnproject/fdk`` from npm): ``npm install`` on
the host (the node of ``faasflow setup``), its node_modules copied into the context.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker

FDK_DIR = Path(__file__).parent / "fdk"
FDK_VERSION = "0.1.128"  # on PyPI, Fn's Python FDK
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "faasflow"
WHEELS = CACHE / "wheels" / f"fdk-{FDK_VERSION}"
FUNCTIONS = ("hello", "tricks")
NODE_FDK_VERSION = "0.0.76"  # on npm, Fn's Node FDK
NODE_MODULES = CACHE / "npm" / f"fnproject-fdk-{NODE_FDK_VERSION}"
NODE_BIN = CACHE / "node" / "bin"


def fdk_wheels() -> Path:
    """The FDK's wheels, its dependencies' and pip's, downloaded once."""
    if not (any(WHEELS.glob("fdk-*.whl")) and any(WHEELS.glob("pip-*.whl"))):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                        "--disable-pip-version-check", "--only-binary=:all:", "-d", str(WHEELS),
                        f"fdk=={FDK_VERSION}", "pip"], check=True, timeout=600)
    return WHEELS


def node_modules() -> Path:
    """The Node FDK's node_modules, installed once from its package.json."""
    if not (NODE_MODULES / "node_modules" / "@fnproject" / "fdk").is_dir():
        NODE_MODULES.mkdir(parents=True, exist_ok=True)
        shutil.copy(FDK_DIR / "node-hello" / "package.json", NODE_MODULES / "package.json")
        env = {**os.environ, "PATH": f"{NODE_BIN}:{os.environ.get('PATH', '')}"}
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev"],
                       cwd=NODE_MODULES, env=env, check=True, timeout=600)
    return NODE_MODULES / "node_modules"


def build_fdk_images(scratch: Path) -> dict[str, str]:
    """``faasflow-test/fn-<function>:latest`` for each function under ``fdk/``, the Node
    one as ``fn-node-hello``; their tags."""
    wheels = fdk_wheels()
    client = docker.from_env()
    tags = {}
    try:
        for function in FUNCTIONS:
            context = scratch / function
            shutil.copytree(wheels, context / "wheels")
            shutil.copy(FDK_DIR / "Dockerfile", context / "Dockerfile")
            shutil.copy(FDK_DIR / function / "func.py", context / "func.py")
            tag = f"faasflow-test/fn-{function}:latest"
            client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
            tags[function] = tag
        context = scratch / "node-hello"
        shutil.copytree(FDK_DIR / "node-hello", context)
        shutil.copytree(node_modules(), context / "node_modules")
        tag = "faasflow-test/fn-node-hello:latest"
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        tags["node-hello"] = tag
    finally:
        client.close()
    return tags
