"""The gateway's clock: one time for what it stores, monotonic time for what it waits for.

* ``now()`` is *gateway time*, in seconds since the epoch: what is stored (received, queued, next attempt,
  deadline, history). :class:`SystemClock` reads the wall clock once, when it is built, and from then on moves
  it only with the monotonic clock: ``now() = wall_at_anchor + (monotonic() - monotonic_at_anchor)``. A step
  of the wall clock (an NTP step, ``date -s``, a VM resumed on another host) does not move gateway time, so it
  neither re-sends deliveries in flight, dead-letters fresh ones nor stalls the outboxes; NTP's slewing still
  passes through, since Linux slews ``CLOCK_MONOTONIC`` too. While the wall clock and gateway time differ by
  more than :attr:`SystemClock.tolerance`, one WARNING on ``nswgw.clock`` says by how much (again when that
  changes by as much); after a restart, gateway time is the wall clock again.
* ``monotonic()`` is for in-process intervals only (the breaker's open period, the expiry cadence).
* :meth:`Clock.not_before` is called at start with the newest time the store holds: a gateway started after
  the wall clock went back keeps going from there, never earlier than what it already stored. A *forward*
  jump across a restart cannot be told from the time the gateway was down (due retries and expired
  time-to-lives are then acted on, as after real downtime).
* Leases on a PostgreSQL store are set and expire by the database's clock (:mod:`gateway.store.postgres`),
  not by any node's; an embedded SQLite store belongs to one process and uses its gateway time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "SystemClock"]

log = logging.getLogger("nswgw.clock")


class Clock(Protocol):
    def now(self) -> float:
        """Gateway time (seconds since the epoch): what is stored and compared with stored times."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that only goes forward, for intervals measured within this process."""
        ...

    def not_before(self, at: float) -> None:
        """From now on, :meth:`now` is at least ``at`` (the newest time already stored)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Gateway time anchored on the wall clock once and moved by the monotonic clock; real sleeps.
    ``wall`` and ``monotonic`` are the sources (injected in tests)."""

    tolerance = 1.0
    """Seconds the wall clock may differ from gateway time before a WARNING says so."""

    def __init__(
        self, *, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._anchor_wall = wall()
        self._anchor_mono = monotonic()
        self._reported = 0.0

    def now(self) -> float:
        t = self._anchor_wall + (self._monotonic() - self._anchor_mono)
        drift = self._wall() - t
        if abs(drift - self._reported) >= self.tolerance:
            self._reported = drift if abs(drift) >= self.tolerance else 0.0
            if self._reported:
                log.warning(
                    "the wall clock is %+.1f s off gateway time (it was stepped); the gateway keeps its own time,"
                    " moved by the monotonic clock, until it restarts",
                    drift,
                )
            else:
                log.warning("the wall clock agrees with gateway time again")
        return t

    def monotonic(self) -> float:
        return self._monotonic()

    def not_before(self, at: float) -> None:
        behind = at - self.now()
        if behind > 0:
            self._anchor_wall += behind
            log.warning(
                "the wall clock is %.1f s behind the newest time in the store; gateway time goes on from there", behind
            )

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
