"""One pace per API key across processes: the next free request start, in a small locked file of the state folder.

Every client that counts its requests in a state folder's quota ledger (quota.py) also takes its request starts from
this record beside it, so two runs on one key, or a run and its verification, share one per-second pace instead of
each keeping its own. The record is one number, read and written under flock on a descriptor kept open for the run:
a few microseconds a request. It is only a schedule: a lost or unreadable record costs at most one request's spacing.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from batcher.support.files import locked

RECORD_NAME = "pace.bin"
FORMAT = "<d"  # the next free start, wall-clock seconds
MAX_AHEAD_S = 120.0  # a record further ahead than this (a clock set back, a broken file) is not waited for


class PaceRecord:
    """The next free request start of every process using this state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RECORD_NAME
        self._descriptor: int | None = None
        self._broken = False

    def claim(self, now: float, interval_s: float) -> float:
        """Take the start at now if it is free (0.0, and the next one is now + interval_s), else the wait for it."""
        descriptor = self._open()
        if descriptor is None:
            return 0.0
        with locked(descriptor):
            free = self._read(descriptor, now)
            if free > now:
                return free - now
            self._write(descriptor, now + interval_s)
            return 0.0

    def pause_until(self, now: float, resume: float) -> None:
        """No process on this key starts a request before resume."""
        descriptor = self._open()
        if descriptor is None:
            return
        with locked(descriptor):
            if resume > self._read(descriptor, now):
                self._write(descriptor, resume)

    def next_free(self, now: float) -> float:
        """The next free start as the record holds it (now if none)."""
        descriptor = self._open()
        if descriptor is None:
            return now
        with locked(descriptor, shared=True):
            return max(now, self._read(descriptor, now))

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _open(self) -> int | None:
        """The record's descriptor; None when the folder cannot hold it (the quota ledger there says why)."""
        if self._descriptor is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self._broken = True
        return self._descriptor

    @staticmethod
    def _read(descriptor: int, now: float) -> float:
        raw = os.pread(descriptor, struct.calcsize(FORMAT), 0)
        if len(raw) != struct.calcsize(FORMAT):
            return now
        (free,) = struct.unpack(FORMAT, raw)
        return free if now - MAX_AHEAD_S < free <= now + MAX_AHEAD_S else now

    @staticmethod
    def _write(descriptor: int, free: float) -> None:
        os.pwrite(descriptor, struct.pack(FORMAT, free), 0)
