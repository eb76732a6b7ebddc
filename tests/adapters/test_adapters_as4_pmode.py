"""Inbound PMode matching: parties, then Service, Service/@type and Action (and AgreementRef/@pmode when sent).

Real As4Adapter against a real As4Receiver on 127.0.0.1; refusals are signed ebMS error signals
(ebMS 3.0 Core, section 6.7.1): EBMS:0001 ValueNotRecognized when no agreement matches,
EBMS:0010 ProcessingModeMismatch when the message names an agreement it does not fit.
"""

from __future__ import annotations

import pytest

from adapters.as4 import As4Adapter, As4Partner, As4Receiver, PMode
from gateway.errors import PartnerRejected
from gateway.ports import OutboundMessage
from helpers.as4 import ACTION, GATEWAY, PARTNER, SERVICE, Side, pmode, serve, side
from signing.dev.pki import DevPki

AMENDMENT = "eco.form_d.amendment"


async def no_sleep(seconds: float) -> None:
    return None


def agreement(partner: Side, gateway: Side, **update: object) -> As4Partner:
    """One of the partner's agreements for messages from the gateway (as the partner configures it)."""
    return As4Partner(
        pmode(partner.party_id, gateway.party_id).model_copy(update=update), gateway.trust, gateway.certificate
    )


def receiver(partner: Side, gateway: Side, *agreements: As4Partner) -> As4Receiver:
    return As4Receiver(
        party_id=partner.party_id,
        partners={gateway.party_id: agreements},
        signer=partner.signer,
        decrypter=partner.decrypter,
    )


def sender(gateway: Side, partner: Side, url: str, **update: object) -> As4Adapter:
    sent: PMode = pmode(gateway.party_id, partner.party_id, attempts=3).model_copy(update=update)
    return As4Adapter(
        url,
        timeout=5,
        options={
            "pmode": sent,
            "signer": gateway.signer,
            "trust": partner.trust,
            "encryption_certificate": partner.certificate,
            "sleep": no_sleep,
        },
    )


def outbound(message_id: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, payload=b"<FormD/>", sender="VN-MOIT", document_type=ACTION, conversation="c"
    )


async def test_each_action_is_received_under_its_own_agreement(gateway: Side, partner: Side) -> None:
    form_d = agreement(partner, gateway, id="form-d")
    amendment = agreement(partner, gateway, id="form-d-amendment", action=AMENDMENT)
    rx = receiver(partner, gateway, form_d, amendment)
    async with serve(rx.app()) as url:
        async with sender(gateway, partner, url) as adapter:
            await adapter.deliver(outbound("pm-1"))
        async with sender(gateway, partner, url, action=AMENDMENT) as adapter:
            await adapter.deliver(outbound("pm-2"))
    first, second = rx.inbox.get_nowait(), rx.inbox.get_nowait()
    assert (first.user_message.action, first.partner.pmode.id) == (ACTION, "form-d")
    assert (second.user_message.action, second.partner.pmode.id) == (AMENDMENT, "form-d-amendment")


@pytest.mark.parametrize(
    ("update", "where"),
    [
        ({"action": "eco.form_e"}, "eb:CollaborationInfo/eb:Action"),
        ({"service": "urn:asean:asw:services:sps"}, "eb:CollaborationInfo/eb:Service"),
        ({"service_type": "urn:asean:asw:service-type"}, "eb:CollaborationInfo/eb:Service/@type"),
    ],
    ids=["unknown-action", "unknown-service", "other-service-type"],
)
async def test_message_for_no_agreement_gets_a_signed_ebms_0001_value_not_recognized(
    gateway: Side, partner: Side, update: dict[str, object], where: str
) -> None:
    rx = receiver(partner, gateway, agreement(partner, gateway))
    async with serve(rx.app()) as url, sender(gateway, partner, url, **update) as adapter:
        with pytest.raises(PartnerRejected) as caught:
            await adapter.deliver(outbound("pm-unknown"))
        assert adapter.transmissions == 1
    assert caught.value.code == "PARTNER_REJECTED"
    assert caught.value.details["ebms"] == "EBMS:0001"
    assert caught.value.details["short_description"] == "ValueNotRecognized"
    assert caught.value.details["detail"].startswith("VALIDATION_FAILED incident ")
    assert caught.value.details["detail"].endswith(f"at /S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage/{where}")
    assert rx.delivered == 0 and rx.inbox.empty()


async def test_message_naming_an_agreement_it_does_not_fit_gets_a_signed_ebms_0010_processing_mode_mismatch(
    gateway: Side, partner: Side
) -> None:
    rx = receiver(
        partner,
        gateway,
        agreement(partner, gateway, id="form-d"),
        agreement(partner, gateway, id="form-d-amendment", action=AMENDMENT),
    )
    # AgreementRef/@pmode says "form-d", the Action is the amendment's.
    async with (
        serve(rx.app()) as url,
        sender(gateway, partner, url, id="form-d", send_pmode_id=True, action=AMENDMENT) as adapter,
    ):
        with pytest.raises(PartnerRejected) as caught:
            await adapter.deliver(outbound("pm-mismatch"))
    assert caught.value.details["ebms"] == "EBMS:0010"
    assert caught.value.details["short_description"] == "ProcessingModeMismatch"
    assert caught.value.details["detail"].endswith(
        "at /S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage/eb:CollaborationInfo/eb:Action"
    )
    assert rx.delivered == 0


async def test_message_naming_an_unknown_agreement_gets_a_signed_ebms_0001(gateway: Side, partner: Side) -> None:
    rx = receiver(partner, gateway, agreement(partner, gateway, id="form-d"))
    async with serve(rx.app()) as url, sender(gateway, partner, url, id="no-such-pmode", send_pmode_id=True) as adapter:
        with pytest.raises(PartnerRejected) as caught:
            await adapter.deliver(outbound("pm-unknown-id"))
    assert caught.value.details["ebms"] == "EBMS:0001"
    assert caught.value.details["detail"].endswith("eb:CollaborationInfo/eb:AgreementRef/@pmode")
    assert rx.delivered == 0


async def test_message_from_an_unknown_partner_gets_a_signed_ebms_0001(
    gateway: Side, partner: Side, dev_pki: DevPki
) -> None:
    stranger = side(dev_pki, "my-asw", "MY-ASW")
    rx = receiver(partner, gateway, agreement(partner, gateway))
    async with serve(rx.app()) as url, sender(stranger, partner, url) as adapter:
        with pytest.raises(PartnerRejected) as caught:
            await adapter.deliver(outbound("pm-stranger"))
    assert caught.value.details["ebms"] == "EBMS:0001"
    assert caught.value.details["detail"].endswith("eb:PartyInfo/eb:From/eb:PartyId")
    assert rx.delivered == 0


async def test_service_and_action_select_the_agreement_also_with_a_single_agreement_object(
    gateway: Side, partner: Side
) -> None:
    # partners={party: As4Partner} (one agreement, as before) still works, and is now held to its Service/Action.
    rx = As4Receiver(
        party_id=PARTNER,
        partners={GATEWAY: agreement(partner, gateway)},
        signer=partner.signer,
        decrypter=partner.decrypter,
    )
    async with serve(rx.app()) as url:
        async with sender(gateway, partner, url) as adapter:
            await adapter.deliver(outbound("pm-single"))
        async with sender(gateway, partner, url, action=AMENDMENT) as adapter:
            with pytest.raises(PartnerRejected) as caught:
                await adapter.deliver(outbound("pm-single-2"))
    assert rx.delivered == 1 and caught.value.details["ebms"] == "EBMS:0001"
    assert rx.inbox.get_nowait().user_message.service == SERVICE
