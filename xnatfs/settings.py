"""Tunables and their defaults, as frozen dataclasses.

Every network call in xnatfs takes a :class:`Timeouts`; there is no code path without one.
Sizes are in bytes, times in seconds. This module imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MiB = 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Connect and read timeouts for one HTTP call (seconds). ``read`` bounds each socket read."""

    connect: float = 10.0
    read: float = 30.0
    #: the longest one request without a body (or one read of a streamed body) may last in all, however
    #: steadily the server trickles (``read`` alone bounds only each wait); None: ``2 * read``
    total: float | None = None

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)

    @property
    def deadline(self) -> float:
        """The overall deadline of a request (``total``, else twice the read timeout)."""
        return self.total if self.total is not None else 2 * self.read


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls (GET/HEAD/PUT/DELETE/OPTIONS) on connection errors and 502/503/504.

    A ``Retry-After`` of at most ``max_retry_after`` seconds is honoured; a server asking for a longer
    wait gets no retry (its error is returned at once), so no call waits hours on a server's word.

    ``total`` retries follow a failed connection; ``status_retries`` (default ``total``) follow a
    502/503/504 answer: a server that is up but busy deserves more patience than one that is not
    there. Sleeps between tries are ``backoff_factor × 2ⁿ⁻¹`` (none before the first retry), at most
    ``backoff_max`` seconds.
    """

    total: int = 3
    backoff_factor: float = 0.2
    status_forcelist: tuple[int, ...] = (502, 503, 504)
    max_retry_after: int = 2
    status_retries: int | None = None
    backoff_max: float = 2.0


@dataclass(frozen=True)
class CacheSettings:
    """Metadata cache: entries expire after ``ttl`` seconds; at most ``maxsize`` entries."""

    ttl: float = 60.0
    maxsize: int = 20_000


@dataclass(frozen=True)
class ReadSettings:
    """The one ranged reader (:mod:`xnatfs.cache.blocks`), for ``File.open()`` and the mount alike.

    - ``first_block_size``: what the first read of a file, and any read that jumps elsewhere, fetches
      (at least): file managers sniff the first 16 KiB of many files and thumbnailers read headers,
      and neither must pull megabytes.
    - ``block_size``: the unit of sequential read-ahead (one fetch, one socket read of that size).
    - ``max_readahead``: how far ahead of a sequential reader blocks are fetched in the background;
      the distance grows with the run (twice what the reader consumed since the run began).
    - ``keep_behind``: how much a sequential reader keeps behind its position (the kernel's parallel
      reads arrive slightly out of order); older blocks are dropped at once.
    - ``max_blocks_per_handle`` × ``block_size`` bounds one open file; ``total_budget`` bounds all
      open files of a connection (or mount) together: idle files give their blocks back first, and
      the bytes a waiting read needs are always fetched, so the budget never deadlocks a read.
    - ``max_streams``: open files prefetching at once; beyond it the least recently used stops.
    - ``wait_timeout``: the longest a read waits for a block another thread is fetching.
    - ``failure_memory``: after a read failed, reads of that file that need the server fail at once
      with the same error for this long (0: off). The kernel retries a failed page itself, so without
      it one ``read()`` on the mount would wait for a hung server two or three times over.
    - ``kernel_read_ahead``: the mount only: the kernel's read-ahead for the mount (its request size,
      up to libfuse 3's 1 MiB), set through sysfs when the daemon may (root); 0 leaves the kernel's
      128 KiB. 1 MiB requests cost an eighth of the FUSE round trips (docs/performance.md).
    """

    block_size: int = 1 * MiB
    first_block_size: int = 128 * 1024
    max_readahead: int = 16 * MiB
    keep_behind: int = 1 * MiB
    max_blocks_per_handle: int = 32
    total_budget: int = 96 * MiB
    max_streams: int = 32
    wait_timeout: float = 30.0
    failure_memory: float = 0.0
    kernel_read_ahead: int = 1 * MiB


#: Seconds every request fails at once after one failed in transport (refused, reset, timed out): a
#: walk over a dead server then fails fast instead of waiting a timeout per request. 0 turns it off.
UNREACHABLE_HOLD = 2.0

#: The largest answer read into memory (listings, item documents, schemas); files are streamed.
MAX_DOCUMENT_SIZE = 128 * MiB


@dataclass(frozen=True)
class Settings:
    """Everything tunable, in one value passed down from connect() or the mount.

    ``max_document_size`` bounds every answer that is read into memory whole (decoded bytes): a
    larger one, or one whose ``Content-Length`` announces more, is a ServerError, not an allocation.

    ``unreachable_hold``: after a request failed in transport, every request of the session fails at
    once (``ServerUnreachable``) for this many seconds, then they are sent again; 0 turns it off. The
    library and the mount share the default (2 s): a script looping over objects on a dead server
    deserves the same fast failure as ``ls -R``, and 2 s is short enough not to hide a recovery.
    """

    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache: CacheSettings = field(default_factory=CacheSettings)
    read: ReadSettings = field(default_factory=ReadSettings)
    max_document_size: int = MAX_DOCUMENT_SIZE
    unreachable_hold: float = UNREACHABLE_HOLD


DEFAULT_SETTINGS = Settings()
