"""Latest-value hand-off between threads: a producer overwrites, a consumer takes the newest.

Never a queue: a slow consumer skips stale values instead of falling behind, so latency cannot grow
with time (the property live driving needs).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestValue(Generic[T]):
    """One slot holding the newest value and a version counter (incremented by every `put`)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._value: T | None = None
        self._version = 0
        self._closed = False

    @property
    def version(self) -> int:
        return self._version

    def put(self, value: T) -> None:
        with self._cond:
            self._value = value
            self._version += 1
            self._cond.notify_all()

    def peek(self) -> tuple[T | None, int]:
        """(newest value or None, its version) without waiting."""
        with self._cond:
            return self._value, self._version

    def wait_newer(self, seen_version: int, timeout: float | None = None) -> tuple[T | None, int]:
        """Block until a value newer than `seen_version` arrives (or timeout / close); returns
        (value, version), value None when nothing newer came."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > seen_version or self._closed, timeout)
            if self._version > seen_version:
                return self._value, self._version
            return None, seen_version

    def close(self) -> None:
        """Wake every waiter (used when the producer stops)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
