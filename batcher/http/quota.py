"""Counts the requests sent per UTC day in a small state file, so a run stops before the daily quota.

The API's daily count resets at 00:00 UTC and is kept per API key; two processes on one key share it,
so the file is locked while it is read and written. Requests are reserved in small blocks to keep file
writes off the per-request path; a block not used is given back when the run ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from batcher.errors import OutputError, UsageError
from batcher.support import hints
from batcher.support.files import exclusive_lock, write_text_atomically

DEFAULT_DAILY_QUOTA = 10_000
RESERVE_BLOCK = 10
LEDGER_NAME = "quota.json"
ENV_STATE_DIR = "BATCHER_STATE_DIR"

Clock = Callable[[], datetime]


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """$BATCHER_STATE_DIR, else $XDG_STATE_HOME/batcher, else ~/.local/state/batcher."""
    if environ.get(ENV_STATE_DIR):
        return Path(environ[ENV_STATE_DIR])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "batcher"


def _today(clock: Clock) -> str:
    return clock().astimezone(UTC).date().isoformat()


class QuotaLedger:
    """Today's request count for one API key, shared through a locked file."""

    def __init__(self, state_dir: Path, daily_quota: int, *, clock: Clock | None = None) -> None:
        self.path = state_dir / LEDGER_NAME
        self.daily_quota = daily_quota
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self._reserved = 0
        self._day = ""

    def used_today(self) -> int:
        """Requests counted today, by this and every other run using this state folder."""
        with self._locked() as (day, used):
            return used if day == _today(self.clock) else 0

    def remaining_today(self) -> int:
        return max(0, self.daily_quota - self.used_today())

    def take(self) -> bool:
        """Count one request; False when today's quota is used up (send nothing then)."""
        if self._reserved and self._day == _today(self.clock):
            self._reserved -= 1
            return True
        self._reserved = 0
        with self._locked() as (day, counted):
            today = _today(self.clock)
            used = counted if day == today else 0
            block = min(RESERVE_BLOCK, self.daily_quota - used)
            if block <= 0:
                return False
            self._write(today, used + block)
        self._day = today
        self._reserved = block - 1
        return True

    def give_back(self) -> None:
        """Uncount the last request taken: its connection could not be made, so the API never counted it."""
        self._reserved += 1

    def close(self) -> None:
        """Give back the requests reserved but not sent."""
        if not self._reserved:
            return
        with self._locked() as (day, used):
            if day == self._day:
                self._write(day, max(0, used - self._reserved))
        self._reserved = 0

    @contextmanager
    def _locked(self) -> Iterator[tuple[str, int]]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise self._unusable(exc) from exc
        with exclusive_lock(self.path.with_suffix(".lock"), wait=True, unusable=self._unusable):
            yield self._read()

    def _unusable(self, exc: OSError) -> UsageError:
        return UsageError(
            f"{self.path.parent}: cannot keep the daily request count there ({exc.strerror or exc}); "
            "choose another folder with --state-dir"
        )

    def _read(self) -> tuple[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return str(data["day"]), int(data["requests"])
        except (OSError, ValueError, KeyError, TypeError):
            return "", 0

    def _write(self, day: str, used: int) -> None:
        try:
            write_text_atomically(self.path, json.dumps({"day": day, "requests": used}), what="the daily request count")
        except OutputError as exc:
            raise OutputError(f"{exc}; free space or choose another --state-dir, then {hints.rerun()}") from exc
