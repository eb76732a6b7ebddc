"""The development PKI (signing/dev/pki.py) and ``nswgw keys`` (signing/dev/keys_cli.py)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.cli import report_error
from gateway.errors import ConfigError, KeyLoadFailed, NswError
from helpers.ocsp import dev_pki  # noqa: F401
from signing.dev import keys_cli
from signing.dev.pki import (
    DEFAULT_PARTIES,
    ISSUING_CA_NAME,
    ROOT_CA_NAME,
    DevPki,
    generate_key,
    init_dev_pki,
    issue_certificate,
    make_crl,
)
from signing.keys import load_certificate, load_certificates, load_private_key

OPENSSL = shutil.which("openssl")
INDEX_LINE = re.compile(
    r"^(?:V\t(?P<exp>\d{12}Z|\d{14}Z)\t\t|R\t(?P<rexp>\d{12}Z|\d{14}Z)\t\d{12}Z,[A-Za-z]+\t)"
    r"(?P<serial>(?:[0-9A-F]{2})+)\tunknown\t(?P<dn>/C=VN/O=[^/]+/CN=.+)$"
)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def ec_pki(tmp_path_factory) -> DevPki:
    """A small P-256 PKI this module may mutate (issue, revoke)."""
    return init_dev_pki(
        tmp_path_factory.mktemp("ec-pki"), ("alpha", "beta"), key_kind="p256", ocsp_url="http://127.0.0.1:9/ocsp"
    )


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


# --------------------------------------------------------------------------- primitives


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("p256", (ec.EllipticCurvePrivateKey, 256)),
        ("p384", (ec.EllipticCurvePrivateKey, 384)),
        ("rsa2048", (rsa.RSAPrivateKey, 2048)),
    ],
)
def test_generate_key_kinds(kind, expected):
    key = generate_key(kind)
    assert isinstance(key, expected[0])
    assert key.key_size == expected[1]


def test_generate_key_unknown_kind_is_config_invalid():
    with pytest.raises(ConfigError) as info:
        generate_key("p265")
    assert info.value.code == "CONFIG_INVALID"
    assert "did you mean 'p256'" in info.value.message


def test_issue_certificate_self_signed_root_and_end_entity():
    root_key = generate_key("p256")
    root = issue_certificate(None, root_key, "Test Root", root_key.public_key(), is_ca=True, path_length=1)
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    assert ext(root, x509.KeyUsage).value.key_cert_sign

    leaf_key = generate_key("p256")
    leaf = issue_certificate(
        root,
        root_key,
        "leaf",
        leaf_key.public_key(),
        organization="Ministry of Industry and Trade",
        extended_key_usage=["client_auth", ExtendedKeyUsageOID.EMAIL_PROTECTION],
        ocsp_url="http://127.0.0.1/ocsp",
        crl_url="http://127.0.0.1/crl.pem",
        serial=4242,
    )
    leaf.verify_directly_issued_by(root)
    assert leaf.serial_number == 4242
    assert leaf.signature_hash_algorithm.name == "sha256"
    assert ext(leaf, x509.BasicConstraints).critical and not ext(leaf, x509.BasicConstraints).value.ca
    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    assert list(ext(leaf, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ]
    assert (
        ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == ext(root, x509.SubjectKeyIdentifier).value.digest
    )
    aia = ext(leaf, x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == ["http://127.0.0.1/ocsp"]
    dps = ext(leaf, x509.CRLDistributionPoints).value
    assert [n.value for n in dps[0].full_name] == ["http://127.0.0.1/crl.pem"]
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)[0].value == "VN"


def test_issue_certificate_unknown_key_usage_is_config_invalid():
    key = generate_key("p256")
    with pytest.raises(ConfigError) as info:
        issue_certificate(None, key, "x", key.public_key(), key_usage={"digital_signatur"})
    assert info.value.code == "CONFIG_INVALID"
    assert "did you mean 'digital_signature'" in info.value.message


def test_issue_certificate_explicit_validity():
    key = generate_key("p256")
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)
    cert = issue_certificate(None, key, "old", key.public_key(), not_before=start, not_after=end)
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)


def test_make_crl_entries_reasons_and_window():
    key = generate_key("p256")
    ca = issue_certificate(None, key, "CA", key.public_key(), is_ca=True)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    this_update = now().replace(microsecond=0)
    crl = make_crl(ca, key, [(10, when, "key_compromise"), (11, when, None)], this_update=this_update, crl_number=7)
    assert crl.is_signature_valid(key.public_key())
    assert crl.issuer == ca.subject
    assert crl.last_update_utc == this_update
    assert crl.next_update_utc == this_update + timedelta(days=7)
    assert ext(crl, x509.CRLNumber).value.crl_number == 7
    first = crl.get_revoked_certificate_by_serial_number(10)
    assert first.revocation_date_utc == when
    assert first.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    second = crl.get_revoked_certificate_by_serial_number(11)
    assert len(second.extensions) == 0


# --------------------------------------------------------------------------- DevPki layout


def test_init_creates_the_layout(dev_pki):  # noqa: F811
    d = dev_pki.directory
    top = {
        "manifest.json", "root-ca.pem", "root-ca.key.pem", "root-ca.crl.pem", "issuing-ca.pem", "issuing-ca.key.pem",
        "ca-chain.pem", "crl.pem", "index.txt", "index.txt.attr", "ocsp.pem", "ocsp.key.pem",
    }  # fmt: skip
    assert top <= {p.name for p in d.iterdir()}
    for party in DEFAULT_PARTIES:
        for suffix in (".pem", ".key.pem", ".p12"):
            assert (d / "parties" / f"{party}{suffix}").is_file()
    assert dev_pki.parties == DEFAULT_PARTIES


def test_private_key_files_are_0600(dev_pki):  # noqa: F811
    private = [p for p in dev_pki.directory.rglob("*") if p.name.endswith((".key.pem", ".p12"))]
    assert len(private) == 3 + 2 * len(DEFAULT_PARTIES)
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(dev_pki.root_cert_path.stat().st_mode) == 0o644


def test_manifest_lists_every_file_party_and_fingerprint(dev_pki):  # noqa: F811
    manifest = json.loads((dev_pki.directory / "manifest.json").read_text())
    on_disk = {str(p.relative_to(dev_pki.directory)) for p in dev_pki.directory.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk
    assert manifest["parties"] == list(DEFAULT_PARTIES)
    for name in DEFAULT_PARTIES:
        entry = manifest["certificates"][name]
        cert = dev_pki.party(name).cert
        assert entry["sha256"] == cert.fingerprint(hashes.SHA256()).hex(":").upper()
        assert int(entry["serial"], 16) == cert.serial_number
    assert {"root-ca", "issuing-ca", "ocsp"} <= set(manifest["certificates"])


def test_chain_root_issuing_ocsp_and_parties(dev_pki):  # noqa: F811
    root, ca = dev_pki.root_cert, dev_pki.issuing_cert
    assert root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == ROOT_CA_NAME
    assert ca.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == ISSUING_CA_NAME
    root.verify_directly_issued_by(root)
    ca.verify_directly_issued_by(root)
    assert ext(ca, x509.BasicConstraints).value.path_length == 0
    responder = dev_pki.ocsp_cert
    responder.verify_directly_issued_by(ca)
    assert ExtendedKeyUsageOID.OCSP_SIGNING in ext(responder, x509.ExtendedKeyUsage).value
    ext(responder, x509.OCSPNoCheck)
    for name in DEFAULT_PARTIES:
        party = dev_pki.party(name)
        party.cert.verify_directly_issued_by(ca)
        assert party.cert.public_key() == party.key.public_key()
        assert isinstance(party.key, rsa.RSAPrivateKey)
        assert ext(party.cert, x509.KeyUsage).value.content_commitment


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_verifies_the_chain(dev_pki):  # noqa: F811
    result = subprocess.run(
        [OPENSSL, "verify", "-CAfile", str(dev_pki.root_cert_path), "-untrusted", str(dev_pki.issuing_cert_path),
         str(dev_pki.party("moit").cert_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK")


def test_crls_start_empty_and_are_signed_by_their_ca(dev_pki):  # noqa: F811
    crl = DevPki.open(dev_pki.directory).root_crl()
    assert crl.is_signature_valid(dev_pki.root_cert.public_key()) and len(list(crl)) == 0
    assert dev_pki.crl().is_signature_valid(dev_pki.issuing_cert.public_key())


def test_pkcs12_opens_with_the_password(dev_pki):  # noqa: F811
    party = dev_pki.party("th-asw")
    key, cert, extra = pkcs12.load_key_and_certificates(party.p12_path.read_bytes(), b"changeit")
    assert cert == party.cert
    assert key.public_key() == party.cert.public_key()
    assert extra == [dev_pki.issuing_cert]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(party.p12_path.read_bytes(), b"wrong")


def test_index_txt_has_openssl_ca_format(dev_pki):  # noqa: F811
    lines = dev_pki.index_path.read_text().splitlines()
    serials = {}
    for line in lines:
        m = INDEX_LINE.match(line)
        assert m, line
        serials[m["serial"]] = m["dn"]
    for cert in (dev_pki.ocsp_cert, *(dev_pki.party(name).cert for name in DEFAULT_PARTIES)):
        assert any(int(s, 16) == cert.serial_number for s in serials)
    moit = dev_pki.party("moit").cert
    assert (
        serials[next(s for s in serials if int(s, 16) == moit.serial_number)] == "/C=VN/O=NSW Development PKI/CN=moit"
    )


def test_second_init_without_force_is_config_invalid(ec_pki):
    with pytest.raises(ConfigError) as info:
        init_dev_pki(ec_pki.directory, ("alpha",), key_kind="p256")
    assert info.value.code == "CONFIG_INVALID"
    assert str(ec_pki.directory) in info.value.message


def test_init_with_force_replaces_the_pki(tmp_path):
    first = init_dev_pki(tmp_path, ("a", "b"), key_kind="p256")
    first.issue("extra")
    second = init_dev_pki(tmp_path, ("c",), key_kind="p256", force=True)
    assert second.root_cert != first.root_cert
    assert not (tmp_path / "parties" / "a.pem").exists()
    assert not (tmp_path / "parties" / "extra.pem").exists()
    assert DevPki.open(tmp_path).parties == ("c",)


def test_open_a_directory_without_pki_is_config_invalid(tmp_path):
    with pytest.raises(ConfigError) as info:
        DevPki.open(tmp_path)
    assert info.value.code == "CONFIG_INVALID"


def test_unknown_party_says_did_you_mean(ec_pki):
    with pytest.raises(ConfigError) as info:
        ec_pki.party("alfa")
    assert info.value.code == "CONFIG_INVALID"
    assert "did you mean 'alpha'" in info.value.message


def test_invalid_party_name_is_config_invalid(tmp_path):
    with pytest.raises(ConfigError) as info:
        init_dev_pki(tmp_path, ("../evil",), key_kind="p256")
    assert info.value.code == "CONFIG_INVALID"


def test_ocsp_url_is_written_into_party_certificates(ec_pki):
    aia = ext(ec_pki.party("alpha").cert, x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == "http://127.0.0.1:9/ocsp"


# --------------------------------------------------------------------------- issue / revoke


def test_issue_expired_certificate_is_recorded(ec_pki):
    issued = ec_pki.issue("expired", not_before=now() - timedelta(days=400), not_after=now() - timedelta(days=35))
    assert issued.cert.not_valid_after_utc < now()
    reopened = DevPki.open(ec_pki.directory)
    assert "expired" in reopened.names and reopened.party("expired").cert == issued.cert
    assert f"{issued.cert.serial_number:X}" in ec_pki.index_path.read_text()
    assert "parties/expired.pem" in reopened.manifest["files"]


def test_issue_wrong_key_usage(ec_pki):
    issued = ec_pki.issue("encrypt-only", key_usage={"key_encipherment"}, extended_key_usage=["server_auth"])
    ku = ext(issued.cert, x509.KeyUsage).value
    assert ku.key_encipherment and not ku.digital_signature
    assert list(ext(issued.cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_issue_duplicate_name_is_config_invalid(ec_pki):
    with pytest.raises(ConfigError) as info:
        ec_pki.issue("alpha")
    assert info.value.code == "CONFIG_INVALID"


def test_revoke_rewrites_crl_and_index(ec_pki):
    issued = ec_pki.issue("to-revoke")
    number_before = ext(ec_pki.crl(), x509.CRLNumber).value.crl_number
    crl = ec_pki.revoke("to-revoke", "key_compromise")
    assert crl == ec_pki.crl()
    assert crl.is_signature_valid(ec_pki.issuing_cert.public_key())
    assert ext(crl, x509.CRLNumber).value.crl_number == number_before + 1
    entry = crl.get_revoked_certificate_by_serial_number(issued.cert.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    line = next(line for line in ec_pki.index_path.read_text().splitlines() if line.endswith("/CN=to-revoke"))
    assert INDEX_LINE.match(line) and line.startswith("R\t") and ",keyCompromise\t" in line
    assert DevPki.open(ec_pki.directory).manifest["certificates"]["to-revoke"]["status"] == "revoked"


def test_revoke_twice_is_config_invalid(ec_pki):
    ec_pki.issue("twice")
    ec_pki.revoke("twice")
    with pytest.raises(ConfigError) as info:
        ec_pki.revoke("twice")
    assert info.value.code == "CONFIG_INVALID"


def test_revoke_unknown_name_is_config_invalid(ec_pki):
    with pytest.raises(ConfigError) as info:
        ec_pki.revoke("betta")
    assert info.value.code == "CONFIG_INVALID"
    assert "did you mean 'beta'" in info.value.message


@pytest.mark.parametrize("load", [load_certificate, load_certificates], ids=["one", "all"])
def test_certificate_files_give_one_code_per_fault_whichever_loader_reads_them(tmp_path, load):
    with pytest.raises(NswError) as info:
        load(tmp_path / "absent.pem")
    assert (info.value.code, info.value.field) == ("CONFIG_INVALID", str(tmp_path / "absent.pem"))
    for name, data in (
        ("garbage.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ("garbage.der", b"\x30\x03\x02\x01"),
        ("empty.pem", b"-----BEGIN nothing"),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NswError) as info:
            load(tmp_path / name)
        assert (info.value.code, info.value.field) == ("CERT_MALFORMED", str(tmp_path / name)), name


def test_load_private_key_garbage_is_key_load_failed(tmp_path):
    bad = tmp_path / "bad.key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyLoadFailed) as info:
        load_private_key(bad)
    assert info.value.code == "KEY_LOAD_FAILED"


# --------------------------------------------------------------------------- CLI


def run_cli(argv: list[str]) -> int:
    """``nswgw`` restricted to the ``keys`` group (same dispatch and error reporting as gateway.cli.main)."""
    parser = argparse.ArgumentParser(prog="nswgw")
    keys_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except NswError as exc:
        report_error(exc)
        return 2


def test_cli_keys_init_creates_and_refuses_a_second_time(tmp_path, capsys):
    target = tmp_path / "pki"
    assert run_cli(["keys", "init", str(target), "--parties", "moit,th-asw", "--key-type", "p256"]) == 0
    out = capsys.readouterr().out
    assert "root-ca.pem" in out and "parties/moit.p12" in out and "index.txt" in out
    assert DevPki.open(target).parties == ("moit", "th-asw")
    assert run_cli(["keys", "init", str(target), "--key-type", "p256"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("CONFIG_INVALID") and str(target) in err
    assert run_cli(["keys", "init", str(target), "--parties", "mard", "--key-type", "p256", "--force"]) == 0
    assert DevPki.open(target).parties == ("mard",)


def test_cli_keys_revoke(tmp_path, capsys):
    target = tmp_path / "pki"
    assert run_cli(["keys", "init", str(target), "--parties", "moit", "--key-type", "p256"]) == 0
    assert run_cli(["keys", "revoke", str(target), "moit", "--reason", "superseded"]) == 0
    assert "Revoked moit" in capsys.readouterr().out
    pki = DevPki.open(target)
    assert pki.crl().get_revoked_certificate_by_serial_number(pki.party("moit").cert.serial_number) is not None
    assert run_cli(["keys", "revoke", str(target), "moitt"]) == 2
    assert "did you mean 'moit'" in capsys.readouterr().err


def test_cli_keys_init_p12_password_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NSW_TEST_P12", "s3cret")
    target = tmp_path / "pki"
    assert (
        run_cli(
            [
                "keys",
                "init",
                str(target),
                "--parties",
                "moit",
                "--key-type",
                "p256",
                "--p12-password-env",
                "NSW_TEST_P12",
            ]
        )
        == 0
    )
    key, cert, _ = pkcs12.load_key_and_certificates((target / "parties" / "moit.p12").read_bytes(), b"s3cret")
    assert cert == DevPki.open(target).party("moit").cert


def test_keys_group_is_registered_in_nswgw():
    from gateway.cli import COMMAND_MODULES

    assert "signing.dev.keys_cli" in COMMAND_MODULES
