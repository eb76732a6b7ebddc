"""``nswgw partner`` (gateway/dev/partner.py): the simulated receiving partner a newcomer runs next to
``nswgw serve``. A real gateway on loopback, the partner in-process on the destination's URL."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.cli import main
from gateway.config import load_config
from gateway.dev.partner import Partner, plan
from gateway.errors import ConfigError
from gateway.model import State
from gateway.ports import SignedReceiptVerifier
from helpers.gateway import TOKENS, dev_trust, eventually, make_config, submit
from helpers.ocsp import dev_pki, free_loopback_port  # noqa: F401
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.sign import sign_document

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


async def test_partner_acknowledges_a_signed_sample_with_a_signed_receipt_the_gateway_verifies(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """Prerequisite: destination TH requires ``receipt = "signed"`` pinned to the dev PKI's th-asw certificate.
    Predicate: the partner, started from the config alone, gets the delivery ACKNOWLEDGED with a verified receipt."""
    url = f"http://127.0.0.1:{free_loopback_port()}/inbox"
    gw_key = dev_pki.party("nsw-gateway")
    config = make_config(
        tmp_path,
        {"TH": url},
        parties={
            "MOIT": {"trust": {"pinned": [{"certificate": str(dev_pki.party("moit").cert_path)}]}},
            "MARD": {"trust": dev_trust(dev_pki, "mard")},
            "TRADER": {"trust": dev_trust(dev_pki, "trader")},
        },
        per_destination={
            "TH": {"receipt": "signed", "trust": {"pinned": [{"certificate": str(dev_pki.party("th-asw").cert_path)}]}}
        },
        gateway={"verification": "signature", "signing": "on"},
        extra={"signing": {"keys": [{"pkcs12": str(gw_key.p12_path), "password": "changeit"}]}},
    )
    served, skipped = plan(config)
    assert skipped == [] and [(e.destination, e.receipt) for e in served] == [("TH", "signed")]
    assert served[0].signer.certificate == dev_pki.party("th-asw").cert

    moit = dev_pki.party("moit")
    sample = sign_document(
        (SAMPLES / "form_d_two_items.xml").read_bytes(), SoftwareSigner(moit.key, moit.cert, [dev_pki.issuing_cert])
    )
    partner = await Partner(served).start()
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "VN-TH-26-00001", "eco.form_d", sample)
            assert status == 202

            async def acknowledged() -> bool:
                rec = await gw.store.get(ack["id"])
                return rec is not None and rec.state is State.ACKNOWLEDGED

            await eventually(acknowledged)
            record = await gw.store.get(ack["id"])
            receipts = gw.engine.workers["TH"].receipts
            assert isinstance(receipts, SignedReceiptVerifier)
            verified = receipts.verified["TH"]
            async with s.get(
                f"{gw.url}/v1/messages/{ack['id']}", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}
            ) as r:
                seen = json.loads(await r.read())
    finally:
        await partner.stop()
    assert record is not None
    delivery = record.deliveries[0]
    assert delivery.state is State.ACKNOWLEDGED and delivery.attempts == 1
    assert (
        delivery.receipt and b"<ds:Signature" in delivery.receipt and b"urn:nsw-gateway:receipt:1" in delivery.receipt
    )
    assert verified == 1
    assert seen["state"] == "ACKNOWLEDGED"
    assert [(d.destination, d.message_id, d.duplicate) for d in partner.deliveries] == [("TH", ack["id"], False)]


def test_partner_for_a_config_without_an_http_destination_lists_it_skipped_and_fails_coded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prerequisite: the config's only destination uses the ``filedrop`` adapter.
    Predicate: the destination is listed as skipped and the command exits 2 with CONFIG_INVALID."""
    drop = tmp_path / "drop"
    (tmp_path / "gw.toml").write_text(
        f"""
[gateway]
verification = "well-formed"   # unsigned test documents
signing = "off"
[store]
url = "sqlite:///{tmp_path / "gw.db"}"
[parties.MOIT]
tokens = ["t"]
document_types = ["eco.form_d"]
[destinations.MARD]
adapter = "filedrop"
url = "{drop}"
[[routes]]
document_type = "*"
to = ["MARD"]
[document_types."eco.form_d"]
unchecked = true               # opaque test documents
""",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "gw.toml")
    served, skipped = plan(config)
    assert served == [] and [s.destination for s in skipped] == ["MARD"] and "filedrop" in skipped[0].reason

    assert main(["partner", "--config", str(tmp_path / "gw.toml")]) == 2
    out, err = capsys.readouterr()
    assert "skipped MARD" in out and "filedrop" in out
    assert err.startswith("CONFIG_INVALID (destinations): no destination the partner can serve")


def test_partner_for_an_unknown_destination_name_says_did_you_mean(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"CUSTOMS": "http://127.0.0.1:9/inbox"})
    with pytest.raises(ConfigError) as err:
        plan(config, ["CUSTOM"])
    assert err.value.code == "CONFIG_INVALID" and err.value.field == "--destination"
    assert "did you mean 'CUSTOMS'?" in err.value.message
