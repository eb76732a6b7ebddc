"""The AS4 adapter configured from the gateway TOML: keys, trust, certificates and retention as plain values.

The end-to-end test runs a whole gateway (real store, real API on 127.0.0.1) whose destination is
``adapter = "as4"`` towards a real As4Receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from adapters.as4 import As4Adapter, verify_signal
from adapters.as4.adapter import As4Options
from adapters.as4.sent import StateSentStore
from adapters.options import SignerOptions
from gateway.api import Gateway
from gateway.config import load_config
from gateway.errors import ConfigError
from helpers.as4 import ACTION, GATEWAY, PARTNER, SERVICE, Side, receiver_for, serve
from helpers.gateway import eventually
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.trust import TrustStore

PMODE_TOML = f"""
id = "VN-NSW-TH-ASW-eco"
agreement = "urn:asean:asw:agreement:eco"
service = "{SERVICE}"
action = "{ACTION}"
[initiator]
party_id = "{GATEWAY}"
party_id_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
[responder]
party_id = "{PARTNER}"
party_id_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
[reception_awareness]
attempts = 1
"""


def pmode_table() -> dict[str, object]:
    import tomllib

    return tomllib.loads(PMODE_TOML)


def toml_options(dev_pki: DevPki, tmp_path: Path) -> dict[str, object]:
    """What [destinations.TH.options] decodes to."""
    return {
        "pmode": pmode_table(),
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "trust": {
            "anchors": [str(dev_pki.directory / "root-ca.pem")],
            "intermediates": [str(dev_pki.directory / "issuing-ca.pem")],
            "signers": [{"subject": {"CN": "th-asw"}}],
        },
        "encryption_certificate": str(dev_pki.party("th-asw").cert_path),
        "retention": 86400,
    }


async def test_message_submitted_through_the_gateway_api_is_acknowledged_with_the_as4_receipt(
    dev_pki: DevPki, gateway: Side, partner: Side, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")
    receiver = receiver_for(partner, gateway)
    pki = dev_pki.directory
    async with serve(receiver.app()) as as4_url:
        config_file = tmp_path / "gateway.toml"
        config_file.write_text(
            f"""
[gateway]
port = 0
poll_interval = 0.05
verification = "well-formed"   # unsigned test documents
signing = "off"

[store]
url = "sqlite:///{tmp_path / "gw.db"}"
synchronous = "NORMAL"

[parties.MOIT]
tokens = ["moit-token"]
document_types = ["eco.form_d"]

[destinations.TH]
adapter = "as4"
url = "{as4_url}"
timeout = 5
[destinations.TH.retry]
max_attempts = 3
initial = 0.01
max_wait = 0.05
jitter = 0.01
[destinations.TH.options]
encryption_certificate = "{dev_pki.party("th-asw").cert_path}"
retention = 86400
[destinations.TH.options.signer]
p12 = "{dev_pki.party("nsw-gateway").p12_path}"
password_env = "AS4_TEST_P12_PASSWORD"
[destinations.TH.options.trust]
anchors = ["{pki / "root-ca.pem"}"]
intermediates = ["{pki / "issuing-ca.pem"}"]
signers = [{{ subject = {{ CN = "th-asw", O = "NSW Development PKI" }} }}]
[destinations.TH.options.pmode]
id = "VN-NSW-TH-ASW-eco"
service = "{SERVICE}"
action = "{ACTION}"
# the partner knows us and itself by these PartyIds of this type (a PartyId of another type is another party)
initiator = {{ party_id = "{GATEWAY}", party_id_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered" }}
responder = {{ party_id = "{PARTNER}", party_id_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered" }}
reception_awareness = {{ attempts = 1 }}
[[routes]]
document_type = "eco.form_d"
to = ["TH"]
[document_types."eco.form_d"]
unchecked = true               # opaque test documents
""",
            encoding="utf-8",
        )
        config = load_config(config_file)
        options = config.destinations["TH"].options
        assert isinstance(options, As4Options) and isinstance(options.signer, SignerOptions)
        assert options.signer.password_env == "AS4_TEST_P12_PASSWORD"
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            headers = {
                "Authorization": "Bearer moit-token",
                "X-Message-Id": "ECO-AS4-1",
                "X-Document-Type": "eco.form_d",
                "Content-Type": "application/xml",
            }
            async with session.post(f"{gw.url}/v1/messages", data=b"<FormD><No>1</No></FormD>", headers=headers) as r:
                assert r.status == 202
                ack = json.loads(await r.read())

            async def read() -> dict[str, object]:
                async with session.get(
                    f"{gw.url}/v1/messages/{ack['id']}", headers={"Authorization": "Bearer moit-token"}
                ) as r:
                    assert r.status == 200
                    return json.loads(await r.read())  # type: ignore[no-any-return]

            async def settled() -> bool:
                return (await read())["state"] in ("ACKNOWLEDGED", "DEAD")

            await eventually(settled)
            record = await read()
            stored = await gw.store.get(ack["id"])
            sent_store = StateSentStore(gw.adapter_state("destination:TH"), retention=86400)
            sent = await sent_store.get(PARTNER, f"{ack['id']}@nsw-gateway")
    assert record["state"] == "ACKNOWLEDGED"
    history = record["history"]
    assert isinstance(history, list)
    assert [h["to"] for h in history][-2:] == ["DELIVERED", "ACKNOWLEDGED"]
    assert history[-1]["destination"] == "TH"
    received = receiver.inbox.get_nowait()
    assert list(received.payloads.values()) == [b"<FormD><No>1</No></FormD>"]
    assert received.user_message.message_id == f"{ack['id']}@nsw-gateway" and receiver.delivered == 1
    # The receipt the gateway kept is the partner's signed AS4 receipt of exactly that message.
    assert stored is not None and stored.deliveries[0].receipt is not None
    receipt = verify_signal(stored.deliveries[0].receipt, "application/soap+xml", trust=partner.trust)
    assert receipt.signal.receipt and receipt.signal.ref_to_message_id == f"{ack['id']}@nsw-gateway"
    assert receipt.verification.certificate == partner.certificate
    # what the adapter sent is recorded in the gateway's own store, with the MessageId of its receipt
    assert sent is not None and sent.receipt_id == receipt.signal.message_id


async def test_adapter_is_built_from_plain_toml_values(
    dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")
    adapter = As4Adapter("http://127.0.0.1:1/as4", options=toml_options(dev_pki, tmp_path))
    assert (
        isinstance(adapter.signer, SoftwareSigner) and adapter.signer.certificate == dev_pki.party("nsw-gateway").cert
    )
    assert isinstance(adapter.trust, TrustStore) and adapter.trust.party == PARTNER
    assert adapter.encryption_certificate == dev_pki.party("th-asw").cert
    assert isinstance(adapter.sent_store, StateSentStore) and adapter.sent_store.retention == 86400
    await adapter.close()


async def test_adapter_takes_a_pem_key_with_its_cert_and_pinned_trust(dev_pki: DevPki, tmp_path: Path) -> None:
    us, them = dev_pki.party("nsw-gateway"), dev_pki.party("th-asw")
    options = {
        **toml_options(dev_pki, tmp_path),
        "signer": {"key": str(us.key_path), "cert": str(us.cert_path)},
        "trust": {"pinned": [str(them.cert_path)]},
    }
    adapter = As4Adapter("http://127.0.0.1:1/as4", options=options)
    assert adapter.signer.certificate == us.cert
    assert [p.certificate for p in adapter.trust.pinned] == [them.cert]
    await adapter.close()


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("signer", {"p12": "nowhere.p12", "password_env": "AS4_TEST_UNSET_VARIABLE"}, "options.signer.password_env"),
        ("signer", {"p12": "nowhere.p12", "password": "x"}, "options.signer.p12"),
        ("signer", {"key": "k.pem"}, "options.signer"),
        ("signer", {"p12": "a.p12", "passwd": "x"}, "options.signer.passwd"),
        ("signer", "key.pem", "options.signer"),
        ("trust", {"anchors": ["nowhere.pem"], "signers": [{"subject": {"CN": "th-asw"}}]}, "options.trust.anchors[0]"),
        ("trust", {"anchors": ["root-ca.pem"]}, "options.trust.signers"),
        ("trust", {}, "options.trust"),
        ("trust", {"anchors": [], "pinned": ["nowhere.pem"]}, "options.trust.pinned[0].certificate"),
        ("encryption_certificate", "nowhere.pem", "options.encryption_certificate"),
        ("sent_store", 42, "options.sent_store"),
        ("retention", 0, "options.retention"),
    ],
    ids=[
        "password-variable-unset",
        "p12-missing",
        "pem-key-without-cert",
        "unknown-signer-key",
        "signer-not-a-table",
        "anchor-missing",
        "anchors-without-signers",
        "trust-empty",
        "pinned-missing",
        "encryption-certificate-missing",
        "sent-store-removed",
        "retention-not-positive",
    ],
)
async def test_bad_toml_option_is_a_config_error_naming_the_option(
    dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: object, field: str
) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")
    monkeypatch.delenv("AS4_TEST_UNSET_VARIABLE", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        As4Adapter("http://127.0.0.1:1/as4", options={**toml_options(dev_pki, tmp_path), option: value})
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == field


async def test_relative_paths_are_relative_to_the_current_directory(
    dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dev_pki.directory)
    us = dev_pki.party("nsw-gateway")
    options = {
        **toml_options(dev_pki, tmp_path),
        "signer": {
            "key": str(us.key_path.relative_to(dev_pki.directory)),
            "cert": str(us.cert_path.relative_to(dev_pki.directory)),
        },
        "trust": {
            "anchors": ["root-ca.pem"],
            "intermediates": ["issuing-ca.pem"],
            "signers": [{"subject": {"CN": "th-asw"}}],
        },
    }
    adapter = As4Adapter("http://127.0.0.1:1/as4", options=options)
    assert adapter.signer.certificate == us.cert and adapter.trust.anchors == (dev_pki.root_cert,)
    await adapter.close()


async def test_sent_store_file_option_is_refused_at_load_pointing_to_the_gateway_store(
    dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a configuration written for a node-local SQLite file of sent messages: that file no longer means anything
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")
    options = {**toml_options(dev_pki, tmp_path), "sent_store": str(tmp_path / "as4-sent.db")}
    with pytest.raises(ConfigError) as caught:
        As4Adapter("http://127.0.0.1:1/as4", options=options)
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "options.sent_store"
    assert "sent messages are kept in the gateway's store ([store])" in caught.value.message
