"""Where the CPU-bound part of intake runs: threads of the gateway process, or worker processes on other cores.

:meth:`Broker.submit <gateway.broker.Broker.submit>` hands each submission's verification, mapping and signing
(``Broker._process``, the unit of work) to an :class:`IntakeRunner`:

* :class:`ThreadIntake` (``[gateway] intake_processes = 0``, the default): one of the gateway's CPU threads
  (:mod:`gateway.cpu`). Python's GIL keeps that work on about one core, shared with the event loop.
* :class:`ProcessIntake` (``intake_processes = N``): N worker processes, started with the gateway (``spawn``: no
  state, lock or HSM session is inherited). Each builds its own broker from the same frozen configuration through
  the composition root (:meth:`gateway.api.Gateway.intake_broker`: the configured verifier, mapper and signer; an
  HSM key opens its own PKCS#11 session, revocation caches are per process) and runs the very same
  ``Broker._process``. A submission goes to an idle process over a pipe with what that process has not seen yet:
  the configuration after a reload (:meth:`ProcessIntake.reconfigure`, applied before its next submission), the
  reference-list versions the gateway process refreshed (by their head), and the gateway time of the dispatch
  (the worker's clock moves on from it with the monotonic clock, so stored times follow the gateway's clock).
  The answer is the same tuple the thread returns; a coded error comes back as the same class with the same
  code, field, details and incident id. A worker that dies (crash, kill) after it was sent a submission fails
  only that submission with ``INTAKE_WORKER_LOST`` (nothing stored) and is replaced in the background; the others
  keep serving. A worker that dies idle is replaced as soon as its process ends (its sentinel is watched by the
  event loop), and a submission that could not be sent to a worker because it had died meanwhile goes to another:
  only a worker that had the submission can lose it.

The store, the journal, deduplication and the acknowledgement stay in the gateway process, so durability is
unchanged: the acknowledgement still follows the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import multiprocessing
import pickle
import signal
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from gateway.config import Config
from gateway.cpu import CpuThreads
from gateway.errors import GatewayError, IntakeWorkerLost, NswError
from gateway.model import CertificateAct, Delivery, Message
from gateway.reference import ReferenceDraft, ReferenceVersion
from signing.xml import Spliced

__all__ = ["IntakeRunner", "Processed", "ProcessIntake", "ReferenceSnapshot", "ThreadIntake"]

log = logging.getLogger("nswgw.intake")

Processed = tuple[Message, list[Delivery], bytes | Spliced, CertificateAct | None]
"""What ``Broker._process`` returns: the message, its deliveries, the evidence to keep, the certificate act."""

ProcessFn = Callable[[Message, list[bytes], list[ReferenceDraft] | None], Processed]

ReferenceSnapshot = tuple[int, Mapping[str, tuple[ReferenceVersion, ...]]]
"""The reference data of the gateway process: its head (``seq`` of the newest version loaded) and the versions."""

_PROTOCOL = pickle.HIGHEST_PROTOCOL


class IntakeRunner(Protocol):
    """Runs ``Broker._process`` for :meth:`Broker.submit`, in whatever thread or process it uses."""

    async def process(self, message: Message, document: list[bytes], drafts: list[ReferenceDraft]) -> Processed:
        """``Broker._process(message, document, drafts)``: takes the one document out of ``document`` and appends
        the reference-list version it publishes, if any, to ``drafts``."""
        ...

    def reconfigure(self, config: Config) -> None:
        """Process with ``config`` (and a verifier built from it) from the next submission."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ThreadIntake:
    """``Broker._process`` in one of the gateway's CPU threads (``intake_processes = 0``; :mod:`gateway.cpu`)."""

    def __init__(self, process: ProcessFn, cpu: CpuThreads) -> None:
        self._process = process
        self._cpu = cpu

    async def process(self, message: Message, document: list[bytes], drafts: list[ReferenceDraft]) -> Processed:
        return await self._cpu.run(self._process, message, document, drafts)

    def reconfigure(self, config: Config) -> None:
        return None  # the broker's own collaborators are the ones the thread uses

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


# ------------------------------------------------------------------------------------------ errors across the pipe


def _error_state(exc: BaseException) -> tuple[str, Any]:
    """``exc`` as it can cross the pipe: a coded error by its class and attributes (its constructor need not take
    them back), anything else pickled with the worker's traceback as a note, else as a ``GATEWAY_INTERNAL``."""
    if isinstance(exc, NswError):
        cls = type(exc)
        state = dict(exc.__dict__)
        try:
            pickle.dumps(state, _PROTOCOL)
        except Exception:  # noqa: BLE001 - details that cannot be pickled: sent as text
            state["details"] = {key: repr(value) for key, value in exc.details.items()}
        return "nsw", (cls.__module__, cls.__qualname__, exc.message, state)
    exc.add_note("in the intake worker process:\n" + "".join(traceback.format_exception(exc)))
    try:
        return "exception", pickle.dumps(exc, _PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that does not pickle is reported by its text
        return "nsw", (GatewayError.__module__, GatewayError.__qualname__, f"{type(exc).__name__}: {exc}", {})


def _rebuilt_error(kind: str, value: Any) -> BaseException:
    """The exception :func:`_error_state` sent."""
    if kind == "exception":
        exc: BaseException = pickle.loads(value)
        return exc
    module, qualname, message, state = value
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    built: BaseException = error
    return built


# ---------------------------------------------------------------------------------------------- the worker process


class _DispatchClock:
    """A worker's gateway time: the gateway process's time at dispatch, moved on by this process's monotonic
    clock while the submission is processed."""

    def __init__(self) -> None:
        self._at = time.time()
        self._mono = time.monotonic()

    def dispatched(self, at: float) -> None:
        self._at, self._mono = at, time.monotonic()

    def now(self) -> float:
        return self._at + (time.monotonic() - self._mono)

    def monotonic(self) -> float:
        return time.monotonic()

    def not_before(self, at: float) -> None:
        self._at = max(self._at, at)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _worker_main(conn: Connection, config_bytes: bytes) -> None:
    """The loop of one worker process: build the broker, answer ``ready``, then one reply per request until the
    pipe closes (the gateway stopped or died)."""
    # the gateway process stops its workers by closing their pipes, once its last submission is answered: a ^C or
    # a SIGTERM sent to the whole process group must not cut off the submissions it still holds
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from gateway.api import Gateway
    from gateway.security import build_verifier

    try:
        clock = _DispatchClock()
        broker, references = Gateway.intake_broker(pickle.loads(config_bytes), clock=clock)
    except BaseException as exc:  # noqa: BLE001 - reported to the gateway process, which refuses to start
        conn.send_bytes(pickle.dumps(("failed", _error_state(exc)), _PROTOCOL))
        return
    conn.send_bytes(pickle.dumps(("ready", None), _PROTOCOL))
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        config, snapshot, message, raw, at = pickle.loads(request)
        del request
        try:
            if config is not None:
                broker.reconfigure(config, build_verifier(config))
            if snapshot is not None:
                references.head, references.versions = snapshot[0], dict(snapshot[1])
            clock.dispatched(at)
            drafts: list[ReferenceDraft] = []
            document = [raw]
            del raw
            out = broker._process(message, document, drafts)
            reply = pickle.dumps(("ok", (*out, drafts)), _PROTOCOL)
            del out
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the submission it belongs to
            reply = pickle.dumps(("error", _error_state(exc)), _PROTOCOL)
        conn.send_bytes(reply)
        del reply


# ----------------------------------------------------------------------------------------------- the gateway side


class _Worker:
    """The gateway process's handle on one worker process: its pipe and what it has been sent so far."""

    def __init__(self, config: Config, generation: int, index: int) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main,
            args=(theirs, pickle.dumps(config, _PROTOCOL)),
            name=f"nswgw-intake-{index}",
            daemon=True,
        )
        self.process.start()
        theirs.close()  # the worker's end lives only in the worker, so its death is an EOF here
        self.conn = ours
        self.index = index
        self.generation = generation
        """The configuration generation this worker was built with or last sent."""
        self.head: int | None = None
        """The reference head last sent (None: none yet)."""
        self.lost = False
        """Found dead while idle and already being replaced: skipped where it still waits among the idle."""

    def ready(self) -> None:
        """Wait for the worker to have built its broker; raises what it failed with."""
        try:
            kind, value = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError) as exc:
            self.close()
            raise GatewayError(
                f"intake worker process {self.index} exited while starting (exit code {self.process.exitcode})",
                field="gateway.intake_processes",
            ) from exc
        if kind == "failed":
            self.close()
            raise _rebuilt_error(*value)

    def exited(self) -> bool:
        """Whether the process has ended, read from its sentinel: unlike ``Process.is_alive`` (a ``waitpid`` that
        another thread starting a process may reap first, and then reports a dead process alive) it cannot err."""
        return bool(wait([self.process.sentinel], 0))

    def call(self, request: bytes) -> tuple[str, Any]:
        """Send one request and wait for its reply. :class:`_Undelivered` if the worker was gone before it could
        read the request (its end of the pipe closed); ``INTAKE_WORKER_LOST`` if it dies after."""
        try:
            self.conn.send_bytes(request)
        except OSError as exc:
            raise _Undelivered(self.index) from exc
        try:
            reply = self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self.process.join(1)
            raise IntakeWorkerLost(
                f"intake worker process {self.index} (pid {self.process.pid}) died while processing this submission"
                f" (exit code {self.process.exitcode}); nothing was stored",
            ) from exc
        result: tuple[str, Any] = pickle.loads(reply)
        return result

    def close(self) -> None:
        """Close the pipe (the worker then exits) and reap the process."""
        self.conn.close()
        self.process.join(5)
        if not self.exited():
            self.process.kill()
            self.process.join()


class _Undelivered(Exception):
    """A request could not be written to a worker: the worker had died, so it never held the submission."""


class ProcessIntake:
    """``Broker._process`` in ``processes`` worker processes (see the module docstring). ``references`` gives the
    gateway process's reference data as it is when a submission is dispatched; ``clock`` its gateway time."""

    def __init__(
        self,
        config: Config,
        processes: int,
        *,
        references: Callable[[], ReferenceSnapshot],
        now: Callable[[], float],
    ) -> None:
        if processes < 1:
            raise ValueError("a process pool needs at least one process")
        self._config = config
        self._generation = 0
        self._processes = processes
        self._references = references
        self._now = now
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: dict[int, _Worker] = {}
        self._dispatched: set[int] = set()
        """The indexes of the workers holding a submission (or the answer to a cancelled one)."""
        self._replacing: set[asyncio.Task[None]] = set()
        self._stopped = False

    @property
    def pids(self) -> tuple[int, ...]:
        """The process ids of the running workers (for operators and tests)."""
        return tuple(w.process.pid for w in self._workers.values() if w.process.pid is not None)

    @property
    def busy(self) -> int:
        """How many workers hold a submission now."""
        return len(self._dispatched)

    async def start(self) -> None:
        """Start every worker and wait until each has built its broker; raises the first failure."""
        self._stopped = False
        started = await asyncio.gather(
            *(asyncio.to_thread(self._spawn, index) for index in range(self._processes)), return_exceptions=True
        )
        failure = next((r for r in started if isinstance(r, BaseException)), None)
        if failure is not None:
            for worker in started:
                if isinstance(worker, _Worker):
                    worker.close()
            raise failure
        for worker in started:
            assert isinstance(worker, _Worker)
            self._workers[worker.index] = worker
            self._idle_again(worker)

    def _spawn(self, index: int) -> _Worker:
        worker = _Worker(self._config, self._generation, index)
        worker.ready()
        return worker

    def reconfigure(self, config: Config) -> None:
        self._config = config
        self._generation += 1

    async def process(self, message: Message, document: list[bytes], drafts: list[ReferenceDraft]) -> Processed:
        raw = document.pop()
        while True:
            worker = await self._take()
            try:
                config = self._config if worker.generation != self._generation else None
                head, versions = self._references()
                snapshot = (head, dict(versions)) if worker.head != head else None
                request = pickle.dumps((config, snapshot, message, raw, self._now()), _PROTOCOL)
            except BaseException:
                self._idle_again(worker)
                raise
            call = asyncio.ensure_future(asyncio.to_thread(worker.call, request))
            del request
            try:
                kind, value = await asyncio.shield(call)
            except asyncio.CancelledError:
                # the worker answers anyway: it serves again once it has, not while its pipe still holds that answer
                call.add_done_callback(functools.partial(self._returned, worker))
                raise
            except _Undelivered:
                self._replace(worker)  # it never had the submission, which goes to the next idle worker
                continue
            except IntakeWorkerLost:
                self._replace(worker)
                raise
            break
        del raw
        if config is not None:
            worker.generation = self._generation if self._config is config else worker.generation
        worker.head = head
        self._idle_again(worker)
        if kind == "error":
            raise _rebuilt_error(*value)
        message, deliveries, kept, certificate, published = value
        drafts.extend(published)
        return message, deliveries, kept, certificate

    async def _take(self) -> _Worker:
        """The next idle worker whose process is running; the dead ones met on the way are replaced."""
        while True:
            worker = await self._idle.get()
            if worker.lost:
                continue
            asyncio.get_running_loop().remove_reader(worker.process.sentinel)
            if worker.exited():
                self._replace(worker)
                continue
            self._dispatched.add(worker.index)
            return worker

    def _idle_again(self, worker: _Worker) -> None:
        """``worker`` waits for a submission, replaced at once if its process ends meanwhile."""
        self._dispatched.discard(worker.index)
        asyncio.get_running_loop().add_reader(worker.process.sentinel, self._died_idle, worker)
        self._idle.put_nowait(worker)

    def _died_idle(self, worker: _Worker) -> None:
        asyncio.get_running_loop().remove_reader(worker.process.sentinel)
        worker.lost = True
        self._replace(worker)

    def _returned(self, worker: _Worker, call: asyncio.Future[tuple[str, Any]]) -> None:
        """A worker whose submission was cancelled has answered: idle again, or replaced if it died meanwhile."""
        if call.cancelled() or call.exception() is not None:
            self._replace(worker)
        else:
            self._idle_again(worker)

    def _replace(self, lost: _Worker) -> None:
        """Start a new worker in the place of ``lost`` in the background (again every second while that fails);
        the others keep serving."""
        index = lost.index
        if self._workers.get(index) is not lost:
            return  # stopped, or replaced already
        del self._workers[index]
        self._dispatched.discard(index)
        if self._stopped:
            lost.close()
            return
        log.error("intake worker process %d (pid %s) died; starting another", index, lost.process.pid)

        async def replace() -> None:
            await asyncio.to_thread(lost.close)
            while not self._stopped:
                try:
                    worker = await asyncio.to_thread(self._spawn, index)
                except Exception:
                    log.exception("intake worker process %d could not be restarted; trying again", index)
                    await asyncio.sleep(1.0)
                    continue
                if self._stopped:
                    await asyncio.to_thread(worker.close)
                    return
                self._workers[index] = worker
                self._idle_again(worker)
                return

        task = asyncio.get_running_loop().create_task(replace())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def stop(self) -> None:
        """Stop every worker (each exits when its pipe closes)."""
        self._stopped = True
        for task in list(self._replacing):
            with contextlib.suppress(Exception):
                await task
        workers, self._workers = list(self._workers.values()), {}
        loop = asyncio.get_running_loop()
        while not self._idle.empty():
            loop.remove_reader(self._idle.get_nowait().process.sentinel)
        self._dispatched.clear()
        await asyncio.gather(*(asyncio.to_thread(w.close) for w in workers))
