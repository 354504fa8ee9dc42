from __future__ import annotations

import pytest

from pipeline.records import Status
from pipeline.runtime.base import RunRequest, capped
from pipeline.runtime.docker import _verdict, hardening
from pipeline.settings import RuntimeSettings

from .support import function_spec

REQUEST = RunRequest(function=function_spec("echo", timeout_s=2.5, memory_mb=64),
                     invocation_id="inv-1", payload=b"")


def verdict(exit_code: int | None = 0, *, timed_out: bool = False, oom: bool = False,
            output_cut: bool = False) -> tuple[Status, str | None]:
    return _verdict(exit_code, timed_out, oom, output_cut, REQUEST)


def test_clean_exit_succeeds() -> None:
    assert verdict(0) == (Status.SUCCEEDED, None)


def test_timeout_wins_over_everything_else() -> None:
    status, error = verdict(None, timed_out=True, oom=True, output_cut=True)

    assert status is Status.TIMEOUT
    assert error == "timed out after 2.5s and was killed"


def test_out_of_memory_names_the_limit() -> None:
    status, error = verdict(137, oom=True)

    assert status is Status.FAILED
    assert error is not None
    assert "out of memory" in error
    assert "64 MB" in error


@pytest.mark.parametrize("code", [1, 2, 137, 255])
def test_non_zero_exit_fails_with_the_code(code: int) -> None:
    assert verdict(code) == (Status.FAILED, f"exited with code {code}")


def test_cut_output_fails_even_on_a_clean_exit() -> None:
    status, error = verdict(0, output_cut=True)

    assert status is Status.FAILED
    assert error is not None
    assert "output exceeded" in error


@pytest.fixture
def options() -> dict[str, object]:
    return hardening(256, RuntimeSettings(pids_limit=64, cpus=0.5))


def test_container_has_no_network_and_a_read_only_root(options: dict[str, object]) -> None:
    assert options["network_mode"] == "none"
    assert options["read_only"] is True


def test_container_has_no_capabilities_or_privilege_gain(options: dict[str, object]) -> None:
    assert options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges"]


def test_container_memory_has_no_swap_on_top(options: dict[str, object]) -> None:
    assert options["mem_limit"] == "256m"
    assert options["memswap_limit"] == options["mem_limit"]


def test_container_pids_and_cpus_are_limited(options: dict[str, object]) -> None:
    assert options["pids_limit"] == 64
    assert options["nano_cpus"] == 500_000_000


def test_capped_cuts_only_over_the_limit() -> None:
    assert capped(b"abcdef", 4) == (b"abcd", True)
    assert capped(b"abcd", 4) == (b"abcd", False)
