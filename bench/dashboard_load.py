"""Benchmark (issue 8): time from page load to the first live value of the nurse's central view in Chromium, at 32
bays.

    make bench            (or: .venv/bin/python bench/dashboard_load.py [--bays 32] [--loads 10])

What is measured
----------------
A real `bedside run` process (bench/cluster.py `Clinic`) with a private Mosquitto and `--bays` bays of one MQTT
monitor each, published at 1 Hz by one separate process (six vitals a message). Debian's Chromium (/usr/bin/chromium,
headless, launched as tests/browser/conftest.py does, 1920x1080) loads the central view `/` `--loads` times, each in
a fresh browser context (empty cache; logged in by the session cookie of one earlier one-click login). Times are the
page's own (`performance.now()`, from the navigation's start), recorded by a script Playwright adds before the page's
scripts run:
- first live value: the first tile cell showing a current number (`[data-vital][data-state="current"]`), at the
  next animation frame (when it is painted); the page fills the tiles from `GET /api/bays` before it opens the
  websocket;
- all tiles: every tile shows at least one current number;
- websocket snapshot: the `/ws/live` snapshot arrived (the page is live); first update: the first `obs` message
  after it.

Baseline, in the same run and browser: the login page `/login` (the same app's static page with its module scripts,
no data) loaded in a fresh context, to its load event: what any page of this server costs on this machine.

The LAST line is the median time to the first live value / the median baseline load, as `<n>x`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import Browser, async_playwright

from bench.cluster import Clinic, Window, machine, pct, temporary_root
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT

WARMUP = 10.0

INSTRUMENT = """(() => {
  const b = (window.__bench = {});
  const nativeFetch = window.fetch;
  window.fetch = async (...args) => {
    const resp = await nativeFetch(...args);
    if (b.baysFetched === undefined && String(args[0]).endsWith("/api/bays")) b.baysFetched = performance.now();
    return resp;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      if (b.wsCreated === undefined) b.wsCreated = performance.now();
      this.addEventListener("message", (ev) => {
        const t = performance.now();
        if (typeof ev.data !== "string") return;
        if (b.snapshot === undefined && ev.data.startsWith('{"type":"snapshot"')) b.snapshot = t;
        else if (b.snapshot !== undefined && b.firstUpdate === undefined &&
                 (ev.data.startsWith('{"type":"obs"') || ev.data.startsWith('{"type":"batch"')))
          b.firstUpdate = t;
      });
    }
  };
  const check = () => {
    if (b.firstValueDom === undefined && document.querySelector('[data-bay] [data-vital][data-state="current"]')) {
      b.firstValueDom = performance.now();
      requestAnimationFrame(() => { b.firstValue = performance.now(); });
    }
    if (b.allTiles === undefined) {
      const tiles = document.querySelectorAll("[data-bay]");
      if (tiles.length && [...tiles].every((t) => t.querySelector('[data-vital][data-state="current"]'))) {
        b.allTiles = performance.now();
        requestAnimationFrame(() => { b.allTilesPainted = performance.now(); });
      }
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true,
                                                  characterData: true });
})();"""

async def load_central(browser: Browser, base: str, storage: Any) -> dict[str, float]:
    context = await browser.new_context(viewport=VIEWPORT, storage_state=storage)
    try:
        page = await context.new_page()
        await page.add_init_script(INSTRUMENT)
        await page.goto(f"{base}/")
        await page.wait_for_function(
            "() => window.__bench && window.__bench.firstValue !== undefined && window.__bench.allTilesPainted "
            "!== undefined && window.__bench.firstUpdate !== undefined", timeout=30_000)
        times: dict[str, float] = await page.evaluate(
            """() => {
                const nav = performance.getEntriesByType("navigation")[0];
                const bays = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/api/bays"));
                return {...window.__bench, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
                        bays: bays ? bays.responseEnd : NaN};
            }""")
        return times
    finally:
        await context.close()


async def load_login(browser: Browser, base: str) -> float:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        await page.goto(f"{base}/login", wait_until="load")
        load: float = await page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        return load
    finally:
        await context.close()


async def measure(bays: int, loads: int) -> tuple[list[dict[str, float]], list[float], int, Window]:
    with temporary_root("bedside-bench-dashboard-") as root:
        async with Clinic(root, bays) as clinic:
            await clinic.until_live(60)
            await asyncio.sleep(WARMUP)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    context = await browser.new_context(viewport=VIEWPORT)
                    page = await context.new_page()
                    await page.goto(f"{clinic.base}/login#token={clinic.token}")
                    await page.wait_for_url(f"{clinic.base}/")
                    await page.wait_for_selector('body[data-connection="live"]')
                    tiles = await page.locator("[data-bay]").count()
                    storage = await context.storage_state()
                    await context.close()
                    central: list[dict[str, float]] = []
                    login: list[float] = []
                    window = Window()
                    for _ in range(loads):
                        login.append(await load_login(browser, clinic.base))
                        central.append(await load_central(browser, clinic.base, storage))
                    window.close()
                finally:
                    await browser.close()
    return central, login, tiles, window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bays", type=int, default=32)
    parser.add_argument("--loads", type=int, default=10, help="page loads (each in a fresh context)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is not installed (apt-get install chromium)")

    print(f"dashboard: central view `/` at {args.bays} bays (1 Hz numerics) in headless Chromium, {args.loads} loads "
          "in fresh contexts; ms from the navigation's start")
    print(machine())
    central, login, tiles, window = asyncio.run(measure(args.bays, args.loads))
    print(f"tiles on the page: {tiles}; while loading, the benchmark (bedside, broker, publisher, Chromium) used "
          f"{window.ours():.2f} cores, other processes on the machine {window.others():.2f}")
    print()
    print(f"{'ms from navigation start':<52} {'median':>8} {'p95':>8} {'max':>8}")

    def line(name: str, values: list[float]) -> None:
        print(f"{name:<52} {statistics.median(values):>8.0f} {pct(values, 95):>8.0f} {max(values):>8.0f}")

    line("DOMContentLoaded", [c["dcl"] for c in central])
    line("GET /api/bays answered (resource timing)", [c["bays"] for c in central])
    line("GET /api/bays answered (to the page's script)", [c["baysFetched"] for c in central])
    line("first live value in the page (DOM)", [c["firstValueDom"] for c in central])
    line("first live value painted (next frame)", [c["firstValue"] for c in central])
    line(f"all {tiles} tiles show a value (painted)", [c["allTilesPainted"] for c in central])
    line("websocket snapshot (page live)", [c["snapshot"] for c in central])
    line("first websocket update after it", [c["firstUpdate"] for c in central])
    line("baseline: /login to its load event", login)
    first = statistics.median(c["firstValue"] for c in central)
    print(f"{first / statistics.median(login):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
