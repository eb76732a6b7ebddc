"""``/console/messages``: the search over every party's messages, a message's page and its evidence.

* ``/console/messages?sender=&destination=&document_type=&state=&code=&since=&until=&cursor=&limit=``: the
  operator API's search (:func:`gateway.admin.message_query`, the same filters and cursor), newest first, a page
  of :data:`PAGE_SIZE` unless ``limit`` says otherwise. ``since`` and ``until`` come from ``datetime-local``
  inputs and are read as UTC. Empty fields do not filter.
* ``/console/messages/{id}``: what the store holds of the message: sender, the enterprise an intermediary
  submitted for, conversation, reference, its intake transitions and, per delivery, every attempt with its code
  and reason, the signer (the ``VERIFIED`` step's detail; unknown when the store holds none), and the SHA-256
  of the stored payload, of each delivered payload and of each verified receipt.
* ``/console/messages/{id}/evidence-bundle``: the signed evidence bundle (gateway/evidence.py), as
  ``GET /v1/admin/messages/{id}/evidence`` returns it; linked from the message's page when the gateway has a
  signing key.
* ``/console/messages/{id}/evidence``: the stored payload (the accepted document, or the excerpt of a refused
  one), ``/console/messages/{id}/deliveries/{destination}/payload`` and ``.../receipt``: the bytes delivered and
  the receipt, each as an ``application/octet-stream`` attachment.

An unknown message, delivery or receipt is the error page with ``MESSAGE_NOT_FOUND`` (404).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.admin import delivery_evidence, message_query, next_cursor
from gateway.console.sessions import ConsoleSession
from gateway.errors import ERROR_CODES, MessageNotFound
from gateway.model import Delivery, State, Transition
from gateway.store.base import MessageRecord

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "PAGE_SIZE", "FILTERS", "routes"]

PAGE_SIZE = 50
"""Messages per page of the search."""
FILTERS = ("sender", "destination", "document_type", "state", "code", "since", "until")
"""The search form's fields (the operator API's query parameters)."""
_BAD = frozenset({State.REJECTED, State.FAILED, State.DEAD})

LABELS = {
    "messages.title": ("Messages", "Thông điệp"),
    "messages.intro": (
        "Every party's messages, newest first. Times are UTC.",
        "Thông điệp của mọi bên, mới nhất trước. Thời gian theo giờ UTC.",
    ),
    "messages.any": ("any", "tất cả"),
    "messages.since": ("From (UTC)", "Từ (UTC)"),
    "messages.until": ("Until (UTC)", "Đến (UTC)"),
    "messages.clear": ("Clear", "Xoá bộ lọc"),
    "messages.received": ("Received", "Tiếp nhận"),
    "messages.id": ("Gateway id", "Mã cổng"),
    "messages.message_id": ("Sender's message id", "Mã thông điệp của bên gửi"),
    "messages.destinations": ("Destinations", "Các đích"),
    "messages.none_found": ("No message matches.", "Không có thông điệp nào phù hợp."),
    "messages.message": ("Message", "Thông điệp"),
    "messages.summary": ("Summary", "Tóm tắt"),
    "messages.intermediary": ("Intermediary (submitted)", "Bên trung gian (đã nộp)"),
    "messages.enterprise": ("Enterprise (on behalf of)", "Doanh nghiệp (được đại diện)"),
    "messages.conversation": ("Conversation", "Hội thoại"),
    "messages.reference": ("Reference", "Tham chiếu"),
    "messages.replies": ("Replies", "Phản hồi"),
    "messages.error": ("Refusal", "Lý do từ chối"),
    "messages.signer": ("Signer", "Người ký"),
    "messages.signer_unknown": (
        "unknown: the store holds no verified signer for this message",
        "không rõ: kho lưu trữ không giữ người ký đã xác minh của thông điệp này",
    ),
    "messages.evidence": ("Evidence", "Chứng cứ"),
    "messages.payload_sha256": ("SHA-256 of the stored payload", "SHA-256 của nội dung đã lưu"),
    "messages.excerpt_sha256": (
        "SHA-256 of the stored excerpt of the refused submission",
        "SHA-256 của đoạn trích đã lưu từ bản nộp bị từ chối",
    ),
    "messages.download_payload": ("Download the accepted payload", "Tải nội dung đã tiếp nhận"),
    "messages.download_excerpt": ("Download the stored excerpt", "Tải đoạn trích đã lưu"),
    "messages.download_bundle": (
        "Download the signed evidence bundle (ZIP, checked offline by nswgw evidence verify)",
        "Tải gói chứng cứ đã ký (ZIP, kiểm tra ngoại tuyến bằng nswgw evidence verify)",
    ),
    "messages.no_payload": ("The store holds no payload for it.", "Kho lưu trữ không giữ nội dung của nó."),
    "messages.intake": ("Intake", "Tiếp nhận"),
    "messages.delivery_to": ("Delivery to", "Chuyển đến"),
    "messages.attempts": ("Attempts", "Số lần gửi"),
    "messages.last_error": ("Last error", "Lỗi gần nhất"),
    "messages.queued_at": ("Queued", "Vào hàng đợi"),
    "messages.next_attempt": ("Next attempt", "Lần gửi tiếp theo"),
    "messages.deadline": ("Deadline", "Hạn chót"),
    "messages.delivered_sha256": ("SHA-256 of the delivered payload", "SHA-256 của nội dung đã chuyển"),
    "messages.receipt_sha256": ("SHA-256 of the verified receipt", "SHA-256 của biên nhận đã xác minh"),
    "messages.no_receipt": ("no verified receipt yet", "chưa có biên nhận đã xác minh"),
    "messages.download_delivered": ("Download the delivered payload", "Tải nội dung đã chuyển"),
    "messages.download_receipt": ("Download the receipt", "Tải biên nhận"),
    "messages.no_deliveries": (
        "No delivery: the message was not routed.",
        "Không có lượt chuyển: thông điệp chưa được định tuyến.",
    ),
    "messages.back": ("Back to the search", "Quay lại tìm kiếm"),
}


def _filters(query: Any) -> dict[str, str]:
    """The search's filled-in fields (and ``cursor``, ``limit``) from the query string."""
    return {k: str(query[k]).strip() for k in (*FILTERS, "cursor", "limit") if str(query.get(k, "")).strip()}


def _signer(record: MessageRecord) -> str | None:
    """The detail the ``VERIFIED`` step recorded (who signed the submission), if the store holds one."""
    verified = [t.detail for t in record.message.history if t.to_state is State.VERIFIED and t.detail]
    return verified[-1] if verified else None


def _step(t: Transition) -> dict[str, Any]:
    return {
        "at": t.at,
        "from": t.from_state.value if t.from_state is not None else None,
        "to": t.to_state.value,
        "code": t.code,
        "detail": t.detail,
        "bad": t.to_state in _BAD,
    }


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _attachment(console: Console, body: bytes, name: str) -> web.Response:
    response = web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{_filename(name)}"'},
    )
    return console.secured(response)


def routes(console: Console) -> list[web.RouteDef]:
    gateway = console.gateway

    async def found(message_id: str) -> MessageRecord:
        record = await gateway.store.get(message_id)
        if record is None:
            raise MessageNotFound(f"no message {message_id}", field="id")
        return record

    def delivery_of(record: MessageRecord, destination: str) -> Delivery:
        for d in record.deliveries:
            if d.destination == destination:
                return d
        raise MessageNotFound(f"message {record.message.id} has no delivery to {destination}", field="destination")

    async def search(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        chosen = _filters(request.query)
        query = message_query({"limit": str(PAGE_SIZE), **chosen})
        page = await gateway.store.search(query)
        cursor = next_cursor(page, query)
        older = None
        if cursor is not None:
            older = "/console/messages?" + urlencode(
                {**{k: v for k, v in chosen.items() if k != "cursor"}, "cursor": cursor}
            )
        config = gateway.config
        return console.render(
            request,
            "messages.html",
            session=session,
            page="messages",
            chosen=chosen,
            messages=page,
            older=older,
            states=[s.value for s in State],
            senders=sorted(config.parties),
            destinations=sorted(config.destinations),
            document_types=sorted(config.document_types),
            codes=sorted(ERROR_CODES),
        )

    async def message(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        record = await found(request.match_info["id"])
        payload = await gateway.store.message_payload(record.message.id)
        evidence = {e.destination: e for e in delivery_evidence(record)}
        deliveries = [
            {
                "delivery": d,
                "evidence": evidence[d.destination],
                "steps": [_step(t) for t in sorted(d.history, key=lambda t: t.at)],
            }
            for d in record.deliveries
        ]
        env = record.message.envelope
        return console.render(
            request,
            "message.html",
            session=session,
            page="messages",
            record=record,
            state=record.state.value,
            enterprise=env.on_behalf_of or record.acknowledgement.on_behalf_of,
            signer=_signer(record),
            rejected=record.message.state is State.REJECTED,
            payload_sha256=hashlib.sha256(payload).hexdigest() if payload is not None else None,
            bundle=bool(gateway.config.signing.keys),  # a bundle is signed: none without a gateway key
            intake=[_step(t) for t in record.message.history],
            deliveries=deliveries,
        )

    async def evidence(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        record = await found(request.match_info["id"])
        payload = await gateway.store.message_payload(record.message.id)
        if payload is None:
            raise MessageNotFound(f"the store holds no payload of message {record.message.id}", field="evidence")
        kind = "rejected-excerpt" if record.message.state is State.REJECTED else "accepted"
        return _attachment(console, payload, f"{record.message.id}-{kind}.bin")

    async def bundle(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        from gateway.evidence import build_bundle, party_trust
        from gateway.security import key_ring

        record = await found(request.match_info["id"])
        senders, receivers = party_trust(gateway.config)
        data = await build_bundle(
            gateway.store,
            key_ring(gateway.config),
            record.message.id,
            now=gateway.clock.now(),
            senders=senders,
            receivers=receivers,
        )
        return _attachment(console, data, f"evidence-{record.message.id}.zip")

    async def delivered(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        record = await found(request.match_info["id"])
        d = delivery_of(record, request.match_info["destination"])
        return _attachment(console, d.payload, f"{record.message.id}-{d.destination}-delivered.bin")

    async def receipt(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        record = await found(request.match_info["id"])
        d = delivery_of(record, request.match_info["destination"])
        if d.receipt is None:
            raise MessageNotFound(
                f"the delivery of message {record.message.id} to {d.destination} has no verified receipt yet",
                field="receipt",
            )
        return _attachment(console, d.receipt, f"{record.message.id}-{d.destination}-receipt.bin")

    read = console.page()
    return [
        web.get("/console/messages", read(search)),
        web.get("/console/messages/{id}", read(message)),
        web.get("/console/messages/{id}/evidence", read(evidence)),
        web.get("/console/messages/{id}/evidence-bundle", read(bundle)),
        web.get("/console/messages/{id}/deliveries/{destination}/payload", read(delivered)),
        web.get("/console/messages/{id}/deliveries/{destination}/receipt", read(receipt)),
    ]
