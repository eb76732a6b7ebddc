"""Delivery: per-destination workers that drain the outboxes with retries, breakers and bulkheads.

* **Retries are durable.** Each attempt is one claim of a leased delivery;
  a recoverable failure records ``QUEUED → FAILED → QUEUED`` with the next
  attempt time, so a crash loses no retry state. The policy is tenacity's:
  ``stop_after_attempt(max_attempts) | stop_after_delay(ttl)``,
  ``wait_exponential_jitter(initial, max_wait, jitter)`` and
  ``retry_if_exception_type(adapter.recoverable)``, evaluated on a
  ``RetryCallState`` rebuilt from the stored attempt count and queue time
  (:class:`Backoff`). The message id is the same on every attempt.
* **Only recoverable errors are retried**: anything outside
  ``adapter.recoverable`` (``PARTNER_REJECTED``...) goes straight to the
  dead-letter queue with its code.
* **Time-to-live**: a delivery still undelivered at its deadline goes ``DEAD``
  (also while it waits behind an open breaker or an earlier message).
* **Circuit breaker** per destination (:class:`CircuitBreaker`): after
  ``failure_threshold`` consecutive recoverable failures (a receipt that does
  not acknowledge the message is one) nothing is claimed for ``reset_timeout``
  spread by ``jitter``, drawn afresh each time it opens; then one probe decides.
* **Bulkhead**: each destination has its own worker loop, its own adapter
  (and connection pool) and at most ``concurrency`` deliveries in flight, so
  one dead partner never slows the others.
* **Time** comes from :mod:`gateway.clock`: stored times are gateway time (immune to wall-clock steps), the
  breaker's open period and the expiry cadence are monotonic.
* **Conversation order**: the store only hands out the head of each
  conversation, so an amendment never overtakes its original. A dead head
  holds up the rest of its conversation (``conversation_on_dead = "hold"``,
  alerted at once, whether the head died of an error or of its own TTL; those reaching their TTL die with
  ``CONVERSATION_BLOCKED``)
  or is stepped over (``"skip"``).
* **An outcome is recorded, even across a store outage**: when the store is
  unavailable (a lost connection, a network cut) the worker keeps the result
  of the attempt and records it again (0.1 s doubling to 5 s) until the store
  answers or the worker stops, rather than letting the lease run out and the
  partner get the message a second time.
* **Receipts**: a delivery is ``ACKNOWLEDGED`` only once the
  :class:`~gateway.ports.ReceiptVerifier` accepts the receiver's receipt.
* **Content type**: each delivery is sent with the media type the broker
  stored on it (``Delivery.content_type``), not one derived here.
* **Shutdown leaves no lease behind**: a stopping worker claims nothing more,
  gives the attempts in flight ``[gateway] shutdown_grace`` seconds, cancels
  the rest, then records every delivery it still holds: the outcome if one was
  reached (a write interrupted by the cancellation is repeated; the store's
  compare-and-set makes a write that did land a no-op), else the lease is
  released back to ``QUEUED`` with the attempt not counted and a history step
  saying so. A released request may already have reached the partner: after a
  restart it is sent again with the same message id, for the receiver to
  deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import tenacity
from tenacity import retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential_jitter

from gateway.clock import Clock, SystemClock
from gateway.config import BreakerSettings, Config, DestinationSettings, RetryPolicy
from gateway.cpu import CpuThreads
from gateway.errors import (
    ConversationBlocked,
    GatewayError,
    InvalidTransition,
    NswError,
    PartnerUnavailable,
    ReceiptInvalid,
    StoreError,
    StoreUnavailable,
)
from gateway.events import Event, EventBus, NullEventBus, delivery_fields
from gateway.metrics import Metrics
from gateway.model import Delivery, State
from gateway.ports import Adapter, OutboundMessage, ReceiptVerifier
from gateway.store.base import Store

__all__ = ["Clock", "SystemClock", "Backoff", "CircuitBreaker", "DestinationWorker", "DeliveryEngine"]

log = logging.getLogger("nswgw.delivery")


class Backoff:
    """Tenacity's stop/wait/retry strategies applied to a stored delivery."""

    def __init__(self, policy: RetryPolicy, recoverable: tuple[type[BaseException], ...]) -> None:
        self.policy = policy
        self.stop = stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.ttl)
        self.wait = wait_exponential_jitter(multiplier=policy.initial, max=policy.max_wait, jitter=policy.jitter)
        self.retry = retry_if_exception_type(recoverable)
        self._retrying = tenacity.Retrying(stop=self.stop, wait=self.wait, retry=self.retry)

    def next_attempt(self, delivery: Delivery, error: BaseException, now: float) -> float | None:
        """When to try again after ``error`` (``delivery.attempts`` already counts it), or None to give up."""
        state = tenacity.RetryCallState(self._retrying, fn=None, args=(), kwargs={})
        state.attempt_number = max(1, delivery.attempts)
        state.start_time = delivery.queued_at
        state.outcome_timestamp = now
        state.outcome = tenacity.Future.construct(state.attempt_number, error, True)
        if not self.retry(state) or self.stop(state):
            return None
        return now + self.wait(state)


class CircuitBreaker:
    """Closed → (threshold consecutive failures) → open → (reset_timeout ± jitter) → half-open: one probe →
    closed/open. ``rng`` draws the spread of each open period (seed it in tests); ``on_change`` is called with
    ``"open"``, ``"half-open"`` (when the probe is let through) or ``"closed"`` at each transition."""

    def __init__(
        self,
        settings: BreakerSettings,
        clock: Clock,
        rng: random.Random | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_change = on_change or (lambda state: None)
        self.failures = 0
        self.opened_at: float | None = None
        self.open_for = settings.reset_timeout
        """How long the current open period lasts (``reset_timeout`` spread by ``jitter``)."""
        self.probing = False

    @property
    def probe_at(self) -> float | None:
        """When the circuit turns half-open (None while closed)."""
        return None if self.opened_at is None else self.opened_at + self.open_for

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock.monotonic() >= self.opened_at + self.open_for:  # the same sum as probe_at
            return "half-open"
        return "open"

    def allowance(self, wanted: int) -> int:
        """How many deliveries may be started now (of ``wanted``)."""
        state = self.state
        if state == "closed":
            return wanted
        if state == "half-open" and not self.probing and wanted > 0:
            self.probing = True
            self.on_change("half-open")
            return 1
        return 0

    def success(self) -> None:
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.probing = False
        if was_open:
            self.on_change("closed")

    def failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.settings.failure_threshold:
            reopened = self.opened_at is None or self.probing
            self.opened_at = self.clock.monotonic()
            spread = self.settings.jitter
            self.open_for = self.settings.reset_timeout * (1.0 + self.rng.uniform(-spread, spread))
            if reopened:
                self.on_change("open")
        self.probing = False


class DestinationWorker:
    """The outbox worker of one destination."""

    EXPIRE_EVERY = 1.0
    STORE_RETRY_INITIAL = 0.1
    STORE_RETRY_MAX = 5.0

    def __init__(
        self,
        name: str,
        settings: DestinationSettings,
        adapter: Adapter,
        store: Store,
        *,
        clock: Clock,
        metrics: Metrics,
        receipts: ReceiptVerifier,
        legacy_content_type: str,
        owner: str,
        lease: float,
        poll_interval: float,
        shutdown_grace: float = 10.0,
        rng: random.Random | None = None,
        events: EventBus | None = None,
        cpu: CpuThreads | None = None,
    ) -> None:
        """``rng``: the random source of the breaker's jitter (seeded in tests); ``shutdown_grace``: how long
        attempts in flight may go on after :meth:`stop` before they are cancelled and their leases released;
        ``events``: where the worker publishes each recorded outcome and breaker transition; ``cpu``: where a
        signed receipt is verified (by default Python's default executor)."""
        self.cpu = cpu if cpu is not None else CpuThreads(None)
        self.name = name
        self.settings = settings
        self.adapter = adapter
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.receipts = receipts
        self.owner = owner
        self.lease = max(lease, settings.timeout * 2)
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.backoff = Backoff(settings.retry, adapter.recoverable)
        self.events = events if events is not None else NullEventBus()
        self.breaker = CircuitBreaker(settings.breaker, clock, rng, on_change=self._breaker_changed)
        self.wake = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        self._signed_receipts = receipts.signed(name)
        self.legacy_content_type = legacy_content_type
        """Sent for a delivery queued without a content type (by a gateway before store schema 3)."""
        self._stopping = False
        self._last_expire = float("-inf")
        self._held: dict[str, Delivery] = {}
        """Claimed by this worker and not yet recorded, by message id."""
        self._outcomes: dict[str, Delivery] = {}
        """The result reached for a held delivery whose write has not completed yet."""

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    def _breaker_changed(self, state: str) -> None:
        name = {"open": "breaker_opened", "half-open": "breaker_half_open", "closed": "breaker_closed"}[state]
        fields: dict[str, object] = {"destination": self.name, "failures": self.breaker.failures}
        if state == "open":
            fields["open_seconds"] = round(self.breaker.open_for, 3)
        self.events.publish(Event(name, self.clock.now(), fields))

    def _announce(self, d: Delivery, started: float | None = None) -> None:
        """Publish what the recorded ``d`` has come to: delivered and receipt verified, a retry, a dead letter."""
        now = self.clock.now()
        if d.state is State.ACKNOWLEDGED:
            if started is not None:
                self.events.publish(
                    Event("delivered", now, delivery_fields(d, latency_seconds=round(now - started, 6)))
                )
            latency = round(now - d.queued_at, 6)
            self.events.publish(Event("receipt_verified", now, delivery_fields(d, latency_seconds=latency)))
        elif d.state is State.QUEUED and d.last_error is not None:
            at = datetime.fromtimestamp(d.next_attempt_at, UTC).isoformat()
            self.events.publish(Event("retry_scheduled", now, delivery_fields(d, next_attempt_at=at)))
        elif d.state is State.DEAD:
            self.events.publish(Event("dead_lettered", now, delivery_fields(d)))

    async def run(self) -> None:
        try:
            while not self._stopping:
                self.wake.clear()  # cleared before the step, so that a wake-up during it is not lost
                try:
                    busy = await self._step()
                except NswError as exc:  # e.g. the store is briefly unavailable: keep the worker alive
                    log.error(
                        "outbox %s: %s",
                        self.name,
                        exc,
                        extra={"destination": self.name, "code": exc.code, "incident_id": exc.incident_id},
                    )
                    if isinstance(exc, StoreError):
                        fields = {"destination": self.name, "code": exc.code, "incident_id": exc.incident_id}
                        self.events.publish(Event("store_fault", self.clock.now(), fields))
                    busy = False
                if busy:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_interval)
        finally:
            await self._drain()

    async def _drain(self) -> None:
        """Let the attempts in flight finish within the grace period, cancel the rest, hand back what is held."""
        if self.inflight:
            _, pending = await asyncio.wait(set(self.inflight), timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        now = self.clock.now()
        for key, d in list(self._held.items()):
            outcome = self._outcomes.get(key)
            final = outcome or d.released(
                f"lease released at shutdown of {self.owner}: sent again with the same message id", at=now
            )
            try:
                await self.store.record(final, owner=self.owner, now=now)
            except InvalidTransition:  # the interrupted write did land, or the lease is no longer ours
                pass
            except NswError as exc:
                log.error("outbox %s: cannot hand back %s at shutdown (its lease runs out): %s", self.name, key, exc)
            else:
                if outcome is None:
                    log.info("outbox %s: released %s at shutdown", self.name, key)
            self._forget(key)

    def _forget(self, key: str) -> None:
        self._held.pop(key, None)
        self._outcomes.pop(key, None)

    async def _step(self) -> bool:
        """Expire, then claim and start what the bulkhead and breaker allow. True if it should go again at once."""
        now = self.clock.now()
        if self.clock.monotonic() - self._last_expire >= self.EXPIRE_EVERY:
            self._last_expire = self.clock.monotonic()
            expired = await self.store.expire(
                self.name,
                now=now,
                code=PartnerUnavailable.code,
                detail=f"time-to-live of {self.settings.retry.ttl}s expired before delivery to {self.name}",
                on_dead=self.settings.conversation_on_dead,
            )
            for d in expired:
                self.metrics.dead_lettered(self.name, (d.last_error or {}).get("code", PartnerUnavailable.code))
                self._announce(d)
            for d in expired:  # a head dying at its time-to-live holds its followers like one dying of an error
                if (d.last_error or {}).get("code") != ConversationBlocked.code:
                    await self._head_died(d)
        free = self.settings.concurrency - len(self.inflight)
        n = self.breaker.allowance(free) if free > 0 else 0
        claimed: list[Delivery] = []
        if n > 0:
            claimed = await self.store.claim(
                self.name,
                owner=self.owner,
                limit=n,
                now=now,
                lease=self.lease,
                on_dead=self.settings.conversation_on_dead,
            )
            if not claimed and self.breaker.probing:  # nothing to probe with: let the next claim probe
                self.breaker.probing = False
        self.metrics.circuit(self.name, open_=self.breaker.state != "closed")
        for d in claimed:
            self._held[d.message_id] = d
        if self._stopping:  # stopped while claiming: the drain hands these back unsent
            return False
        for d in claimed:
            task = asyncio.create_task(self._attempt(d), name=f"deliver {d.message_id}->{self.name}")
            self.inflight.add(task)
            task.add_done_callback(self._done)
        return bool(claimed) and len(claimed) == n

    def _done(self, task: asyncio.Task[None]) -> None:
        self.inflight.discard(task)
        self.wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def _attempt(self, d: Delivery) -> None:
        out = OutboundMessage(
            message_id=d.message_id,
            payload=d.payload,
            sender=d.sender,
            document_type=d.document_type,
            conversation=d.conversation,
            reference=d.reference,
            content_type=self.legacy_content_type if d.content_type is None else d.content_type,
            on_behalf_of=d.on_behalf_of,
        )
        started = self.clock.now()
        try:
            receipt = await self.adapter.deliver(out)
        except self.adapter.recoverable as exc:
            error = exc if isinstance(exc, NswError) else PartnerUnavailable(str(exc), field=self.name)
            self.breaker.failure()
            result = self._failed(d, error)
        except NswError as exc:
            self.breaker.success()  # the partner answered: it is up
            result = d.attempt_failed(exc, at=self.clock.now()).dead(exc, at=self.clock.now())
            self.metrics.dead_lettered(self.name, exc.code)
        except Exception as exc:  # an adapter bug must not lose the message: park it in the DLQ
            error = GatewayError(
                f"adapter {self.settings.adapter} failed: {type(exc).__name__}: {exc}",
                field=f"destinations.{self.name}.adapter",
            )
            log.exception("adapter %s raised an untranslated exception", self.settings.adapter)
            result = d.attempt_failed(error, at=self.clock.now()).dead(error, at=self.clock.now())
            self.metrics.dead_lettered(self.name, error.code)
        else:
            now = self.clock.now()
            result = d.delivered(at=now)
            try:
                if self._signed_receipts:  # crypto: off the event loop
                    kept = await self.cpu.run(self.receipts.verify, receipt, d.message_id, self.name, payload=d.payload)
                else:
                    kept = self.receipts.verify(receipt, d.message_id, self.name, payload=d.payload)
            except ReceiptInvalid as exc:  # answering 200 with garbage must not keep the circuit closed
                self.breaker.failure()
                result = self._failed(result, exc)
            else:
                self.breaker.success()
                result = result.acknowledged(kept, at=now)
                self.metrics.delivered(self.name, now - d.queued_at)
        self._outcomes[d.message_id] = result
        try:
            if not await self._record_outcome(result):
                return  # stopping: the drain records it
        except InvalidTransition:
            self._forget(d.message_id)
            log.warning("lost the lease on %s→%s; another worker owns it now", d.message_id, self.name)
            return
        self._forget(d.message_id)
        self._announce(result, started)
        if result.state is State.DEAD:
            await self._head_died(result)
        elif result.state is State.ACKNOWLEDGED:
            await self._dossier_done(result)

    async def _dossier_done(self, d: Delivery) -> None:
        """Observe the dossier latency (submission → last verified receipt) once ``d`` completes its message."""
        try:
            record = await self.store.get(d.message_id)
        except NswError as exc:
            log.warning("outbox %s: no dossier latency for %s: %s", self.name, d.message_id, exc)
            return
        if record is None or any(x.state is not State.ACKNOWLEDGED or not x.history for x in record.deliveries):
            return
        # destinations acknowledging at the same time all see the message complete: the last receipt observes
        last = max(record.deliveries, key=lambda x: (x.history[-1].at, x.destination))
        if last.destination == self.name:
            done = last.history[-1].at - record.message.received_at
            self.metrics.dossier_completed(record.message.envelope.document_type, done)

    async def _record_outcome(self, result: Delivery) -> bool:
        """Record an attempt's outcome, again while the store is unavailable (a lost connection, a network cut),
        waiting ``STORE_RETRY_INITIAL`` seconds doubling to ``STORE_RETRY_MAX``: the partner has the message, so it
        must be recorded rather than sent again once the lease runs out. False: the worker stopped first."""
        wait = self.STORE_RETRY_INITIAL
        while True:
            try:
                await self.store.record(result, owner=self.owner, now=self.clock.now())
                return True
            except StoreUnavailable as exc:
                if self._stopping:
                    return False
                if wait == self.STORE_RETRY_INITIAL:
                    log.warning(
                        "outbox %s: cannot record %s yet, retrying until the store answers: %s",
                        self.name,
                        result.message_id,
                        exc,
                    )
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))  # the store's real outage, whatever the clock
            wait = min(2 * wait, self.STORE_RETRY_MAX)

    async def _head_died(self, d: Delivery) -> None:
        """Alert when a dead delivery leaves later messages of its conversation behind it."""
        try:
            waiting = await self.store.waiting_behind(d)
        except NswError as exc:
            log.error("outbox %s: cannot count what waits behind dead %s: %s", self.name, d.message_id, exc)
            return
        if not waiting:
            return
        if self.settings.conversation_on_dead == "hold":
            self.metrics.conversation_held(self.name)
            log.error(
                "conversation %s to %s is held behind dead message %s: %d later message(s) wait until it is"
                " replayed or their time-to-live ends",
                d.conversation,
                self.name,
                d.message_id,
                waiting,
            )
        else:
            log.warning(
                "conversation %s to %s goes on after dead message %s (%d later message(s))",
                d.conversation,
                self.name,
                d.message_id,
                waiting,
            )

    def _failed(self, d: Delivery, error: NswError) -> Delivery:
        now = self.clock.now()
        failed = d.attempt_failed(error, at=now)
        when = self.backoff.next_attempt(failed, error, now)
        if when is None:
            self.metrics.dead_lettered(self.name, error.code)
            return failed.dead(error, at=now)
        self.metrics.retry_scheduled(self.name, error.code)
        return failed.retry_at(when, at=now)


class DeliveryEngine:
    """All destination workers of a gateway."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock,
        metrics: Metrics,
        receipts: ReceiptVerifier,
        adapters: Mapping[str, Adapter],
        legacy_content_types: Mapping[str, str],
        rng: random.Random | None = None,
        events: EventBus | None = None,
        cpu: CpuThreads | None = None,
    ) -> None:
        """``adapters`` per destination; ``rng`` is the random source of the breakers' jitter; ``events`` gets every
        recorded outcome and breaker transition (:data:`gateway.events.EVENT_NAMES`); ``cpu``: where signed
        receipts are verified (the gateway's CPU threads, by default Python's default executor). A delivery is sent
        with the content type the broker stored on it;
        ``legacy_content_types`` (per destination, the media type of its configured format) serves only the
        rows queued by a gateway that did not store one (before store schema 3: a file or database upgraded
        with deliveries still queued, or written by a node still running the earlier version), which is what
        that gateway would have sent."""
        self.config = config
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.owner = f"worker-{uuid.uuid4().hex[:12]}"
        self.workers: dict[str, DestinationWorker] = {}
        for name, dest in config.destinations.items():
            self.workers[name] = DestinationWorker(
                name,
                dest,
                adapters[name],
                store,
                clock=self.clock,
                metrics=self.metrics,
                receipts=receipts,
                legacy_content_type=legacy_content_types[name],
                owner=self.owner,
                lease=config.gateway.lease_seconds,
                poll_interval=config.gateway.poll_interval,
                shutdown_grace=config.gateway.shutdown_grace,
                rng=rng,
                events=events,
                cpu=cpu,
            )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for worker in self.workers.values():
            await worker.adapter.open()
        self._tasks = [asyncio.create_task(w.run(), name=f"outbox {n}") for n, w in self.workers.items()]

    def circuits_open(self) -> list[str]:
        """The destinations whose circuit breaker is not closed."""
        return [name for name, w in self.workers.items() if w.breaker.state != "closed"]

    def wake(self, destinations: tuple[str, ...] | None = None) -> None:
        for name in destinations or tuple(self.workers):
            worker = self.workers.get(name)
            if worker is not None:
                worker.wake.set()

    async def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for worker in self.workers.values():
            await worker.adapter.close()
