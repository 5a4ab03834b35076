"""Check the built book at phone width in headless Chromium (``make check-site``).

Serves ``_build/html`` on a local port, opens a chapter page 420 px wide and checks:

1. the menu button (sphinx-book-theme's primary-sidebar toggle) opens the sidebar with
   the table of contents, and the sidebar lies inside the window;
2. exactly one search bar (a search field or a search button) is visible;
3. cell outputs, error messages included, wrap instead of scrolling sideways.

It also checks the desktop width (1280 px) for the same single search bar. Then every
chapter page (``book/*.html`` but the API page, which is checked for its width only) is
opened from ``file://`` with every ``http(s)://`` request blocked, as on a machine without a
network, at 420 and 1280 px:

4. every formula is rendered by MathJax (served with the site) and none is left as raw
   LaTeX;
5. the page is no wider than the window, and no code cell scrolls sideways (code wraps);
6. a table wider than the column scrolls inside its own box instead of widening the page;
7. at 420 px, no figure is shown below MIN_FIGURE_SCALE of its natural width (each page's
   smallest scale is printed), so that its labels and legends stay legible.

Screenshots go to ``--screenshots`` so that a person can look at them. Exits 1 on any
failed check.
Needs Chromium and chromedriver (Debian: ``apt-get install chromium chromium-driver``)
and Selenium (``requirements-site.txt``).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
import time
from pathlib import Path

PHONE = (420, 900)
DESKTOP = (1280, 900)
SEARCH_SELECTORS = "form.bd-search, .search-button-field, button.search-button, input[type=search]"


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver")
    service = Service(executable_path=driver_path) if driver_path else Service()
    driver = webdriver.Chrome(options=options, service=service)
    # The window's outer size is not the page's; emulate a screen of exactly `width` px.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    return driver


def _visible_search_bars(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    bars = []
    for element in driver.find_elements(By.CSS_SELECTOR, SEARCH_SELECTORS):
        if element.is_displayed() and element.size["width"] > 0 and element.size["height"] > 0:
            bars.append(element.get_attribute("class") or element.tag_name)
    return bars


def _sidebar_state(driver) -> dict:
    return driver.execute_script(
        """
        const bar = document.querySelector('#pst-primary-sidebar, .bd-sidebar-primary');
        if (!bar) return {found: false};
        const r = bar.getBoundingClientRect();
        const style = getComputedStyle(bar);
        const links = bar.querySelectorAll('nav a.reference').length;
        return {found: true, left: r.left, right: r.right, width: r.width,
                visible: style.visibility !== 'hidden' && style.display !== 'none'
                         && r.width > 0 && r.right > 0 && r.left < window.innerWidth,
                links: links, innerWidth: window.innerWidth};
        """
    )


def check(url: str, shots: Path) -> list[str]:
    from selenium.webdriver.common.by import By

    failures: list[str] = []
    driver = _browser(*PHONE)
    try:
        driver.get(url)
        time.sleep(1.0)
        width = driver.execute_script("return window.innerWidth")
        print(f"phone: window {width} px wide, {url}")
        if width != PHONE[0]:
            failures.append(f"phone: expected a window {PHONE[0]} px wide, got {width} px")
        driver.save_screenshot(str(shots / "phone-closed.png"))
        bars = _visible_search_bars(driver)
        print(f"phone: visible search bars: {len(bars)} {bars}")
        if len(bars) != 1:
            failures.append(f"phone: expected one visible search bar, got {len(bars)}: {bars}")
        before = _sidebar_state(driver)
        print(f"phone: sidebar before the click: {before}")
        if before.get("visible"):
            failures.append("phone: the sidebar is already open before the menu button")
        buttons = [
            b
            for b in driver.find_elements(By.CSS_SELECTOR, "button.primary-toggle, .primary-toggle")
            if b.is_displayed()
        ]
        if not buttons:
            failures.append("phone: no visible menu button (primary sidebar toggle)")
        else:
            buttons[0].click()
            time.sleep(1.0)
            driver.save_screenshot(str(shots / "phone-menu-open.png"))
            after = _sidebar_state(driver)
            print(f"phone: sidebar after the click: {after}")
            if not (after.get("visible") and after.get("links", 0) > 0):
                failures.append(f"phone: the menu button did not open the sidebar: {after}")
            elif after["left"] < -1 or after["right"] > after["innerWidth"] + 1:
                failures.append(f"phone: the open sidebar does not fit the window: {after}")
        driver.get(url)  # a fresh page for the outputs
        time.sleep(1.0)
        overflowing = driver.execute_script(
            """
            const pres = [...document.querySelectorAll('div.cell_output .output pre')];
            const error = document.querySelector('div.cell_output .output.traceback');
            if (error) error.scrollIntoView({block: 'center'});
            return pres.filter(p => p.scrollWidth > p.clientWidth + 1).length;
            """
        )
        errors = driver.find_elements(By.CSS_SELECTOR, "div.cell_output .output.traceback")
        if errors:
            time.sleep(0.5)
            errors[0].screenshot(str(shots / "phone-error-output.png"))
        print(f"phone: outputs wider than the window: {overflowing}")
        if overflowing:
            failures.append(f"phone: {overflowing} outputs do not wrap (horizontal scrolling)")
    finally:
        driver.quit()

    driver = _browser(*DESKTOP)
    try:
        driver.get(url)
        time.sleep(1.0)
        driver.save_screenshot(str(shots / "desktop.png"))
        bars = _visible_search_bars(driver)
        print(f"desktop: visible search bars: {len(bars)} {bars}")
        if len(bars) != 1:
            failures.append(f"desktop: expected one visible search bar, got {len(bars)}: {bars}")
    finally:
        driver.quit()
    return failures


#: At 420 px a figure may be shown no smaller than this share of its natural width: a
#: figure of 640 px (the book's stacked two-panel figures, 6.4 in at 100 dpi) fits at about
#: 60%, the default 7 in figure at about 55%; a side-by-side pair of 1,100 px fell to a third.
MIN_FIGURE_SCALE = 0.5

#: Every request to the network: blocked while the pages are checked (they come from file://).
OFFLINE = ["http://*", "https://*"]

_PAGE_STATE = r"""
const wide = (el) => el.scrollWidth > el.clientWidth + 1;
const maths = [...document.querySelectorAll('.math, span.math, div.math')];
const raw = maths.filter(m => !m.querySelector('mjx-container')
                             && /\\\(|\\\[|\\begin/.test(m.textContent));
const code = [...document.querySelectorAll('div.cell_input pre, div.highlight pre')]
  .filter(wide);
const scrolls = (el) => {
  for (let a = el.parentElement; a; a = a.parentElement) {
    const o = getComputedStyle(a).overflowX;
    if ((o === 'auto' || o === 'scroll') && a.clientWidth <= window.innerWidth) return true;
  }
  const o = getComputedStyle(el).overflowX;
  return (o === 'auto' || o === 'scroll') && el.clientWidth <= window.innerWidth;
};
const tables = [...document.querySelectorAll('article table, main table')]
  .filter(t => t.getBoundingClientRect().right > window.innerWidth + 1 && !scrolls(t));
const figures = [...document.querySelectorAll('article img, main img')]
  .filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
  .map(i => ({name: (i.getAttribute('src') || '').split('/').pop().slice(0, 40),
              natural: i.naturalWidth,
              scale: Math.min(1, i.getBoundingClientRect().width / i.naturalWidth)}))
  .sort((a, b) => a.scale - b.scale);
return {
  figures: figures.length,
  minScale: figures.length ? figures[0].scale : 1,
  smallest: figures.slice(0, 1),
  maths: maths.length,
  rendered: document.querySelectorAll('mjx-container').length,
  raw: raw.length,
  rawSample: raw.slice(0, 1).map(m => m.textContent.slice(0, 60)),
  pageWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  code: code.length,
  codeSample: code.slice(0, 1).map(p => p.textContent.split('\n')[0].slice(0, 60)),
  tables: tables.length,
};
"""


def _wait_for_images(driver, seconds: float = 10.0) -> None:
    """Until every image of the page has loaded (or failed to)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if driver.execute_script("return [...document.images].every(i => i.complete)"):
            return
        time.sleep(0.25)


def _wait_for_maths(driver, seconds: float = 10.0) -> None:
    """Until MathJax has typeset the page (or there is no MathJax on it)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done = driver.execute_script(
            "const m = window.MathJax;"
            "if (!document.querySelector('.math')) return true;"
            "if (!m || !m.startup || !m.startup.promise) return false;"
            "if (window.__mlhTypeset === undefined) {"
            "  window.__mlhTypeset = false; m.startup.promise.then(() => {"
            "  window.__mlhTypeset = true; }); }"
            "return window.__mlhTypeset;"
        )
        if done:
            return
        time.sleep(0.25)


def check_pages(html: Path, pages: list[str], shots: Path) -> list[str]:
    """Checks 4-6 on every page in ``pages`` at both widths, with the network blocked."""
    failures: list[str] = []
    for width, height in (PHONE, DESKTOP):
        driver = _browser(width, height)
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": OFFLINE})
            for page in pages:
                driver.get((html / page).resolve().as_uri())
                _wait_for_maths(driver)
                _wait_for_images(driver)
                state = driver.execute_script(_PAGE_STATE)
                name = f"{width} px, {page}"
                print(
                    f"{name}: {state['rendered']}/{state['maths']} formulas rendered, "
                    f"page {state['pageWidth']} px, code scrolling: {state['code']}, "
                    f"tables overflowing: {state['tables']}, {state['figures']} figures "
                    f"shown at >= {state['minScale']:.0%} of their width"
                )
                if width == PHONE[0] and state["minScale"] < MIN_FIGURE_SCALE:
                    failures.append(
                        f"{name}: a figure is shrunk to {state['minScale']:.0%} of its "
                        f"width, below {MIN_FIGURE_SCALE:.0%}: {state['smallest']}"
                    )
                if state["raw"] or (state["maths"] and not state["rendered"]):
                    failures.append(
                        f"{name}: {state['raw']} formulas left as raw LaTeX offline "
                        f"(e.g. {state['rawSample']})"
                    )
                # A phone's browser widens its layout to the widest element (window.innerWidth
                # follows the page), so the page is compared with the screen's own width.
                if max(state["pageWidth"], state["innerWidth"]) > width + 1:
                    failures.append(
                        f"{name}: the page is {state['pageWidth']} px wide on a {width} px screen"
                    )
                if state["code"] and not page.endswith("api.html"):
                    failures.append(
                        f"{name}: {state['code']} code cells scroll sideways "
                        f"(e.g. {state['codeSample']})"
                    )
                if state["tables"]:
                    failures.append(f"{name}: {state['tables']} tables widen the page")
            driver.save_screenshot(str(shots / f"offline-{width}.png"))
        finally:
            driver.quit()
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--page", default=None, help="page to open, relative to html")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/site-check"))
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        parser.error(f"html: expected a built book with index.html, got {args.html}")
    page = args.page or next(
        (str(p.relative_to(args.html)) for p in sorted(args.html.glob("book/[0-9]*.html"))),
        "index.html",
    )
    args.screenshots.mkdir(parents=True, exist_ok=True)
    server, base = _serve(args.html)
    try:
        try:
            failures = check(f"{base}/{page}", args.screenshots)
        except Exception as error:  # chromedriver sometimes fails to start on a loaded machine
            print(f"browser error ({type(error).__name__}); trying once more", flush=True)
            failures = check(f"{base}/{page}", args.screenshots)
    finally:
        server.shutdown()
    pages = [str(p.relative_to(args.html)) for p in sorted(args.html.glob("book/*.html"))]
    if args.page:
        pages = [args.page]
    failures += check_pages(args.html, pages, args.screenshots)
    print(f"screenshots in {args.screenshots}/")
    for failure in failures:
        print(f"FAILED {failure}")
    if not failures:
        print(
            "site check passed: the menu opens at 420 px, one search bar is visible, and "
            f"{len(pages)} pages render their maths offline and fit 420 and 1280 px"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
