"""UUIDv7 message ids (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits."""

from __future__ import annotations

import os
import time

_VERSION_VARIANT = (0x7 << 76) | (0b10 << 62)
_RAND_B_MASK = (1 << 62) - 1


def _format(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7() -> str:
    """One UUIDv7, as its canonical 36-character string."""
    return uuid7_many(1)[0]


def uuid7_many(count: int) -> list[str]:
    """``count`` UUIDv7 strings of the current millisecond (one read of the random source)."""
    ms = time.time_ns() // 1_000_000
    stamp = (ms & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_VARIANT
    rand = os.urandom(10 * count)
    ids = []
    for i in range(0, 10 * count, 10):
        r = int.from_bytes(rand[i : i + 10], "big")
        # 12 bits of rand_a above the variant, 62 bits of rand_b below it.
        ids.append(_format(stamp | ((r >> 68) << 64) | (r & _RAND_B_MASK)))
    return ids
