"""Where a run sends: the real API with the user's credentials, or an in-process sandbox on a free loopback port
that knows the input's registrations, each with the status the input states (else REGISTERED)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from batcher.defaults import DEFAULT_RATE_LIMIT_PER_S, SANDBOX_TOKEN
from batcher.errors import UsageError
from batcher.http.auth import Credentials
from batcher.input.loader import LoadedInput
from batcher.models import KNOWN_STATUSES
from batcher.settings import Settings

if TYPE_CHECKING:
    from batcher.sandbox.app import Registration, Scenario


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """Run against an in-process sandbox instead of the real API."""

    registrations_file: Path | None = None  # None: the sandbox knows every row of the input


@asynccontextmanager
async def open_endpoint(
    loaded: LoadedInput,
    settings: Settings,
    credentials: Credentials | None,
    sandbox_options: SandboxOptions | None,
) -> AsyncIterator[tuple[Settings, Credentials]]:
    """The settings and credentials to send with: the real API's, or an in-process sandbox's."""
    if sandbox_options is None:
        if credentials is None:
            raise ValueError("credentials are needed to talk to the real API")
        yield settings, credentials
        return
    from batcher.sandbox import app as sandbox  # noqa: PLC0415 - only a sandbox run serves

    app = sandbox.make_app(_sandbox_scenario(settings), _sandbox_registrations(loaded, sandbox_options))
    async with sandbox.running(app) as url:
        yield replace(settings, base_url=url), Credentials(SANDBOX_TOKEN)


def check_sandbox_input(loaded: LoadedInput, registrations_file: Path | None) -> None:
    """Refuse a --sandbox run of people named by email without --sandbox-registrations: the in-process sandbox knows
    only the registrations the file names by ID, so it could only answer "not found" for every one of them.

    Raises:
        UsageError: rows wait to be resolved and the sandbox was given no registrations.
    """
    if registrations_file is not None or loaded.needs_resolution is None:
        return
    waiting = int(np.count_nonzero(loaded.needs_resolution & (loaded.invalid_reason == "")))
    if waiting:
        raise UsageError(
            f"{loaded.path}: {waiting:,} row(s) name people by email or have no track_id, and the in-process sandbox "
            "of --sandbox knows only the registrations a file names by ID: it cannot know these people. Give it the "
            "event's registrations with --sandbox-registrations FILE (a `batcher export` of the event, say); nothing "
            "was sent."
        )


def _sandbox_scenario(settings: Settings) -> Scenario:
    # the sandbox enforces the pace the user says their key has, as the real API would
    from batcher.sandbox.app import Scenario  # noqa: PLC0415

    return Scenario(rate_limit_per_s=max(DEFAULT_RATE_LIMIT_PER_S, math.ceil(settings.rate_per_s)))


def _sandbox_registrations(
    loaded: LoadedInput, options: SandboxOptions
) -> Sequence[Registration | tuple[str, str, str, str]]:
    if options.registrations_file is not None:
        from batcher.sandbox.app import read_registrations  # noqa: PLC0415

        return read_registrations(options.registrations_file)
    # each registration has the status the input says it has now (its registration_status column), else REGISTERED
    valid = loaded.invalid_reason == ""
    if loaded.needs_resolution is not None:
        valid &= ~loaded.needs_resolution  # their registrations are known only once resolved
    stated = loaded.stated_status if loaded.stated_status is not None else np.full(loaded.row_count, "", dtype=object)
    return [
        (event_id, track_id, registration_id, status if status in KNOWN_STATUSES else "REGISTERED")
        for event_id, track_id, registration_id, status in zip(
            loaded.event_id[valid].tolist(),
            loaded.track_id[valid].tolist(),
            loaded.registration_id[valid].tolist(),
            stated[valid].tolist(),
            strict=True,
        )
    ]
