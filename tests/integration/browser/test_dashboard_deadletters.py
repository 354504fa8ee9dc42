"""Dead letters in a real browser: a failing function's letter listed with its error, a
redrive with nothing ticked refused, the function fixed, the letter redriven and its
invocation succeeding."""

from __future__ import annotations

import asyncio
import uuid

from playwright.async_api import Page, expect

from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import Platform

BROKEN = "def main(args):\n    raise ValueError('no thanks: ' + args)\n"
FIXED = "def main(args):\n    return 'thanks: ' + args\n"


async def test_a_dead_letter_is_redriven_once_its_function_is_fixed(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    name = f"picky-{uuid.uuid4().hex[:6]}"
    dashboard.deploy(name, None, runtime="python", code=BROKEN, mode="warm")
    hook = dashboard.webhook(f"{name}-hook", name)
    dashboard.subscribe(name, name)
    event_id = await asyncio.to_thread(dashboard.deliver, hook, b"order 1")
    (failed,) = await asyncio.to_thread(dashboard.results, event_id)
    assert failed["status"] == "failed"  # no retries of the function's own errors: dead

    await sign_in(page, dashboard, f"/ui/dead-letters?function={name}")
    letter = page.locator(f"tr[data-key='{failed['invocation_id']}']")
    await expect(letter).to_contain_text("no thanks: order 1")
    await expect(letter).to_contain_text("exhausted")
    await page.get_by_role("button", name="Redrive selected").click()
    await expect(page.get_by_role("alert")).to_contain_text("Nothing was redriven")
    await shot("nothing-selected")

    await asyncio.to_thread(dashboard.deploy, name, None, runtime="python", code=FIXED,
                            mode="warm")  # and redriven at once: the fix is what runs
    await letter.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Redrive selected").click()
    outcome = page.locator("#redrive-outcome")
    await expect(outcome).to_contain_text("Redriven: 1")
    await expect(outcome).to_contain_text("Skipped (not redrivable): 0")
    await expect(letter).to_contain_text("redriven")
    await expect(letter.get_by_role("checkbox")).to_be_disabled()
    await shot("redriven")

    await outcome.get_by_role("link", name=failed["invocation_id"]).click()
    await expect(page).to_have_url(f"{dashboard.url}/ui/invocations/{failed['invocation_id']}")
    await page.goto(f"{dashboard.url}/ui/invocations?function={name}")
    row = page.locator(f"#inv-{failed['invocation_id']}")
    await expect(row.locator(".status")).to_have_text("succeeded", timeout=30_000)
    await row.locator("td.mono a").click()
    await expect(page.locator("#invocation-status")).to_have_text("succeeded")
    await expect(page.locator("#output pre")).to_have_text("thanks: order 1")
    await shot("succeeded")
