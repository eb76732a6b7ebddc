"""``/console/reference-lists``: the policy reference lists (:mod:`gateway.reference`), each with the version in
force now and every version: its effective instant, entries, digest and who published it how."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.console.sessions import ConsoleSession
from gateway.reference import ReferenceVersion, in_force

if TYPE_CHECKING:
    from gateway.console import Console

LABELS = {
    "reference.title": ("Reference lists", "Danh mục tham chiếu"),
    "reference.intro": (
        "Policy lists published by the ministries or loaded by an operator; validation uses the version in force "
        "at each submission's time.",
        "Danh mục chính sách do các bộ công bố hoặc quản trị viên nạp; việc kiểm tra dùng phiên bản có hiệu lực "
        "tại thời điểm tiếp nhận hồ sơ.",
    ),
    "reference.list": ("List", "Danh mục"),
    "reference.owner": ("Owner", "Cơ quan chủ quản"),
    "reference.purpose": ("Purpose", "Mục đích"),
    "reference.version": ("Version", "Phiên bản"),
    "reference.in_force": ("In force", "Đang hiệu lực"),
    "reference.effective_from": ("Effective from", "Hiệu lực từ"),
    "reference.entries": ("Entries", "Mục"),
    "reference.digest": ("Digest", "Mã băm"),
    "reference.publisher": ("Published by", "Người công bố"),
    "reference.via": ("Via", "Qua"),
    "reference.pending": ("not yet in force", "chưa có hiệu lực"),
}


def routes(console: Console) -> list[web.RouteDef]:
    async def reference_lists(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        now = console.gateway.clock.now()
        by_name: dict[str, list[ReferenceVersion]] = {}
        for v in await console.gateway.store.reference_versions():
            by_name.setdefault(v.name, []).append(v)
        rows: list[dict[str, Any]] = []
        for name, versions in sorted(by_name.items()):
            current = in_force(versions, now)
            for v in reversed(versions):
                rows.append(
                    {
                        "name": name,
                        "owner": v.owner,
                        "purpose": v.purpose,
                        "version": v.version,
                        "in_force": current is not None and current.version == v.version,
                        "pending": v.effective_from > now,
                        "effective_from": v.effective_from,
                        "entries": ", ".join(e.code for e in v.entries),
                        "digest": v.digest[:16],
                        "publisher": v.publisher,
                        "via": v.via,
                    }
                )
        return console.render(request, "reference.html", session=session, versions=rows, page="reference")

    return [web.get("/console/reference-lists", console.page()(reference_lists))]
