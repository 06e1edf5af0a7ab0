"""Fault injection of the local gallery: quotas, rate limits, transient failures, latency.

The tests (and benchmarks) change a running server's FaultConfig fields at will; every
API call reads the current values.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

QpsMode = Literal["strict", "bucket"]

#: the API's quota day starts at 00:00 UTC+8
_QUOTA_DAY_OFFSET: Final = 8 * 3600.0


@dataclass
class FaultConfig:
    """What the server does wrong on purpose. Mutable while the server runs."""

    #: fraction (0-1) of API calls answered with a transient failure: error codes
    #: 1/2/282000/216630, HTTP 502, and dropped connections, in turn
    transient_rate: float = 0.0
    #: calls per second above which the server answers error 18; 0 = no limit
    qps_limit: float = 0.0
    #: how ``qps_limit`` counts: "strict" admits at most ``qps_limit`` calls in any sliding
    #: second, with no burst (the strictest limiter the real service may have); "bucket" is a
    #: token bucket holding one second of calls, so a one-second window may see up to about
    #: twice ``qps_limit``
    qps_mode: QpsMode = "strict"
    #: API calls allowed per quota day (00:00 UTC+8), counted from the start of the day
    #: or from when this value last changed, whichever is later; the next calls answer
    #: error 17; 0 = no limit
    daily_limit: int = 0
    #: seconds an access_token is valid after it was issued (checked at each call, so
    #: lowering it expires tokens already issued); then error 111
    token_lifetime: float = 30 * 86400.0
    #: seconds added to every API call before it is answered
    latency: float = 0.0
    #: galleries that answer every call with 216017 (not initialized)
    not_initialized: frozenset[str] = field(default_factory=frozenset)
    #: fraction (0-1) of add calls that are made and whose answer is then lost (the
    #: connection drops after the item was added: a crash or a network cut at the worst time)
    lost_answer_rate: float = 0.0
    #: answer 216681 without naming the existing item (as a proxy or an older API version
    #: may): the client must find the item by searching
    anonymous_exists: bool = False


class TransientFault(enum.Enum):
    """The transient failures the server injects, in the order it cycles through them."""

    UNKNOWN_ERROR = 1
    SERVICE_UNAVAILABLE = 2
    INTERNAL_ERROR = 282000
    RECOGNIZE_ERROR = 216630
    BAD_GATEWAY = 502
    DROPPED_CONNECTION = 0

    @property
    def error_code(self) -> int | None:
        """The API error code answered, or None for HTTP 502 and dropped connections."""
        if self in (TransientFault.BAD_GATEWAY, TransientFault.DROPPED_CONNECTION):
            return None
        return int(self.value)


_FAULT_CYCLE: Final = tuple(TransientFault)


class SlidingWindowLimit:
    """At most ``count`` admitted calls in any window of ``count / rate`` seconds, no burst.

    For a whole ``rate`` (10 calls/s) that is ``rate`` calls in any sliding second; a call is
    admitted iff fewer than ``count`` calls were admitted in ``(now - window, now]``. Refused
    calls do not count. Not thread-safe: the caller holds a lock.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        #: calls a window admits (at least one: a rate below 1/s spreads one call further)
        self.count = max(1, math.floor(rate))
        #: seconds of the window
        self.window = self.count / rate
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> bool:
        """Whether a call arriving at ``now`` (seconds, monotonic) is admitted; counts it."""
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) >= self.count:
            return False
        self._admitted.append(now)
        return True


class FaultInjector:
    """Applies a FaultConfig to the stream of API calls (thread-safe).

    The QPS limit is strict by default (:class:`SlidingWindowLimit`); with ``qps_mode =
    "bucket"`` it is a token bucket holding one second of calls (at least one), so any
    one-second window admits at most about ``qps_limit`` calls plus that burst.
    ``clock``: the monotonic seconds the QPS limit counts in.
    """

    def __init__(
        self,
        config: Callable[[], FaultConfig],
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._window: SlidingWindowLimit | None = None
        self._random = random.Random(seed)
        self._day = -1
        self._day_calls = 0
        self._daily_limit = 0
        self._bucket = 0.0
        self._bucket_at = clock()
        self._bucket_rate = 0.0
        self._next_fault = 0

    def admit(self) -> int | None:
        """Count one authenticated API call: None if admitted, else 17 or 18."""
        config = self._config()
        with self._lock:
            now = self._clock()  # under the lock: admit times are counted in order
            day = int((time.time() + _QUOTA_DAY_OFFSET) // 86400)
            if day != self._day or config.daily_limit != self._daily_limit:
                # a new quota day, or a new quota: count afresh
                self._day, self._day_calls, self._daily_limit = day, 0, config.daily_limit
            if config.daily_limit > 0 and self._day_calls >= config.daily_limit:
                return 17
            rate = config.qps_limit
            if rate > 0 and config.qps_mode == "strict":
                if self._window is None or self._window.rate != rate:
                    self._window = SlidingWindowLimit(rate)  # a new limit counts afresh
                if not self._window.admit(now):
                    return 18
            elif rate > 0:
                capacity = max(1.0, rate)
                if rate != self._bucket_rate:
                    # a new limit starts with a full second of calls
                    self._bucket_rate, self._bucket = rate, capacity
                else:
                    self._bucket = min(capacity, self._bucket + (now - self._bucket_at) * rate)
                self._bucket_at = now
                if self._bucket < 1.0:
                    return 18
                self._bucket -= 1.0
            if rate <= 0 or config.qps_mode != "bucket":
                self._bucket_rate = 0.0
            if rate <= 0 or config.qps_mode != "strict":
                self._window = None
            self._day_calls += 1
        return None

    def lose_answer(self) -> bool:
        """Whether to drop the connection after making this add (``lost_answer_rate``)."""
        rate = self._config().lost_answer_rate
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def transient(self) -> TransientFault | None:
        """The transient failure to inject into this call, if any."""
        rate = self._config().transient_rate
        with self._lock:
            if rate <= 0 or self._random.random() >= rate:
                return None
            fault = _FAULT_CYCLE[self._next_fault % len(_FAULT_CYCLE)]
            self._next_fault += 1
        return fault
