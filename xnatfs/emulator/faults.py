"""Fault injection and request counting, for tests and benchmarks only.

A real XNAT has none of this. The switches model a network and a misbehaving server: a delay per
request (a round trip), a cap on the total rate of response bodies across all connections (a link),
a random failure rate (503, which clients may retry), and ignoring ``Range`` as some real servers do.
They can be changed while clients are connected (``/emulator/faults``), so every field is read under
one lock and the token bucket is shared by all threads.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Iterable, Iterator

MiB = 1024 * 1024
#: Largest piece of a response body sent before the bucket is consulted again.
THROTTLE_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FaultSettings:
    """One consistent set of switches. Frozen: an update replaces the whole object, so every request
    reads one snapshot without copying it (it is read twice per request, on every request)."""

    latency_ms: float = 0.0
    bandwidth_mibps: float = 0.0  # 0 = unlimited
    fail_rate: float = 0.0
    fail_status: int = 503
    no_range: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TokenBucket:
    """A shared byte budget refilled at ``rate`` bytes/s; ``consume`` sleeps until the bytes are allowed.

    Burst is one chunk, so the long-run rate across all connections never exceeds ``rate``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_free = time.monotonic()

    def consume(self, nbytes: int, rate: float) -> None:
        if rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_free)
            self._next_free = start + nbytes / rate
            wait = self._next_free - now - THROTTLE_CHUNK / rate
        if wait > 0:
            time.sleep(wait)


class Faults:
    """The current fault settings plus the request counter; thread-safe."""

    def __init__(self, settings: FaultSettings | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._random = random.Random(seed)
        self._counts: collections.Counter[str] = collections.Counter()
        self.bucket = TokenBucket()

    @property
    def settings(self) -> FaultSettings:
        """The current switches: an immutable snapshot (replacing it is atomic)."""
        return self._settings

    def update(self, **changes: Any) -> FaultSettings:
        """Change some switches; unknown names raise ValueError, values are coerced to the field type."""
        known = {f.name for f in fields(FaultSettings)}
        with self._lock:
            coerced = {}
            for name, value in changes.items():
                if name not in known:
                    raise ValueError(f"unknown fault setting: {name}")
                current = getattr(self._settings, name)
                if isinstance(current, bool):
                    value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
                else:
                    value = type(current)(value)
                coerced[name] = value
            self._settings = replace(self._settings, **coerced)
            return self._settings

    def should_fail(self) -> bool:
        with self._lock:
            rate = self._settings.fail_rate
            return rate > 0 and self._random.random() < rate

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self._counts.values()), "by_route": dict(self._counts)}

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def throttle(self, body: Iterable[bytes]) -> Iterator[bytes]:
        """Yield ``body`` in pieces no faster than the bandwidth setting allows (re-read per piece)."""
        for chunk in body:
            for start in range(0, len(chunk), THROTTLE_CHUNK):
                piece = chunk[start:start + THROTTLE_CHUNK]
                self.bucket.consume(len(piece), self.settings.bandwidth_mibps * MiB)
                yield piece
