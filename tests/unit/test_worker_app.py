from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings
from pipeline.topics import Topics
from pipeline.worker.app import faust_app


def test_a_fresh_state_directory_is_made_for_faust(tmp_path: Path) -> None:
    """A worker in a container starts with no state directory; Faust makes its own data
    directory without parents, and the worker stopped at start."""
    settings = Settings(state_dir=tmp_path / "fresh" / "state")

    faust_app(settings, Topics(settings.kafka))

    assert settings.state_dir.is_dir()
