"""`daka demo` in a real browser (Playwright driving Debian's Chromium): a student enrols through
the invite link on the page and checks in with the buttons, a preset place and a photo; the
grade head reads /summary, gets the trend chart and the export file; the reminder button runs a
round. Set DAKA_DEMO_SCREENSHOT=docs/demo.png to save the page for the README.

Skips, saying why, where Playwright or /usr/bin/chromium is missing, except on CI."""

from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.demo.runner import Demo
from tests.bot.test_demo import PNG

pytestmark = pytest.mark.slow  # a real browser: run with -m slow (CI does)

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 20_000


def needs_a_browser() -> None:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have them")
        pytest.skip(reason)


@pytest.fixture
async def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Demo]:
    needs_a_browser()
    monkeypatch.setattr("bot.app.settle_heap", lambda: None)  # not the test runner's heap
    running = Demo(port=0, data=tmp_path / "demo", language="en")
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
    assert running.server.internal_errors == []


@pytest.fixture
async def page(demo: Demo) -> AsyncIterator[Page]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(
                viewport={"width": 1400, "height": 900}, accept_downloads=True
            )
            opened = await context.new_page()
            opened.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            opened.on("pageerror", lambda error: errors.append(str(error)))
            await opened.goto(demo.url)
            yield opened
            assert errors == [], errors
        finally:
            await browser.close()


def thermometer() -> bytes:
    """A photo of a thermometer's reading, as far as a test can make one (Pillow is a dev
    dependency; a 1x1 image without it)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return PNG
    image = Image.new("RGB", (360, 200), (236, 244, 250))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (40, 80, 320, 120), radius=20, fill=(255, 255, 255), outline=(90, 90, 90)
    )
    draw.rectangle((60, 92, 205, 108), fill=(214, 48, 49))
    draw.ellipse((30, 70, 80, 130), fill=(214, 48, 49))
    draw.text((150, 140), "36.6 °C", fill=(40, 40, 40), font_size=32)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def said(pane: Locator, text: str) -> Locator:
    """The bot's message in this pane that shows ``text`` (waits for it)."""
    from playwright.async_api import expect

    message = pane.locator(".msg.bot").filter(has_text=text).last
    await expect(message).to_be_visible()
    return message


async def test_a_student_and_the_grade_head_use_the_demo_in_a_browser(
    demo: Demo, page: Page, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    student = page.locator('.pane[data-pane="0"]')
    head = page.locator('.pane[data-pane="1"]')
    await expect(student.locator(".persona")).to_have_value("1001")
    await expect(head.locator(".persona")).to_have_value("2001")

    await student.get_by_role("button", name="Open my invite link").click()
    await said(student, "What we collect")
    await student.get_by_role("button", name="✅ I agree").click()
    await said(student, "member id")
    await student.get_by_role("button", name="2025001").click()
    await said(student, "name")
    await student.get_by_role("button", name="Alice Zhang").click()
    await said(student, "Welcome, Alice Zhang")

    await page.get_by_role("button", name="Run a reminder round now").click()
    await expect(page.locator("#toast")).to_contain_text("due 1, sent 1")
    await said(student, "you have not checked in today")
    await student.get_by_role("button", name="✅ Check in now").click()
    await said(student, "current location")
    await student.locator(".keyboard button").first.click()  # the request_location button
    await student.get_by_role("button", name="📍 School gate").click()
    await said(student, "body temperature")
    await student.locator(".text").fill("36.6")
    await student.locator(".text").press("Enter")
    await student.get_by_role("button", name="None of these").click()
    await student.get_by_role("button", name="Done ✔").click()
    await student.get_by_role("button", name="No", exact=True).click()
    await said(student, "photo")
    await student.locator(".file").set_input_files(
        {"name": "thermometer.png", "mimeType": "image/png", "buffer": thermometer()}
    )
    await expect(student.locator(".msg.user img")).to_be_visible()
    await student.get_by_role("button", name="✅ Confirm").click()
    await said(student, "Check-in recorded")

    await head.locator(".text").fill("/summary")
    await head.locator(".text").press("Enter")
    summary = await said(head, "expected")
    await expect(summary).to_contain_text("expected 3, reported 3")  # two by the warm-up
    await head.locator(".menu").click()  # a manager's menu, since their first message
    await head.locator(".commands button").filter(has_text="/trend").click()
    await expect(head.locator(".msg.bot img")).to_be_visible()
    await head.locator(".text").fill("/export")
    await head.locator(".text").press("Enter")
    export = head.locator(".msg.bot a.doc").last
    await expect(export).to_be_visible(timeout=60_000)  # the spreadsheet is made in a process
    async with page.expect_download() as download:
        await export.click()
    saved = tmp_path / (await download.value).suggested_filename
    await (await download.value).save_as(saved)
    assert saved.suffix == ".xlsx" and saved.read_bytes()[:2] == b"PK"

    await expect(page.locator("#toast")).to_be_hidden()
    target = os.environ.get("DAKA_DEMO_SCREENSHOT")
    await page.screenshot(path=target or str(tmp_path / "demo.png"))


def test_without_chromium_it_skips_saying_why_but_fails_on_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Chromium at .*no-chromium"):
        needs_a_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have them"):
        needs_a_browser()
