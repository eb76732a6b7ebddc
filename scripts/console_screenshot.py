"""The README's screenshot of the console's overview, taken from the living demo with the system Chromium.

    .venv/bin/python scripts/console_screenshot.py [OUTPUT]   # default docs/console-overview.png

Runs :func:`gateway.dev.demo.living_demo` (the ministries' trickle, TH down now and then, rejections, dead letters)
for ``--seconds``, opens a one-time login link in Chromium (Playwright, ``/usr/bin/chromium``, never a downloaded
browser) and saves the overview, the whole page."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gateway.commands import console_link  # noqa: E402
from gateway.dev.demo import living_demo  # noqa: E402
from helpers.console import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


async def screenshot(output: Path, seconds: float) -> None:
    from playwright.async_api import async_playwright

    async with living_demo(rate=(3.0, 5.0), flaky_seconds=6.0, flaky_every=20.0, seed=16) as demo:
        await asyncio.sleep(seconds)
        gw = demo.gateway
        _, link = await console_link(gw.config, "ops", gw.url, now=gw.clock.now)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-GB")
            await page.goto(link)
            await page.wait_for_selector("#flow-map svg")
            output.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(output), full_page=True)
            await browser.close()
    print(f"overview after {seconds:g} s of the demo: {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "docs" / "console-overview.png")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the demo runs first (default 40)")
    args = parser.parse_args()
    from gateway.config import LogSettings
    from gateway.logs import configure_logging

    configure_logging(LogSettings(level="ERROR", format="text"))
    asyncio.run(screenshot(args.output, args.seconds))


if __name__ == "__main__":
    main()
