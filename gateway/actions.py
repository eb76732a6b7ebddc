"""Operator actions as the journal records them: each one an ``OPERATOR`` entry whose evidence is its
:class:`~gateway.journal.OperatorAction` record, naming the operator.

* :func:`replay_dead_letters`: dead letters back to their outboxes (``POST /v1/admin/dead-letters/replay``,
  ``nswgw dlq replay``), the replays and their record in one store transaction.
* :func:`replay`: that, asked of a running gateway by an operator (the operator API, the console): the request
  checked, the destinations' workers woken, a ``replayed`` event published per delivery, the action logged.
* :func:`reload_action`: the record of a configuration reload (``POST /v1/admin/reload``, SIGHUP), applied or
  refused (:func:`gateway.admin.reload` writes it).

Operators are named as the journal shows them: the ``[operators.NAME]`` name for the operator API,
``cli:<OS user>`` for the command line (:func:`cli_operator`), ``signal:SIGHUP`` for a reload by signal
(:data:`SIGNAL_OPERATOR`).
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.config import Config, RetryPolicy
from gateway.errors import MessageNotFound, NswError, RequestInvalid, UnknownDestination
from gateway.events import Event, delivery_fields
from gateway.journal import JournalEntry, OperatorAction
from gateway.model import Delivery
from gateway.store.base import Store

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["SIGNAL_OPERATOR", "cli_operator", "reload_action", "replay", "replay_dead_letters"]

log = logging.getLogger("nswgw.admin")
"""The operator actions' log (that of the operator API)."""

SIGNAL_OPERATOR = "signal:SIGHUP"
"""The operator of a reload asked for by SIGHUP to ``nswgw serve``."""


def cli_operator() -> str:
    """The operator of a command-line action: ``cli:`` and the OS user running it."""
    return f"cli:{getpass.getuser()}"


async def replay_dead_letters(
    store: Store,
    config: Config,
    *,
    now: float,
    operator: str,
    ids: Sequence[str] | None = None,
    destination: str | None = None,
) -> tuple[list[Delivery], JournalEntry]:
    """Bring the dead letters of the messages ``ids`` (gateway ids), or of ``destination``, or (neither) every
    dead letter, back to their outboxes (fresh attempts and time-to-live, same message id, oldest first), and
    record the ``replay`` action of ``operator`` naming each ``(message, destination)``, in one transaction
    (:meth:`Store.record_operator_action`): a replay and its record are written together or not at all. An
    action that found nothing to replay is recorded too. Returns the replayed deliveries and the entry."""
    dead: list[Delivery] = []
    if ids is not None:
        for mid in ids:
            dead += await store.dead_letters(message_id=mid)
    else:
        dead = await store.dead_letters(destination=destination)
    again = []
    for d in dead:
        dest = config.destinations.get(d.destination)
        again.append(d.replay(at=now, ttl=dest.retry.ttl if dest is not None else RetryPolicy().ttl))
    asked: dict[str, Any] = {"ids": list(ids)} if ids is not None else {"destination": destination}
    action = OperatorAction.new(
        operator,
        "replay",
        at=now,
        targets=[{"message": d.message_id, "destination": d.destination} for d in again],
        detail={"outcome": "applied", "replayed": len(again), **asked},
    )
    entry = await store.record_operator_action(action, replays=again)
    return again, entry


async def replay(
    gateway: Gateway,
    operator: str,
    *,
    ids: Sequence[str] | None = None,
    destination: str | None = None,
) -> tuple[list[Delivery], JournalEntry]:
    """Replay, for ``operator`` of the running ``gateway``, the dead letters of the messages ``ids`` (gateway ids)
    or all those of ``destination`` (exactly one of the two): :func:`replay_dead_letters`, then the workers of
    those destinations woken, a ``replayed`` event (with the operator) published per delivery, the action logged.

    Refused before anything is written: both or neither named, or ``ids`` empty (``REQUEST_INVALID``); an unknown
    ``destination`` (``DESTINATION_UNKNOWN``); an id with no dead letter (``MESSAGE_NOT_FOUND``, field
    ``ids[i]``)."""
    if (ids is None) == (destination is None):
        raise RequestInvalid("name either ids (gateway ids) or destination (all of its dead letters)", field="body")
    if destination is not None and destination not in gateway.config.destinations:
        raise UnknownDestination(f"no destination {destination!r}", field="destination")
    if ids is not None:
        if not ids:
            raise RequestInvalid("ids names no message", field="ids")
        for i, mid in enumerate(ids):
            if not await gateway.store.dead_letters(message_id=mid):
                raise MessageNotFound(f"message {mid} has no dead letter", field=f"ids[{i}]")
    now = gateway.clock.now()
    done, entry = await replay_dead_letters(
        gateway.store, gateway.config, now=now, operator=operator, ids=ids, destination=destination
    )
    gateway.engine.wake(tuple({d.destination for d in done}))
    for d in done:
        gateway.events.publish(Event("replayed", now, delivery_fields(d, operator=operator)))
    log.info(
        "operator %s replayed %d dead letter(s): %s",
        operator,
        len(done),
        ", ".join(f"{d.message_id}→{d.destination}" for d in done) or "none",
    )
    return done, entry


def reload_action(
    operator: str,
    *,
    at: float,
    config: str | None,
    changed: Sequence[str] = (),
    refused: NswError | None = None,
) -> OperatorAction:
    """The record of a reload of ``config`` (the file; ``None``: the gateway has none): applied, its targets the
    sections that changed; or ``refused`` with the error's code, field and message (no targets: nothing
    changed)."""
    if refused is not None:
        detail: dict[str, Any] = {
            "outcome": "refused",
            "code": refused.code,
            "field": refused.field,
            "message": refused.message,
            "incident_id": refused.incident_id,
            "config": config,
        }
        return OperatorAction.new(operator, "reload", at=at, detail=detail)
    return OperatorAction.new(
        operator,
        "reload",
        at=at,
        targets=[{"section": s} for s in changed],
        detail={"outcome": "applied", "config": config},
    )
