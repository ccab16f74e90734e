"""The access token. Nothing here logs, formats or repeats the token."""

from __future__ import annotations

from collections.abc import Mapping

from batcher.errors import UsageError

ENV_ACCESS_TOKEN = "CTCT_ACCESS_TOKEN"


class Credentials:
    """Holds the bearer token; its repr never shows it."""

    __slots__ = ("_access_token",)

    def __init__(self, access_token: str) -> None:
        if not access_token.strip():
            raise UsageError(f"the access token is empty; set {ENV_ACCESS_TOKEN} to a valid token")
        self._access_token = access_token.strip()

    def __repr__(self) -> str:
        return "Credentials(access_token=***)"

    def authorization(self) -> dict[str, str]:
        """The Authorization header to send."""
        return {"Authorization": f"Bearer {self._access_token}"}

    def redact(self, text: str) -> str:
        """Text with every copy of the token masked, for anything that may echo a request."""
        return text.replace(self._access_token, "***") if self._access_token else text

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Credentials:
        """Credentials from CTCT_ACCESS_TOKEN.

        Raises:
            UsageError: no token is set.
        """
        token = environ.get(ENV_ACCESS_TOKEN, "")
        if not token.strip():
            raise UsageError(
                f"no access token: set {ENV_ACCESS_TOKEN} to your Constant Contact access token "
                "(export CTCT_ACCESS_TOKEN=...), or rehearse with --sandbox"
            )
        return cls(token)
