"""Request bodies back from their skeleton and content-addressed parts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from nexus.adapters.persistence.tables import body_parts
from nexus.domain.body_codec import compose, part_digests
from nexus.domain.stored_compression import decompress_stored


async def compose_body(connection: AsyncConnection, skeleton: bytes) -> bytes:
    """The exact body from its skeleton and parts (a missing part raises: the data is damaged)."""
    digests = part_digests(skeleton)
    parts: dict[str, bytes] = {}
    if digests:
        rows = await connection.execute(
            select(body_parts.c.digest, body_parts.c.data).where(
                body_parts.c.digest.in_([bytes.fromhex(digest) for digest in digests])
            )
        )
        parts = {bytes(row.digest).hex(): decompress_stored(row.data) for row in rows}
    return compose(skeleton, parts)
