"""The function manifest (faasflow.toml) and the build context: what goes in, what decides
the image tag."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import functions_dev
from pipeline.cli.function_image import (
    context_digest,
    context_files,
    context_tar,
    generated_dockerfile,
    image_tag,
    parent_images,
)
from pipeline.cli.functions_dev import deploy_request
from pipeline.cli.main import app
from pipeline.cli.manifest import Manifest, ManifestError, load_manifest, parse_manifest

FULL = """
name = "resize"
lang = "python"
mode = "warm"
main = "run"
timeout_s = 12.5
memory_mb = 256
min_warm = 1
max_concurrency = 8
idle_timeout_s = 60
[env]
GREETING = "Hi"
"""


# ---- manifest -------------------------------------------------------------------------------


def test_every_key_is_read() -> None:
    manifest = parse_manifest(FULL)

    assert manifest == Manifest(name="resize", lang="python", mode="warm", main="run",
                                timeout_s=12.5, memory_mb=256, min_warm=1, max_concurrency=8,
                                idle_timeout_s=60.0, env={"GREETING": "Hi"})
    assert manifest.handler_file == "handler.py"


def test_only_name_and_lang_are_required() -> None:
    manifest = parse_manifest('name = "tiny"\nlang = "node"\n')

    assert manifest.main == "handle"
    assert manifest.mode is None
    assert manifest.env == {}
    assert manifest.handler_file == "handler.js"


def test_deploy_body_sends_only_what_the_manifest_sets() -> None:
    tiny = parse_manifest('name = "tiny"\nlang = "dockerfile"\ntimeout_s = 3\n')

    assert tiny.deploy_body("faasflow-fn/tiny:abc") == {
        "image": "faasflow-fn/tiny:abc", "env": {}, "timeout_s": 3.0}
    assert parse_manifest(FULL).deploy_body("img") == {
        "image": "img", "env": {"GREETING": "Hi"}, "mode": "warm", "timeout_s": 12.5,
        "memory_mb": 256, "min_warm": 1, "max_concurrency": 8, "idle_timeout_s": 60.0}


@pytest.mark.parametrize(("text", "message"), [
    ('lang = "python"', "name is required"),
    ('name = "x"', "lang is required"),
    ('name = "Upper"\nlang = "python"', "name 'Upper'"),
    ('name = "trailing-"\nlang = "python"', "name 'trailing-'"),
    ('name = "x"\nlang = "ruby"', "lang must be python or node or dockerfile"),
    ('name = "x"\nlang = "python"\nmode = "hot"', "mode must be cold or warm"),
    ('name = "x"\nlang = "python"\nmain = "not a name"', "main 'not a name'"),
    ('name = "x"\nlang = "python"\ntimeout_s = 0', "timeout_s must be a number above 0"),
    ('name = "x"\nlang = "python"\ntimeout_s = true', "timeout_s must be a number"),
    ('name = "x"\nlang = "python"\nmemory_mb = 1.5', "memory_mb must be an integer"),
    ('name = "x"\nlang = "python"\nmin_warm = -1', "min_warm must be an integer of at least 0"),
    ('name = "x"\nlang = "python"\nmax_concurrency = 0', "max_concurrency must be an integer"),
    ('name = "x"\nlang = "python"\n[env]\nPORT = 8080', "env.PORT must be a string"),
    ('name = "x"\nlang = "python"\nenv = "A=b"', "env must be a table"),
    ('name = "x"\nlang = "python"\ntimeout = 3', "unknown keys timeout"),
    ('name = "x"\nlang = ', "not valid TOML"),
])
def test_a_bad_manifest_names_its_problem(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "fn/faasflow.toml")

    assert message in str(caught.value)
    assert str(caught.value).startswith("fn/faasflow.toml: ")


# ---- build context and its digest -----------------------------------------------------------


def make_folder(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


FILES = {"faasflow.toml": 'name = "f"\nlang = "python"\n', "handler.py": "def handle(e, c): ...",
         "lib/util.py": "X = 1"}


def digest_of(folder: Path, dockerfile: str | None = None, parents: tuple[str, ...] = ()) -> str:
    return context_digest(context_files(folder), dockerfile, parents)


def test_context_is_the_visible_files_sorted(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, {**FILES, ".env": "SECRET=1", ".git/HEAD": "ref",
                                    "__pycache__/handler.cpython-311.pyc": "x",
                                    "lib/__pycache__/util.pyc": "x", "stale.pyc": "x"})

    assert [f.path for f in context_files(folder)] == ["faasflow.toml", "handler.py",
                                                      "lib/util.py"]


def test_digest_is_the_same_for_the_same_content(tmp_path: Path) -> None:
    first = make_folder(tmp_path / "a", FILES)
    second = make_folder(tmp_path / "b", dict(reversed(FILES.items())))  # other creation order
    os.utime(second / "handler.py", (1, 1))  # times do not count

    assert digest_of(first) == digest_of(second)


@pytest.mark.parametrize("change", ["content", "rename", "new file", "executable"])
def test_digest_follows_every_change_that_matters(tmp_path: Path, change: str) -> None:
    folder = make_folder(tmp_path, FILES)
    before = digest_of(folder)
    if change == "content":
        (folder / "lib/util.py").write_text("X = 2")
    elif change == "rename":
        (folder / "lib/util.py").rename(folder / "lib/utils.py")
    elif change == "new file":
        (folder / "data.json").write_text("{}")
    else:
        (folder / "handler.py").chmod(0o755)

    assert digest_of(folder) != before


def test_digest_ignores_ignored_files(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, FILES)
    before = digest_of(folder)
    make_folder(folder, {".venv/bin/python": "x", "__pycache__/h.pyc": "x"})

    assert digest_of(folder) == before


def test_digest_follows_the_dockerfile_and_the_parent_image(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, FILES)
    plain = digest_of(folder)
    with_dockerfile = digest_of(folder, dockerfile="FROM a\n")

    assert len({plain, with_dockerfile, digest_of(folder, dockerfile="FROM b\n"),
                digest_of(folder, dockerfile="FROM a\n", parents=("sha256:1",)),
                digest_of(folder, dockerfile="FROM a\n", parents=("sha256:2",))}) == 5


def test_tag_is_the_name_and_twelve_hex_of_the_digest() -> None:
    assert image_tag("resize", "0123456789abcdef" * 4) == "faasflow-fn/resize:0123456789ab"


# ---- Dockerfiles ----------------------------------------------------------------------------


def test_python_and_node_functions_get_a_runtime_dockerfile() -> None:
    python = generated_dockerfile(parse_manifest(FULL))
    node = generated_dockerfile(parse_manifest('name = "n"\nlang = "node"\n'))

    assert python is not None
    assert python.startswith("FROM faasflow/runtime-python:latest\nCOPY app/ /home/app/\n")
    assert ("ENV FAASFLOW_HANDLER=/home/app/handler.py FAASFLOW_MAIN=run FAASFLOW_MODE=warm "
            "FAASFLOW_FUNCTION=resize\n") in python
    assert node is not None
    assert "FROM faasflow/runtime-node:latest\n" in node
    assert "FAASFLOW_HANDLER=/home/app/handler.js FAASFLOW_MAIN=handle FAASFLOW_MODE=cold" in node
    assert generated_dockerfile(parse_manifest('name = "d"\nlang = "dockerfile"\n')) is None


def test_parents_of_a_dockerfile_skip_its_own_stages(tmp_path: Path) -> None:
    manifest = parse_manifest('name = "d"\nlang = "dockerfile"\n')
    folder = make_folder(tmp_path, {"Dockerfile": (
        "FROM --platform=linux/amd64 faasflow/base:latest AS build\nRUN true\n"
        "from build as test\nFROM scratch\nFROM faasflow/echo:latest\nCOPY --from=build / /\n")})

    assert parent_images(manifest, folder, None) == ["faasflow/base:latest",
                                                     "faasflow/echo:latest"]
    assert parent_images(parse_manifest(FULL), folder, "FROM x") == [
        "faasflow/runtime-python:latest"]


def test_context_tar_puts_the_folder_under_app_beside_the_dockerfile(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, FILES)
    (folder / "handler.py").chmod(0o755)
    files = context_files(folder)

    with tarfile.open(fileobj=io.BytesIO(context_tar(files, "FROM x\n"))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["Dockerfile", "app", "app/faasflow.toml", "app/handler.py",
                                   "app/lib", "app/lib/util.py"]
        assert members["app/handler.py"].mode == 0o755
        assert members["app/lib/util.py"].mode == 0o644
        assert {m.mtime for m in members.values()} == {0}
    with tarfile.open(fileobj=io.BytesIO(context_tar(files, None))) as tar:
        assert sorted(tar.getnames()) == ["faasflow.toml", "handler.py", "lib", "lib/util.py"]


# ---- the CLI's part -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["python", "node", "dockerfile"])
def test_fn_new_copies_the_template_with_the_name_filled_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str,
) -> None:
    monkeypatch.chdir(tmp_path)

    done = CliRunner().invoke(app, ["fn", "new", "my-fn", "--lang", lang])

    assert done.exit_code == 0, done.output
    manifest = load_manifest(tmp_path / "my-fn")
    assert (manifest.name, manifest.lang) == ("my-fn", lang)
    expected = {"python": "handler.py", "node": "handler.js", "dockerfile": "Dockerfile"}[lang]
    assert (tmp_path / "my-fn" / expected).is_file()


@pytest.mark.parametrize("name", ["Upper", "has space", "trailing-"])
def test_fn_new_refuses_a_bad_name_or_an_existing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()

    assert CliRunner().invoke(app, ["fn", "new", name]).exit_code == 1
    assert CliRunner().invoke(app, ["fn", "new", "taken"]).exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_command_line_options_override_the_manifest() -> None:
    body = deploy_request(parse_manifest(FULL), "img", {
        "env": {"EXTRA": "1"}, "public": False, "timeout_s": 5.0, "memory_mb": None})

    assert body == {"image": "img", "env": {"GREETING": "Hi", "EXTRA": "1"}, "mode": "warm",
                    "timeout_s": 5.0, "memory_mb": 256, "min_warm": 1, "max_concurrency": 8,
                    "idle_timeout_s": 60.0, "public": False}


class FakeGateway:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, Any]] = []

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        self.asked.append((method, path, kwargs.get("params")))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_fn_logs_prints_each_invocation_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = FakeGateway([
        {"invocation_id": "inv-2", "status": "failed", "error": "ValueError: x",
         "logs": "second\n", "timings": {"started_at": "2025-01-01T00:00:02Z",
                                          "duration_s": 0.25}},
        {"invocation_id": "inv-1", "status": "succeeded", "logs": "first\n", "cold_start": True,
         "timings": {"started_at": "2025-01-01T00:00:01Z"}},
    ])
    monkeypatch.setattr(functions_dev, "client", lambda: gateway)

    done = CliRunner().invoke(app, ["fn", "logs", "resize", "--limit", "2"])

    assert done.exit_code == 0, done.output
    assert gateway.asked == [("GET", "/v1/functions/resize/invocations", {"limit": 2})]
    lines = done.output.splitlines()
    assert lines[0].startswith("── inv-1 succeeded 2025-01-01T00:00:01Z")
    assert lines[1:3] == ["first", "── inv-2 failed 2025-01-01T00:00:02Z 0.250s"]
    assert lines[3:] == ["error: ValueError: x", "second"]
