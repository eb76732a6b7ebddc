"""``/console/``: the flow map and the weak points over a window (``?window=15m|1h|24h|7d``, default ``1h``).

The map is inline SVG rendered here: the senders (``[parties]``, intermediaries marked) on the left, the gateway in
the middle, the destinations on the right. A sender's edge carries its submissions, its rejection rate and the
p95 from submission to final receipt; a destination's edge its verified receipts, its failure rate (failed
attempts and dead deliveries among the window's outcomes) and the p95 from queued to receipt. An edge is
``edge-ok`` within :data:`TARGET_SECONDS` at p95 and under :data:`ERROR_LIMIT`, ``edge-warn`` within twice the
target and under four times the limit, ``edge-bad`` beyond. The weak points rank destinations by backlog (count,
then the oldest's age), failure rate and p95, and senders by rejections with their most frequent codes and the
last one refused. ``/console/fragments/flows`` answers the map and the panel alone (the page refreshes them with
it every five seconds)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from gateway.console.sessions import ConsoleSession
from gateway.model import State
from gateway.store.base import (
    DestinationFlow,
    DestinationStats,
    MessageQuery,
    MessageRecord,
    SenderFlow,
    percentile,
)

if TYPE_CHECKING:
    from gateway.console import Console

__all__ = ["LABELS", "TARGET_SECONDS", "ERROR_LIMIT", "WINDOWS", "level", "routes"]

TARGET_SECONDS = 3.0
"""The processing-time target the map colours against (p95)."""
ERROR_LIMIT = 0.05
"""The error rate an ``edge-ok`` stays under."""
WINDOWS = {"15m": 900.0, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
"""The windows one may choose, by their name in ``?window=``."""
DEFAULT_WINDOW = "1h"
LIVE_EVERY = 5
"""Seconds between refreshes of the live part."""

Level = Literal["ok", "warn", "bad"]

LABELS = {
    "overview.title": ("Overview", "Tổng quan"),
    "overview.intro": (
        "Who sends, who receives, and how each flow meets the 3-second target over the chosen window.",
        "Ai gửi, ai nhận, và mỗi luồng đáp ứng mục tiêu 3 giây thế nào trong khoảng thời gian đã chọn.",
    ),
    "overview.window": ("Window", "Khoảng thời gian"),
    "overview.map": ("Flow map", "Bản đồ luồng"),
    "overview.gateway": ("Gateway", "Cổng kết nối"),
    "overview.kind_party": ("party", "bên tham gia"),
    "overview.kind_intermediary": ("intermediary", "trung gian"),
    "overview.kind_destination": ("destination", "bên nhận"),
    "overview.failed_attempts": ("Failed attempts", "Lần gửi lỗi"),
    "overview.dead_in_window": ("Dead", "Hỏng hẳn"),
    "overview.rejected_of_submitted": ("Rejected / submitted", "Bị từ chối / đã gửi"),
    "overview.submitted": ("submitted", "đã gửi"),
    "overview.rejected": ("rejected", "bị từ chối"),
    "overview.delivered": ("delivered", "đã chuyển"),
    "overview.failed": ("failed", "lỗi"),
    "overview.dead": ("dead", "hỏng hẳn"),
    "overview.p95": ("p95", "p95"),
    "overview.weak_points": ("Weak points", "Điểm yếu"),
    "overview.weak_destinations": (
        "Destinations by backlog, failures and latency",
        "Bên nhận theo tồn đọng, lỗi và độ trễ",
    ),
    "overview.weak_senders": ("Senders by rejections", "Bên gửi theo số lần bị từ chối"),
    "overview.pending": ("Pending", "Đang chờ"),
    "overview.oldest": ("Oldest waiting", "Chờ lâu nhất"),
    "overview.failure_rate": ("Failure rate", "Tỷ lệ lỗi"),
    "overview.rejection_rate": ("Rejection rate", "Tỷ lệ từ chối"),
    "overview.top_codes": ("Top codes", "Mã lỗi thường gặp"),
    "overview.last_rejected": ("Last refused", "Lần từ chối gần nhất"),
    "overview.target": ("Target: p95 within 3 s, errors under 5 %", "Mục tiêu: p95 trong 3 giây, lỗi dưới 5 %"),
    "overview.no_traffic": ("no traffic in this window", "không có lưu lượng trong khoảng này"),
}

# the map's geometry (SVG user units)
_WIDTH = 1200
_ROW = 76
_NODE_W = 170
_NODE_H = 44
_GATEWAY_W = 140
_GATEWAY_H = 64
_LABEL_AT = 0.4
"""Where along its edge (from the party's end) a flow's label sits."""


def level(p95: float | None, rate: float) -> Level:
    """The colour of a flow with this p95 (``None``: nothing finished) and error rate."""
    slow = p95 if p95 is not None else 0.0
    if slow <= TARGET_SECONDS and rate < ERROR_LIMIT:
        return "ok"
    if slow <= 2 * TARGET_SECONDS and rate < 4 * ERROR_LIMIT:
        return "warn"
    return "bad"


@dataclass(frozen=True)
class Node:
    side: Literal["sender", "destination"]
    name: str
    kind: str
    """``party``, ``intermediary`` or ``destination``."""
    volume: int
    errors: int
    rate: float
    p95: float | None
    level: Level
    x: int
    y: int
    edge: tuple[int, int, int, int] = (0, 0, 0, 0)
    """The edge's line, ``(x1, y1, x2, y2)``, from the party's side to the gateway's."""
    label: tuple[int, int] = (0, 0)
    """Where the edge's label is centred."""

    @property
    def id(self) -> str:
        return f"{self.side}-{self.name}"

    def attached(self, gateway_x: int, gateway_y: int) -> Node:
        """This node with its edge to the gateway's side facing it and the edge's label."""
        if self.side == "sender":
            x1, x2 = self.x + _NODE_W, gateway_x - _GATEWAY_W // 2
        else:
            x1, x2 = self.x, gateway_x + _GATEWAY_W // 2
        label = (int(x1 + (x2 - x1) * _LABEL_AT), int(self.y + (gateway_y - self.y) * _LABEL_AT))
        return replace(self, edge=(x1, self.y, x2, gateway_y), label=label)


@dataclass(frozen=True)
class Map:
    width: int
    height: int
    gateway_x: int
    gateway_y: int
    senders: tuple[Node, ...]
    destinations: tuple[Node, ...]
    node_w: int = _NODE_W
    node_h: int = _NODE_H
    gateway_w: int = _GATEWAY_W
    gateway_h: int = _GATEWAY_H


def _rows(count: int, height: int) -> list[int]:
    """The centres of ``count`` nodes spread over ``height``."""
    step = height / max(count, 1)
    return [int(step * i + step / 2) for i in range(count)]


def _map(console: Console, senders: dict[str, SenderFlow], destinations: dict[str, DestinationFlow]) -> Map:
    config = console.gateway.config
    sender_names = sorted(config.parties.keys() | senders.keys())
    destination_names = sorted(config.destinations.keys() | destinations.keys())
    height = max(len(sender_names), len(destination_names), 2) * _ROW + 20
    left = []
    for name, y in zip(sender_names, _rows(len(sender_names), height), strict=True):
        s = senders.get(name, SenderFlow(name, 0, {}, ()))
        p95 = percentile(s.latencies, 0.95)
        party = config.parties.get(name)
        left.append(
            Node(
                "sender",
                name,
                party.kind if party is not None else "party",
                s.submitted,
                sum(s.rejected.values()),
                s.rejection_rate,
                p95,
                level(p95, s.rejection_rate),
                10,
                y,
            )
        )
    right = []
    for name, y in zip(destination_names, _rows(len(destination_names), height), strict=True):
        d = destinations.get(name, DestinationFlow(name, 0, 0, 0, ()))
        p95 = percentile(d.latencies, 0.95)
        right.append(
            Node(
                "destination",
                name,
                "destination",
                d.acknowledged,
                d.failed + d.dead,
                d.failure_rate,
                p95,
                level(p95, d.failure_rate),
                _WIDTH - 10 - _NODE_W,
                y,
            )
        )
    gateway_x, gateway_y = _WIDTH // 2, height // 2
    return Map(
        _WIDTH,
        height,
        gateway_x,
        gateway_y,
        tuple(n.attached(gateway_x, gateway_y) for n in left),
        tuple(n.attached(gateway_x, gateway_y) for n in right),
    )


_SEVERITY = {"bad": 2, "warn": 1, "ok": 0}


@dataclass(frozen=True)
class WeakDestination:
    name: str
    pending: int
    oldest_age: float | None
    """Seconds the oldest delivery of the backlog has waited."""
    failed: int
    dead: int
    failure_rate: float
    p95: float | None
    level: Level

    @property
    def rank(self) -> tuple[float, ...]:
        """Worst first: the colour, then the backlog and its oldest's age, the failure rate, the p95."""
        return (
            -_SEVERITY[self.level],
            -self.pending,
            -(self.oldest_age or 0.0),
            -self.failure_rate,
            -(self.p95 or 0.0),
        )


def _weak_destinations(
    destinations: dict[str, DestinationFlow], stats: dict[str, DestinationStats], names: list[str], now: float
) -> list[WeakDestination]:
    rows = []
    for name in names:
        flow = destinations.get(name, DestinationFlow(name, 0, 0, 0, ()))
        backlog = stats.get(name, DestinationStats(name, {}))
        oldest = backlog.oldest_pending
        p95 = percentile(flow.latencies, 0.95)
        failing = backlog.pending > 0 and flow.failure_rate >= ERROR_LIMIT
        rows.append(
            WeakDestination(
                name,
                backlog.pending,
                None if oldest is None else max(0.0, now - oldest),
                flow.failed,
                flow.dead,
                flow.failure_rate,
                p95,
                "bad" if failing else level(p95, flow.failure_rate),
            )
        )
    return sorted(rows, key=lambda row: row.rank)


@dataclass(frozen=True)
class WeakSender:
    name: str
    rejected: int
    submitted: int
    rate: float
    codes: tuple[tuple[str, int], ...]
    """The three most frequent rejection codes with their counts."""
    last: MessageRecord | None
    """The last submission refused in the window."""
    level: Level

    @property
    def last_error(self) -> str:
        error = self.last.message.error if self.last is not None else None
        return str(error.get("message", "")) if error else ""


async def _weak_senders(console: Console, senders: dict[str, SenderFlow], since: float) -> list[WeakSender]:
    rows = []
    ranked = sorted(
        (s for s in senders.values() if s.rejected),
        key=lambda s: (-sum(s.rejected.values()), -s.rejection_rate, s.sender),
    )
    for s in ranked:
        found = await console.gateway.store.search(
            MessageQuery(sender=s.sender, state=State.REJECTED, since=since, limit=1)
        )
        rows.append(
            WeakSender(
                s.sender,
                sum(s.rejected.values()),
                s.submitted,
                s.rejection_rate,
                tuple(sorted(s.rejected.items(), key=lambda item: (-item[1], item[0]))[:3]),
                found[0] if found else None,
                level(None, s.rejection_rate),
            )
        )
    return rows


def routes(console: Console) -> list[web.RouteDef]:
    async def live(request: web.Request) -> dict[str, Any]:
        window = request.query.get("window", DEFAULT_WINDOW)
        if window not in WINDOWS:
            window = DEFAULT_WINDOW
        now = console.gateway.clock.now()
        since = now - WINDOWS[window]
        store = console.gateway.store
        flows = await store.flows(since, now)
        senders = {s.sender: s for s in flows.senders}
        destinations = {d.destination: d for d in flows.destinations}
        stats = {s.destination: s for s in await store.stats()}
        flow_map = _map(console, senders, destinations)
        return {
            "window": window,
            "windows": list(WINDOWS),
            "map": flow_map,
            "weak_destinations": _weak_destinations(destinations, stats, [n.name for n in flow_map.destinations], now),
            "weak_senders": await _weak_senders(console, senders, since),
            "live_every": LIVE_EVERY,
        }

    async def overview(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        context = await live(request)
        return console.render(request, "overview.html", session=session, page="overview", **context)

    async def fragment(request: web.Request, session: ConsoleSession) -> web.StreamResponse:
        context = await live(request)
        return console.render(request, "overview_live.html", session=session, **context)

    return [
        web.get("/console/", console.page()(overview)),
        web.get("/console/fragments/flows", console.page()(fragment)),
    ]
