"""UUIDv7 message ids (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

Random bits come from ``os.urandom`` through a small pool (a system call per id costs more
than the rest of a publish on some kernels); the pool is emptied in a forked child, so
parent and child never hand out the same bits.
"""

from __future__ import annotations

import os
import threading
import time

# The variant group's first hex digit: bits 10 then two random bits.
_VARIANT_DIGITS = "89ab"
_HEX_PER_ID = 20  # 10 random bytes, 74 of their 80 bits used
_POOL_IDS = 256

_lock = threading.Lock()
_pool = ""
_pool_index = 0


def _reset_pool() -> None:
    global _pool, _pool_index
    _pool = ""
    _pool_index = 0


os.register_at_fork(after_in_child=_reset_pool)


def _random_hex(count: int) -> str:
    """``count`` ids' worth of random hex digits, each handed out once."""
    global _pool, _pool_index
    want = count * _HEX_PER_ID
    if count >= _POOL_IDS:
        return os.urandom(want // 2).hex()
    with _lock:
        if _pool_index + want > len(_pool):
            _pool = os.urandom(_POOL_IDS * _HEX_PER_ID // 2).hex()
            _pool_index = 0
        start = _pool_index
        _pool_index = start + want
        return _pool[start : start + want]


def uuid7() -> str:
    """One UUIDv7, as its canonical 36-character string."""
    return uuid7_many(1)[0]


def uuid7_many(count: int) -> list[str]:
    """``count`` UUIDv7 strings of the current millisecond."""
    ms = time.time_ns() // 1_000_000
    stamp = (ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big").hex()
    head = f"{stamp[:8]}-{stamp[8:12]}-7"
    rand = _random_hex(count)
    variant = _VARIANT_DIGITS
    return [
        f"{head}{rand[i + 1:i + 4]}-{variant[int(rand[i + 4], 16) & 3]}{rand[i + 5:i + 8]}-"
        f"{rand[i + 8:i + 20]}"
        for i in range(0, _HEX_PER_ID * count, _HEX_PER_ID)
    ]
