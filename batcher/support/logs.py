"""Logging for runs: text or JSON lines, to stderr and optionally a file, with every secret masked."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from batcher.errors import UsageError
from batcher.support import redaction
from batcher.support.text import printable, printable_lines

LOGGER_NAME = "batcher"
NOTICE = 25  # progress lines: shown by default, hidden by -q
logging.addLevelName(NOTICE, "NOTICE")
LOG_FORMATS = ("text", "json")
# the structured fields a record may carry, in the order they are written
FIELDS = (
    "event_id",
    "track_id",
    "batch",
    "http_status",
    "attempts",
    "duration_s",
    "rows",
    "failed",
    "error",
    "done",
    "total",
    "requests",
)


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


class RedactingFilter(logging.Filter):
    """Masks every secret the registry knows (now or later) in a record's message and fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        redaction.add(*secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        # a server's words may hold escape sequences: none reaches a terminal or a log file raw
        record.msg = printable_lines(redaction.redact(record.getMessage()))
        record.args = None
        for name in FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, printable(redaction.redact(value)))
        return True


class _LogFile(logging.FileHandler):
    """A log file that, once it cannot be written (a full disk), says so in one line and is left out."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.broken:
            super().emit(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a full disk already said so once
            super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        self.broken = True
        error = sys.exc_info()[1]
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        sys.stderr.write(
            redaction.redact(
                f"batcher: warning: {self.baseFilename}: cannot write the log file ({reason}); "
                "the run goes on without it\n"
            )
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the structured fields present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`batcher: message (key=value ...)`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return f"{stamp} batcher: {record.getMessage()}" + (f" ({fields})" if fields else "")


def configure(*, verbosity: int, log_format: str, log_file: Path | None, secrets: Iterable[str]) -> None:
    """Send batcher's log records to stderr (per -v/-q) and, if given, all of them to log_file.

    A log file that fails later (a full disk) is reported once on stderr and then left out; the run goes on.

    Raises:
        UsageError: the log file cannot be opened, or the format is unknown.
    """
    if log_format not in LOG_FORMATS:
        raise UsageError(f"--log-format must be one of {', '.join(LOG_FORMATS)} (got {log_format!r})")
    logger = get_logger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    redacting = RedactingFilter(secrets)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel({-1: logging.ERROR, 0: NOTICE, 1: logging.INFO}.get(verbosity, logging.DEBUG))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            to_file = _LogFile(log_file)
        except OSError as exc:
            raise UsageError(f"{log_file}: cannot open the log file ({exc.strerror or exc})") from exc
        to_file.setLevel(logging.INFO if verbosity < 2 else logging.DEBUG)
        handlers.append(to_file)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redacting)
        logger.addHandler(handler)
