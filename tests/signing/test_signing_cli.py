"""``nswgw keys init``, ``nswgw sign`` and ``nswgw verify`` as an integrator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from helpers.signing import VECTORS, verify_at

DOC = b'<?xml version="1.0"?><Envelope><Header><Subject><documentType>BNN0300003</documentType></Subject></Header><Body><Content>licence</Content></Body></Envelope>'


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-pki") / "pki"
    assert main(["keys", "init", str(d), "--key-type", "p256"]) == 0
    return d


def test_sign_then_verify_with_the_dev_pki(pki_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "in.xml").write_bytes(DOC)
    out = tmp_path / "signed.xml"
    rc = main(
        [
            "sign",
            str(tmp_path / "in.xml"),
            "-o",
            str(out),
            "--p12",
            str(pki_dir / "parties" / "mard.p12"),
            "--password",
            "changeit",
        ]
    )
    assert rc == 0
    capsys.readouterr()
    rc = main(["verify", str(out), "--anchor", str(pki_dir / "root-ca.pem"), "--signer", "CN=mard", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["valid"] is True
    assert report["signer"].startswith("CN=mard")
    assert len(report["chain"]) == 3


def test_vnsw_legacy_sign_and_verify_with_pem_keys(pki_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "in.xml").write_bytes(DOC)
    out = tmp_path / "signed.xml"
    party = pki_dir / "parties"
    assert (
        main(
            [
                "sign",
                str(tmp_path / "in.xml"),
                "-o",
                str(out),
                "--key",
                str(party / "moit.key.pem"),
                "--cert",
                str(party / "moit.pem"),
                "--chain",
                str(pki_dir / "issuing-ca.pem"),
                "--profile",
                "vnsw-legacy",
            ]
        )
        == 0
    )
    assert b"<SystemSignature><ds:Signature" in out.read_bytes()
    capsys.readouterr()
    anchored = ["--anchor", str(pki_dir / "root-ca.pem"), "--signer", "CN=moit"]
    assert main(["verify", str(out), *anchored, "--profile", "vnsw-legacy"]) == 0
    assert capsys.readouterr().out.startswith("VALID signer=CN=moit")
    assert main(["verify", str(out), *anchored]) == 1
    assert "INVALID SIG_LOCATION_INVALID" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("vector", "code"),
    [
        ("tampered_content.xml", "SIG_DIGEST_MISMATCH"),
        ("signer_revoked.xml", "CERT_REVOKED"),
        ("hmac_signature.xml", "SIG_HMAC_FORBIDDEN"),
    ],
)
def test_verify_exits_non_zero_with_code_and_reason(vector: str, code: str, capsys) -> None:
    pki = VECTORS / "pki"
    rc = main(
        [
            "verify",
            str(VECTORS / vector),
            "--anchor",
            str(pki / "root-ca.pem"),
            "--any-signer",
            "--crl",
            str(pki / "issuing-ca.crl.pem"),
            "--crl",
            str(pki / "root-ca.crl.pem"),
            "--at",
            verify_at().isoformat(),
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert report["valid"] is False and report["code"] == code and report["message"]


def test_sign_with_wrong_password_is_a_coded_error(pki_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "in.xml").write_bytes(DOC)
    rc = main(["sign", str(tmp_path / "in.xml"), "--p12", str(pki_dir / "parties" / "mard.p12"), "--password", "nope"])
    assert rc == 2
    assert capsys.readouterr().err.startswith("KEY_LOAD_FAILED")


def test_sign_refuses_xxe_input(pki_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "in.xml").write_bytes(b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    rc = main(
        ["sign", str(tmp_path / "in.xml"), "--p12", str(pki_dir / "parties" / "mard.p12"), "--password", "changeit"]
    )
    assert rc == 2
    assert capsys.readouterr().err.startswith("XML_DTD_FORBIDDEN")


def test_verify_needs_some_trust(tmp_path: Path, capsys) -> None:
    rc = main(["verify", str(VECTORS / "valid.xml")])
    assert rc == 2
    assert "CONFIG_INVALID" in capsys.readouterr().err


def test_console_script_runs_as_a_process(pki_dir: Path, tmp_path: Path) -> None:
    """The installed entry point, stdin to stdout, as a shell pipeline would use it."""
    sign = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "sign",
            "-",
            "--p12",
            str(pki_dir / "parties" / "customs.p12"),
            "--password-env",
            "P12PW",
        ],
        input=DOC,
        capture_output=True,
        env={"P12PW": "changeit", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert sign.returncode == 0, sign.stderr
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "verify",
            "-",
            "--anchor",
            str(pki_dir / "root-ca.pem"),
            "--signer",
            "CN=customs",
        ],
        input=sign.stdout,
        capture_output=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "verify",
            "-",
            "--anchor",
            str(pki_dir / "root-ca.pem"),
            "--signer",
            "CN=customs",
        ],
        input=sign.stdout.replace(b"licence", b"LICENCE"),
        capture_output=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert b"SIG_DIGEST_MISMATCH" in bad.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "no-such-file.xml", "--anchor", str(VECTORS / "pki" / "root-ca.pem"), "--any-signer"],
        ["validate", "--format", "form-d", "no-such-file.xml"],
        ["map", "--from", "form-d", "--to", "json", "no-such-file.xml", "-"],
    ],
    ids=["verify", "validate", "map"],
)
def test_missing_input_file_is_a_coded_error_not_a_traceback(argv, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("CONFIG_INVALID (IN): cannot read no-such-file.xml")
