"""The dashboard in a real browser: Playwright driving Debian's chromium (compose/setup.sh
installs both) against a real gateway and worker on the test broker.

Every test saves screenshots under ``tests/output/screenshots/`` (``shot``), and one of the
page when it fails; ``FAASFLOW_CHROMIUM`` names another browser binary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.conftest import KafkaContainer, started
from tests.integration.platform import REPO, TOKEN, Platform

SCREENSHOTS = REPO / "tests" / "output" / "screenshots"


def chromium() -> str:
    found = os.environ.get("FAASFLOW_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("no chromium here: compose/setup.sh installs Debian's (or set "
                    "FAASFLOW_CHROMIUM)")
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """The async API: the sync one keeps an event loop running in the test thread, which the
    other tests' ``asyncio.run`` then refuses. Closed after each module, so no later test
    shares the machine with it."""
    async with async_playwright() as driver:
        # --no-sandbox: the tests run as root, where chromium refuses its sandbox
        launched = await driver.chromium.launch(executable_path=chromium(),
                                                args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def dashboard(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Platform]:
    """A gateway and a worker shared by the browser tests (each uses names of its own):
    one start instead of one a module."""
    with started(kafka, tmp_path_factory.mktemp("dashboard")) as running:
        yield running


class Shots:
    """Screenshots of one test, numbered in the order taken."""

    def __init__(self, page: Page, test: str) -> None:
        self.page = page
        self.folder = SCREENSHOTS / test
        self.taken = 0
        shutil.rmtree(self.folder, ignore_errors=True)

    async def __call__(self, name: str, *, full_page: bool = True) -> Path:
        self.taken += 1
        path = self.folder / f"{self.taken:02d}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=path, full_page=full_page)
        return path


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    yield opened
    if getattr(request.node, "failed_call", False):
        path = SCREENSHOTS / request.node.name / "failed.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await opened.screenshot(path=path, full_page=True)
    await context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    if call.when == "call" and report.failed:  # for ``page``'s screenshot of a failure
        item.failed_call = True  # type: ignore[attr-defined]
    return report


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest) -> Shots:
    return Shots(page, request.node.name)


async def sign_in(page: Page, platform: Platform, target: str = "/ui/") -> None:
    """Through the form, as a person does."""
    await page.goto(platform.url + target)
    await page.fill("#token", TOKEN)
    await page.click("form[action='/ui/login'] button[type=submit]")
    await page.wait_for_url(f"{platform.url}{target}*")
