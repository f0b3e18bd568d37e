"""``trialwatch serve`` as a reader meets it: the real command over a synced database, opened in
Debian's chromium (headless, driven by Playwright; no browser download), at a desktop width and
a phone width. Screenshots are kept under ``artifacts/web/`` (CI keeps that folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import SELINEXOR
from tests.e2e import REPO, spawn, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.records import complete

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TRIALWATCH_ARTIFACTS", REPO / "artifacts")) / "web"
SEAL = "NCT02606461"
BOSTON = "NCT03110562"
HOSTILE_TITLE = "<script>document.title='pwned'; alert(1)</script> Boston trial"
WIDTHS = (1280, 390)
HEIGHT = 800
PAGES = ("/", f"/trial/{SEAL}", "/trial/BOSTON", "/changes", "/timeline")

_RESOLVED: set[str] = set()  # links already checked (the database does not change here)

sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.communicate()}")
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer in 30 s")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A watch set synced twice against the stand-in (SEAL completes; BOSTON's title turns
    hostile in between), served by the real ``trialwatch serve``."""
    home = tmp_path_factory.mktemp("web")
    (home / "data").mkdir()
    db = home / "data" / "trialwatch.db"
    with FakeCtGov.load_dir(SELINEXOR) as api:
        env = user_env(api.base_url, db)
        assert trialwatch("sync", env=env, cwd=home).code == 0
        api.update_study(SEAL, complete)
        record = api.study(BOSTON)
        record["protocolSection"]["identificationModule"]["briefTitle"] = HOSTILE_TITLE
        api.put_study(record)
        second = trialwatch("sync", env=env, cwd=home)
        assert second.code == 0, second.err
    port = _free_port()
    proc = spawn("serve", "--port", str(port), env=env, cwd=home)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)
        yield {"base": base, "env": env, "home": home}
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def _open(browser: Any, url: str, width: int) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": HEIGHT})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    return context, page, dialogs


def _shot(page: Any, path: str, width: int) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = (path.strip("/").replace("/", "_") or "index") + f"-{width}.png"
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", PAGES)
def test_each_page_reads_at_desktop_and_phone_width(
    site: dict[str, Any], browser: Any, path: str, width: int
) -> None:
    base = site["base"]
    context, page, dialogs = _open(browser, base + path, width)
    try:
        _shot(page, path, width)
        # No sideways scrolling: nothing is wider than the window.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} at {width}px scrolls sideways by {overflow}px"

        # The first change is in the first screen, without scrolling.
        first = page.locator(".changes li, td[data-label='Last change'], .tl-trial").first
        box = first.bounding_box()
        assert box is not None and first.is_visible(), f"{path}: no change shown"
        assert box["y"] + min(box["height"], 20) <= HEIGHT, f"{path}: first change below the fold"
        assert "→" in first.inner_text() or path == "/timeline"

        # Keyboard focus shows: the first Tab lands on a link with a visible outline.
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; })()"
        )
        assert outline[0] == "A" and outline[1] != "none" and outline[2] != "0px", outline

        # Every link resolves: ours answer 200, the registry's are its study and history pages.
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        assert hrefs
        for href in set(hrefs) - _RESOLVED:
            if urlsplit(href).netloc == urlsplit(base).netloc:
                answer = httpx.get(href, timeout=10)
                assert answer.status_code == 200, f"{path}: {href} answers {answer.status_code}"
            else:
                assert href.startswith("https://clinicaltrials.gov/study/NCT"), href
            _RESOLVED.add(href)
        assert not dialogs
        assert page.evaluate("document.scripts.length") == 0
    finally:
        context.close()


def test_the_watch_set_shows_seal_near_the_top_on_a_phone(
    site: dict[str, Any], browser: Any
) -> None:
    context, page, _ = _open(browser, site["base"] + "/", 390)
    try:
        seal = page.get_by_role("link", name="SEAL", exact=True)
        box = seal.bounding_box()
        assert box is not None and box["y"] < 300, box
        seal.click()
        page.wait_for_url(f"**/trial/{SEAL}")
        text = page.locator("main").inner_text()
        assert "Active, not recruiting → Completed" in text
        assert "Completed" in page.locator(".status").first.inner_text()
    finally:
        context.close()


def test_a_hostile_title_shows_as_text_and_runs_nothing(site: dict[str, Any], browser: Any) -> None:
    for path in ("/", f"/trial/{BOSTON}", "/changes"):
        context, page, dialogs = _open(browser, site["base"] + path, 390)
        try:
            assert "<script>document.title='pwned'" in page.locator("main").inner_text()
            assert page.title() != "pwned"
            assert not dialogs
            assert page.evaluate("document.scripts.length") == 0
        finally:
            context.close()


def test_the_feed_parses_as_atom_with_entries(site: dict[str, Any]) -> None:
    answer = httpx.get(site["base"] + "/feed.atom", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(answer.content)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    entries = root.findall("a:entry", ns)
    assert entries
    titles = [e.findtext("a:title", namespaces=ns) or "" for e in entries]
    assert any("SEAL" in t and "Completed" in t for t in titles)
    self_link = root.find("a:link[@rel='self']", ns)
    assert self_link is not None and self_link.get("href") == site["base"] + "/feed.atom"
    again = httpx.get(site["base"] + "/feed.atom", timeout=10)
    ids = [e.findtext("a:id", namespaces=ns) for e in entries]
    assert ids == [
        e.findtext("a:id", namespaces=ns)
        for e in ET.fromstring(again.content).findall("a:entry", ns)  # noqa: S314
    ]
    # A feed reader's next poll costs nothing: the same validators answer 304.
    cached = httpx.get(
        site["base"] + "/feed.atom", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert cached.status_code == 304


def test_serving_beyond_loopback_without_a_token_is_refused(site: dict[str, Any]) -> None:
    run = trialwatch(
        "serve", "--host", "0.0.0.0", "--port", str(_free_port()), env=site["env"], cwd=site["home"]
    )
    assert run.code != 0
    assert "needs a token" in run.err
    assert "Traceback" not in run.err


def test_with_a_token_the_page_asks_for_it_and_a_one_time_link_signs_in(
    site: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "web.token"
    token_file.write_text("t" * 40 + "\n")
    feed_token_file = tmp_path / "feed.token"
    feed_token_file.write_text("f" * 40 + "\n")
    env = {
        **site["env"],
        "TRIALWATCH_WEB__TOKEN_FILE": str(token_file),
        "TRIALWATCH_WEB__FEED_TOKEN_FILE": str(feed_token_file),
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = spawn("serve", "--port", str(port), env=env, cwd=site["home"])
    try:
        _wait_up(base, proc)
        assert httpx.get(base + "/").status_code == 401
        assert httpx.get(base + "/", headers={"Authorization": "Bearer " + "t" * 40}).is_success
        assert httpx.get(base + "/?token=" + "t" * 40).status_code == 401  # never in a URL
        assert httpx.get(base + "/feed.atom?token=" + "f" * 40).status_code == 200
        assert httpx.get(base + "/?token=" + "f" * 40).status_code == 401  # feed only
        link = trialwatch("serve", "--port", str(port), "--login-link", env=env, cwd=site["home"])
        assert link.code == 0, link.err
        url = link.out.strip()
        assert "t" * 40 not in url
        context = browser.new_context(viewport={"width": 390, "height": HEIGHT})
        page = context.new_page()
        try:
            page.goto(url)
            assert page.url == base + "/"
            assert "SEAL" in page.locator("main").inner_text()
            _shot(page, "signed-in", 390)
            other = browser.new_context()
            try:
                reused = other.new_page().goto(url)
                assert reused is not None and reused.status == 401  # one time only
            finally:
                other.close()
        finally:
            context.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
