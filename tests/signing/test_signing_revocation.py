"""Revocation checking against real components: CRLs from the dev PKI, a real ``openssl ocsp`` responder.

Every negative case is named after its scenario and asserts the exact error code.
Network: 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from gateway.errors import CertificateMalformed, CertificateRevoked, ConfigError, RevocationUnavailable
from helpers.ocsp import OcspResponder, dev_pki, free_loopback_port, ocsp_responder  # noqa: F401
from signing.dev.pki import DevPki, IssuedCert, generate_key, init_dev_pki, make_crl
from signing.revocation import (
    CrlChecker,
    FirstAvailable,
    NoRevocationCheck,
    OcspChecker,
    RevocationChecker,
    SoftFail,
)

pytestmark = [pytest.mark.interop]

_names = itertools.count()


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def ec_key():
    """One P-256 key shared by the extra certificates of this module (serials differ; keys don't matter here)."""
    return generate_key("p256")


@pytest.fixture
def fresh(dev_pki: DevPki, ec_key):  # noqa: F811
    """Issue a new end-entity certificate under a unique name (safe to revoke)."""

    def issue(**kwargs) -> IssuedCert:
        return dev_pki.issue(f"rev-{next(_names)}", key=ec_key, **kwargs)

    return issue


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory) -> DevPki:
    """Another CA with the *same* names as dev_pki (so only signatures tell them apart)."""
    return init_dev_pki(tmp_path_factory.mktemp("other-pki"), ("other-party",), key_kind="p256")


def dead_url() -> str:
    return f"http://127.0.0.1:{free_loopback_port()}/"


# --------------------------------------------------------------------------- null object, protocol


def test_every_checker_satisfies_the_protocol(dev_pki):  # noqa: F811
    checkers = [
        NoRevocationCheck(),
        CrlChecker(),
        OcspChecker(),
        FirstAvailable([CrlChecker()]),
        SoftFail(CrlChecker()),
    ]
    assert all(isinstance(c, RevocationChecker) for c in checkers)


def test_no_revocation_check_passes_even_a_revoked_certificate(dev_pki, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name)
    assert NoRevocationCheck().check(issued.cert, dev_pki.issuing_cert, at=now()) is None


# --------------------------------------------------------------------------- CRL


def test_crl_good_certificate_passes(dev_pki):  # noqa: F811
    checker = CrlChecker.from_files([dev_pki.crl_path])
    assert checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now()) is None


def test_crl_revoked_certificate_is_cert_revoked(dev_pki, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name, "key_compromise")
    checker = CrlChecker.from_files([dev_pki.crl_path])
    with pytest.raises(CertificateRevoked) as info:
        checker.check(issued.cert, dev_pki.issuing_cert, at=now())
    exc = info.value
    assert exc.code == "CERT_REVOKED"
    assert exc.details["serial"] == f"{issued.cert.serial_number:X}"
    assert exc.details["reason"] == "key_compromise"
    assert exc.details["source"] == "crl"
    datetime.fromisoformat(exc.details["revocation_time"])


def test_crl_revoked_later_than_validation_time_passes(dev_pki, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name, at=now())
    checker = CrlChecker([dev_pki.crl()])
    assert checker.check(issued.cert, dev_pki.issuing_cert, at=now() - timedelta(hours=1)) is None


def test_crl_signed_by_another_ca_is_unavailable(dev_pki, other_pki, fresh):  # noqa: F811
    issued = fresh()
    # Same issuer name as ours (both dev PKIs use it), lists our certificate, but signed by the other CA's key.
    forged = make_crl(dev_pki.issuing_cert, other_pki.issuing_key, [(issued.cert.serial_number, now(), None)])
    checker = CrlChecker([forged, other_pki.crl()])
    with pytest.raises(RevocationUnavailable) as info:
        checker.check(issued.cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"


def test_crl_signed_by_another_ca_does_not_hide_the_genuine_one(dev_pki, other_pki, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name)
    newer_forged_empty = make_crl(
        dev_pki.issuing_cert, other_pki.issuing_key, [], this_update=now() + timedelta(minutes=1)
    )
    with pytest.raises(CertificateRevoked) as info:
        CrlChecker([newer_forged_empty, dev_pki.crl()]).check(issued.cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOKED"


def test_crl_stale_is_unavailable(dev_pki):  # noqa: F811
    stale = make_crl(
        dev_pki.issuing_cert,
        dev_pki.issuing_key,
        [],
        this_update=now() - timedelta(days=10),
        next_update=now() - timedelta(days=3),
    )
    with pytest.raises(RevocationUnavailable) as info:
        CrlChecker([stale]).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "stale" in info.value.message


def test_crl_none_for_the_issuer_is_unavailable(dev_pki):  # noqa: F811
    with pytest.raises(RevocationUnavailable) as info:
        CrlChecker([dev_pki.root_crl()]).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"


def test_crl_delta_crl_alone_is_unavailable(dev_pki):  # noqa: F811
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(dev_pki.issuing_cert.subject)
        .last_update(now())
        .next_update(now() + timedelta(days=1))
        .add_extension(x509.DeltaCRLIndicator(1), critical=True)
    )
    delta = builder.sign(dev_pki.issuing_key, hashes.SHA256())
    with pytest.raises(RevocationUnavailable) as info:
        CrlChecker([delta]).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"


def test_crl_root_crl_covers_the_issuing_ca(dev_pki):  # noqa: F811
    checker = CrlChecker.from_files([dev_pki.crl_path, dev_pki.root_crl_path])
    checker.check(dev_pki.issuing_cert, dev_pki.root_cert, at=now())
    checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())


def test_crl_file_malformed_is_cert_malformed(tmp_path):
    bad = tmp_path / "bad.crl"
    bad.write_bytes(b"-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n")
    with pytest.raises(CertificateMalformed) as info:
        CrlChecker.from_files([bad])
    assert info.value.code == "CERT_MALFORMED"


def test_crl_file_missing_is_config_invalid(tmp_path):
    with pytest.raises(ConfigError) as info:
        CrlChecker.from_files([tmp_path / "missing.crl"])
    assert info.value.code == "CONFIG_INVALID"


def test_crl_distribution_point_is_fetched_once_and_cached(dev_pki, ocsp_responder, fresh):  # noqa: F811
    issued = fresh(crl_url=ocsp_responder.crl_url)
    checker = CrlChecker(fetch_distribution_points=True)
    before = ocsp_responder.crl_requests
    for _ in range(5):
        checker.check(issued.cert, dev_pki.issuing_cert, at=now())
    assert ocsp_responder.crl_requests == before + 1


def test_crl_distribution_point_reports_revocation(dev_pki, ocsp_responder, fresh):  # noqa: F811
    issued = fresh(crl_url=ocsp_responder.crl_url)
    dev_pki.revoke(issued.name, "superseded")
    with pytest.raises(CertificateRevoked) as info:
        CrlChecker(fetch_distribution_points=True).check(issued.cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOKED"
    assert info.value.details["reason"] == "superseded"


def test_crl_distribution_point_unreachable_is_unavailable(dev_pki, fresh):  # noqa: F811
    issued = fresh(crl_url=dead_url() + "crl.pem")
    with pytest.raises(RevocationUnavailable) as info:
        CrlChecker(fetch_distribution_points=True, timeout=2).check(issued.cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"


# --------------------------------------------------------------------------- OCSP


def test_ocsp_good_certificate_passes(dev_pki, ocsp_responder):  # noqa: F811
    checker = OcspChecker(responder_url=ocsp_responder.url)
    assert checker.check(dev_pki.party("customs").cert, dev_pki.issuing_cert, at=now()) is None


def test_ocsp_responder_url_from_the_certificate_aia(dev_pki, ocsp_responder, fresh):  # noqa: F811
    issued = fresh(ocsp_url=ocsp_responder.url)
    assert OcspChecker().check(issued.cert, dev_pki.issuing_cert, at=now()) is None


def test_ocsp_no_responder_url_is_unavailable(dev_pki):  # noqa: F811
    with pytest.raises(RevocationUnavailable) as info:
        OcspChecker().check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"


def test_ocsp_revoked_certificate_is_cert_revoked(dev_pki, ocsp_responder, fresh):  # noqa: F811
    issued = fresh()
    OcspChecker(responder_url=ocsp_responder.url).check(issued.cert, dev_pki.issuing_cert, at=now())
    dev_pki.revoke(issued.name, "key_compromise")
    with pytest.raises(CertificateRevoked) as info:
        OcspChecker(responder_url=ocsp_responder.url).check(issued.cert, dev_pki.issuing_cert, at=now())
    exc = info.value
    assert exc.code == "CERT_REVOKED"
    assert exc.details["source"] == "ocsp"
    assert exc.details["reason"] == "key_compromise"
    assert exc.details["serial"] == f"{issued.cert.serial_number:X}"


def test_ocsp_revoked_later_than_validation_time_passes(dev_pki, ocsp_responder, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name)
    checker = OcspChecker(responder_url=ocsp_responder.url)
    checker.check(issued.cert, dev_pki.issuing_cert, at=now() - timedelta(hours=1))


def test_ocsp_responder_down_is_unavailable(dev_pki):  # noqa: F811
    checker = OcspChecker(responder_url=dead_url(), timeout=2)
    with pytest.raises(RevocationUnavailable) as info:
        checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"


def test_ocsp_responder_http_error_is_unavailable(dev_pki, tmp_path):  # noqa: F811
    with OcspResponder(dev_pki, rsigner=tmp_path / "missing.pem") as broken:  # openssl fails -> HTTP 500
        with pytest.raises(RevocationUnavailable) as info:
            OcspChecker(responder_url=broken.url).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "HTTP 500" in info.value.message


def test_ocsp_response_signed_by_a_certificate_without_ocsp_signing_eku_is_unavailable(dev_pki):  # noqa: F811
    party = dev_pki.party("mard")  # issued by the right CA, but no id-kp-OCSPSigning
    with OcspResponder(dev_pki, rsigner=party.cert_path, rkey=party.key_path) as rogue:
        with pytest.raises(RevocationUnavailable) as info:
            OcspChecker(responder_url=rogue.url).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "not authorized" in info.value.message


def test_ocsp_response_signed_by_another_cas_responder_is_unavailable(dev_pki, other_pki):  # noqa: F811
    with OcspResponder(dev_pki, rsigner=other_pki.ocsp_cert_path, rkey=other_pki.ocsp_key_path) as rogue:
        with pytest.raises(RevocationUnavailable) as info:
            OcspChecker(responder_url=rogue.url).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "not authorized" in info.value.message


def test_ocsp_response_signed_by_the_issuer_itself_passes(dev_pki):  # noqa: F811
    with OcspResponder(dev_pki, rsigner=dev_pki.issuing_cert_path, rkey=dev_pki.issuing_key_path) as by_issuer:
        OcspChecker(responder_url=by_issuer.url).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())


def test_ocsp_unknown_certificate_is_unavailable(dev_pki, ocsp_responder, other_pki):  # noqa: F811
    # Signed by our issuing CA but never recorded in index.txt: openssl answers "unknown".
    from signing.dev.pki import issue_certificate

    stray = issue_certificate(dev_pki.issuing_cert, dev_pki.issuing_key, "stray", generate_key("p256").public_key())
    with pytest.raises(RevocationUnavailable) as info:
        OcspChecker(responder_url=ocsp_responder.url).check(stray, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "UNKNOWN" in info.value.message


def _response_without_nonce(responder: OcspResponder, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return responder.answer(request.public_bytes(serialization.Encoding.DER))


def test_ocsp_response_without_the_nonce_is_unavailable(dev_pki, ocsp_responder):  # noqa: F811
    cert, issuer = dev_pki.party("th-asw").cert, dev_pki.issuing_cert
    replayed = _response_without_nonce(ocsp_responder, cert, issuer)
    with OcspResponder(dev_pki, replay=replayed) as replayer:
        with pytest.raises(RevocationUnavailable) as info:
            OcspChecker(responder_url=replayer.url).check(cert, issuer, at=now())
        assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
        assert "nonce" in info.value.message
        # Without nonces (pre-signed responses) the same fresh, well-signed response is accepted.
        OcspChecker(responder_url=replayer.url, use_nonce=False).check(cert, issuer, at=now())


def test_ocsp_response_for_another_certificate_is_unavailable(dev_pki, ocsp_responder):  # noqa: F811
    issuer = dev_pki.issuing_cert
    replayed = _response_without_nonce(ocsp_responder, dev_pki.party("sg-asw").cert, issuer)
    with OcspResponder(dev_pki, replay=replayed) as replayer, pytest.raises(RevocationUnavailable) as info:
        OcspChecker(responder_url=replayer.url, use_nonce=False).check(dev_pki.party("my-asw").cert, issuer, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "does not cover" in info.value.message


def test_ocsp_unsuccessful_response_is_unavailable(dev_pki):  # noqa: F811
    try_later = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    with OcspResponder(dev_pki, replay=try_later.public_bytes(serialization.Encoding.DER)) as busy:
        with pytest.raises(RevocationUnavailable) as info:
            OcspChecker(responder_url=busy.url).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "TRY_LATER" in info.value.message


def test_ocsp_undecodable_response_is_cert_malformed(dev_pki):  # noqa: F811
    with OcspResponder(dev_pki, replay=b"\x30\x03garbage") as garbage, pytest.raises(CertificateMalformed) as info:
        OcspChecker(responder_url=garbage.url).check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_MALFORMED"


def test_ocsp_expired_response_is_unavailable(dev_pki, ocsp_responder):  # noqa: F811
    # openssl -nmin 5: nextUpdate is five minutes after thisUpdate; our clock says an hour has passed.
    checker = OcspChecker(responder_url=ocsp_responder.url, clock=lambda: now() + timedelta(hours=1))
    with pytest.raises(RevocationUnavailable) as info:
        checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "expired" in info.value.message


def test_ocsp_response_from_the_future_is_unavailable(dev_pki, ocsp_responder):  # noqa: F811
    checker = OcspChecker(responder_url=ocsp_responder.url, clock=lambda: now() - timedelta(hours=1))
    with pytest.raises(RevocationUnavailable) as info:
        checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert "future" in info.value.message


def test_ocsp_cache_makes_one_call_for_repeated_checks(dev_pki, ocsp_responder):  # noqa: F811
    checker = OcspChecker(responder_url=ocsp_responder.url)
    before = ocsp_responder.ocsp_requests
    for _ in range(50):
        checker.check(dev_pki.party("nsw-gateway").cert, dev_pki.issuing_cert, at=now())
    assert ocsp_responder.ocsp_requests == before + 1
    assert checker.requests_sent == 1


def test_ocsp_cached_answer_survives_the_responder_going_down(dev_pki):  # noqa: F811
    cert, issuer = dev_pki.party("mard").cert, dev_pki.issuing_cert
    with OcspResponder(dev_pki) as responder:
        checker = OcspChecker(responder_url=responder.url, timeout=2)
        checker.check(cert, issuer, at=now())
    checker.check(cert, issuer, at=now())  # responder stopped: served from the cache
    checker.clear_cache()
    with pytest.raises(RevocationUnavailable):
        checker.check(cert, issuer, at=now())


def test_ocsp_cache_expires_at_next_update(dev_pki, ocsp_responder):  # noqa: F811
    clock = {"now": now()}
    checker = OcspChecker(responder_url=ocsp_responder.url, clock=lambda: clock["now"])
    cert, issuer = dev_pki.party("moit").cert, dev_pki.issuing_cert
    checker.check(cert, issuer, at=now())
    checker.check(cert, issuer, at=now())
    assert checker.requests_sent == 1
    clock["now"] += timedelta(minutes=6)  # past the cached answer's nextUpdate (openssl -nmin 5)
    checker.check(cert, issuer, at=now())
    assert checker.requests_sent == 2


def test_ocsp_concurrent_first_checks_share_one_call(dev_pki, ocsp_responder):  # noqa: F811
    checker = OcspChecker(responder_url=ocsp_responder.url)
    cert, issuer = dev_pki.party("my-asw").cert, dev_pki.issuing_cert
    errors: list[BaseException] = []

    def run() -> None:
        try:
            checker.check(cert, issuer, at=now())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert checker.requests_sent == 1


def test_ocsp_rejects_non_http_responder_url():
    with pytest.raises(ConfigError) as info:
        OcspChecker(responder_url="file:///etc/passwd")
    assert info.value.code == "CONFIG_INVALID"


# --------------------------------------------------------------------------- combinators


def test_first_available_falls_back_from_dead_ocsp_to_crl(dev_pki, fresh):  # noqa: F811
    checker = FirstAvailable([OcspChecker(responder_url=dead_url(), timeout=2), CrlChecker([dev_pki.crl()])])
    checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    issued = fresh()
    dev_pki.revoke(issued.name)
    checker = FirstAvailable([OcspChecker(responder_url=dead_url(), timeout=2), CrlChecker([dev_pki.crl()])])
    with pytest.raises(CertificateRevoked) as info:
        checker.check(issued.cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOKED"
    assert info.value.details["source"] == "crl"


def test_first_available_revoked_is_final(dev_pki, ocsp_responder, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name)
    fallback = NoRevocationCheck()  # would pass, must never be asked
    with pytest.raises(CertificateRevoked) as info:
        FirstAvailable([OcspChecker(responder_url=ocsp_responder.url), fallback]).check(
            issued.cert, dev_pki.issuing_cert, at=now()
        )
    assert info.value.code == "CERT_REVOKED"
    assert info.value.details["source"] == "ocsp"


def test_first_available_all_unavailable_raises_the_last(dev_pki):  # noqa: F811
    checker = FirstAvailable([OcspChecker(responder_url=dead_url(), timeout=2), CrlChecker()])
    with pytest.raises(RevocationUnavailable) as info:
        checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOCATION_UNAVAILABLE"
    assert info.value.details["source"] == "crl"
    assert len(info.value.details["attempts"]) == 2


def test_first_available_needs_a_checker():
    with pytest.raises(ConfigError) as info:
        FirstAvailable([])
    assert info.value.code == "CONFIG_INVALID"


def test_soft_fail_passes_when_unavailable_and_logs(dev_pki, caplog):  # noqa: F811
    checker = SoftFail(OcspChecker(responder_url=dead_url(), timeout=2))
    with caplog.at_level(logging.WARNING, logger="nswgw.revocation"):
        assert checker.check(dev_pki.party("moit").cert, dev_pki.issuing_cert, at=now()) is None
    assert "CERT_REVOCATION_UNAVAILABLE" in caplog.text


def test_soft_fail_still_raises_revoked(dev_pki, fresh):  # noqa: F811
    issued = fresh()
    dev_pki.revoke(issued.name)
    with pytest.raises(CertificateRevoked) as info:
        SoftFail(CrlChecker([dev_pki.crl()])).check(issued.cert, dev_pki.issuing_cert, at=now())
    assert info.value.code == "CERT_REVOKED"
