"""The invocations pages in a real browser: a Result landing on the live tail, and one
invocation whole (input, output, logs, timings); an unknown id and a bad search."""

from __future__ import annotations

import asyncio
import uuid

from playwright.async_api import Page, expect

from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import Platform

GREET = ("def main(args):\n"
         "    print('greeting', args['name'])\n"
         "    return {'greeting': 'hello ' + args['name']}\n")


async def test_a_result_lands_on_the_live_tail_and_opens_whole(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    name = f"greet-{uuid.uuid4().hex[:6]}"
    dashboard.deploy(name, None, runtime="python", code=GREET, mode="warm", min_warm=1)
    hook = dashboard.webhook(f"{name}-hook", name)
    dashboard.subscribe(name, name)
    await sign_in(page, dashboard, f"/ui/invocations?function={name}")
    rows = page.locator("#invocation-rows")
    await expect(rows).to_have_attribute("data-live", "open")

    await asyncio.to_thread(dashboard.deliver, hook, b'{"name": "Ada <b>"}',
                            "application/json")
    row = rows.locator("tr", has_text=name)
    await expect(row.locator(".status")).to_have_text("succeeded", timeout=45_000)
    await expect(rows.locator("tr")).to_have_count(1)  # its pending, running... replaced
    await shot("tail")

    await row.locator("td.mono a").click()
    await expect(page.locator("#invocation-status")).to_have_text("succeeded")
    await expect(page.locator("#input pre")).to_contain_text('"name": "Ada <b>"')
    await expect(page.locator("#output pre")).to_contain_text('"greeting": "hello Ada <b>"')
    await expect(page.locator("#logs pre")).to_contain_text("greeting Ada <b>")
    await expect(page.locator("#timings")).to_contain_text("Duration")
    await expect(page.locator("#timings")).to_contain_text(" s")
    assert await page.locator("#output b").count() == 0  # escaped, not markup
    await shot("invocation")


async def test_an_unknown_invocation_and_a_bad_search_are_told_in_the_layout(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    await sign_in(page, dashboard, "/ui/invocations/no-such-invocation")
    await expect(page.get_by_role("alert")).to_contain_text("does not exist")
    await expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()
    await page.goto(dashboard.url + "/ui/invocations")
    await page.fill("#since", "yesterday-ish")
    await page.click("#invocation-search button[type=submit]")
    await expect(page.get_by_role("alert")).to_contain_text("not an RFC 3339 time")
    await shot("bad-search")
    await page.fill("#since", "2026-01-01T00:00:00Z")
    await page.select_option("#status", "failed")
    await page.click("#invocation-search button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_count(0)
    await expect(page).to_have_url(  # a search is a link
        f"{dashboard.url}/ui/invocations?status=failed&since=2026-01-01T00%3A00%3A00Z")
