"""Per-key rate limiting: a token bucket per key id, in each service process.

`burst` requests may come at once; the bucket refills at `rate` per second. The
answer carries what the X-RateLimit-* and Retry-After headers need.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # seconds to wait when refused

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, list[float]] = {}  # key id -> [tokens, last refill]
        self._lock = threading.Lock()

    def check(self, key_id: str, rate: float | None = None, burst: int | None = None) -> Decision:
        rate = rate or self.rate
        burst = burst or self.burst
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = [float(burst), now]
            tokens = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            bucket[0], bucket[1] = tokens, now
        return Decision(
            allowed, burst, int(tokens),
            math.ceil((burst - tokens) / rate) if rate > 0 else 0,
            max(1, math.ceil((1.0 - tokens) / rate)) if rate > 0 else 60,
        )
