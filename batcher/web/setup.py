"""What every task of the page starts from: the resolved options, the environment, the page's folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class PageSetup:
    """What every task of the page starts from: the resolved option values, the environment, the folders."""

    values: Mapping[str, object]  # run's options as flag, environment, config file and defaults resolved them
    environ: Mapping[str, str]
    folder: Path  # the page's own folder in the state folder (uploads under it)
    api: str  # where it sends, as the page names it ("the sandbox at ..." or the base URL)
