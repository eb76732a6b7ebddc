"""The console's overview (flow map, weak points, its live fragment) and procedures pages, and the store's window
aggregates behind them (``Store.flows``, ``Store.procedure_stats``) on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import lxml.html
import pytest

from gateway.api import Gateway
from gateway.errors import PartnerUnavailable, XmlMalformed
from gateway.model import Delivery, Message, PartyId, SubmissionAck, SubmissionEnvelope
from gateway.store import Store
from gateway.store.base import DestinationFlow, ProcedureStats, SenderFlow, percentile
from helpers.admin import OPERATORS
from helpers.console import ConsoleClient, log_in
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config, submit

SCRIPT = "<script>alert(1)</script>"
INERT_ROOT = b'<a xmlns="urn:&lt;script&gt;alert(1)&lt;/script&gt;"/>'
"""A namespace holding a script (not a valid URI): the XML parser quotes it in the rejection's message."""


async def _queued(
    store: Store,
    mid: str,
    destinations: tuple[str, ...],
    *,
    at: float,
    sender: str = "MOIT",
    procedure: str | None = None,
    ttl: float = 50.0,
) -> None:
    env = SubmissionEnvelope(sender=PartyId(sender), message_id=mid, document_type="eco.form_d", procedure=procedure)
    m = Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)
    ds = [Delivery.create(m, d, b"<m/>", content_type="application/xml", at=at, ttl=ttl) for d in destinations]
    assert (await store.accept(m, b"<m/>", ds, SubmissionAck(m.id, sender, mid, m.state, at, destinations)))[1]


async def _acknowledge(store: Store, destination: str, *, at: float) -> None:
    [d] = await store.claim(destination, owner="w", limit=1, now=at, lease=10)
    await store.record(d.delivered(at=at).acknowledged(b"r", at=at), owner="w", now=at)


async def _traffic(store: Store) -> None:
    """OLD (50, acknowledged by TH at 150); A (110, procedure P1, TH at 111 and CUSTOMS at 112.5); B (120, one
    failed attempt at TH at 121, dead at 130); R (MARD, sps.permit, rejected XML_MALFORMED at 130); LATE (250)."""
    await _queued(store, "OLD", ("TH",), at=50.0, ttl=500.0)
    await _acknowledge(store, "TH", at=150.0)
    await _queued(store, "A", ("TH", "CUSTOMS"), at=110.0, procedure="P1")
    await _acknowledge(store, "TH", at=111.0)
    await _acknowledge(store, "CUSTOMS", at=112.5)
    await _queued(store, "B", ("TH",), at=120.0, ttl=5.0)
    [b] = await store.claim("TH", owner="w", limit=1, now=121.0, lease=10)
    await store.record(
        b.attempt_failed(PartnerUnavailable("503"), at=121.0).retry_at(122.0, at=121.0), owner="w", now=121.0
    )
    assert len(await store.expire("TH", now=130.0, code="PARTNER_UNAVAILABLE", detail="ttl")) == 1
    env = SubmissionEnvelope(sender=PartyId("MARD"), message_id="R", document_type="sps.permit")
    r = Message.receive(env, at=130.0).reject(XmlMalformed("not XML"), at=130.0)
    ack = SubmissionAck(r.id, "MARD", "R", r.state, 130.0, (), error=r.error)
    assert (await store.accept(r, b"<", [], ack))[1]
    await _queued(store, "LATE", ("TH",), at=250.0)


async def test_flows_count_a_windows_submissions_rejections_receipts_failures_and_dead_letters(store: Store) -> None:
    await _traffic(store)
    flows = await store.flows(100.0, 200.0)
    assert flows.senders == (
        SenderFlow("MARD", 1, {"XML_MALFORMED": 1}, ()),
        SenderFlow("MOIT", 2, {}, (2.5,)),  # B never finished; OLD and LATE are outside
    )
    assert flows.destinations == (
        DestinationFlow("CUSTOMS", 1, 0, 0, (2.5,)),
        DestinationFlow("TH", 2, 1, 1, (1.0, 100.0)),  # OLD's receipt is in the window, its submission is not
    )
    assert flows.destinations[1].failure_rate == 0.5 and flows.senders[0].rejection_rate == 1.0
    assert (await store.flows(300.0, 400.0)).senders == ()


async def test_procedure_stats_bucket_submissions_by_type_procedure_and_time(store: Store) -> None:
    await _traffic(store)
    assert await store.procedure_stats(0.0, 300.0, bucket=100.0) == [
        ProcedureStats("eco.form_d", None, 0.0, 1, 0, (100.0,)),
        ProcedureStats("eco.form_d", None, 100.0, 1, 0, ()),
        ProcedureStats("eco.form_d", None, 200.0, 1, 0, ()),
        ProcedureStats("eco.form_d", "P1", 100.0, 1, 0, (2.5,)),
        ProcedureStats("sps.permit", None, 100.0, 1, 1, ()),
    ]


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([], 0.95) is None and percentile([7.0], 0.95) == 7.0


# ---------------------------------------------------------------------------------------------- pages


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Receiver, Receiver]]:
    """MOIT (eco.form_d) → TH, a partner that answers; MARD (sps.permit) → VN, one that is down; BROKER an
    intermediary that sends nothing."""
    async with Receiver() as th, Receiver(mode="down") as kr:
        config = make_config(
            tmp_path,
            {"TH": th.url, "VN": kr.url},
            routes=[{"document_type": "sps.permit", "to": ["VN"]}, {"document_type": "*", "to": ["TH"]}],
            # VN keeps retrying through the test: its deliveries stay in the backlog
            per_destination={"VN": {"retry": {"max_attempts": 1000, "ttl": 600.0, "initial": 0.05, "max_wait": 0.2}}},
            parties={
                "BROKER": {
                    "tokens": [TOKENS["BROKER"]],
                    "kind": "intermediary",
                    "on_behalf_of": ["0101234567"],
                    "document_types": ["eco.form_d"],
                }
            },
            document_types={"eco.amendment": {"roots": ["Amendment"]}},
            extra={"operators": OPERATORS},
        )
        async with Gateway(config) as gw:
            async with aiohttp.ClientSession() as http:
                for n in range(3):
                    assert (await submit(http, gw.url, "MOIT", f"F-{n}", "eco.form_d", doc(n)))[0] == 202
                for n in range(2):
                    assert (await submit(http, gw.url, "MARD", f"S-{n}", "sps.permit", doc(n)))[0] == 202
                status, body = await submit(http, gw.url, "MOIT", "BAD-1", "eco.amendment", INERT_ROOT)
                assert (status, body["error"]["code"]) == (400, "XML_MALFORMED") and SCRIPT in body["error"][
                    "message"
                ], body
            await eventually(lambda: len(th.processed) == 3 and len(kr.requests) >= 2)
            yield gw, th, kr


def _flow(page: lxml.html.HtmlElement, edge: str) -> dict[str, str]:
    return dict(page.get_element_by_id(f"edge-{edge}").attrib)


async def _settled(client: ConsoleClient) -> lxml.html.HtmlElement:
    """The overview once TH's three receipts are counted."""
    page: lxml.html.HtmlElement | None = None

    async def counted() -> bool:
        nonlocal page
        _, page = await client.page("/console/?window=15m")
        return _flow(page, "destination-TH")["data-volume"] == "3"

    await eventually(counted, limit=10.0, step=0.1)
    assert page is not None
    return page


def _assert_flow_parts(page: lxml.html.HtmlElement) -> None:
    for node in ("sender-MOIT", "sender-MARD", "sender-TRADER", "sender-BROKER", "destination-TH", "destination-VN"):
        assert page.get_element_by_id(f"node-{node}") is not None
    assert page.get_element_by_id("node-sender-BROKER").get("data-kind") == "intermediary"
    moit, mard, trader = (_flow(page, f"sender-{n}") for n in ("MOIT", "MARD", "TRADER"))
    assert (moit["data-volume"], moit["data-errors"], moit["data-level"]) == ("4", "1", "bad")  # 25 % rejected
    assert (mard["data-volume"], mard["data-errors"], mard["data-p95"]) == ("2", "0", "")  # nothing finished
    assert (trader["data-volume"], trader["data-errors"]) == ("0", "0")
    th, kr = _flow(page, "destination-TH"), _flow(page, "destination-VN")
    assert (th["data-volume"], th["data-errors"], th["data-level"]) == ("3", "0", "ok")
    assert float(th["data-p95"]) < 3.0
    assert (kr["data-volume"], kr["data-level"]) == ("0", "bad") and int(kr["data-errors"]) >= 2
    ranked = page.xpath("//table[@id='weak-destinations']/tbody/tr/@data-destination")
    assert ranked == ["VN", "TH"], "the failing partner is not the first weak point"  # not by name or configuration
    [kr_row] = page.xpath("//table[@id='weak-destinations']/tbody/tr[@data-destination='VN']")
    assert kr_row.xpath("string(td[@class='num pending'])") == "2"
    assert page.xpath("//table[@id='weak-senders']/tbody/tr/@data-sender") == ["MOIT"]
    assert page.xpath("//table[@id='weak-senders']//span[@data-code]/@data-code") == ["XML_MALFORMED"]


async def test_the_overview_maps_every_party_and_flow_with_its_counts_and_ranks_the_failing_partner_first(
    rig: tuple[Gateway, Receiver, Receiver],
) -> None:
    gw, _, _ = rig
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        client = await log_in(gw, session)
        page = await _settled(client)
        _assert_flow_parts(page)
        [live] = page.xpath("//div[@id='live']")
        assert (live.get("data-live"), live.get("data-every")) == ("/console/fragments/flows?window=15m", "5")
        assert page.xpath("//nav[@id='windows']/strong/@data-window") == ["15m"]
        assert page.xpath("//nav[@id='windows']/a/@href") == [
            "/console/?window=1h",
            "/console/?window=24h",
            "/console/?window=7d",
        ]
        status, fragment = await client.page("/console/fragments/flows?window=15m")
        assert status == 200 and not fragment.xpath("//header")
        _assert_flow_parts(fragment)
        _, default = await client.page("/console/?window=forever")
        assert default.xpath("//nav[@id='windows']/strong/@data-window") == ["1h"]
        _, vietnamese = await client.page("/console/language?to=vi&next=/console/")
        assert vietnamese.xpath("string(//h1)") == "Tổng quan"
        _assert_flow_parts(vietnamese)


async def test_the_flows_fragment_needs_a_session(rig: tuple[Gateway, Receiver, Receiver]) -> None:
    gw, _, _ = rig
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{gw.url}/console/fragments/flows?window=1h", allow_redirects=False) as r:
            location = urlsplit(r.headers["Location"])
            assert (r.status, location.path) == (303, "/console/login")
            assert parse_qs(location.query)["next"] == ["/console/fragments/flows?window=1h"]
            assert "edge-" not in await r.text()


async def test_a_script_in_a_refused_submission_renders_inert_on_the_overview_and_its_fragment(
    rig: tuple[Gateway, Receiver, Receiver],
) -> None:
    gw, _, _ = rig
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await log_in(gw, session)
        for path in ("/console/", "/console/fragments/flows"):
            async with session.get(f"{gw.url}{path}") as r:
                html = await r.text()
            assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
            page = lxml.html.fromstring(html)
            [last] = page.xpath("//table[@id='weak-senders']//span[@class='error-text']")
            assert SCRIPT in last.text_content()  # shown as text
            assert [s.get("src") for s in page.xpath("//script")] == (
                ["/console/static/console.js"] if path == "/console/" else []
            )


async def test_procedures_show_each_document_type_with_its_counts_and_times(
    rig: tuple[Gateway, Receiver, Receiver],
) -> None:
    gw, _, _ = rig
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        client = await log_in(gw, session)
        status, page = await client.page("/console/procedures?days=30")
        assert status == 200 and page.xpath("//nav[@id='spans']/strong/@data-days") == ["30"]
        rows = {
            r.get("data-document-type"): (
                r.xpath("string(td[@class='num submitted'])"),
                r.xpath("string(td[@class='num rejected'])"),
                r.xpath("string(td[@class='num finished'])"),
            )
            for r in page.xpath("//table[@id='procedures']/tbody/tr")
        }
        assert rows == {"eco.form_d": ("3", "0", "3"), "sps.permit": ("2", "0", "0"), "eco.amendment": ("1", "1", "0")}
        [within] = page.xpath("//tr[@data-document-type='eco.form_d']/td[@class='num within']/text()")
        assert within == "100.0 %"
        bars = page.xpath("//section[@id='chart-procedure-eco.form_d-']//rect[@class='bar']")
        assert len(bars) == 30 and bars[-1].get("data-submitted") == "3"
        _, week = await client.page("/console/procedures")
        assert len(week.xpath("//section[@id='chart-procedure-eco.form_d-']//rect[@class='bar']")) == 7
