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
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--base-url must be an http(s) URL such as {DEFAULT_BASE_URL} (got {self.base_url!r})")
        if parts.scheme == "http" and not self.allow_insecure and not is_loopback(parts.hostname):
            raise UsageError(
                f"--base-url {self.base_url} is plain http: the access token would travel in clear text. "
                "Use https, or add --allow-insecure if you really mean it."
            )

    @property
    def pacing_interval_s(self) -> float:
        """Seconds between two request starts."""
        return 1.0 / (self.rate_per_s * PACING_MARGIN)


def check_auth_url(url: str, option: str, *, allow_insecure: bool = False) -> str:
    """url if it may carry tokens: https, or plain http only to a loopback address (the base URL's rule).

    Raises:
        UsageError: not an http(s) URL, or plain http to another host without allow_insecure.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{option} must be an https URL such as {DEFAULT_TOKEN_URL} (got {url!r})")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        raise UsageError(
            f"{option} {url} is plain http: the tokens would travel in clear text. Use https "
            "(plain http is accepted only for a loopback address such as 127.0.0.1)."
        )
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
