"""The threads that run the gateway process's CPU-bound work (``[gateway] cpu_threads``).

Verification, mapping and signing of a submission (when ``intake_processes = 0``) and the verification of signed
receipts get a pool of their own, apart from Python's default executor, which stays for blocking calls (files,
SOAP clients): CPU work never waits behind them and they never wait behind it. Their Python parts hold the GIL;
lxml and xmlsec release it while they parse, canonicalize and digest, which is what more threads than cores buy.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

THREAD_NAME_PREFIX = "nswgw-cpu"


class CpuThreads:
    """At most ``threads`` threads (named ``nswgw-cpu_N``), started on first use; ``None``: Python's default
    executor, for a broker or engine built without a gateway around it (tests, tools)."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` in one of the threads, with the caller's context variables (as
        :func:`asyncio.to_thread`)."""
        if self.threads is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=THREAD_NAME_PREFIX)
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Let the threads end once the work already handed to them is done; a later :meth:`run` starts new ones."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
