"""``/console/dead-letters``: the dead-letter queue, and its replay after a confirmation.

* ``GET /console/dead-letters?destination=``: each dead letter, oldest first, with its cause (the last error's
  code and message), destination, attempts and age (since it was queued).
* ``POST /console/dead-letters/confirm`` (role ``act``): the dead letters selected (checkboxes ``id``, or one
  row's button ``one``) listed on a confirmation page, served by the server (no script needed).
* ``POST /console/dead-letters/replay`` (role ``act``): :func:`gateway.actions.replay` of the confirmed ids as the
  logged-in operator (the replays and their ``OPERATOR`` journal entry in one transaction, a ``replayed`` event
  each), then a redirect to the action's page.
* ``GET /console/dead-letters/replays/{action}``: a recorded replay: who, when, its journal entry, and each
  replayed message with a link to it and its state now.

Both POSTs carry the session's CSRF token; a ``read`` operator sees the queue without the buttons, and its POST
is refused ``AUTH_FORBIDDEN``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiDictProxy

from gateway.actions import replay
from gateway.console.sessions import ConsoleSession
from gateway.errors import MessageNotFound, RequestInvalid, StoreCorrupt, UnknownDestination
from gateway.journal import OperatorAction

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "age", "routes"]

LABELS = {
    "dead_letters.title": ("Dead letters", "Thư chết"),
    "dead_letters.intro": (
        "Deliveries that ran out of attempts or time, oldest first. A replay sends the same message again with "
        "fresh attempts and time-to-live, and is written to the journal under your name.",
        "Các lượt chuyển đã hết số lần thử hoặc hết hạn, cũ nhất trước. Gửi lại sẽ chuyển lại đúng thông điệp đó "
        "với số lần thử và thời hạn mới, và được ghi vào nhật ký dưới tên của bạn.",
    ),
    "dead_letters.all": ("all destinations", "mọi đích"),
    "dead_letters.select": ("Select", "Chọn"),
    "dead_letters.message": ("Message", "Thông điệp"),
    "dead_letters.cause": ("Cause", "Nguyên nhân"),
    "dead_letters.attempts": ("Attempts", "Số lần gửi"),
    "dead_letters.age": ("Age", "Tuổi"),
    "dead_letters.empty": ("The dead-letter queue is empty.", "Hàng đợi thư chết đang trống."),
    "dead_letters.replay_one": ("Replay", "Gửi lại"),
    "dead_letters.replay_selected": ("Replay selected", "Gửi lại các mục đã chọn"),
    "dead_letters.read_only": (
        "Your role may read the queue but not replay it.",
        "Vai trò của bạn chỉ được xem hàng đợi, không được gửi lại.",
    ),
    "dead_letters.confirm_title": ("Confirm the replay", "Xác nhận gửi lại"),
    "dead_letters.confirm_intro": (
        "These dead letters will be sent again to their destinations:",
        "Các thư chết sau sẽ được gửi lại đến đích của chúng:",
    ),
    "dead_letters.confirm": ("Replay them", "Gửi lại"),
    "dead_letters.cancel": ("Cancel", "Huỷ"),
    "dead_letters.result_title": ("Replayed", "Đã gửi lại"),
    "dead_letters.result_intro": ("Replay recorded in the journal", "Lần gửi lại đã ghi vào nhật ký"),
    "dead_letters.by": ("by", "bởi"),
    "dead_letters.journal_seq": ("journal entry", "mục nhật ký"),
    "dead_letters.state_now": ("State now", "Trạng thái hiện tại"),
    "dead_letters.nothing": ("Nothing was replayed.", "Không có gì được gửi lại."),
    "dead_letters.back": ("Back to the dead letters", "Quay lại danh sách thư chết"),
}


def age(seconds: float) -> str:
    """A duration, roughly: ``42 s``, ``5 min``, ``3 h``, ``2 d``."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _selected(form: MultiDictProxy[Any]) -> list[str]:
    """The ids a form selected: one row's button ``one``, else every checked ``id``, in order, once each."""
    one = form.get("one")
    chosen = [str(one)] if one else [str(v) for v in form.getall("id", [])]
    return list(dict.fromkeys(v for v in chosen if v))


def routes(console: Console) -> list[web.RouteDef]:
    gateway = console.gateway

    async def listing(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        destination = request.query.get("destination") or None
        if destination is not None and destination not in gateway.config.destinations:
            raise UnknownDestination(f"no destination {destination!r}", field="destination")
        now = gateway.clock.now()
        rows = [
            {"delivery": d, "age": age(now - d.queued_at)}
            for d in await gateway.store.dead_letters(destination=destination)
        ]
        return console.render(
            request,
            "dead_letters.html",
            session=session,
            page="dead_letters",
            rows=rows,
            destination=destination,
            destinations=sorted(gateway.config.destinations),
            can_act="act" in gateway.config.operators[session.operator].roles,
        )

    async def confirm(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        ids = _selected(await request.post())
        if not ids:
            raise RequestInvalid("select at least one dead letter to replay", field="id")
        now = gateway.clock.now()
        rows = []
        for i, mid in enumerate(ids):
            found = await gateway.store.dead_letters(message_id=mid)
            if not found:
                raise MessageNotFound(f"message {mid} has no dead letter", field=f"ids[{i}]")
            rows += [{"delivery": d, "age": age(now - d.queued_at)} for d in found]
        return console.render(
            request, "dead_letters_confirm.html", session=session, page="dead_letters", rows=rows, ids=ids
        )

    async def replay_confirmed(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        ids = _selected(await request.post())
        _, entry = await replay(gateway, session.operator, ids=ids)
        raise console.redirect(f"/console/dead-letters/replays/{entry.message_id}")

    async def replayed(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        action_id = request.match_info["action"]
        found = await gateway.store.operator_actions(ids=[action_id], limit=1)
        if not found:
            raise MessageNotFound(f"no operator action {action_id}", field="action")
        try:
            action = OperatorAction.from_record(found[0].record)
        except ValueError as exc:
            raise StoreCorrupt(
                f"the record of operator action {action_id} is damaged ({exc}); run `nswgw log verify`", field="action"
            ) from exc
        if action.action != "replay":
            raise MessageNotFound(f"operator action {action_id} is not a replay", field="action")
        targets = []
        for target in action.targets:
            record = await gateway.store.get(target["message"])
            state = None
            if record is not None:
                state = next((d.state.value for d in record.deliveries if d.destination == target["destination"]), None)
            targets.append({"message": target["message"], "destination": target["destination"], "state": state})
        return console.render(
            request,
            "dead_letters_replayed.html",
            session=session,
            page="dead_letters",
            action=action,
            journal_seq=found[0].seq,
            targets=targets,
        )

    act = console.page("act")
    return [
        web.get("/console/dead-letters", console.page()(listing)),
        web.post("/console/dead-letters/confirm", act(confirm)),
        web.post("/console/dead-letters/replay", act(replay_confirmed)),
        web.get("/console/dead-letters/replays/{action}", console.page()(replayed)),
    ]
