"""``/console/procedures``: per document type and procedure (the envelope's VNSW procedure, when it named one),
the daily submissions and processing times (submission → final receipt: p50, p95, p99) over the last
``?days=7|30`` days (default 7), with the share finished within :data:`~gateway.console.pages.overview.TARGET_SECONDS`.
The charts are inline SVG rendered here: a bar per day for the volume, a line for the day's p95 against the
target."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.console.pages.overview import TARGET_SECONDS
from gateway.console.sessions import ConsoleSession
from gateway.store.base import ProcedureStats, percentile

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "DAYS", "routes"]

DAY = 86400.0
DAYS = (7, 30)
"""The spans one may choose (``?days=``), the first the default."""

LABELS = {
    "procedures.title": ("Procedures", "Thủ tục"),
    "procedures.intro": (
        "Daily submissions and processing time (submission to final receipt) per document type and procedure.",
        "Số hồ sơ mỗi ngày và thời gian xử lý (từ khi gửi đến biên nhận cuối cùng) theo loại chứng từ và thủ tục.",
    ),
    "procedures.days": ("Last days", "Số ngày gần nhất"),
    "procedures.procedure": ("Procedure", "Thủ tục"),
    "procedures.submitted": ("Submitted", "Đã gửi"),
    "procedures.rejected": ("Rejected", "Bị từ chối"),
    "procedures.finished": ("Finished", "Đã hoàn tất"),
    "procedures.within_target": ("Within 3 s", "Trong 3 giây"),
    "procedures.p50": ("p50", "p50"),
    "procedures.p95": ("p95", "p95"),
    "procedures.p99": ("p99", "p99"),
    "procedures.chart": ("Per day: volume (bars) and p95 (line)", "Theo ngày: số lượng (cột) và p95 (đường)"),
    "procedures.target_line": ("target 3 s", "mục tiêu 3 giây"),
    "procedures.unnamed": ("(none)", "(không có)"),
    "procedures.day": ("day", "ngày"),
}

_CHART_W = 720
_CHART_H = 140
_PAD = 24


@dataclass(frozen=True)
class Day:
    start: float
    label: str
    """The day, ``YYYY-MM-DD`` (UTC)."""
    submitted: int
    p95: float | None
    x: float
    width: float
    bar_y: float
    line_y: float | None


@dataclass(frozen=True)
class Row:
    document_type: str
    procedure: str | None
    submitted: int
    rejected: int
    finished: int
    within_target: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    days: tuple[Day, ...]
    target_y: float
    busiest: int
    """The scale of the bars: the busiest day's submissions."""
    slowest: float
    """The scale of the line: seconds at the top of the chart."""
    line: str
    """The SVG ``points`` of the p95 line (the days that had finished submissions)."""

    @property
    def id(self) -> str:
        return f"procedure-{self.document_type}-{self.procedure or ''}"


def _row(document_type: str, procedure: str | None, stats: list[ProcedureStats], starts: list[float]) -> Row:
    by_day = {s.start: s for s in stats}
    latencies = list(heapq.merge(*(s.latencies for s in stats)))
    busiest = max((s.submitted for s in stats), default=0) or 1
    day_p95 = {s.start: percentile(s.latencies, 0.95) for s in stats}
    slowest = max([TARGET_SECONDS * 1.5, *(p for p in day_p95.values() if p is not None)])
    inner = _CHART_H - 2 * _PAD
    width = (_CHART_W - 2 * _PAD) / len(starts)
    days = []
    for i, start in enumerate(starts):
        s = by_day.get(start)
        submitted = s.submitted if s is not None else 0
        p95 = day_p95.get(start)
        days.append(
            Day(
                start,
                datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d"),
                submitted,
                p95,
                _PAD + i * width,
                max(1.0, width - 2),
                _PAD + inner * (1 - submitted / busiest),
                None if p95 is None else _PAD + inner * (1 - p95 / slowest),
            )
        )
    points = " ".join(f"{d.x + d.width / 2:.1f},{d.line_y:.1f}" for d in days if d.line_y is not None)
    return Row(
        document_type,
        procedure,
        sum(s.submitted for s in stats),
        sum(s.rejected for s in stats),
        len(latencies),
        sum(1 for v in latencies if v <= TARGET_SECONDS) / len(latencies) if latencies else None,
        percentile(latencies, 0.50),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        tuple(days),
        _PAD + inner * (1 - TARGET_SECONDS / slowest),
        busiest,
        slowest,
        points,
    )


def routes(console: Console) -> list[web.RouteDef]:
    async def procedures(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        chosen = request.query.get("days", "")
        days = int(chosen) if chosen in {str(d) for d in DAYS} else DAYS[0]
        now = console.gateway.clock.now()
        first = (now // DAY - (days - 1)) * DAY
        starts = [first + i * DAY for i in range(days)]
        groups: dict[tuple[str, str | None], list[ProcedureStats]] = {}
        for s in await console.gateway.store.procedure_stats(first, now, bucket=DAY):
            groups.setdefault((s.document_type, s.procedure), []).append(s)
        rows = [_row(document_type, procedure, stats, starts) for (document_type, procedure), stats in groups.items()]
        return console.render(
            request,
            "procedures.html",
            session=session,
            page="procedures",
            rows=sorted(rows, key=lambda r: (-r.submitted, r.document_type, r.procedure or "")),
            days=days,
            spans=DAYS,
            chart_w=_CHART_W,
            chart_h=_CHART_H,
            pad=_PAD,
        )

    return [web.get("/console/procedures", console.page()(procedures))]
