"""The page in a real browser (Debian's chromium and chromium-driver, driven by Selenium), over a real sandbox:
upload an export, preview (no PUT), send and watch it, download the results, verify, undo; and an xlsx.

The browser is driven by what a person reads: labels, button texts, link texts, headings. Set
UPDATE_SCREENSHOTS=1 to write the screenshots of docs/ui.md (docs/img/); otherwise they go to the test's folder.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web

from batcher.flows.options import RUN_DEFAULTS
from batcher.sandbox import app as sandbox
from batcher.web.app import make_app
from batcher.web.security import GATE
from batcher.web.setup import PageSetup
from tests.conftest import ROOT, SAMPLES, RunningSandbox, StartSandbox

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"  # read before the fixtures clean the environment
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="the browser tests need Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev dependency: make install")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

TOKEN = "browser-test-access-token"
WAIT_S = 30  # a ceiling for a loaded machine, not a timing assertion
EXPORT_CSV = SAMPLES / "event_export.csv"


@contextmanager
def serve_page(setup: PageSetup) -> Iterator[tuple[str, web.Application]]:
    """The page on a free 127.0.0.1 port, served from a thread; yields (printed address, app)."""
    loop = asyncio.new_event_loop()
    app = make_app(setup)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = next(address[1] for address in runner.addresses if isinstance(address, tuple))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/?token={app[GATE].token}", app
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_S)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1100,1500",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Person:
    """What a person does on the page: fill a labelled field, press a button by its words, follow a link."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    def wait(self, find: Callable[[], WebElement | None], what: str) -> WebElement:
        def found(_: WebDriver) -> WebElement | bool:
            try:
                return find() or False
            except Exception:
                return False

        return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.05).until(found, f"waited for {what}")

    def field(self, label: str) -> WebElement:
        def find() -> WebElement:
            element = self.driver.find_element(By.XPATH, f"//label[normalize-space()={_quoted(label)}]")
            return self.driver.find_element(By.ID, element.get_attribute("for") or "")

        return self.wait(find, f"the field labelled {label!r}")

    def button(self, starts: str) -> WebElement:
        return self.wait(
            lambda: self.driver.find_element(By.XPATH, f"//button[starts-with(normalize-space(), {_quoted(starts)})]"),
            f"a button {starts!r}",
        )

    def press(self, starts: str) -> None:
        self.button(starts).click()

    def link(self, text: str) -> WebElement:
        return self.wait(
            lambda: self.driver.find_element(By.XPATH, f"//a[normalize-space()={_quoted(text)}]"), f"link {text!r}"
        )

    def sees(self, text: str) -> None:
        self.wait(lambda: self.driver.find_element(By.XPATH, f"//*[contains(., {_quoted(text)})]"), repr(text))


def _quoted(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"


@pytest.fixture
def walk(
    browser: WebDriver, start_sandbox: StartSandbox, tmp_path: Path
) -> Iterator[tuple[Person, RunningSandbox, Path]]:
    """The page, signed in through its printed address, over a sandbox that answers a little slowly."""
    registrations = list(sandbox.read_registrations(sandbox.DEFAULT_REGISTRATIONS))
    # each answer takes 1 s, so the send lasts long enough to be watched even on a loaded machine (at 0.2 s the
    # page once went from the preview to Done before the test saw its progress bar)
    running = start_sandbox(sandbox.Scenario(token=TOKEN, rate_limit_per_s=None, latency_s=(1.0, 1.0)), registrations)
    values = {**RUN_DEFAULTS, "base_url": running.url, "allow_insecure": True, "rate": 4.0}
    values["state_dir"] = str(tmp_path / "state")
    setup = PageSetup(values, {"CTCT_ACCESS_TOKEN": TOKEN}, tmp_path / "state" / "ui", "the test sandbox")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    with serve_page(setup) as (address, _):
        browser.get(address)
        yield Person(browser), running, downloads
        browser.get("about:blank")  # the page's event stream closes before the server does


def puts(running: RunningSandbox) -> int:
    return sum(1 for request in running.state.requests if request.method == "PUT")


def screenshot(driver: WebDriver, name: str, tmp_path: Path) -> None:
    folder = ROOT / "docs" / "img" if UPDATE_SCREENSHOTS else tmp_path
    driver.save_screenshot(str(folder / name))


def downloaded(folder: Path, name: str) -> Path:
    path = folder / name
    for _ in range(WAIT_S * 20):
        if path.exists() and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.05)
    raise AssertionError(f"no download {name} (found {sorted(p.name for p in folder.iterdir())})")


def test_upload_preview_send_download_verify_undo(walk: tuple[Person, RunningSandbox, Path], tmp_path: Path) -> None:
    person, running, downloads = walk
    person.field("A CSV or Excel (.xlsx) file of registrations").send_keys(str(EXPORT_CSV))
    person.press("Use this file")
    Select(person.field("Set each registration's status to")).select_by_visible_text("CANCELED")
    person.press("Preview")
    send = person.button("Send ")
    assert send.text == "Send 2 requests"
    person.sees("REGISTERED → CANCELED 38 · already CANCELED 5 (not sent) · PENDING → CANCELED 1")
    assert puts(running) == 0  # the preview read, and changed nothing
    screenshot(person.driver, "ui-preview.png", tmp_path)

    send.click()
    person.wait(lambda: person.driver.find_element(By.TAG_NAME, "progress"), "the progress bar")
    person.sees("5. Done")
    assert puts(running) == 2
    screenshot(person.driver, "ui-done.png", tmp_path)

    person.link("Download results").click()
    rows = list(csv.DictReader(io.StringIO(downloaded(downloads, "event_export.results.csv").read_text("utf-8"))))
    outcomes = [row["outcome"] for row in rows]
    assert outcomes.count("succeeded") == 39 and outcomes.count("unchanged") == 5

    person.press("Verify")
    person.sees("44 yes, 0 no, 0 missing")

    person.press("Undo")
    undo = person.button("Undo: send")
    person.sees("CANCELED → REGISTERED 38 · CANCELED → PENDING 1")
    assert puts(running) == 2
    undo.click()
    person.sees("Undone")
    statuses = [status for track in running.state.registrations.values() for status in track.values()]
    assert puts(running) == 5 and statuses.count("CANCELED") < 10


def test_an_xlsx_file_goes_the_same_way(walk: tuple[Person, RunningSandbox, Path], tmp_path: Path) -> None:
    from openpyxl import Workbook  # noqa: PLC0415

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    with EXPORT_CSV.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            sheet.append(row)
    workbook = tmp_path / "Spring workshop.xlsx"
    book.save(workbook)
    person, running, downloads = walk
    person.field("A CSV or Excel (.xlsx) file of registrations").send_keys(str(workbook))
    person.press("Use this file")
    person.press("Preview")
    send = person.button("Send 2 requests")
    assert puts(running) == 0
    send.click()
    person.sees("5. Done")
    person.link("Download results").click()
    text = downloaded(downloads, "Spring workshop.results.csv").read_text("utf-8-sig")  # a workbook's: with a BOM
    assert [row["outcome"] for row in csv.DictReader(io.StringIO(text))].count("succeeded") == 39
