"""One background task repeated on an interval: the gateway's archiving, journal anchoring and certificate watch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Periodic"]


class Periodic:
    """Runs ``action`` every ``interval`` seconds (the first time one interval after :meth:`start`) until
    :meth:`stop`. A round that raises is logged on ``log`` as ``failure`` with its traceback and the next round
    runs at the next interval."""

    def __init__(
        self,
        name: str,
        interval: float,
        action: Callable[[], Awaitable[object]],
        *,
        log: logging.Logger,
        failure: str,
    ) -> None:
        self.name, self.interval, self.action = name, interval, action
        self._log, self._failure = log, failure
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task (a round in progress is cut off) and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.action()
            except Exception:  # noqa: BLE001 - logged, retried at the next interval
                self._log.exception("%s", self._failure)
