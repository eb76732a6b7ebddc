"""HSM signing keys over PKCS#11, against a real SoftHSM2 token made by ``nswgw keys hsm-init`` for this module.

Signatures made through the token verify with our verifier and with the xmlsec1 command; a gateway delivers
with the token's key and the partner verifies; a missing or wrong PIN and a pin file others may read fail at
start with their codes; a lost session or a finalized library is recovered by one re-login; a removed token
is SIGNING_FAILED; rotation between a file key and a token key follows ``active_from``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from gateway.api import Gateway
from gateway.config import Config, KeySettings, load_config
from gateway.errors import ConfigError, HsmPinIncorrect, HsmPinMissing, NswError, SigningFailed
from gateway.security import key_ring
from gateway.store import Store
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.mappings import form_d
from mappings.registry import get as get_format
from signing import algorithms as A
from signing.dev.hsm import SOFTHSM2_MODULE
from signing.dev.pki import DEFAULT_ORGANIZATION, DevPki
from signing.keys import KeyRing, SoftwareSigner, verify_raw
from signing.pkcs11 import Pkcs11Signer
from signing.policy import SigningProfile, VerifyPolicy
from signing.sign import sign_document
from signing.trust import PinnedCertificate, TrustStore
from signing.verify import verify_document

UTC = dt.UTC
TOKEN = "nswgw-test"
PIN_ENV = "NSWGW_TEST_HSM_PIN"
XMLSEC1 = shutil.which("xmlsec1")
NS = "urn:nsw:atiga:form-d:1"
DOC = (
    f'<CertificateOfOrigin xmlns="{NS}"><CertificateNumber>VN-TH 26/01/00042</CertificateNumber></CertificateOfOrigin>'
)


@dataclass(frozen=True)
class Hsm:
    directory: Path
    pin: str
    pin_file: Path
    rsa_cert: Path
    ec_cert: Path
    printed: str


def _hsm_init(directory: Path, pki: DevPki, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "hsm-init", str(directory), "--pki", str(pki.directory), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NSWGW_HSM_INIT_PIN": "4711-test"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki) -> Iterator[Hsm]:
    """A fresh SoftHSM2 token with an RSA-2048 key (label gw-rsa, id 01) and a P-256 key (gw-ec, id 02)."""
    import pkcs11

    assert Path(SOFTHSM2_MODULE).is_file(), "apt-get install softhsm2 (scripts/test does it)"
    directory = tmp_path_factory.mktemp("hsm")
    common = ("--token", TOKEN, "--pin-env", "NSWGW_HSM_INIT_PIN", "--common-name", "nsw-gateway-hsm")
    printed = _hsm_init(directory, dev_pki, *common, "--label", "gw-rsa", "--id", "01")
    _hsm_init(directory, dev_pki, *common, "--label", "gw-ec", "--id", "02", "--key-type", "p256")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(directory / "softhsm2.conf"))
        mp.setenv(PIN_ENV, "4711-test")
        pkcs11.lib(SOFTHSM2_MODULE).reinitialize()  # SoftHSM2 reads SOFTHSM2_CONF at C_Initialize
        yield Hsm(directory, "4711-test", directory / "pin", directory / "gw-rsa.pem", directory / "gw-ec.pem", printed)


def token_key(hsm: Hsm, label: str, **options: Any) -> dict[str, Any]:
    """A ``pkcs11 = {...}`` key source for the module's token."""
    return {"module": SOFTHSM2_MODULE, "token": TOKEN, "key_label": label, "pin_env": PIN_ENV, **options}


def gateway_config(tmp_path: Path, keys: list[dict[str, Any]], **kwargs: Any) -> Config:
    return make_config(
        tmp_path,
        kwargs.pop("destinations", {"TH": "http://127.0.0.1:9/x"}),
        gateway={"verification": "well-formed", "signing": "on", **kwargs.pop("gateway", {})},
        extra={"signing": {"keys": keys}},
        **kwargs,
    )


def signer(hsm: Hsm, label: str) -> Pkcs11Signer:
    return Pkcs11Signer(SOFTHSM2_MODULE, TOKEN, pin=hsm.pin, key_label=label, field="test")


def anchored(pki: DevPki, name: str) -> dict[str, Any]:
    return {
        "anchors": [str(pki.root_cert_path)],
        "intermediates": [str(pki.issuing_cert_path)],
        "signers": [{"subject": {"CN": name, "O": DEFAULT_ORGANIZATION}}],
    }


def _xmlsec1_verify(pki: DevPki, path: Path) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1 is not None, "apt-get install xmlsec1 (scripts/test does it)"
    return subprocess.run(
        [
            XMLSEC1,
            "--verify",
            "--trusted-pem",
            str(pki.root_cert_path),
            "--untrusted-pem",
            str(pki.issuing_cert_path),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


# --------------------------------------------------------------------------- hsm-init and the key source


def test_hsm_init_prints_a_signing_keys_block_that_loads_and_signs(hsm: Hsm) -> None:
    block = hsm.printed[hsm.printed.index("[[signing.keys]]") :]
    keys = tomllib.loads(block)["signing"]["keys"]
    settings = KeySettings.model_validate(keys[0])
    assert settings.pkcs11 is not None
    assert (settings.pkcs11.token, settings.pkcs11.key_label, settings.pkcs11.key_id) == (TOKEN, "gw-rsa", "01")
    assert f"export SOFTHSM2_CONF={hsm.directory / 'softhsm2.conf'}" in hsm.printed
    assert oct(hsm.pin_file.stat().st_mode & 0o777) == "0o600"
    ring = key_ring(_config_from_block(hsm, block))
    assert verify_raw(ring.certificate, ring.sign(b"probe", A.RSA_SHA256), b"probe", A.RSA_SHA256)


def _config_from_block(hsm: Hsm, block: str) -> Config:
    keys = tomllib.loads(block)["signing"]["keys"]
    (hsm.directory / "cfg").mkdir(exist_ok=True)
    return gateway_config(hsm.directory / "cfg", keys)


def test_hsm_init_refuses_a_label_already_on_the_token(hsm: Hsm, dev_pki: DevPki) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "keys",
            "hsm-init",
            str(hsm.directory),
            "--pki",
            str(dev_pki.directory),
            "--token",
            TOKEN,
            "--label",
            "gw-rsa",
            "--id",
            "07",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "CONFIG_INVALID" in done.stderr and "--label" in done.stderr


def test_certificate_inventory_lists_the_token_key_certificate(hsm: Hsm, tmp_path: Path) -> None:
    from gateway.security import certificate_inventory

    config = gateway_config(tmp_path, [{"pkcs11": token_key(hsm, "gw-ec")}])
    signing = [c for c in certificate_inventory(config) if c.role == "signing"]
    assert [(c.field, c.certificate) for c in signing] == [
        ("signing.keys[0].pkcs11", x509.load_pem_x509_certificates(hsm.ec_cert.read_bytes())[0])
    ]


def test_private_keys_on_the_token_are_sensitive_and_never_extractable(hsm: Hsm) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    session = pkcs11.lib(SOFTHSM2_MODULE).get_token(token_label=TOKEN).open()
    try:
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
        assert {k[Attribute.LABEL] for k in keys} >= {"gw-rsa", "gw-ec"}
        for key in keys:
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
    finally:
        session.close()


def test_certificate_comes_from_the_token_object_when_no_file_is_configured(hsm: Hsm, tmp_path: Path) -> None:
    from_file = x509.load_pem_x509_certificates(hsm.ec_cert.read_bytes())
    config = gateway_config(tmp_path, [{"pkcs11": token_key(hsm, "gw-ec", key_label=None, key_id="02")}])
    ring = key_ring(config)
    assert ring.certificate == from_file[0]
    assert ring.certificate.subject.rfc4514_string() == f"CN=nsw-gateway-hsm,O={DEFAULT_ORGANIZATION},C=VN"


def test_certificate_of_another_key_is_refused_at_start(hsm: Hsm, tmp_path: Path) -> None:
    config = gateway_config(tmp_path, [{"pkcs11": token_key(hsm, "gw-rsa", certificate=str(hsm.ec_cert))}])
    with pytest.raises(NswError) as err:
        key_ring(config)
    assert (err.value.code, err.value.field) == ("KEY_LOAD_FAILED", "signing.keys[0].pkcs11")


# --------------------------------------------------------------------------- signatures through the token


@pytest.mark.interop
@pytest.mark.parametrize(
    "label, algorithm",
    [("gw-rsa", A.RSA_SHA256), ("gw-rsa", A.RSA_PSS_SHA256), ("gw-rsa", A.RSA_PSS_SHA512), ("gw-ec", A.ECDSA_SHA256)],
    ids=["rsa-pkcs1v15-sha256", "rsa-pss-sha256", "rsa-pss-sha512", "ecdsa-p256-sha256"],
)
def test_document_signed_through_the_token_verifies_with_ours_signxml_and_xmlsec1(
    hsm: Hsm, dev_pki: DevPki, tmp_path: Path, label: str, algorithm: A.SignatureAlgorithm
) -> None:
    cert_file = hsm.rsa_cert if label == "gw-rsa" else hsm.ec_cert
    certs = x509.load_pem_x509_certificates(cert_file.read_bytes())
    token_signer = Pkcs11Signer(
        SOFTHSM2_MODULE, TOKEN, pin=hsm.pin, key_label=label, certificate=certs[0], chain=certs[1:]
    )
    signed = sign_document(DOC.encode(), token_signer, SigningProfile(signature_method=algorithm.uri))
    trust = TrustStore("nsw-gateway", anchors=(dev_pki.root_cert,), any_signer=True)
    result = verify_document(signed, trust=trust, policy=VerifyPolicy())
    assert result.signature_method == algorithm.uri
    assert result.signer_subject.startswith("CN=nsw-gateway-hsm")
    from signxml import XMLVerifier

    pem = cert_file.read_bytes().decode()
    signxml_result = XMLVerifier().verify(
        signed, x509_cert=pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----"
    )
    assert not isinstance(signxml_result, list) and signxml_result.signed_xml is not None
    if algorithm.key_type == "rsa-pss":
        return  # the Debian xmlsec1 command (libxmlsec1 1.2) has no RSASSA-PSS: signxml is the independent check
    (tmp_path / "signed.xml").write_bytes(signed)
    done = _xmlsec1_verify(dev_pki, tmp_path / "signed.xml")
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout + done.stderr


def test_ecdsa_signature_value_is_raw_r_and_s_of_the_curve_size(hsm: Hsm) -> None:
    value = signer(hsm, "gw-ec").sign(b"data", A.ECDSA_SHA256)
    assert len(value) == 64


def test_signing_from_worker_threads_shares_one_session_safely(hsm: Hsm) -> None:
    token_signer = signer(hsm, "gw-rsa")
    failures: list[BaseException] = []
    results: list[bool] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                data = f"thread {n} message {i}".encode()
                results.append(
                    verify_raw(token_signer.certificate, token_signer.sign(data, A.RSA_SHA256), data, A.RSA_SHA256)
                )
        except BaseException as exc:  # collected and asserted on below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert results == [True] * 60


# --------------------------------------------------------------------------- PIN at start


def test_wrong_pin_is_hsm_pin_incorrect_at_gateway_start_naming_the_pin_source(
    hsm: Hsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NSWGW_TEST_WRONG_PIN", "0000-wrong")
    config = gateway_config(tmp_path, [{"pkcs11": token_key(hsm, "gw-rsa", pin_env="NSWGW_TEST_WRONG_PIN")}])
    with pytest.raises(HsmPinIncorrect) as err:
        key_ring(config)
    assert (err.value.code, err.value.field) == ("HSM_PIN_INCORRECT", "signing.keys[0].pkcs11.pin_env")


async def test_missing_pin_variable_stops_the_gateway_at_start_with_hsm_pin_missing(hsm: Hsm, tmp_path: Path) -> None:
    assert "NSWGW_TEST_UNSET_PIN" not in os.environ
    config = gateway_config(tmp_path, [{"pkcs11": token_key(hsm, "gw-rsa", pin_env="NSWGW_TEST_UNSET_PIN")}])
    with pytest.raises(HsmPinMissing) as err:
        async with Gateway(config):
            pass
    assert (err.value.code, err.value.field) == ("HSM_PIN_MISSING", "signing.keys[0].pkcs11.pin_env")


def test_pin_file_readable_by_others_is_refused_when_the_configuration_loads(hsm: Hsm, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(hsm.pin + "\n")
    pin_file.chmod(0o644)
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "gw.db"}"\n\n'
        f'[[signing.keys]]\npkcs11 = {{ module = "{SOFTHSM2_MODULE}", token = "{TOKEN}", key_label = "gw-rsa", '
        'pin_file = "pin" }\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (err.value.code, err.value.field) == ("CONFIG_INVALID", "signing.keys[0].pkcs11.pin_file")
    pin_file.chmod(0o600)  # relative to the configuration file, like every path in it
    ring = key_ring(load_config(path))
    assert ring.certificate.subject.rfc4514_string().startswith("CN=nsw-gateway-hsm")


@pytest.mark.parametrize(
    "source, field",
    [
        ({"pin_env": None}, "signing.keys[0].pkcs11.pin_env"),
        ({"pin_file": "/etc/hostname"}, "signing.keys[0].pkcs11.pin_env"),
        ({"key_label": None}, "signing.keys[0].pkcs11.key_label"),
        ({"key_id": "0g"}, "signing.keys[0].pkcs11.key_id"),
        ({"module": None}, "signing.keys[0].pkcs11.module"),
    ],
    ids=["no-pin-source", "two-pin-sources", "no-key-name", "key-id-not-hex", "no-module"],
)
def test_incomplete_pkcs11_source_is_a_config_error_naming_the_field(
    hsm: Hsm, tmp_path: Path, source: dict[str, Any], field: str
) -> None:
    options = {k: v for k, v in {**token_key(hsm, "gw-rsa"), **source}.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        gateway_config(tmp_path, [{"pkcs11": options}])
    assert (err.value.code, err.value.field) == ("CONFIG_INVALID", field)


def test_pkcs11_and_a_key_file_in_one_key_is_a_config_error(hsm: Hsm, tmp_path: Path, dev_pki: DevPki) -> None:
    gw = dev_pki.party("nsw-gateway")
    with pytest.raises(ConfigError) as err:
        gateway_config(tmp_path, [{"pkcs11": token_key(hsm, "gw-rsa"), "pkcs12": str(gw.p12_path)}])
    assert (err.value.code, err.value.field) == ("CONFIG_INVALID", "signing.keys[0]")


# --------------------------------------------------------------------------- session and token loss


def test_closed_session_is_reopened_with_one_login_and_the_signature_succeeds(hsm: Hsm) -> None:
    token_signer = signer(hsm, "gw-rsa")
    token_signer._session.close()  # the session handle dies under the signer, as after an HSM failover
    value = token_signer.sign(b"after loss", A.RSA_PSS_SHA256)
    assert verify_raw(token_signer.certificate, value, b"after loss", A.RSA_PSS_SHA256)
    assert token_signer.relogins == 1


def test_finalized_library_is_initialized_again_and_both_signers_recover(hsm: Hsm) -> None:
    import pkcs11

    rsa_signer, ec_signer = signer(hsm, "gw-rsa"), signer(hsm, "gw-ec")
    pkcs11.lib(SOFTHSM2_MODULE).finalize()  # every session and the login are gone
    assert verify_raw(rsa_signer.certificate, rsa_signer.sign(b"x", A.RSA_SHA256), b"x", A.RSA_SHA256)
    assert verify_raw(ec_signer.certificate, ec_signer.sign(b"x", A.ECDSA_SHA256), b"x", A.ECDSA_SHA256)
    assert (rsa_signer.relogins, ec_signer.relogins) == (1, 1)


def test_removed_token_is_signing_failed_after_one_reopen(hsm: Hsm, dev_pki: DevPki, tmp_path: Path) -> None:
    import pkcs11

    directory = tmp_path / "spare"
    _hsm_init(directory, dev_pki, "--token", "spare", "--pin-env", "NSWGW_HSM_INIT_PIN", "--label", "k", "--id", "09")
    # hsm-init ran in another process: this one sees the new token after C_Initialize reads the same config
    os.environ["SOFTHSM2_CONF"] = str(directory / "softhsm2.conf")
    lib = pkcs11.lib(SOFTHSM2_MODULE)
    try:
        lib.reinitialize()
        spare = Pkcs11Signer(SOFTHSM2_MODULE, "spare", pin="4711-test", key_label="k", field="signing.keys[0].pkcs11")
        done = subprocess.run(
            ["softhsm2-util", "--delete-token", "--token", "spare"],
            env={**os.environ},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        lib.finalize()  # the next C_Initialize no longer finds the token
        with pytest.raises(SigningFailed) as err:
            spare.sign(b"x", A.RSA_SHA256)
        assert (err.value.code, err.value.field) == ("SIGNING_FAILED", "signing.keys[0].pkcs11.token")
        assert spare.relogins == 1
    finally:
        os.environ["SOFTHSM2_CONF"] = str(hsm.directory / "softhsm2.conf")
        lib.reinitialize()


# --------------------------------------------------------------------------- rotation


def test_rotation_between_a_file_key_and_a_token_key_follows_active_from(
    hsm: Hsm, tmp_path: Path, dev_pki: DevPki
) -> None:
    gw = dev_pki.party("nsw-gateway")
    file_key = {"pkcs12": str(gw.p12_path), "password": "changeit", "active_from": "2020-01-01T00:00:00Z"}
    hsm_cert = x509.load_pem_x509_certificates(hsm.rsa_cert.read_bytes())[0]
    switched = key_ring(
        gateway_config(
            tmp_path, [file_key, {"pkcs11": token_key(hsm, "gw-rsa"), "active_from": "2021-01-01T00:00:00Z"}]
        )
    )
    assert switched.certificate == hsm_cert
    not_yet = key_ring(
        gateway_config(
            tmp_path, [file_key, {"pkcs11": token_key(hsm, "gw-rsa"), "active_from": "2099-01-01T00:00:00Z"}]
        )
    )
    assert not_yet.certificate == gw.cert

    # Across the switch instant: the file key signs before, the token key after; both verify with the partner's
    # trust store that holds the two pinned certificates during the overlap.
    at = dt.datetime(2030, 6, 1, tzinfo=UTC)
    now = [at - dt.timedelta(seconds=1)]
    ring = KeyRing(
        [(SoftwareSigner(gw.key, gw.cert), dt.datetime(2020, 1, 1, tzinfo=UTC)), (signer(hsm, "gw-rsa"), at)],
        clock=lambda: now[0],
    )
    trust = TrustStore("nsw-gateway", pinned=(PinnedCertificate(gw.cert), PinnedCertificate(hsm_cert)))
    before = verify_document(sign_document(DOC.encode(), ring), trust=trust, policy=VerifyPolicy())
    now[0] = at
    after = verify_document(sign_document(DOC.encode(), ring), trust=trust, policy=VerifyPolicy())
    assert before.signer_subject.startswith("CN=nsw-gateway,")
    assert after.signer_subject.startswith("CN=nsw-gateway-hsm,")


# --------------------------------------------------------------------------- a gateway delivering with the HSM key


async def test_gateway_delivers_signed_with_the_hsm_key_and_the_partner_verifies(
    hsm: Hsm, tmp_path: Path, dev_pki: DevPki, store: Store
) -> None:
    hsm_cert = x509.load_pem_x509_certificates(hsm.ec_cert.read_bytes())[0]
    th = await Receiver(
        verify_with=(TrustStore("nsw-gateway", pinned=(PinnedCertificate(hsm_cert),)), VerifyPolicy())
    ).start()
    moit = dev_pki.party("moit")
    try:
        config = make_config(
            tmp_path,
            {"TH": th.url},
            parties={
                "MOIT": {"trust": {"pinned": [{"certificate": str(moit.cert_path)}]}, "format": "form-d"},
                "MARD": {"trust": anchored(dev_pki, "mard")},
                "TRADER": {"trust": anchored(dev_pki, "trader")},
            },
            per_destination={"TH": {"format": "form-d"}},
            gateway={"verification": "signature", "signing": "on"},
            extra={
                "signing": {"keys": [{"pkcs11": token_key(hsm, "gw-ec", key_id="02", certificate=str(hsm.ec_cert))}]}
            },
        )
        document = get_format("form-d").emit(form_d(items=2))
        submission = sign_document(document, SoftwareSigner(moit.key, moit.cert, [dev_pki.issuing_cert]))
        async with Gateway(config, store=store) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "ECO-HSM-1", "eco.form_d", submission)
            assert status == 202, ack
            await eventually(lambda: len(th.processed) == 1)
    finally:
        await th.stop()
    assert th.verified[0].startswith("CN=nsw-gateway-hsm")
    body = th.requests[0]["body"]
    assert A.ECDSA_SHA256.uri.encode() in body
