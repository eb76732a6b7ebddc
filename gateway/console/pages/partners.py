"""``/console/partners``: per destination, what ``GET /v1/admin/partners`` shows (:func:`gateway.admin.partner_views`:
breaker, backlog and the age of its oldest delivery, dead letters, last success and last failure, latency
percentiles) and how it is reached: the adapter and its endpoint from ``[destinations.NAME]``, without any
credentials (no user or password of the URL, no query string, no options). The table refreshes itself every
few seconds from ``/console/fragments/partners`` when JavaScript is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.admin import partner_views
from gateway.console.pages.dead_letters import age
from gateway.console.sessions import ConsoleSession
from gateway.ports import public_endpoint

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "routes"]

LABELS = {
    "partners.title": ("Partners", "Đối tác"),
    "partners.intro": (
        "Each destination as this gateway sees it now: circuit breaker, backlog, dead letters, last outcomes "
        "(every node's) and delivery latency (queued to verified receipt, this node since it started).",
        "Từng đích theo góc nhìn hiện tại của cổng: cầu dao, tồn đọng, thư chết, kết quả gần nhất (của mọi nút) "
        "và độ trễ chuyển (từ lúc vào hàng đợi đến khi biên nhận được xác minh, của nút này kể từ khi khởi động).",
    ),
    "partners.breaker": ("Breaker", "Cầu dao"),
    "partners.failures": ("Consecutive failures", "Lỗi liên tiếp"),
    "partners.pending": ("Backlog", "Tồn đọng"),
    "partners.oldest": ("Oldest waiting", "Chờ lâu nhất"),
    "partners.dead": ("Dead", "Thư chết"),
    "partners.delivered": ("Delivered", "Đã chuyển"),
    "partners.last_success": ("Last success", "Thành công gần nhất"),
    "partners.last_failure": ("Last failure", "Lỗi gần nhất"),
    "partners.latency": ("Latency p50 / p95 / p99 (s)", "Độ trễ p50 / p95 / p99 (giây)"),
    "partners.adapter": ("Adapter", "Bộ chuyển đổi"),
    "partners.endpoint": ("Endpoint", "Điểm cuối"),
    "partners.breaker_closed": ("closed", "đóng"),
    "partners.breaker_open": ("open", "mở"),
    "partners.breaker_half-open": ("half-open", "nửa mở"),
}


def routes(console: Console) -> list[web.RouteDef]:
    gateway = console.gateway

    async def rows() -> list[dict[str, object]]:
        now = gateway.clock.now()
        out: list[dict[str, object]] = []
        for p in await partner_views(gateway):
            settings = gateway.config.destinations[p.destination]
            oldest = p.oldest_pending
            out.append(
                {
                    "partner": p,
                    "level": "bad" if p.breaker == "open" else "warn" if p.breaker != "closed" or p.dead else "ok",
                    "oldest_age": age(now - oldest.timestamp()) if oldest is not None else None,
                    "last_success": p.last_success.timestamp() if p.last_success is not None else None,
                    "last_failure_at": p.last_failure.at.timestamp() if p.last_failure is not None else None,
                    "adapter": settings.adapter,
                    "endpoint": public_endpoint(settings.url),
                }
            )
        return out

    async def partners(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        return console.render(request, "partners.html", session=session, page="partners", rows=await rows())

    async def fragment(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        return console.render(request, "partners_rows.html", session=session, rows=await rows())

    read = console.page()
    return [
        web.get("/console/partners", read(partners)),
        web.get("/console/fragments/partners", read(fragment)),
    ]
