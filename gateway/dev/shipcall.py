"""A ship call for the demo and the tests (development only): the declaration of a container ship's arrival at
Cat Lai (Ho Chi Minh City) by a shipping agent, its amendments, each agency's decision, and a run of the whole
exchange on its own gateway (:func:`ship_call_demo`, the topology of ``gateway/examples/ship-calls.toml``).

The agent declares once, in the signed MOT VNSW envelope; the port authority, border guard, health quarantine,
customs and animal/plant quarantine each receive their part; health refuses (no medical officer on the crew list),
the others accept, each with a signed ``ship-decision``; the agent amends the crew list, which only the port
authority, the border guard and health receive; they accept, and the port entry is permitted. The unsigned
JSON variants (:func:`ship_call`, :func:`decision`) serve the unsigned development topology
(:data:`EXAMPLE_UNSIGNED`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from signing.dev.pki import DevPki
    from signing.keys import Signer

__all__ = [
    "AGENCY_KEYS",
    "AGENCY_TOKENS",
    "AGENT_TOKEN",
    "EXAMPLE",
    "EXAMPLE_UNSIGNED",
    "PKI_DIR",
    "PKI_PARTIES",
    "Inbox",
    "PASSPORTS",
    "SHIPOWNER",
    "decision",
    "example_config_text",
    "party_signer",
    "ship_call",
    "ship_call_demo",
    "ship_call_pki",
    "signed_decision",
    "signed_ship_call",
    "vnsw_ship_call",
    "VNSW_AGENT",
]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ship-calls.toml"
"""The signed topology: agent, five agencies, their destinations and fields, the procedures' rules, the dev PKI."""
EXAMPLE_UNSIGNED = EXAMPLE.with_name("ship-calls-unsigned.toml")
"""The same topology unsigned, everyone in the harmonized JSON (development only)."""
PKI_DIR = "ship-calls-pki"
"""Where :data:`EXAMPLE` expects its dev PKI, relative to it (``nswgw keys init`` with :data:`PKI_PARTIES`)."""
PKI_PARTIES = (
    "nsw-gateway",
    "agent",
    "port-auth",
    "border-guard",
    "health-quarantine",
    "port-customs",
    "ap-quarantine",
)
AGENCY_KEYS = {
    "PORT": "port-auth",
    "BORDER": "border-guard",
    "HEALTH": "health-quarantine",
    "CUSTOMS": "port-customs",
    "QUARANTINE": "ap-quarantine",
}
"""The dev PKI key of the party answering for each agency destination (:data:`EXAMPLE` binds each to its own)."""
AGENT_TOKEN = "dev-agent-token"
AGENCY_TOKENS = {
    "PORT": "dev-port-token",
    "BORDER": "dev-border-token",
    "HEALTH": "dev-health-token",
    "CUSTOMS": "dev-customs-token",
    "QUARANTINE": "dev-quarantine-token",
}
"""The token of the party answering for each agency destination (as the example configuration has them)."""
SHIPOWNER = "0301234567"
PASSPORTS = ("C4471250", "P0094415", "B7720193")
"""The identity-document numbers of the crew and the passenger: personal data only the border guard (crew and
passengers) and health (crew) may receive."""
CALL = "SGN-2026-0417"
NO_DOCTOR = "no medical officer on the crew list for 2 040 persons on board"
_PORTS = re.compile(r"http://127\.0\.0\.1:(92\d\d)/inbox")


def ship_call(
    reference: str,
    *,
    amends: str | None = None,
    eta: str = "2026-12-05T06:00:00+07:00",
    sanitation_expiry: str = "2026-11-30",
    extra_crew: bool = False,
) -> bytes:
    """The harmonized JSON declaration of the call (or, with ``amends``, an amendment of that version)."""
    crew = [
        {
            "family_name": "Andersen",
            "given_names": "Lars",
            "nationality": "DK",
            "rank_or_rating": "MASTER",
            "identity_document": {"type": "passport", "number": PASSPORTS[0], "issuing_state": "DK"},
        },
        {
            "family_name": "Santos",
            "given_names": "Maria Luisa",
            "nationality": "PH",
            "rank_or_rating": "CHIEF-OFFICER",
            "identity_document": {"type": "seafarer", "number": PASSPORTS[1], "issuing_state": "PH"},
        },
    ]
    if extra_crew:
        crew.append(
            {
                "family_name": "Nguyen",
                "given_names": "Van An",
                "nationality": "VN",
                "rank_or_rating": "ABLE-SEAMAN",
                "identity_document": {"type": "seafarer", "number": "VN0077123", "issuing_state": "VN"},
            }
        )
    call: dict[str, Any] = {
        "reference": reference,
        "ship": {
            "imo_number": "9321483",
            "call_sign": "OXYZ2",
            "name": "MAERSK KOWLOON",
            "flag": "DK",
            "gross_tonnage": "66000",
            "master": "Lars Andersen",
        },
        "voyage": {
            "voyage_number": "249S",
            "arrival": True,
            "port_of_call": "VNCLI",
            "eta": eta,
            "last_port": "SGSIN",
            "next_port": "HKHKG",
        },
        "crew": crew,
        "passengers": [
            {
                "family_name": "Keller",
                "given_names": "Anna",
                "nationality": "DE",
                "identity_document": {"type": "passport", "number": PASSPORTS[2], "issuing_state": "DE"},
                "port_of_embarkation": "SGSIN",
                "port_of_disembarkation": "VNCLI",
            }
        ],
        "dangerous_goods": [
            {"un_number": "1203", "proper_shipping_name": "GASOLINE", "imo_class": "3", "packing_group": "II"}
        ],
        "stores": [{"name": "Fuel oil", "quantity": {"value": "850", "unit": "TNE"}, "location": "tanks"}],
        "crew_effects": [{"crew_member": "Santos, Maria Luisa", "description": "2 cartons of cigarettes"}],
        "health": {
            "ill_persons": 0,
            "deaths": 0,
            "suspected_infectious": False,
            "sanitation_certificate_number": "SSCC-SG-2026-0931",
            "sanitation_certificate_expiry": sanitation_expiry,
            "last_ports_visited": ["SGSIN", "MYPKG"],
        },
        "cargo_summary": "1 840 containers in transit and for discharge",
        "plants_on_board": "none",
        "animals_on_board": "none",
    }
    if amends is not None:
        call["amends"] = amends
    message = {
        "document": {"type_code": "FAL", "number": reference},
        "parties": {"declarant": {"name": "Maersk Line A/S", "identifier": SHIPOWNER}},
        "ship_call": call,
    }
    return json.dumps(message, indent=2).encode("utf-8")


VNSW_AGENT = {"identity": "VOSASGN", "ministryCode": "BGTVT", "organizationCode": "CHHVN"}
"""The VNSW sender identity of :func:`vnsw_ship_call` (``[parties.NAME.identities.vnsw]`` of the agent)."""


def vnsw_ship_call(reference: str, *, function: str = "01", **changes: Any) -> bytes:
    """:func:`ship_call` as the MOT maritime VNSW envelope of the whole call (documentType ``1`` entry, type ``99``;
    function ``01`` declared, ``02`` amended under the same reference)."""
    from mappings.model import Endpoint, Envelope, TradeMessage
    from mappings.registry import get

    data = json.loads(ship_call(reference, **changes))
    del data["document"], data["parties"]  # the MOT declarations carry neither
    sender = Endpoint(
        name="VOSA Saigon",
        identity=VNSW_AGENT["identity"],
        country="VN",
        ministry=VNSW_AGENT["ministryCode"],
        organization=VNSW_AGENT["organizationCode"],
    )
    envelope = Envelope(
        message_id="5b0f7c1e-3a52-4c8e-9d0a-6f1e2b3c4d5e",
        version="01",
        sender=sender,
        recipient=Endpoint(name="NSW", identity="NSW", country="VN", ministry="BTC", organization="TCHQ", unit="NSW"),
        procedure="1",
        message_type="99",
        function=function,
        reference="2026120400017",
        reference_year=2026,
        previous_reference="2026120400017",
        sent_at=dt.datetime(2026, 12, 4, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=7))),
    )
    return get("vnsw").emit(TradeMessage.model_validate({**data, "envelope": envelope}))


def decision(call: str, answer: str, *, reasons: Sequence[str] = (), conditions: Sequence[str] = ()) -> bytes:
    """An agency's decision on version ``call`` of a ship call, in the harmonized JSON format."""
    body: dict[str, Any] = {"call": call, "answer": answer}
    if reasons:
        body["reasons"] = list(reasons)
    if conditions:
        body["conditions"] = list(conditions)
    message = {"document": {"type_code": "FAL-DEC"}, "ship_call_decision": body}
    return json.dumps(message).encode("utf-8")


def signed_ship_call(reference: str, signer: Signer, *, function: str = "01", **changes: Any) -> bytes:
    """:func:`vnsw_ship_call` signed by ``signer`` as the VNSW envelopes are (inside ``<SystemSignature>``)."""
    from signing.policy import SigningProfile
    from signing.sign import sign_document

    return sign_document(vnsw_ship_call(reference, function=function, **changes), signer, SigningProfile.vnsw_legacy())


def signed_decision(
    call: str,
    answer: str,
    signer: Signer,
    *,
    decided_at: str = "2026-12-05T07:00:00+07:00",
    reasons: Sequence[str] = (),
    conditions: Sequence[str] = (),
) -> bytes:
    """:func:`decision` in the ``ship-decision`` XML format, decided at ``decided_at`` (ISO 8601), signed by
    ``signer`` (enveloped ds:Signature). Two decisions of an agency differ at least in ``decided_at``: the same
    signed document twice is refused as a duplicate."""
    from mappings.model import TradeMessage
    from mappings.registry import get
    from signing.sign import sign_document

    message = TradeMessage.model_validate_json(decision(call, answer, reasons=reasons, conditions=conditions))
    assert message.ship_call_decision is not None
    at = dt.datetime.fromisoformat(decided_at)
    message = message.model_copy(
        update={"ship_call_decision": message.ship_call_decision.model_copy(update={"decided_at": at})}
    )
    return sign_document(get("ship-decision").emit(message), signer)


def ship_call_pki(directory: Path) -> DevPki:
    """The dev PKI of :data:`EXAMPLE` (:data:`PKI_PARTIES`, RSA-2048) in ``directory``: reused when it holds every
    key, else (re)created (what ``nswgw keys init DIR --parties ...`` makes)."""
    from signing.dev.pki import DevPki, init_dev_pki

    if (directory / "manifest.json").exists():
        pki = DevPki.open(directory)
        if set(PKI_PARTIES) <= set(pki.names):
            return pki
    return init_dev_pki(directory, PKI_PARTIES, force=True)


def party_signer(pki: DevPki, name: str) -> Signer:
    """The software signer of ``pki``'s party ``name`` (its key, certificate and the issuing CA)."""
    from signing.keys import SoftwareSigner

    party = pki.party(name)
    return SoftwareSigner(party.key, party.cert, [pki.issuing_cert])


def example_config_text(urls: dict[int, str], store: str, *, pki: Path | None = None) -> str:
    """The topology with each ``http://127.0.0.1:92xx/inbox`` replaced by ``urls[92xx]``, port 0 and the
    ``[store]`` table ``store`` (TOML): :data:`EXAMPLE` with its PKI files under ``pki``, or without ``pki``
    :data:`EXAMPLE_UNSIGNED`."""
    if pki is None:
        text = EXAMPLE_UNSIGNED.read_text(encoding="utf-8")
    else:
        text = EXAMPLE.read_text(encoding="utf-8").replace(f'"{PKI_DIR}/', f'"{pki.as_posix()}/')
    text = _PORTS.sub(lambda m: urls[int(m.group(1))], text)
    text = text.replace("port = 8080", "port = 0")
    head, _, rest = text.partition("[store]\n")
    _, _, rest = rest.partition("\n\n")
    return f"{head}{store}\n\n{rest}"


class Inbox:
    """A loopback agency or agent inbox: records each delivery, answers with the plain receipt."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        mid = request.headers.get("X-Message-Id", "")
        self.bodies.append((mid, await request.read()))
        return web.json_response({"message_id": mid})

    async def start(self) -> Inbox:
        app = web.Application()
        app.router.add_post("/inbox", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/inbox"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def ship_call_demo(directory: Path | None = None, *, pki_dir: Path | None = None) -> list[str]:
    """Run the exchange of the module docstring on a gateway of its own (the signed topology :data:`EXAMPLE`, an
    SQLite store under ``directory``, the dev PKI :func:`ship_call_pki` in ``pki_dir``, by default one kept in the
    temporary directory and reused) and say in a few lines what happened."""
    from gateway.api import Gateway
    from gateway.config import parse_config
    from gateway.model import State

    names = ("PORT", "BORDER", "HEALTH", "CUSTOMS", "QUARANTINE", "AGENT-BOX")
    pki_dir = pki_dir or Path(tempfile.gettempdir()) / f"nswgw-ship-calls-pki-{os.getuid()}"
    pki = await asyncio.to_thread(ship_call_pki, pki_dir)
    agent = party_signer(pki, "agent")
    async with AsyncExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nswgw-ship-call-")))
        inboxes = {name: await Inbox().start() for name in names}
        for inbox in inboxes.values():
            stack.push_async_callback(inbox.stop)
        urls = {9201 + i: inboxes[name].url for i, name in enumerate(names)}
        store = f'[store]\nurl = "sqlite:///{directory / "ship-calls.db"}"\nsynchronous = "NORMAL"'
        text = example_config_text(urls, store, pki=pki.directory)
        config = parse_config(tomllib.loads(text), base=directory)
        gw = await stack.enter_async_context(Gateway(config))
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def post(token: str, mid: str, doc_type: str, body: bytes, **headers: str) -> dict[str, Any]:
            h = {
                "Authorization": f"Bearer {token}",
                "X-Message-Id": mid,
                "X-Document-Type": doc_type,
                "Content-Type": "application/xml",
                **headers,
            }
            async with http.post(f"{gw.url}/v1/messages", data=body, headers=h) as r:
                reply: dict[str, Any] = json.loads(await r.read())
                if r.status != 202:
                    raise RuntimeError(f"{mid}: {r.status} {reply}")
                return reply

        async def decide(name: str, n: int, answer: str, **extra: Any) -> dict[str, Any]:
            signer = party_signer(pki, AGENCY_KEYS[name])
            at = f"2026-12-05T{6 + n:02d}:00:00+07:00"
            headers = {"X-Reference": extra.pop("reference")} if "reference" in extra else {}
            body = signed_decision(CALL, answer, signer, decided_at=at, **extra)
            return await post(AGENCY_TOKENS[name], f"D-{name}-{n}", "ship.call.decision", body, **headers)

        async def settled(gateway_id: str) -> None:
            """Wait until every delivery of the message was acknowledged."""
            for _ in range(1500):
                record = await gw.store.get(gateway_id)
                if record is not None and record.state is State.ACKNOWLEDGED:
                    return
                await asyncio.sleep(0.02)
            raise RuntimeError(f"{gateway_id} was not delivered")

        def reached(gateway_id: str) -> list[str]:
            return [name for name in names[:5] if any(mid == gateway_id for mid, _ in inboxes[name].bodies)]

        declared = await post(
            AGENT_TOKEN, "SC-1", "ship.call", signed_ship_call(CALL, agent), **{"X-Procedure": "arrival"}
        )
        await settled(declared["id"])
        received = {name: len(inboxes[name].bodies) for name in names[:5]}
        personal = [name for name in names[:5] if any(PASSPORTS[0].encode() in b for _, b in inboxes[name].bodies)]
        decided = [await decide(name, 1, "accepted") for name in ("PORT", "BORDER", "CUSTOMS", "QUARANTINE")]
        decided.append(await decide("HEALTH", 1, "refused", reasons=[NO_DOCTOR]))
        amendment = signed_ship_call(CALL, agent, function="02", extra_crew=True)
        amended_id = (await post(AGENT_TOKEN, "SC-1-A1", "ship.call", amendment))["id"]
        await settled(amended_id)
        amended = reached(amended_id)
        for name in amended:
            decided.append(await decide(name, 2, "accepted", reference=amended_id))
        for reply in decided:
            await settled(reply["id"])
        statuses = [json.loads(body)["status"] for _, body in inboxes["AGENT-BOX"].bodies]
        record = await gw.store.ship_call(CALL)
    status = record.status if record is not None else "?"
    each = "1 delivery each" if set(received.values()) == {1} else str(received)
    return [
        f"ship call {CALL} (MAERSK KOWLOON, arriving at VNCLI), declared once by its agent in the signed MOT VNSW"
        " envelope, each agency its part:",
        f"  {', '.join(received)}: {each}; passport numbers only to {', '.join(personal)}",
        f"  signed decisions: HEALTH refused ({NO_DOCTOR}), 4 accepted; the crew change reached"
        f" {', '.join(amended)} only; they accepted",
        f"  agent notified: {' -> '.join(statuses)} (GET /v1/ship-calls/{CALL}: {status})",
    ]
