"""Switching profiles on the page: the list of `batcher profiles`, then the next task works as the chosen one."""

from __future__ import annotations

from pathlib import Path

from batcher.http.profiles import PROFILES_FOLDER
from batcher.http.quota import LEDGER_NAME
from batcher.web.app import JOBS
from batcher.web.setup import PageSetup
from batcher.web.signin import account_of
from tests.web.conftest import EXPORT_CSV, Page, PageFactory

OTHER = "agency-2"


def profile_of(page: Page) -> str:
    return account_of(page.app[JOBS].setup).profile


async def test_the_select_lists_the_profiles_of_the_state_folder(make_page: PageFactory, tmp_path: Path) -> None:
    (tmp_path / "state" / PROFILES_FOLDER / OTHER).mkdir(parents=True)
    page = await make_page()
    shown = await (await page.client.get("/")).text()
    assert '<label for="profile">Profile</label>' in shown
    assert '<option value="default" selected>default</option>' in shown
    assert f'<option value="{OTHER}">{OTHER}</option>' in shown
    assert '<button type="submit">Switch profile</button>' in shown


async def test_a_switch_changes_the_profile_the_next_preview_uses(make_page: PageFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / PROFILES_FOLDER / OTHER).mkdir(parents=True)
    page = await make_page()
    response = await page.post("/profile", {"profile": OTHER})
    assert response.status == 303 and response.headers["Location"] == "/"
    assert f"Profile <strong>{OTHER}</strong>" in await (await page.client.get("/")).text()

    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    assert (state / PROFILES_FOLDER / OTHER / LEDGER_NAME).is_file()  # its reads counted in the chosen profile
    assert not (state / LEDGER_NAME).exists()  # not in the default's
    await page.post(f"/job/{job_id}/stop")
    await page.settle(job_id, "done")


async def test_a_switch_without_the_csrf_token_is_refused(make_page: PageFactory, tmp_path: Path) -> None:
    (tmp_path / "state" / PROFILES_FOLDER / OTHER).mkdir(parents=True)
    page = await make_page()
    response = await page.client.post(
        "/profile", data={"profile": OTHER}, headers={"Origin": page.origin}, allow_redirects=False
    )
    assert response.status == 403
    assert profile_of(page) == "default"


async def test_a_switch_during_a_run_is_refused(make_page: PageFactory, tmp_path: Path) -> None:
    (tmp_path / "state" / PROFILES_FOLDER / OTHER).mkdir(parents=True)
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    response = await page.post("/profile", {"profile": OTHER})
    assert response.status == 409
    assert "a run is in progress on this page" in await response.text()
    assert profile_of(page) == "default"
    await page.post(f"/job/{job_id}/stop")
    await page.settle(job_id, "done")
    assert (await page.post("/profile", {"profile": OTHER})).status == 303
    assert profile_of(page) == OTHER
    assert account_of(page.job(job_id).setup).profile == OTHER  # the file's next task too


async def test_a_profile_name_is_checked_as_everywhere_else(make_page: PageFactory) -> None:
    page = await make_page()
    response = await page.post("/profile", {"profile": "../elsewhere"})
    assert response.status == 400
    assert "is not a profile name" in await response.text()
    response = await page.post("/profile", {"profile": "nobody"})
    assert response.status == 400
    assert "there is no profile &#39;nobody&#39;" in await response.text()
    assert profile_of(page) == "default"


async def test_a_sandbox_page_offers_the_users_profiles_and_counts_in_its_own_folder(
    make_page: PageFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    (state / PROFILES_FOLDER / OTHER).mkdir(parents=True)
    page = await make_page(sandbox_page=True)
    assert f'<option value="{OTHER}">{OTHER}</option>' in await (await page.client.get("/")).text()
    assert (await page.post("/profile", {"profile": OTHER})).status == 303
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    assert (page.folder / "sandbox-state" / PROFILES_FOLDER / OTHER / LEDGER_NAME).is_file()
    assert not (state / PROFILES_FOLDER / OTHER / LEDGER_NAME).exists()  # the account's quota is untouched
    await page.post(f"/job/{job_id}/stop")
    await page.settle(job_id, "done")


def test_a_sandbox_page_keeps_its_sandbox_whatever_the_profile(tmp_path: Path) -> None:
    sandbox = PageSetup({"base_url": "http://127.0.0.1:1/v3"}, {}, tmp_path, "the sandbox at x", sandbox=True)
    assert sandbox.with_profile(OTHER).api == "the sandbox at x"
    assert sandbox.with_profile(OTHER).values["base_url"] == "http://127.0.0.1:1/v3"
    real = PageSetup({"base_url": ""}, {}, tmp_path, "the Constant Contact API")
    assert real.with_profile(OTHER).api == f"the Constant Contact API (profile {OTHER})"
