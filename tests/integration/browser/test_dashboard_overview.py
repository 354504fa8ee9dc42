"""The dashboard end to end in a real browser: deploy a code function from the Functions
page, register a webhook and subscribe the function from the Sources page, post events as
a sender would, and watch the overview's tables and charts move without a reload, and the
function's page list the invocations."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid

import httpx
from playwright.async_api import Page, expect

from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import Platform


async def keep_sending(url: str, stop: asyncio.Event) -> int:
    """Deliveries every ~0.3 s until told to stop, as a busy sender: rates are per
    interval, so the overview shows them while they come."""
    sent = 0
    async with httpx.AsyncClient(timeout=10) as sender:
        while not stop.is_set():
            answer = await sender.post(url, json={"order": sent})
            assert answer.status_code == 202, answer.text
            sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.3)
    return sent


async def test_deploy_subscribe_post_and_watch_it_live(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    unique = uuid.uuid4().hex[:6]
    function, source = f"greet-{unique}", f"orders-{unique}"
    await sign_in(page, dashboard, "/ui/functions")

    await page.fill("#name", function)  # code, python and a sample function by default
    await expect(page.locator("#code")).to_have_value(re.compile("def main"))
    await shot("deploy-form")
    await page.click("#deploy-form button[type=submit]")
    await expect(page).to_have_url(f"{dashboard.url}/ui/functions/{function}")
    await expect(page.locator("#function-spec")).to_contain_text("python code")
    await page.goto(dashboard.url + "/ui/functions")
    await expect(page.locator(f"#functions tr[data-function='{function}']")).to_contain_text("warm")
    await shot("functions")

    await page.goto(dashboard.url + "/ui/sources")
    await page.fill("#webhook-name", f"shop-{unique}")
    await page.fill("#webhook-source", source)
    await page.click("#webhook-form button[type=submit]")
    await expect(page.locator("#new-secret")).to_contain_text("Unsigned")
    hook_url = await page.locator("#webhooks-table tr", has_text=f"shop-{unique}").locator(
        "td.url").inner_text()
    assert re.fullmatch(rf"{re.escape(dashboard.url)}/hooks/\S+", hook_url)
    await page.select_option("#sub-function", function)
    await page.fill("#sub-source", source)
    await page.click("#subscription-form button[type=submit]")
    await expect(page.locator("#subscriptions-table")).to_contain_text(function)
    await shot("sources")

    await page.goto(dashboard.url + "/ui/")
    stop = asyncio.Event()
    sending = asyncio.create_task(keep_sending(hook_url, stop))
    try:
        row = page.locator(f"#overview-sources tr[data-source='{source}'] td.events")
        await expect(row).not_to_have_text("0.00", timeout=20_000)
        await expect(row).to_have_text(re.compile(r"\d+\.\d\d"))
        runs = page.locator(f"#overview-functions tr[data-function='{function}'] td.invocations")
        await expect(runs).not_to_have_text("0.00", timeout=30_000)
        await expect(page.locator("#chart-events .u-legend")).to_contain_text(source)
        await expect(page.locator("#chart-invocations .u-legend")).to_contain_text(function)
        # a few samples drawn by the live stream, for a chart worth a look
        await expect(page.locator("#chart-invocations")).to_have_attribute(
            "data-points", re.compile(r"^([4-9]|\d\d+)$"), timeout=20_000)
        await shot("overview")
    finally:
        stop.set()
        sent = await sending
    assert sent > 0

    await page.goto(f"{dashboard.url}/ui/functions/{function}")
    recent = page.locator("#recent table.invocations")
    await expect(recent).to_contain_text("succeeded", timeout=20_000)
    await expect(recent.locator("a").first).to_have_attribute(
        "href", re.compile(r"^/ui/invocations/"))
    await shot("function-invocations")
