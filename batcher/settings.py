"""Run settings: one frozen value with named defaults and range checks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from batcher.errors import UsageError
from batcher.models import QueryFlags

DEFAULT_BASE_URL = "https://api.cc.email/v3"
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 500
DEFAULT_RATE_PER_S = 4.0
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 30.0
# Pace a hair under the configured rate: N requests then span N/(rate*margin) > 1 s,
# so event-loop jitter cannot squeeze an extra request into any one-second window.
PACING_MARGIN = 0.98
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_THROTTLE_WAIT_S = 300.0

ENV_BASE_URL = "CTCT_BASE_URL"
ENV_TOKEN_URL = "CTCT_TOKEN_URL"  # auth reads it too; config names it for the token-url option
ENV_DEVICE_URL = "CTCT_DEVICE_URL"  # login's --device-url
DEFAULT_TOKEN_URL = "https://authz.constantcontact.com/oauth2/default/v1/token"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs to know except the credentials."""

    base_url: str = DEFAULT_BASE_URL
    batch_size: int = DEFAULT_BATCH_SIZE
    rate_per_s: float = DEFAULT_RATE_PER_S
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    flags: QueryFlags = field(default_factory=QueryFlags)
    max_retries: int = DEFAULT_MAX_RETRIES
    allow_insecure: bool = False
    max_throttle_wait_s: float = DEFAULT_MAX_THROTTLE_WAIT_S

    def __post_init__(self) -> None:
        _check_range("--batch-size", self.batch_size, 1, MAX_BATCH_SIZE)
        _check_range("--concurrency", self.concurrency, 1, 64)
        if not self.rate_per_s > 0:
            raise UsageError(f"--rate must be above 0 requests per second (got {self.rate_per_s})")
        if not self.timeout_s > 0:
            raise UsageError(f"--timeout must be above 0 seconds (got {self.timeout_s})")
        _check_range("--max-retries", self.max_retries, 0, 100)
        if self.max_throttle_wait_s < 0:
            raise UsageError(f"--max-throttle-wait must be 0 or more seconds (got {self.max_throttle_wait_s})")
        check_url("--base-url", self.base_url, example=DEFAULT_BASE_URL, allow_insecure=self.allow_insecure)

    @property
    def pacing_interval_s(self) -> float:
        """Seconds between two request starts."""
        return 1.0 / (self.rate_per_s * PACING_MARGIN)


def without_credentials(url: str) -> str:
    """url with any user name and password in it replaced by ***, fit to be shown."""
    head, separator, rest = url.partition("://")
    if not separator:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return url
    return f"{head}://***@{authority.rpartition('@')[2]}{slash}{tail}"


def check_url(option: str, url: str, *, example: str, allow_insecure: bool = False) -> None:
    """Refuse a URL that is not http(s), holds a user name or password, or is plain http to a host not loopback.

    Raises:
        UsageError: the URL is refused (its password is never repeated).
    """
    shown = without_credentials(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise UsageError(f"{option} is not a URL such as {example} (got {shown!r})") from None
    if shown != url or parts.username is not None or parts.password is not None:
        raise UsageError(
            f"{option} must not hold a user name or password (got {shown!r}); batcher sends the token in a header. "
            "Give the URL without them."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{option} must be an https URL such as {example} (got {shown!r})")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        raise UsageError(
            f"{option} {shown} is plain http: the token would travel in clear text. Use https (plain http is "
            "allowed only to a loopback address such as 127.0.0.1)"
            + (", or add --allow-insecure if you really mean it." if option == "--base-url" else ".")
        )


def check_auth_url(url: str, option: str, *, allow_insecure: bool = False) -> str:
    """url if it may carry tokens: https, or plain http only to a loopback address (the base URL's rule).

    Raises:
        UsageError: not an http(s) URL, or plain http to another host without allow_insecure.
    """
    check_url(option, url, example=DEFAULT_TOKEN_URL, allow_insecure=allow_insecure)
    return url


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_range(option: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise UsageError(f"{option} must be between {low} and {high} (got {value})")
