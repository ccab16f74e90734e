"""Every secret this process has held, and the one redaction that every outgoing text passes through.

Tokens from the environment, a token file or a refresh, the client secret, and the base64 of
`client_id:client_secret` (a Basic header) are added as they become known; `redact` masks them all.
"""

from __future__ import annotations

import base64
import re
import threading

REDACTED = "***"
MIN_SECRET_CHARS = 8  # shorter values would mask ordinary words; no real token or secret is this short

_lock = threading.Lock()
_secrets: set[str] = set()


def add(*values: str) -> None:
    """Remember values as secrets (empty and very short values are ignored)."""
    with _lock:
        for value in values:
            secret = value.strip()
            if len(secret) >= MIN_SECRET_CHARS:
                _secrets.add(secret)


def add_client(client_id: str, client_secret: str) -> None:
    """Remember the client secret and its HTTP Basic form."""
    if client_secret:
        pair = f"{client_id}:{client_secret}".encode()
        add(client_secret, base64.b64encode(pair).decode())


_URL_PASSWORD = re.compile(r"://[^/@\s:]*:([^/@\s]+)@")


def add_url_passwords(*texts: str) -> None:
    """Remember the password of every user:password@ URL in texts (command-line words, environment values)."""
    for text in texts:
        if "@" in text:
            add(*_URL_PASSWORD.findall(text))


def redact(text: str) -> str:
    """text with every known secret replaced by ***, longest first so no part of one survives."""
    if not _secrets or not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def forget_all() -> None:
    """Forget every secret (for tests that run many commands in one process)."""
    with _lock:
        _secrets.clear()
