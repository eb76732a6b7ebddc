"""Clocks for the tests that must fix what the gateway reads as the time."""

from __future__ import annotations

from gateway.clock import SystemClock

__all__ = ["HeldClock"]


class HeldClock:
    """The system clock, except that :attr:`held` (when set) is what :meth:`now` answers."""

    def __init__(self) -> None:
        self.inner = SystemClock()
        self.held: float | None = None

    def now(self) -> float:
        return self.held if self.held is not None else self.inner.now()

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def not_before(self, at: float) -> None:
        self.inner.not_before(at)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
