"""``/console/origin``: the certificates of origin (e-C/O) the gateway carried, latest status change first, with
the filters and cursor pages of ``GET /v1/admin/origin-certificates`` (:func:`gateway.admin.origin_certificate_query`),
and ``/console/origin/{country}/{number}``: one e-C/O's status, its history (issued, delivered, the importing
side's notifications) and links to the messages that carried it. Not ``/console/certificates``, which lists the
X.509 certificates the gateway relies on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.admin import CO_STATUSES, origin_certificate_query, origin_certificates_page
from gateway.console.sessions import ConsoleSession
from gateway.errors import MessageNotFound

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "routes"]

PAGE_SIZE = 50
FILTERS = ("issuing_country", "status", "party")

LABELS = {
    "origin.title": ("Certificates of origin", "Giấy chứng nhận xuất xứ"),
    "origin.intro": (
        "Every e-C/O this gateway carried, latest status change first: issued, delivered, then what the importing "
        "side notified (received, utilized, rejected).",
        "Mọi C/O điện tử cổng đã chuyển, thay đổi trạng thái gần nhất trước: đã cấp, đã chuyển, rồi những gì phía "
        "nhập khẩu thông báo (đã nhận, đã sử dụng, từ chối).",
    ),
    "origin.country": ("Issuing country", "Nước cấp"),
    "origin.number": ("Number", "Số"),
    "origin.issuer": ("Issuer", "Bên cấp"),
    "origin.status": ("Status", "Trạng thái"),
    "origin.any": ("any", "bất kỳ"),
    "origin.clear": ("Clear", "Xóa lọc"),
    "origin.none_found": ("No certificate of origin matches.", "Không có giấy chứng nhận xuất xứ nào khớp."),
    "origin.history": ("History", "Lịch sử"),
    "origin.step": ("Step", "Bước"),
    "origin.message": ("Message", "Thông điệp"),
    "origin.detail": ("Detail", "Chi tiết"),
    "origin.messages": ("Messages that carried it", "Các thông điệp đã chuyển"),
    "origin.back": ("Back to the certificates of origin", "Quay lại danh sách giấy chứng nhận xuất xứ"),
    "origin.status_issued": ("issued", "đã cấp"),
    "origin.status_delivered": ("delivered", "đã chuyển"),
    "origin.status_amended": ("amended", "đã sửa đổi"),
    "origin.status_cancelled": ("cancelled", "đã hủy"),
    "origin.status_received": ("received", "đã nhận"),
    "origin.status_utilized": ("utilized", "đã sử dụng"),
    "origin.status_rejected": ("rejected", "bị từ chối"),
    "origin.status_verification_request": ("verification request", "yêu cầu xác minh"),
    "origin.status_verification_answer": ("verification answer", "trả lời xác minh"),
}


def _filters(query: Any) -> dict[str, str]:
    """The list's filled-in fields (and ``cursor``) from the query string."""
    return {k: str(query[k]).strip() for k in (*FILTERS, "cursor") if str(query.get(k, "")).strip()}


def routes(console: Console) -> list[web.RouteDef]:
    gateway = console.gateway

    async def listing(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        chosen = _filters(request.query)
        query = origin_certificate_query({"limit": str(PAGE_SIZE), **chosen})
        page = origin_certificates_page(await gateway.store.certificates(query), query)
        older = None
        if page.next_cursor is not None:
            kept = {k: v for k, v in chosen.items() if k != "cursor"}
            older = "/console/origin?" + urlencode({**kept, "cursor": page.next_cursor})
        return console.render(
            request,
            "origin.html",
            session=session,
            page="origin",
            chosen=chosen,
            certificates=page.certificates,
            older=older,
            statuses=CO_STATUSES,
            parties=sorted({*gateway.config.parties, *gateway.config.destinations}),
        )

    async def detail(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        country, number = request.match_info["country"], request.match_info["number"]
        record = await gateway.store.certificate(country, number)
        if record is None:
            raise MessageNotFound(f"the gateway carried no certificate of origin {country} {number}", field="number")
        return console.render(request, "origin_detail.html", session=session, page="origin", record=record)

    read = console.page()
    return [
        web.get("/console/origin", read(listing)),
        web.get("/console/origin/{country}/{number}", read(detail)),
    ]
