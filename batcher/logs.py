"""Logging for runs: text or JSON lines, to stderr and optionally a file, with every secret masked."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from batcher.errors import UsageError

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
    """Masks every secret in a record's message and fields, wherever the record came from."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self._mask(record.getMessage())
            record.args = None
            for name in FIELDS:
                value = getattr(record, name, None)
                if isinstance(value, str):
                    setattr(record, name, self._mask(value))
        return True

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


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
            to_file = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{log_file}: cannot open the log file ({exc.strerror or exc})") from exc
        to_file.setLevel(logging.INFO if verbosity < 2 else logging.DEBUG)
        handlers.append(to_file)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redacting)
        logger.addHandler(handler)
