"""``/console/disclosures``: the deliveries that carried only some data elements of a message (a subscription's, a
destination's ``fields``: :mod:`gateway.disclosures`), newest first, with the filters and cursor pages of
``GET /v1/admin/disclosures`` (:func:`gateway.disclosures_api.disclosure_query`): to whom, under which subscription
and legal basis, which fields were configured and which the message actually carried, the digest of the delivered
bytes and the journal entry that records it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.console.sessions import ConsoleSession
from gateway.disclosures_api import disclosure_query, next_cursor

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "routes"]

PAGE_SIZE = 50
FILTERS = ("destination", "subscription", "message")

LABELS = {
    "disclosures.title": ("Disclosures", "Dữ liệu đã chia sẻ"),
    "disclosures.intro": (
        "Every delivery that carried only some data elements of a message, newest first: to which agency, under "
        "which legal basis, the fields it may see and those the message actually carried.",
        "Mọi lần chuyển chỉ một phần chỉ tiêu dữ liệu của thông điệp, mới nhất trước: cho cơ quan nào, theo căn cứ "
        "pháp lý nào, các trường được phép xem và các trường thông điệp thực sự có.",
    ),
    "disclosures.subscription": ("Subscription", "Đăng ký nhận"),
    "disclosures.message": ("Message", "Thông điệp"),
    "disclosures.legal_basis": ("Legal basis", "Căn cứ pháp lý"),
    "disclosures.fields": ("Fields allowed", "Trường được phép"),
    "disclosures.disclosed": ("Fields disclosed", "Trường đã chia sẻ"),
    "disclosures.digest": ("Digest of the bytes", "Mã băm dữ liệu"),
    "disclosures.journal": ("Journal entry", "Mục nhật ký"),
    "disclosures.own_fields": ("destination's own fields", "trường riêng của điểm nhận"),
    "disclosures.not_stated": ("not stated", "không nêu"),
    "disclosures.clear": ("Clear", "Xóa lọc"),
    "disclosures.none_found": ("No disclosure matches.", "Không có lần chia sẻ nào khớp."),
}


def _filters(query: Any) -> dict[str, str]:
    """The list's filled-in fields (and ``cursor``) from the query string."""
    return {k: str(query[k]).strip() for k in (*FILTERS, "cursor") if str(query.get(k, "")).strip()}


def routes(console: Console) -> list[web.RouteDef]:
    gateway = console.gateway

    async def listing(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        chosen = _filters(request.query)
        query = disclosure_query({"limit": str(PAGE_SIZE), **chosen}, gateway.config.destinations)
        page = await gateway.store.disclosures(query)
        cursor = next_cursor(page, query)
        older = None
        if cursor is not None:
            kept = {k: v for k, v in chosen.items() if k != "cursor"}
            older = "/console/disclosures?" + urlencode({**kept, "cursor": cursor})
        return console.render(
            request,
            "disclosures.html",
            session=session,
            page="disclosures",
            chosen=chosen,
            disclosures=page,
            older=older,
            destinations=sorted(gateway.config.destinations),
            subscriptions=sorted(gateway.config.subscriptions),
        )

    return [web.get("/console/disclosures", console.page()(listing))]
