"""The bytes on the wire that every HTTP call of batcher shares: its User-Agent and a bounded read of a body."""

from __future__ import annotations

import aiohttp

MAX_RESPONSE_BYTES = 1 << 20

READ_CHUNK_BYTES = 64 * 1024

USER_AGENT = "batcher/0.1 (bulk registration status updates)"


class BodyTooLarge(Exception):
    """An answer's body is past MAX_RESPONSE_BYTES."""


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The whole body, however many pieces it arrives in, up to limit bytes.

    Raises:
        BodyTooLarge: the body (by Content-Length or as read) is longer than limit.
    """
    if response.content_length is not None and response.content_length > limit:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    while chunk := await response.content.read(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)
