"""The page's guard: no cookie, a foreign Host, a foreign Origin or no CSRF token is refused; no secret leaks."""

from __future__ import annotations

import aiohttp
import pytest

from batcher.web.security import COOKIE, GATE
from tests.web.conftest import ACCESS_TOKEN, EXPORT_CSV, PageFactory


@pytest.mark.parametrize("path", ["/", "/job/0123456789abcdef", "/static/htmx.min.js", "/job/0123456789abcdef/events"])
async def test_without_the_cookie_every_route_answers_401(make_page: PageFactory, path: str) -> None:
    page = await make_page(signed_in=False)
    response = await page.client.get(path, allow_redirects=False)
    assert response.status == 401
    assert "open the address batcher ui printed" in await response.text()


async def test_the_one_time_token_becomes_an_httponly_strict_cookie_and_leaves_the_address(
    make_page: PageFactory,
) -> None:
    page = await make_page(signed_in=False)
    token = page.app[GATE].token
    response = await page.client.get(f"/?token={token}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert token not in cookie
    assert (await page.client.get("/")).status == 200
    page.client.session.cookie_jar.clear()
    again = await page.client.get(f"/?token={token}", allow_redirects=False)
    assert again.status == 403  # one time only


async def test_a_wrong_token_is_refused(make_page: PageFactory) -> None:
    page = await make_page(signed_in=False)
    assert (await page.client.get("/?token=guess", allow_redirects=False)).status == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1", "localhost"])
async def test_a_foreign_host_is_refused_even_with_the_cookie(make_page: PageFactory, host: str) -> None:
    page = await make_page()
    response = await page.client.get("/", headers={"Host": host})
    assert response.status == 403
    assert "not the one batcher ui printed" in await response.text()


async def test_localhost_with_the_port_is_this_server(make_page: PageFactory) -> None:
    page = await make_page()
    assert (await page.client.get("/", headers={"Host": f"localhost:{page.client.port}"})).status == 200


@pytest.mark.parametrize("origin", [None, "http://evil.example", "null", "http://127.0.0.1:1"])
async def test_a_post_from_a_foreign_origin_is_refused(make_page: PageFactory, origin: str | None) -> None:
    page = await make_page()
    headers = {"Origin": origin} if origin is not None else {}
    response = await page.client.post("/export", data={"csrf": page.csrf, "event_id": "x"}, headers=headers)
    assert response.status == 403
    assert "did not come from the batcher ui page" in await response.text()


async def test_a_post_without_the_csrf_token_is_refused(make_page: PageFactory) -> None:
    page = await make_page()
    response = await page.client.post("/export", data={"event_id": "x"}, headers={"Origin": page.origin})
    assert response.status == 403
    wrong = await page.client.post("/export", data={"csrf": "x", "event_id": "x"}, headers={"Origin": page.origin})
    assert wrong.status == 403


async def test_an_upload_without_the_csrf_part_first_is_refused(make_page: PageFactory) -> None:

    page = await make_page()
    form = aiohttp.FormData()
    form.add_field("file", EXPORT_CSV.read_bytes(), filename="x.csv")
    form.add_field("csrf", page.csrf)
    response = await page.client.post("/upload", data=form, headers={"Origin": page.origin})
    assert response.status == 403
    assert not (page.folder / "uploads").exists() or list((page.folder / "uploads").iterdir()) == []


async def test_no_response_holds_the_access_token_or_the_page_token(make_page: PageFactory) -> None:
    """A whole walk: every page, stream, download and refusal, searched for the secrets."""
    page = await make_page()
    secrets = (ACCESS_TOKEN, page.app[GATE].token)
    seen: list[str] = []

    async def body(path: str) -> None:
        response = await page.client.get(path)
        seen.append(await response.text() + str(response.headers))

    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    await body(f"/job/{job_id}")
    events = await page.client.get(f"/job/{job_id}/events")
    seen.append((await events.content.readuntil(b"\n\n")).decode())
    events.close()
    await page.post(f"/job/{job_id}/send")
    await page.settle(job_id, "done")
    await page.post(f"/job/{job_id}/verify")
    await page.settle(job_id, "done")
    for path in ("/", f"/job/{job_id}", f"/job/{job_id}/file/results", f"/job/{job_id}/file/verify"):
        await body(path)
    assert all(secret not in text for secret in secrets for text in seen)
    assert any("Download results" in text for text in seen)


async def test_every_page_carries_the_protective_headers(make_page: PageFactory) -> None:
    page = await make_page()
    response = await page.client.get("/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
