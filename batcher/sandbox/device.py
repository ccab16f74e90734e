"""The sandbox's authorization server: the token endpoint (refresh and device grants), the device flow (RFC 8628),
its approve page, and revocation.

`POST {auth}/device/authorize` hands out a device code and a user code; the person approves (or denies) the user
code on the page at /activate, or the sandbox approves it by itself after Scenario.auto_approve_after polls; the
token endpoint's device grant answers authorization_pending until then (and whatever Scenario.device_answers
scripts first), then issues tokens the sandbox's API accepts. Answers are shaped as Okta's, whose layout Constant
Contact's server follows.
"""

from __future__ import annotations

import html
import secrets
import string
import time
from collections.abc import Mapping

from aiohttp import web

from batcher.sandbox.state import DeviceLogin, SandboxState, Scenario

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 section 6.1: no vowels, no look-alikes
PAGE_STYLE = "body{font-family:sans-serif;max-width:32rem;margin:3rem auto}input{font-size:1.4rem}"


def oauth_error(status: int, error: str, description: str) -> web.Response:
    """An OAuth error answer: {"error", "error_description"}."""
    return web.json_response({"error": error, "error_description": description}, status=status)


def _user_code() -> str:
    letters = "".join(secrets.choice(USER_CODE_LETTERS) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def _normal(user_code: str) -> str:
    return "".join(char for char in user_code.upper() if char in string.ascii_uppercase)


async def authorize_device(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    """POST {auth}/device/authorize (form client_id, scope)."""
    form = await request.post()
    if form.get("client_id") != scenario.client_id:
        return oauth_error(401, "invalid_client", "Invalid value for 'client_id' parameter.")
    if not scenario.device_flow:
        return oauth_error(400, "unauthorized_client", "The client is not authorized to use the provided grant type.")
    device_code = secrets.token_urlsafe(24)
    user_code = _user_code()
    state.devices[device_code] = DeviceLogin(device_code, user_code, str(form["client_id"]), time.monotonic())
    page = f"{request.scheme}://{request.host}/activate"
    return web.json_response(
        {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?user_code={user_code}",
            "expires_in": scenario.device_expires_s,
            "interval": scenario.device_interval_s,
        }
    )


def grant_device(form: Mapping[str, str], state: SandboxState, scenario: Scenario) -> web.Response:
    """The token endpoint's device grant: pending until approved, then tokens (once)."""
    if form.get("client_id") != scenario.client_id:
        return oauth_error(401, "invalid_client", "Invalid value for 'client_id' parameter.")
    login = state.devices.get(form.get("device_code", ""))
    if login is None or login.granted:
        return oauth_error(400, "invalid_grant", "The device code is invalid or has expired.")
    login.polls += 1
    if scenario.device_answers:
        scripted = scenario.device_answers.pop(0)
        if scripted == "500":
            return web.Response(status=500, text="<html><body>Internal Server Error</body></html>")
        if scripted == "garbage":
            return web.Response(status=200, text="this is not JSON", content_type="text/plain")
        if scripted == "access_denied":
            login.approved = False
        return oauth_error(400, scripted, f"scripted answer {scripted}")
    if time.monotonic() - login.created > scenario.device_expires_s:
        return oauth_error(400, "expired_token", "The device code has expired.")
    if scenario.auto_approve_after is not None and login.polls > scenario.auto_approve_after:
        login.approved = True if login.approved is None else login.approved
    if login.approved is False:
        return oauth_error(400, "access_denied", "The resource owner or authorization server denied the request.")
    if not login.approved:
        return oauth_error(400, "authorization_pending", "The device authorization is pending.")
    login.granted = True
    state.logins += 1
    state.access_token = f"{scenario.token}-login-{state.logins}"
    state.refresh_token = f"{scenario.refresh_token}-login-{state.logins}"
    state.token_uses = 0
    return web.json_response(
        {
            "access_token": state.access_token,
            "refresh_token": state.refresh_token,
            "token_type": "Bearer",
            "expires_in": scenario.token_lifetime_s,
            "scope": "campaign_data offline_access",
        }
    )


async def revoke(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    """POST {auth}/revoke (RFC 7009): 200 whether or not the token was known."""
    if not scenario.revocation:
        return web.Response(status=404, text="Not Found")
    form = await request.post()
    token = str(form.get("token", ""))
    if token:
        state.revoked.append(token)
        if token == state.refresh_token:
            state.refresh_token = ""
        if token == state.access_token:
            state.access_token = ""
    return web.Response(status=200)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{PAGE_STYLE}</style></head><body><h1>{title}</h1>{body}</body></html>"
    )
    return web.Response(status=status, text=text, content_type="text/html")


async def activate_page(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    """GET /activate: the verification page, a form for the user code with Approve and Deny."""
    code = html.escape(request.query.get("user_code", ""), quote=True)
    form = (
        "<p>batcher sandbox: approve the login of a device.</p>"
        '<form method="post" action="/activate">'
        f'<p><label for="user_code">Code</label> <input id="user_code" name="user_code" value="{code}" '
        'autocomplete="off" required></p>'
        '<p><button name="decision" value="approve">Approve</button> '
        '<button name="decision" value="deny">Deny</button></p></form>'
    )
    return _page("Sign in to the sandbox", form)


async def decide(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    """POST /activate: approve or deny the device whose user code was typed."""
    form = await request.post()
    typed = _normal(str(form.get("user_code", "")))
    login = next((item for item in state.devices.values() if _normal(item.user_code) == typed and typed), None)
    if login is None or login.granted:
        return _page("Unknown code", '<p>No login waits for that code. <a href="/activate">Try again</a>.</p>', 400)
    login.approved = form.get("decision") != "deny"
    if login.approved:
        return _page("Approved", "<p>You may close this page and return to batcher.</p>")
    return _page("Denied", "<p>The login was refused; batcher will say so.</p>")


async def token(request: web.Request, state: SandboxState, scenario: Scenario) -> web.Response:
    """The OAuth2 token endpoint: grant_type=refresh_token (rotating refresh tokens), or the device grant."""
    form = await request.post()
    if form.get("grant_type") == DEVICE_GRANT:
        return grant_device({name: str(value) for name, value in form.items()}, state, scenario)
    if form.get("grant_type") != "refresh_token" or form.get("client_id") != scenario.client_id:
        return web.json_response({"error": "invalid_client", "error_description": "unknown client"}, status=400)
    if form.get("refresh_token") != state.refresh_token:
        return web.json_response(
            {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}, status=400
        )
    state.refreshes += 1
    state.access_token = scenario.issued_access_token or f"{scenario.token}-{state.refreshes}"
    state.token_uses = 0
    if scenario.rotate_refresh_tokens:
        state.refresh_token = f"{scenario.refresh_token}-{state.refreshes}"
    return web.json_response(
        {
            "access_token": state.access_token,
            "refresh_token": state.refresh_token,
            "token_type": "Bearer",
            "expires_in": scenario.token_lifetime_s,
            "scope": "campaign_data offline_access",
        }
    )
