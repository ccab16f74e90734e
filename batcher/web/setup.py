"""What every task of the page starts from: the resolved options, the environment, the page's folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class PageSetup:
    """What every task of the page starts from: the resolved option values, the environment, the folders."""

    values: Mapping[str, object]  # run's options as flag, environment, config file and defaults resolved them
    environ: Mapping[str, str]
    folder: Path  # the page's own folder in the state folder, STATE/ui (uploads under it)
    api: str  # where it sends, as the page names it ("the sandbox at ..." or the base URL)
    sandbox: bool = False  # a --sandbox page: it keeps its sandbox (and its token) whatever the profile

    def with_profile(self, profile: str) -> PageSetup:
        """The same page working as another profile: its credentials, quota ledger and run history."""
        values = {**self.values, "profile": profile}
        return replace(self, values=values, api=self.api if self.sandbox else api_name(values))


def api_name(values: Mapping[str, object]) -> str:
    """The real API as the page names it, with the profile when one was chosen."""
    profile = f" (profile {values['profile']})" if values.get("profile") else ""
    return f"{values.get('base_url') or 'the Constant Contact API'}{profile}"
