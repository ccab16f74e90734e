"""Reads the sandbox's registrations file: an input-shaped CSV, an export-shaped one, or a `batcher export` file.

Headers match as the input's do (support.csvtext.normalize_header: case, spaces, dashes and underscores ignored),
so "Event ID", "Registration Status", "E-mail" and "Email Address" all name their field.
"""

from __future__ import annotations

import csv
from pathlib import Path

from batcher.errors import InputError
from batcher.models import KNOWN_STATUSES, canonical_status
from batcher.sandbox.state import DEFAULT_REGISTRATION_TIME, REGISTRATION_FIELDS, Registration
from batcher.support.csvtext import FORMULA_PREFIXES, normalize_header, sniff_delimiter

REQUIRED_FIELDS = ("event_id", "track_id", "registration_id")
# Headers that name a field under another word, beside the field's own name (matched after normalization).
FIELD_ALIASES = {"email": "email_address"}


def read_registrations(path: Path) -> list[Registration]:
    """The registrations a file lists; rows with an empty key cell are skipped, an empty status is REGISTERED.

    Raises:
        InputError: the file cannot be read, lacks a key column, or holds a status, ticket count or total that
            is not one.
    """

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            head = handle.read(1 << 16)
            handle.seek(0)
            reader = csv.reader(handle, delimiter=sniff_delimiter(head))
            header = next(reader, [])
            wanted = {normalize_header(name): name for name in REGISTRATION_FIELDS}
            wanted.update({normalize_header(alias): name for alias, name in FIELD_ALIASES.items()})
            positions: dict[str, int] = {}
            for position, name in enumerate(header):
                field_name = wanted.get(normalize_header(name))
                if field_name is not None:
                    positions.setdefault(field_name, position)
            missing = [name for name in REQUIRED_FIELDS if name not in positions]
            if missing:
                raise InputError(
                    f"{path}: a sandbox registrations file needs the columns {', '.join(REQUIRED_FIELDS)} "
                    f"(missing: {', '.join(missing)}; headers match ignoring case, spaces, dashes and underscores)"
                )
            found: list[Registration] = []
            for number, cells in enumerate(reader, start=2):
                item = _registration(path, number, cells, positions, FORMULA_PREFIXES)
                if item is not None:
                    found.append(item)
            return found
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the sandbox registrations ({exc})") from exc


def _registration(
    path: Path,
    number: int,
    cells: list[str],
    positions: dict[str, int],
    formula_prefixes: tuple[str, ...],
) -> Registration | None:
    def cell(name: str) -> str:
        position = positions.get(name)
        text = cells[position].strip() if position is not None and position < len(cells) else ""
        # a `batcher export` cell escaped as a formula ('=...) reads back as it was before the escape
        return text[1:] if text[:1] == "'" and text.lstrip("'")[:1] in formula_prefixes else text

    event_id, track_id, registration_id = (cell(name) for name in REQUIRED_FIELDS)
    if not (event_id and track_id and registration_id):
        return None
    status = canonical_status(cell("registration_status") or "REGISTERED")
    if status not in KNOWN_STATUSES:
        raise InputError(
            f"{path}: row {number}: registration_status {cell('registration_status')[:40]!r} is not one of "
            f"{', '.join(KNOWN_STATUSES)}; fix the cell or leave it empty for REGISTERED"
        )
    try:
        tickets = int(cell("tickets") or 1)
        total = float(cell("total") or 0)
    except ValueError:
        raise InputError(f"{path}: row {number}: tickets must be a whole number and total a number") from None
    return Registration(
        event_id.lower(),
        track_id,
        registration_id.lower(),
        status,
        first_name=cell("first_name"),
        last_name=cell("last_name"),
        email_address=cell("email_address"),
        payment_status=cell("payment_status").upper(),
        registration_time=cell("registration_time") or DEFAULT_REGISTRATION_TIME,
        tickets=tickets,
        total=total,
    )
