"""Replays in a real browser: a replay of a source that does not exist refused in the
form; a shadow replay started from the page, its progress bar reaching the end and the
differing outputs side by side."""

from __future__ import annotations

import asyncio
import re
import uuid

from playwright.async_api import Page, expect

from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import Platform
from tests.integration.replaying import produce, source_with_function, until_final

UPPER = "def main(args):\n    return args.upper()\n"
UPPER_V2 = "def main(args):\n    return args.lower() if '7' in args else args.upper()\n"
BODIES = [f"order {i}" for i in range(3, 9)]  # one with a 7: the new version differs


def originals(platform: Platform, source: str, current: str, candidate: str) -> None:
    """A source whose events ``current`` ran, and ``candidate``, its next version."""
    source_with_function(platform, source, current, code=UPPER, subscribe=True)
    produce(platform, source, BODIES)
    until_final(platform, "", len(BODIES), timeout_s=60)
    source_with_function(platform, f"{source}-other", candidate, code=UPPER_V2)


async def test_a_shadow_replay_from_the_page_shows_its_differences_side_by_side(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    source = f"shop-{uuid.uuid4().hex[:6]}"
    current, candidate = f"{source}-v1", f"{source}-v2"
    await asyncio.to_thread(originals, dashboard, source, current, candidate)

    await sign_in(page, dashboard, "/ui/replays")
    await page.fill("#source", "no-such-source")
    await page.click("#replay-start button[type=submit]")
    await expect(page.get_by_role("alert")).to_contain_text(
        "source 'no-such-source' has no webhook, connector or subscription")
    await expect(page.locator("#source")).to_have_value("no-such-source")  # kept

    await page.fill("#source", source)
    await page.fill("#from", "earliest")
    await page.fill("#to", "latest")
    await page.fill("#function", candidate)
    await page.fill("#compare_with", current)
    await page.click("#replay-start button[type=submit]")
    await expect(page).to_have_url(re.compile(f"{dashboard.url}/ui/replays/rp_[0-9a-f]+$"))
    progress = page.locator("#replay-progress")
    await expect(progress).to_have_attribute("data-settled", "true", timeout=60_000)
    await expect(page.locator("#replay-status")).to_have_text("done")
    await expect(page.locator("#replay-bar")).to_have_attribute("value", "100")
    await expect(page.locator("#comparison-counts")).to_have_text(
        "5 same · 1 different · 0 failed · 0 without an original")
    difference = page.locator(".difference")
    await expect(difference).to_have_count(1)
    await expect(difference.locator("pre.original")).to_have_text("ORDER 7")
    await expect(difference.locator("pre.replayed")).to_have_text("order 7")
    await shot("replay-comparison")

    await page.get_by_role("link", name="Replays").click()
    await expect(page.locator("#replays")).to_contain_text(candidate)
