"""``/console/certificates``: every certificate the gateway relies on, by party, nearest expiry first (red under
``[gateway.logging] certificate_warning_days``, amber under three times that)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.console.sessions import ConsoleSession
from gateway.security import certificate_inventory

if TYPE_CHECKING:
    from gateway.console import Console

LABELS = {
    "certificates.title": ("Certificates", "Chứng thư số"),
    "certificates.intro": (
        "Every certificate this gateway signs with, serves TLS with or trusts, nearest expiry first.",
        "Mọi chứng thư số cổng dùng để ký, phục vụ TLS hoặc tin cậy, sắp hết hạn trước.",
    ),
    "certificates.role": ("Role", "Vai trò"),
    "certificates.subject": ("Subject", "Chủ thể"),
    "certificates.issuer": ("Issuer", "Bên cấp"),
    "certificates.serial": ("Serial", "Số sê-ri"),
    "certificates.not_after": ("Valid until", "Hiệu lực đến"),
    "certificates.field": ("Configured at", "Cấu hình tại"),
    "certificates.expired": ("expired", "đã hết hạn"),
}


def routes(console: Console) -> list[web.RouteDef]:
    async def certificates(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        now = console.gateway.clock.now()
        warning = console.gateway.config.gateway.logging.certificate_warning_days
        rows = []
        for c in sorted(certificate_inventory(console.gateway.config), key=lambda c: (c.not_after, c.party)):
            days = (c.not_after - now) / 86400
            rows.append(
                {
                    "party": c.party,
                    "role": c.role,
                    "field": c.field,
                    "subject": c.certificate.subject.rfc4514_string(),
                    "issuer": c.certificate.issuer.rfc4514_string(),
                    "serial": c.serial,
                    "not_after": c.not_after,
                    "days_left": days,
                    "level": "bad" if days < warning else "warn" if days < 3 * warning else "ok",
                }
            )
        return console.render(request, "certificates.html", session=session, certificates=rows, page="certificates")

    return [web.get("/console/certificates", console.page()(certificates))]
