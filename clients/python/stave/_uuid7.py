"""UUIDv7 message ids (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits."""

from __future__ import annotations

import os
import time

# The variant group's first hex digit: bits 10 then two random bits.
_VARIANT_DIGITS = "89ab"


def uuid7() -> str:
    """One UUIDv7, as its canonical 36-character string."""
    return uuid7_many(1)[0]


def uuid7_many(count: int) -> list[str]:
    """``count`` UUIDv7 strings of the current millisecond (one read of the random source)."""
    ms = time.time_ns() // 1_000_000
    stamp = (ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big").hex()
    head = f"{stamp[:8]}-{stamp[8:12]}-7"
    rand = os.urandom(10 * count).hex()  # 20 hex digits per id, 74 of their 80 bits used
    variant = _VARIANT_DIGITS
    return [
        f"{head}{rand[i + 1:i + 4]}-{variant[int(rand[i + 4], 16) & 3]}{rand[i + 5:i + 8]}-"
        f"{rand[i + 8:i + 20]}"
        for i in range(0, 20 * count, 20)
    ]
