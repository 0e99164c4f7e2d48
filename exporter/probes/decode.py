"""A body a gateway compressed although the probe asked for `Accept-Encoding: identity`.

gzip and deflate are decoded with zlib as the bytes arrive, in pieces of at most PIECE bytes,
so the caps the probes apply to a body (iter_bounded, read_capped) count decoded bytes and a
small bomb is stopped after the cap, never inflated whole. Any other coding (br, zstd) fails
with a reason that says the answer was compressed, instead of "not valid UTF-8"."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from exporter.errors import BadResponse

__all__ = ["PIECE", "decoded"]

PIECE = 64 * 1024  # decoded bytes handed on at a time


def _wbits(encoding: str) -> int:
    """zlib's window bits for the coding: gzip's header, or (deflate) a zlib stream."""
    coding = encoding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        return 16 + zlib.MAX_WBITS
    if coding == "deflate":
        return zlib.MAX_WBITS
    raise BadResponse(
        f"the answer is compressed ({coding[:30]!r}) although the probe asked for identity"
    )


async def decoded(raw: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    """`raw` decoded (`identity` passes through)."""
    if encoding.strip().lower() in ("", "identity"):
        async for chunk in raw:
            yield chunk
        return
    decoder = zlib.decompressobj(wbits=_wbits(encoding))
    fed = False
    try:
        async for chunk in raw:
            fed = fed or bool(chunk)
            data = decoder.decompress(chunk, PIECE)
            while True:
                if data:
                    yield data
                if not decoder.unconsumed_tail:
                    break
                data = decoder.decompress(decoder.unconsumed_tail, PIECE)
        if fed and not decoder.eof:  # an empty body (a 204, a HEAD-like 200) is just empty
            raise BadResponse("the compressed answer ended early")
    except zlib.error:
        raise BadResponse("the compressed answer cannot be decoded") from None
