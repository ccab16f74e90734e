"""The page's one guard (a middleware), as Jupyter's and Datasette's --root tokens do it: loopback peers only, the
Host must be this server's (no DNS rebinding), the one-time token of the printed address becomes an HttpOnly,
SameSite=Strict cookie, and a state-changing request needs a same-origin Origin and the page's CSRF token.

The token itself is never in a page, a response or a redirect; the cookie holds another secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import BodyPartReader, MultipartReader, web

from batcher.support import redaction

COOKIE = "batcher_ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD")
LOOPBACK = ("127.0.0.1",)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the browser send "Origin: null" on its own forms
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gate:
    """The secrets of one page server: the one-time token, the session cookie's value, the CSRF token."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)
        self.session = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)
        self.token_used = False
        redaction.add(self.token, self.session)  # never in a page, a log line or a message

    def exchange(self, token: str) -> bool:
        """True once: for the printed token, the first time it is used."""
        if self.token_used or not secrets.compare_digest(token.encode(), self.token.encode()):
            return False
        self.token_used = True
        return True

    def signed_in(self, request: web.Request) -> bool:
        return secrets.compare_digest(request.cookies.get(COOKIE, "").encode(), self.session.encode())


GATE = web.AppKey("gate", Gate)
MULTIPART = web.RequestKey("multipart", MultipartReader)  # an upload's reader, its csrf part already read


def allowed_hosts(request: web.Request) -> set[str]:
    """The Host values this server answers to: 127.0.0.1 or localhost with the port the request came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
    return {f"127.0.0.1:{port}", f"localhost:{port}"} if port else set()


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what is not this person's own browser on this machine; set the response headers of every page."""
    response = await _checked(request, handler)
    response.headers.update(HEADERS)
    return response


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    gate = request.app[GATE]
    if request.remote not in LOOPBACK:
        return _refused(403, "batcher ui answers only this computer (127.0.0.1)")
    if request.host not in allowed_hosts(request):
        return _refused(403, "this address is not the one batcher ui printed; open that one (127.0.0.1 and its port)")
    token = request.query.get("token")
    if token is not None:
        return _exchanged(request, gate, token)
    if not gate.signed_in(request):
        return _refused(
            401, "not signed in: open the address batcher ui printed (with its token) in this browser, or restart it"
        )
    if request.method not in SAFE_METHODS:
        if request.headers.get("Origin") != f"http://{request.host}":
            return _refused(403, "refused: this request did not come from the batcher ui page")
        if not await _csrf_ok(request, gate):
            return _refused(403, "refused: the form is out of date or not batcher's; reload the page and try again")
    return await handler(request)


def _exchanged(request: web.Request, gate: Gate, token: str) -> web.StreamResponse:
    """The printed address: its token becomes the session cookie, and the address loses it."""
    if not gate.exchange(token) and not gate.signed_in(request):
        return _refused(403, "this address was used already; restart batcher ui for a new one")
    query = {name: value for name, value in request.query.items() if name != "token"}
    response = web.Response(status=303, headers={"Location": request.rel_url.with_query(query).path_qs})
    response.set_cookie(COOKIE, gate.session, httponly=True, samesite="Strict", path="/")
    return response


async def _csrf_ok(request: web.Request, gate: Gate) -> bool:
    """The CSRF token from the header, a form field, or an upload's first part (named csrf)."""
    expected = gate.csrf.encode()
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return secrets.compare_digest(header.encode(), expected)
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != CSRF_FIELD:
            return False
        sent = await part.read_chunk(256)  # a token is 43 characters; no more is read
        request[MULTIPART] = reader
        return secrets.compare_digest(sent, expected)
    form = await request.post()
    field = form.get(CSRF_FIELD)
    return isinstance(field, str) and secrets.compare_digest(field.encode(), expected)


def _refused(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=f"batcher ui: {text}\n", content_type="text/plain")
