"""Headless Chromium for tests that drive a page as a person would.

Uses Debian's ``chromium`` package, never a browser downloaded by Playwright.
Mark such tests ``@needs_chromium`` and take the ``browser`` fixture (in
conftest.py). Without Chromium or Playwright they are skipped with the reason,
except under CI (``CI`` set), where they run and fail instead.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("WEBHOOKS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _missing() -> str | None:
    if os.environ.get("CI"):
        return None  # under CI a missing browser is a failure, not a skip
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


needs_chromium = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


SCREENSHOTS_ENV = "WEBHOOKS_TEST_SCREENSHOTS"
"""A directory that also receives every screenshot of :func:`screenshot`, to
look at them after a run (they are otherwise in pytest's temporary directory)."""


def screenshot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot of ``page`` as ``folder/name.png`` (and in the
    directory of ``WEBHOOKS_TEST_SCREENSHOTS``, when it is set)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get(SCREENSHOTS_ENV)
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        (Path(extra) / path.name).write_bytes(path.read_bytes())
    return path
