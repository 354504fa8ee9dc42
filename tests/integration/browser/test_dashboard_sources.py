"""Rotating a webhook's secret from the Sources page: the new secret is shown once, and
with no grace period the old one no longer verifies a delivery. The page then shows the
deliveries the webhook accepted, not the one it refused."""

from __future__ import annotations

import time
import uuid

import httpx
from playwright.async_api import Dialog, Page, expect

from connectors.webhooks import verifier
from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import Platform

GITHUB = verifier("github")
BODY = b'{"ref": "refs/heads/main"}'


def deliver(url: str, secret: str, delivery: str | None = None) -> int:
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               **GITHUB.sign(BODY, secret, time.time(), delivery or uuid.uuid4().hex)}
    return httpx.post(url, content=BODY, headers=headers, timeout=10).status_code


async def test_rotating_shows_the_new_secret_once_and_the_old_one_stops_verifying(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    unique = uuid.uuid4().hex[:6]
    await sign_in(page, dashboard, "/ui/sources")
    await page.fill("#webhook-name", f"gh-{unique}")
    await page.fill("#webhook-source", f"pushes-{unique}")
    await page.select_option("#webhook-scheme", "github")
    await page.click("#webhook-form button[type=submit]")
    old = (await page.locator("#secret-value").inner_text()).strip()
    row = page.locator("#webhooks-table tr", has_text=f"gh-{unique}")
    url = (await row.locator("td.url").inner_text()).strip()
    assert deliver(url, old) == 202
    await shot("registered")

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await row.locator("form.rotate input[name=grace_s]").fill("0")
    await row.locator("form.rotate button").click()
    await expect(page.locator("#new-secret")).to_contain_text("shown this once")
    new = (await page.locator("#secret-value").inner_text()).strip()
    assert new
    assert new != old
    await shot("rotated")
    assert deliver(url, old) == 401
    assert deliver(url, new, f"last-{unique}") == 202

    await page.goto(dashboard.url + "/ui/sources")
    await expect(page.locator("#webhooks-table")).to_contain_text(f"…{new[-4:]}")
    assert await page.locator("#secret-value").count() == 0
    assert new not in await page.content()
    accepted = page.locator(f'tr[data-deliveries="{url.rsplit("/", 1)[1]}"] tr[data-event]')
    await expect(accepted).to_have_count(2)  # not the refused one
    await expect(accepted.first).to_contain_text(f"last-{unique}")
    await expect(accepted.first).to_contain_text("com.github.push")
    await shot("deliveries")
