"""RFC 3161 timestamps over the journal head, against a real ``openssl ts -reply`` TSA on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import cms

from gateway.config import JournalSettings, parse_config
from gateway.errors import ConfigError, TimestampInvalid, TimestampUnavailable
from gateway.store.sqlite import SqliteStore
from gateway.timestamps import (
    JournalTimestamping,
    build_request,
    head_imprint,
    parse_response,
    request_timestamp,
    verify_timestamp_token,
)
from helpers.tsa import TsaPki, TsaServer, sign_as_tsa_with_openssl_cms, tsa_pki, tsa_server  # noqa: F401

HEAD = (7, "ab" * 32)


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_token_from_openssl_tsa_verifies_and_names_the_tsa(
    tsa_server: TsaServer, tsa_pki: TsaPki, algorithm: str
) -> None:
    imprint = head_imprint(*HEAD, algorithm)
    token, info = request_timestamp(tsa_server.url, imprint, algorithm, anchors=[tsa_pki.root])
    again = verify_timestamp_token(token, imprint, [tsa_pki.root])
    assert again.gen_time == info.gen_time and again.serial == info.serial
    assert "CN=NSW test TSA" in info.tsa_subject
    assert info.hash_algorithm == algorithm and info.imprint == imprint


def _token(tsa_server: TsaServer, imprint: bytes) -> tuple[bytes, int]:
    request, nonce = build_request(imprint)
    return parse_response(tsa_server.answer(request)), nonce


def test_token_for_another_head_is_refused_as_imprint_mismatch(tsa_server: TsaServer, tsa_pki: TsaPki) -> None:
    token, _ = _token(tsa_server, head_imprint(*HEAD))
    with pytest.raises(TimestampInvalid) as caught:
        verify_timestamp_token(token, head_imprint(8, HEAD[1]), [tsa_pki.root])
    assert caught.value.code == "TIMESTAMP_INVALID" and caught.value.field == "message_imprint"


def test_token_answering_another_request_is_refused_as_nonce_mismatch(tsa_server: TsaServer, tsa_pki: TsaPki) -> None:
    imprint = head_imprint(*HEAD)
    token, nonce = _token(tsa_server, imprint)
    with pytest.raises(TimestampInvalid) as caught:
        verify_timestamp_token(token, imprint, [tsa_pki.root], nonce=nonce + 1)
    assert caught.value.code == "TIMESTAMP_INVALID" and caught.value.field == "nonce"


def test_tampered_token_byte_is_refused(tsa_server: TsaServer, tsa_pki: TsaPki) -> None:
    imprint = head_imprint(*HEAD)
    token, _ = _token(tsa_server, imprint)
    # Flip a byte inside the TSTInfo (its genTime): the message-digest attribute no longer matches.
    econtent = bytes(cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].contents)
    at = token.index(econtent) + econtent.index(b"\x18\x0f") + 5
    tampered = token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]
    with pytest.raises(TimestampInvalid) as caught:
        verify_timestamp_token(tampered, imprint, [tsa_pki.root])
    assert caught.value.code == "TIMESTAMP_INVALID" and caught.value.field == "message_digest"


def test_token_signature_byte_flipped_is_refused(tsa_server: TsaServer, tsa_pki: TsaPki) -> None:
    imprint = head_imprint(*HEAD)
    token, _ = _token(tsa_server, imprint)
    signature = bytes(cms.ContentInfo.load(token)["content"]["signer_infos"][0]["signature"].native)
    at = token.index(signature) + len(signature) // 2
    tampered = token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]
    with pytest.raises(TimestampInvalid) as caught:
        verify_timestamp_token(tampered, imprint, [tsa_pki.root])
    assert caught.value.code == "TIMESTAMP_INVALID" and caught.value.field in ("signature", "token")


def _refused_when_signed_by(tsa_server: TsaServer, tsa_pki: TsaPki, cert: Path) -> TimestampInvalid:
    """The refusal of a real token's TSTInfo signed again by ``cert`` (with the key of the no-EKU certificate),
    asserted to be ``TIMESTAMP_INVALID`` on field ``tsa``."""
    imprint = head_imprint(*HEAD)
    token, _ = _token(tsa_server, imprint)
    tst = bytes(cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].contents)
    forged = sign_as_tsa_with_openssl_cms(tst, cert, tsa_pki.no_eku_key_path, tsa_pki.directory)
    with pytest.raises(TimestampInvalid) as caught:
        verify_timestamp_token(forged, imprint, [tsa_pki.root])
    assert caught.value.code == "TIMESTAMP_INVALID" and caught.value.field == "tsa"
    return caught.value


def test_token_signed_by_certificate_without_timestamping_eku_is_refused(
    tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    refused = _refused_when_signed_by(tsa_server, tsa_pki, tsa_pki.no_eku_cert_path)
    assert "extendedKeyUsage" in refused.message


def test_token_signed_by_certificate_with_non_critical_timestamping_eku_is_refused(
    tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    refused = _refused_when_signed_by(tsa_server, tsa_pki, tsa_pki.soft_eku_cert_path)
    assert "lacks the critical timeStamping" in refused.message


def test_token_from_tsa_outside_the_anchors_is_refused(tsa_server: TsaServer, tsa_pki: TsaPki) -> None:
    from signing.dev.pki import generate_key, issue_certificate

    key = generate_key("p256")
    other_root = issue_certificate(None, key, "Another root", key.public_key(), is_ca=True)
    imprint = head_imprint(*HEAD)
    token, _ = _token(tsa_server, imprint)
    with pytest.raises(TimestampInvalid) as caught:
        verify_timestamp_token(token, imprint, [other_root])
    assert caught.value.code == "TIMESTAMP_INVALID" and caught.value.field == "tsa"
    assert "CERT_UNTRUSTED" in caught.value.message


def test_tsa_outage_is_timestamp_unavailable(tsa_server: TsaServer, tsa_pki: TsaPki) -> None:
    tsa_server.stop()
    with pytest.raises(TimestampUnavailable) as caught:
        request_timestamp(tsa_server.url, head_imprint(*HEAD), anchors=[tsa_pki.root], timeout=5)
    assert caught.value.code == "TIMESTAMP_UNAVAILABLE" and caught.value.retryable


def test_timestamp_section_without_a_schedule_is_config_invalid_naming_it(tsa_pki: TsaPki) -> None:
    section = {"url": "http://127.0.0.1:1/", "anchors": [str(tsa_pki.root_path)]}
    with pytest.raises(ConfigError) as caught:
        parse_config({"journal": {"timestamp": section}})
    assert caught.value.code == "CONFIG_INVALID" and (caught.value.field or "").startswith("journal.timestamp")


def test_timestamp_section_with_a_weak_hash_is_config_invalid_naming_the_field(tsa_pki: TsaPki) -> None:
    section = {"url": "http://127.0.0.1:1/", "anchors": [str(tsa_pki.root_path)], "every_entries": 1, "hash": "sha1"}
    with pytest.raises(ConfigError) as caught:
        parse_config({"journal": {"timestamp": section}})
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "journal.timestamp.hash"


async def test_no_timestamp_section_is_a_null_object(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gw.db")
    stamping = JournalTimestamping(store, JournalSettings().timestamp, now=lambda: 0.0)
    await stamping.start()
    assert await stamping.round() is None
    assert stamping.checks() == {} and not stamping.overdue()
    stamping.check_intake()
    await stamping.stop()
